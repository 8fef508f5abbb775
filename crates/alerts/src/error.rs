//! Errors of the notifiers.
//!
//! Policy: an error names the notifier's target (the URL without its query,
//! the SMTP host, the command) and what went wrong, never a secret. Every
//! delivery error may be helped by a retry except a bad configuration.

/// Why one delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// The attempt did not end in time.
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The receiver could not be reached or the connection broke.
    #[error("cannot reach {target}: {reason}")]
    Unreachable {
        /// What was being reached.
        target: String,
        /// The system's or the library's words.
        reason: String,
    },
    /// The receiver answered with an error.
    #[error("{target} answered {answer}")]
    Refused {
        /// What answered.
        target: String,
        /// The status and the start of the body, or the SMTP reply.
        answer: String,
    },
    /// The command could not start or ended badly.
    #[error("{0}")]
    Command(String),
    /// The notifier's settings cannot work (an address lettre refuses…).
    #[error("{0}")]
    Config(String),
}

impl NotifyError {
    /// Whether another attempt may succeed.
    pub fn is_transient(&self) -> bool {
        !matches!(self, NotifyError::Config(_))
    }
}
