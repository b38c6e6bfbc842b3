//! The product's intent catalogue (`intents/intents.toml`): each intent's route (the bot
//! answers, or a human takes over), how the bot answers it, and its descriptions.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Who finishes the job for an intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    Bot,
    Human,
}

/// How the bot answers an intent it owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerKind {
    Tracking,
    Faq,
    Smalltalk,
    Handoff,
}

/// What the engine does with an intent beyond its route: the catalogue, not code, names the
/// intents that mean "get me a person", "I am upset", or a particular small-talk reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    AskForHuman,
    Complaint,
    Greeting,
    Thanks,
    Goodbye,
    Capabilities,
}

/// One intent of the catalogue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentSpec {
    pub name: String,
    pub route: Route,
    pub answer: AnswerKind,
    #[serde(default)]
    pub role: Option<Role>,
    pub description: String,
    pub description_zh: String,
}

/// The whole catalogue.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub intents: Vec<IntentSpec>,
}

/// Problems with the catalogue file.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Deserialize)]
struct File {
    intent: Vec<IntentSpec>,
}

impl Catalog {
    /// Loads `dir/intents.toml`.
    pub fn load(dir: &Path) -> Result<Self, CatalogError> {
        let path = dir.join("intents.toml");
        let text = std::fs::read_to_string(&path).map_err(|source| CatalogError::Read {
            path: path.clone(),
            source,
        })?;
        let file: File = toml::from_str(&text).map_err(|source| CatalogError::Parse {
            path: path.clone(),
            source,
        })?;
        let mut seen = std::collections::HashSet::new();
        for i in &file.intent {
            if !seen.insert(i.name.as_str()) {
                return Err(CatalogError::Invalid(format!(
                    "intent {} defined twice",
                    i.name
                )));
            }
            if (i.route == Route::Human) != (i.answer == AnswerKind::Handoff) {
                return Err(CatalogError::Invalid(format!(
                    "intent {}: route human goes with answer handoff, and only it",
                    i.name
                )));
            }
        }
        Ok(Self {
            intents: file.intent,
        })
    }

    /// Looks an intent up by name.
    pub fn get(&self, name: &str) -> Option<&IntentSpec> {
        self.intents.iter().find(|i| i.name == name)
    }
}
