//! Attachment bytes as files, for the embedded store: one file per attachment, named by its
//! id, in one directory. A file is written to a temporary name, fsynced, renamed into place
//! and the directory fsynced, so a name that exists always holds the whole file, and a file
//! whose metadata row committed survives a crash or power loss.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::domain::AttachmentId;

/// The folder of attachment files (`DATA_DIR/attachments`).
#[derive(Debug, Clone)]
pub struct AttachmentFiles {
    dir: PathBuf,
}

impl AttachmentFiles {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, id: AttachmentId) -> PathBuf {
        self.dir.join(id.to_string())
    }

    /// Writes the file durably (blocking; call off the async runtime).
    pub fn write(&self, id: AttachmentId, bytes: &[u8]) -> std::io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let target = self.path(id);
        let tmp = self
            .dir
            .join(format!(".{id}.{}.tmp", uuid::Uuid::new_v4().simple()));
        let written = (|| {
            let mut f = File::create_new(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &target)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written?;
        sync_dir(&self.dir)
    }

    /// The file's bytes; `None` when there is no such file.
    pub fn read(&self, id: AttachmentId) -> std::io::Result<Option<Vec<u8>>> {
        match fs::read(self.path(id)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes the file (a missing one is already removed).
    pub fn remove(&self, id: AttachmentId) -> std::io::Result<()> {
        match fs::remove_file(self.path(id)) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Makes a directory's entries (a rename, a removal) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_written_whole_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let files = AttachmentFiles::new(dir.path().join("attachments"));
        let id = AttachmentId::new();
        assert_eq!(files.read(id).unwrap(), None);
        files.write(id, b"\xFF\xD8\xFF\xE0 photo").unwrap();
        assert_eq!(files.read(id).unwrap().unwrap(), b"\xFF\xD8\xFF\xE0 photo");
        // Only the final name is left behind: no temporary files.
        let names: Vec<_> = fs::read_dir(dir.path().join("attachments"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [id.to_string()]);
        files.remove(id).unwrap();
        files.remove(id).unwrap();
        assert_eq!(files.read(id).unwrap(), None);
    }
}
