//! Errors of the data layer: each names the file (or dataset) and the problem.

use std::path::PathBuf;

/// Where in a file a problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The whole file.
    File,
    /// A 1-based line number.
    Line(u64),
    /// A key (JSON object key, column name, tensor name).
    Key(String),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File => Ok(()),
            Location::Line(n) => write!(f, ":{n}"),
            Location::Key(k) => write!(f, " (key {k:?})"),
        }
    }
}

/// A failure to read or use a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (in the message, and not a `source()`, so that an error chain
        /// printed with `{:#}` says it once).
        error: std::io::Error,
    },
    /// The file's content is malformed or inconsistent.
    #[error("{path}{at}: {msg}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Where in the file.
        at: Location,
        /// What is wrong.
        msg: String,
    },
    /// The dataset as a whole cannot be used (e.g. nothing is left after filtering).
    #[error("dataset {name}: {msg}")]
    Dataset {
        /// The dataset's name or path.
        name: String,
        /// What is wrong.
        msg: String,
    },
}

impl DataError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io { path: path.into(), error: source }
    }

    /// A problem with the whole file `path`.
    pub fn file(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        DataError::Format { path: path.into(), at: Location::File, msg: msg.into() }
    }

    /// A problem on line `line` (1-based) of `path`.
    pub fn line(path: impl Into<PathBuf>, line: u64, msg: impl Into<String>) -> Self {
        DataError::Format { path: path.into(), at: Location::Line(line), msg: msg.into() }
    }

    /// A problem at key `key` of `path`.
    pub fn key(path: impl Into<PathBuf>, key: impl Into<String>, msg: impl Into<String>) -> Self {
        DataError::Format { path: path.into(), at: Location::Key(key.into()), msg: msg.into() }
    }

    /// A problem with the dataset `name` as a whole.
    pub fn dataset(name: impl Into<String>, msg: impl Into<String>) -> Self {
        DataError::Dataset { name: name.into(), msg: msg.into() }
    }
}

/// Result alias of the data layer.
pub type Result<T> = std::result::Result<T, DataError>;
