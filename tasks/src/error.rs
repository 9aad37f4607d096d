use std::path::PathBuf;

/// Everything that can go wrong while reading task files and turning data into requests. Problems
/// name the file and the 1-based line (of a task file, or of a data file's decompressed text);
/// nothing here panics on bad input.
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

    /// A task file that this crate cannot run as written (an unknown key, a `!function`, a
    /// template that does not compile, …).
    #[error("{}:{line}: {message}", path.display())]
    Definition {
        path: PathBuf,
        line: usize,
        message: String,
    },

    /// The same task, group or tag name defined twice.
    #[error("`{name}` is defined twice: in {first} and in {second}")]
    Duplicate {
        name: String,
        first: String,
        second: String,
    },

    /// An `--include-path` that is not a folder.
    #[error("include path {}: {message}", path.display())]
    IncludePath { path: PathBuf, message: String },

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
