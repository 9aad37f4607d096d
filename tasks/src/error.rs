use std::path::PathBuf;

/// Everything that can go wrong while turning a data set into requests. Data problems name the
/// file and the 1-based line (of the decompressed text); nothing here panics on bad data.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("unknown task or group `{name}`; known tasks and groups: {known}")]
    UnknownTask { name: String, known: String },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}:{line}: {message}", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        message: String,
    },

    #[error("{task}: {message}")]
    Fewshot { task: String, message: String },

    /// A known task whose data this crate does not ship (e.g. triviaqa).
    #[error("{task}: {message}")]
    NotBundled { task: String, message: String },

    /// A generate_until task given to the multiple-choice loader.
    #[error("{task} is a generative (generate_until) task; load it with load_gen_task")]
    Generative { task: String },
}

impl TaskError {
    pub(crate) fn malformed(path: &std::path::Path, line: usize, message: impl Into<String>) -> Self {
        TaskError::Malformed {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}
