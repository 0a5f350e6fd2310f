//! Atomic writes of run artifacts.
//!
//! Every file a run leaves behind (metrics, configs, id maps, matrices, checkpoints) is written
//! to a temporary file in the destination folder and renamed into place, so an interrupted run
//! never leaves a truncated file that looks complete.

use std::io::Write;
use std::path::{Path, PathBuf};

/// An I/O failure while writing an artifact, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct WriteError {
    /// The destination that could not be written.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: std::io::Error,
}

/// Writes a file atomically: `write` fills a temporary file beside `path`, which is then
/// flushed, synced and renamed over `path`. On error nothing is left at `path`.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), WriteError> {
    let err = |source| WriteError { path: path.to_path_buf(), source };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".sidrec-tmp-");
    // The permissions of any new file (0666 less the umask), not the temporary file's 0600:
    // exported weights, metrics and checkpoints are meant to be shared and read by other tools.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(dir).map_err(err)?;
    {
        let mut buf = std::io::BufWriter::new(tmp.as_file_mut());
        write(&mut buf).map_err(err)?;
        buf.flush().map_err(err)?;
    }
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// Writes `bytes` atomically to `path`.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_atomic(path, |w| w.write_all(bytes))
}

/// Writes `lines` as JSON lines (one compact object a line) atomically to `path`.
pub fn write_jsonl<T: serde::Serialize>(path: &Path, lines: &[T]) -> Result<(), WriteError> {
    write_atomic(path, |w| {
        for line in lines {
            serde_json::to_writer(&mut *w, line).map_err(std::io::Error::other)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

/// Serialises `value` as pretty JSON and writes it atomically to `path`.
pub fn write_json<T: serde::Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), WriteError> {
    write_atomic(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(unix)]
    fn written_files_get_the_usual_permissions_not_the_temporary_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.json");
        // SAFETY: umask only changes the process's file-creation mask; restored below.
        let old = unsafe { libc::umask(0o022) };
        let written = write_bytes(&path, b"{}");
        unsafe { libc::umask(old) };
        written.unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
    }

    #[test]
    fn writes_and_replaces_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/metrics.json");
        write_json(&path, &serde_json::json!({"a": 1})).unwrap();
        write_bytes(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "temporary files left behind");
    }

    #[test]
    fn failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let res = write_atomic(&path, |_| Err(std::io::Error::other("boom")));
        assert!(res.is_err());
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
