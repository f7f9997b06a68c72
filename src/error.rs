//! The one error type of the core. The bindings (`src/python/mod.rs`) map each
//! variant to a typed Python exception; nothing here knows about Python.

use std::fmt;

/// Every failure the core can report. The message says what was wrong and, where
/// there is one, what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// An argument has the wrong shape, size or value (maps to `ValueError`).
    InvalidArgument(String),
    /// Pixels could not be used: bad dimensions, too many pixels, non-finite values.
    Image(String),
    /// A model could not be loaded or run.
    Model(String),
    /// A gallery is empty, mismatched, corrupt or could not be saved or loaded.
    Gallery(String),
    /// An operating-system input/output failure on a gallery file, with the path
    /// involved (a gallery error to Python; model files report `Model`).
    Io(String),
    /// A bug in fastface (a caught panic); the message asks for a report.
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m)
            | Error::Image(m)
            | Error::Model(m)
            | Error::Gallery(m)
            | Error::Io(m)
            | Error::Internal(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
    pub fn model(msg: impl Into<String>) -> Self {
        Error::Model(msg.into())
    }
    pub fn image(msg: impl Into<String>) -> Self {
        Error::Image(msg.into())
    }
    pub fn gallery(msg: impl Into<String>) -> Self {
        Error::Gallery(msg.into())
    }
    pub fn io(context: impl fmt::Display, err: std::io::Error) -> Self {
        Error::Io(format!("{context}: {err}"))
    }
}
