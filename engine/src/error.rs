//! The engine's error type: every failure a user can cause names the file and says what to do.

use std::path::{Path, PathBuf};

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine. Messages are one line, say what to do, and end
/// with the path they concern (style: `class "cat" has 1 image, need at least 2: data/train/cat`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user's data cannot be used as given.
    #[error("{message}: {}", path.display())]
    Data { message: String, path: PathBuf },

    /// A project file or parameter is wrong.
    #[error("{message}{}", path.as_ref().map(|p| format!(": {}", p.display())).unwrap_or_default())]
    Project {
        message: String,
        path: Option<PathBuf>,
    },

    /// A model folder is missing a file or holds something Lathe did not write.
    #[error("{message}: {}", path.display())]
    Model { message: String, path: PathBuf },

    /// Pretrained weights could not be found or loaded.
    #[error("{0}")]
    Weights(String),

    /// A device was asked for that this build or this machine does not have.
    #[error("{0}")]
    Device(String),

    /// Reading or writing a file failed.
    #[error("{action} failed ({source}): {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The user cancelled the run.
    #[error("cancelled")]
    Cancelled,

    /// Training diverged (loss became NaN or infinite).
    #[error("{0}")]
    Diverged(String),

    /// A feature that exists in the plan but not in this build.
    #[error("{0}")]
    Unsupported(String),

    /// A tensor operation failed: a bug or a device problem, not the user's data.
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
}

impl Error {
    /// A data error about `path`.
    pub fn data(message: impl Into<String>, path: impl AsRef<Path>) -> Self {
        Self::Data {
            message: message.into(),
            path: path.as_ref().to_path_buf(),
        }
    }

    /// A project error, optionally about a file.
    pub fn project(message: impl Into<String>, path: Option<&Path>) -> Self {
        Self::Project {
            message: message.into(),
            path: path.map(Path::to_path_buf),
        }
    }

    /// A model-folder error about `path`.
    pub fn model(message: impl Into<String>, path: impl AsRef<Path>) -> Self {
        Self::Model {
            message: message.into(),
            path: path.as_ref().to_path_buf(),
        }
    }

    /// Wraps an I/O error with what was being done and to which path.
    pub fn io(action: &'static str, path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}
