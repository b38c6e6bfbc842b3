//! Labelled examples: JSONL files of `{"text", "intent", "lang"?}` and the product's
//! `training-data/` folder. Malformed lines are errors that name their line, never skipped.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One labelled message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    pub text: String,
    pub intent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

/// A problem with example files.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {count} malformed line(s):\n{details}")]
    Malformed {
        path: PathBuf,
        count: usize,
        details: String,
    },
    #[error("{0} holds no examples")]
    Empty(PathBuf),
}

/// Reads a JSONL file of examples. Blank lines are allowed; every other line must be an
/// example with a non-empty `intent`.
pub fn load_jsonl(path: &Path) -> Result<Vec<Example>, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_jsonl(path, &bytes)
}

/// Parses JSONL bytes; `path` only names the source in errors.
pub fn parse_jsonl(path: &Path, bytes: &[u8]) -> Result<Vec<Example>, DataError> {
    let mut examples = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        let line = match std::str::from_utf8(line) {
            Ok(l) => l.trim(),
            Err(e) => {
                problems.push(format!("  line {n}: invalid UTF-8 ({e})"));
                continue;
            }
        };
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<Example>(line) {
            Ok(ex) if ex.intent.trim().is_empty() => {
                problems.push(format!("  line {n}: empty intent"));
            }
            Ok(ex) => examples.push(ex),
            Err(e) => problems.push(format!("  line {n}: {e}")),
        }
    }
    if !problems.is_empty() {
        let count = problems.len();
        problems.truncate(20);
        return Err(DataError::Malformed {
            path: path.to_path_buf(),
            count,
            details: problems.join("\n"),
        });
    }
    if examples.is_empty() {
        return Err(DataError::Empty(path.to_path_buf()));
    }
    Ok(examples)
}

/// Reads every `*.jsonl` file in a folder, in name order.
pub fn load_dir(dir: &Path) -> Result<Vec<Example>, DataError> {
    let read_err = |source| DataError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for f in files {
        all.extend(load_jsonl(&f)?);
    }
    if all.is_empty() {
        return Err(DataError::Empty(dir.to_path_buf()));
    }
    Ok(all)
}

/// Splits examples per intent into (kept, held out): `fraction` of each intent, at least one
/// when an intent has two or more, chosen by a seeded shuffle.
pub fn stratified_split(
    examples: &[Example],
    fraction: f64,
    seed: u64,
) -> (Vec<Example>, Vec<Example>) {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    use std::collections::BTreeMap;

    let mut by_intent: BTreeMap<&str, Vec<&Example>> = BTreeMap::new();
    for ex in examples {
        by_intent.entry(&ex.intent).or_default().push(ex);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut kept, mut held) = (Vec::new(), Vec::new());
    for (_, mut group) in by_intent {
        group.shuffle(&mut rng);
        let mut n = (group.len() as f64 * fraction).round() as usize;
        if n == 0 && group.len() >= 2 && fraction > 0.0 {
            n = 1;
        }
        held.extend(group[..n].iter().map(|e| (*e).clone()));
        kept.extend(group[n..].iter().map(|e| (*e).clone()));
    }
    (kept, held)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_malformed(input: &[u8], expect_line: &str) {
        let err = parse_jsonl(Path::new("x.jsonl"), input).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(expect_line), "{msg}");
    }

    #[test]
    fn malformed_lines_are_reported_with_numbers() {
        check_malformed(b"{\"text\":\"a\",\"intent\":\"x\"}\nnot json\n", "line 2");
        check_malformed(b"{\"text\":\"a\"}\n", "line 1");
        check_malformed(
            b"{\"text\":\"a\",\"intent\":\"\"}\n",
            "line 1: empty intent",
        );
        check_malformed(
            b"\n\n{\"text\":\"a\",\"intent\":\"x\",\"extra\":1}\n",
            "line 3",
        );
        check_malformed(
            b"{\"text\":\"\xff\",\"intent\":\"x\"}\n",
            "line 1: invalid UTF-8",
        );
        check_malformed(b"{\"text\": 5, \"intent\":\"x\"}\n", "line 1");
    }

    #[test]
    fn blank_lines_are_fine_and_empty_files_are_not() {
        let ok = parse_jsonl(
            Path::new("x"),
            b"\n{\"text\":\"a\",\"intent\":\"x\",\"lang\":\"en\"}\n\n",
        )
        .unwrap();
        assert_eq!(ok.len(), 1);
        assert!(parse_jsonl(Path::new("x"), b"\n\n").is_err());
    }

    #[test]
    fn split_is_stratified_and_deterministic() {
        let examples: Vec<Example> = (0..40)
            .map(|i| Example {
                text: format!("t{i}"),
                intent: if i % 4 == 0 { "a".into() } else { "b".into() },
                lang: None,
            })
            .collect();
        let (k1, h1) = stratified_split(&examples, 0.2, 0);
        let (_, h2) = stratified_split(&examples, 0.2, 0);
        assert_eq!(h1, h2);
        assert_eq!(k1.len() + h1.len(), 40);
        assert_eq!(h1.iter().filter(|e| e.intent == "a").count(), 2);
        assert_eq!(h1.iter().filter(|e| e.intent == "b").count(), 6);
    }
}
