//! Errors of the sandbox itself (never of the program it runs: those are a [`crate::Status`]).

use std::io;

/// Why the sandbox could not run a program. A program that fails, crashes or is killed is not an
/// error: it comes back as an [`crate::Execution`].
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A limit is zero or out of range.
    #[error("invalid sandbox limits: {0}")]
    InvalidLimits(String),
    /// No usable Python 3 interpreter.
    #[error("no Python interpreter: {0}")]
    NoPython(String),
    /// The probe program did not run correctly inside the sandbox (interpreter unreadable for the
    /// private uid, limits too tight for Python to start, ...).
    #[error("the sandbox self-test failed: {0}")]
    SelfTest(String),
    /// An operating-system call in the harness failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// Setting up a layer in the run's init or child, before `python3` started, failed.
    #[error("sandbox setup failed at {step}: {source}")]
    ChildSetup {
        step: String,
        #[source]
        source: io::Error,
    },
}

impl SandboxError {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        SandboxError::Io {
            what: what.into(),
            source,
        }
    }
}
