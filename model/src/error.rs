//! One error type for everything the model crate can reject. Every variant that comes from a
//! file names that file, so the binary can print a message a user can act on.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is there but its content is not what its format promises.
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    /// The checkpoint describes a model we do not implement (architecture, quantisation, ...).
    #[error("{path}: unsupported: {message}")]
    Unsupported { path: PathBuf, message: String },
    /// A configuration value is missing or inconsistent.
    #[error("{path}: invalid config: {message}")]
    Config { path: PathBuf, message: String },
    /// A tensor in the checkpoint has a shape the config does not allow.
    #[error("{path}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape {
        path: PathBuf,
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    /// A tensor the model needs is not in the checkpoint.
    #[error("{path}: missing tensor `{name}`")]
    MissingTensor { path: PathBuf, name: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A request the model cannot serve (bad attention variant, token id out of range, ...).
    #[error("{0}")]
    Invalid(String),
    /// No checkpoint at the path or hub id given; the message says where it looked and what to do.
    #[error("{0}")]
    NotFound(String),
}

impl ModelError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Format {
            path: path.into(),
            message: message.into(),
        }
    }
    pub fn unsupported(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Unsupported {
            path: path.into(),
            message: message.into(),
        }
    }
    pub fn config(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Config {
            path: path.into(),
            message: message.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, ModelError>;
