//! One command at a time per run folder.
//!
//! `train`, `tokenize`, `embed` and `eval` write into their run folder for minutes or hours; two
//! of them on one folder would overwrite each other's checkpoints and logs. [`RunLock`] holds an
//! exclusive lock on `<run>/.sidrec.lock` (the operating system's file lock: `flock` on Unix,
//! `LockFileEx` on Windows) for as long as the command runs, with the holder's process id and
//! command line in the file. A second command on the folder refuses, naming that process. The
//! operating system releases the lock when a process dies, however it dies (`kill -9`
//! included), so a lock left by a killed run is taken over at once; the file still names the
//! dead process, and the new run says that it took its place.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The lock file's name inside a run folder.
pub const LOCK_FILE: &str = ".sidrec.lock";

/// Held while a command works in its run folder; released when dropped or when the process
/// ends.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// Locks run folder `dir` (which must exist) for this process, or fails naming the process
    /// that holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("{}: cannot open the run folder's lock file", path.display()))?;
        let mut previous = String::new();
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                file.read_to_string(&mut previous).ok();
                let holder = if previous.trim().is_empty() { "another process".to_string() } else { previous.trim().to_string() };
                bail!(
                    "{}: the run folder is in use by {holder}; wait for it to finish, or give this run another --out",
                    dir.display()
                );
            }
            Err(TryLockError::Error(e)) => return Err(e).with_context(|| format!("{}: cannot lock", path.display())),
        }
        file.read_to_string(&mut previous).ok();
        if !previous.trim().is_empty() {
            eprintln!("note: {}: {} did not finish (killed?); this run takes the folder over", dir.display(), previous.trim());
        }
        let args: Vec<String> = std::env::args().collect();
        let me = format!("process {} ({})", std::process::id(), args.join(" "));
        file.set_len(0).and_then(|_| file.seek(SeekFrom::Start(0))).and_then(|_| writeln!(file, "{me}")).and_then(|_| file.sync_all())
            .with_context(|| format!("{}: cannot write", path.display()))?;
        Ok(RunLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // A clean end leaves an empty file, so the next run has nothing to take over; the
        // lock itself goes with the file handle.
        let _ = self.file.set_len(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_named_and_a_dead_one_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let text = std::fs::read_to_string(first.path()).unwrap();
        assert!(text.starts_with(&format!("process {} (", std::process::id())), "{text}");
        // A second lock on the same folder (another open file, as another process would have).
        let err = RunLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains("in use by process") && err.contains("another --out"), "{err}");
        drop(first);
        assert_eq!(std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(), "", "a clean end empties the file");
        // A file naming a process that holds no lock (it was killed): taken over.
        std::fs::write(dir.path().join(LOCK_FILE), "process 999999 (sidrec train synthetic)\n").unwrap();
        let again = RunLock::acquire(dir.path()).unwrap();
        assert!(std::fs::read_to_string(again.path()).unwrap().contains(&std::process::id().to_string()));
    }
}
