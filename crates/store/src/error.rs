//! Store errors: each names the store, bucket or key and keeps the store's
//! own message; [`StoreError::status`] is the one place mapping them to
//! behaviour §8.2 statuses.

use sauve_status::Status;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL or the options do not name a usable store.
    #[error("{what}: {reason} (accepted: {accepted})")]
    Invalid {
        /// What was given.
        what: String,
        /// What is wrong with it.
        reason: String,
        /// What would be accepted.
        accepted: &'static str,
    },
    /// The store refused the credentials or the access.
    #[error("{store}: access denied to bucket {bucket:?}: {message}")]
    Denied {
        /// The store.
        store: String,
        /// The bucket.
        bucket: String,
        /// The store's message.
        message: String,
    },
    /// The bucket does not exist.
    #[error("{store}: bucket {bucket:?} does not exist: {message}")]
    NoBucket {
        /// The store.
        store: String,
        /// The bucket.
        bucket: String,
        /// The store's message.
        message: String,
    },
    /// The key is taken: sets are never overwritten.
    #[error("{store}: {key} already exists; a set is never overwritten")]
    Exists {
        /// The store.
        store: String,
        /// The key.
        key: String,
    },
    /// No object at the key.
    #[error("{store}: {key} not found")]
    NotFound {
        /// The store.
        store: String,
        /// The key.
        key: String,
    },
    /// The store answered what sauve never writes there: an object or a
    /// listing past the bounds sauve reads (SECURITY.md, "Stores"). Never
    /// read whole: a bucket others can write is not trusted to be small.
    #[error(
        "{store}: {key}: {what}; refused (a store that holds it was written by something other than sauve)"
    )]
    Hostile {
        /// The store.
        store: String,
        /// The key (or prefix).
        key: String,
        /// What is past which bound.
        what: String,
    },
    /// The store could not be reached or failed: network, timeouts, 5xx.
    #[error("{store}: {action} {key}: {message}")]
    Failed {
        /// The store.
        store: String,
        /// What was being done (`cannot upload`, `cannot list`…).
        action: &'static str,
        /// The key (or prefix).
        key: String,
        /// The store's message, or the system's.
        message: String,
    },
}

impl StoreError {
    /// The status a backup run ends with (behaviour §19): bad credentials, a
    /// missing bucket or a taken key are 1407, failures to reach or write
    /// the store 1409 (retried by the failure policy), a missing set 1410.
    pub fn status(&self) -> Status {
        match self {
            StoreError::Invalid { .. }
            | StoreError::Denied { .. }
            | StoreError::NoBucket { .. }
            | StoreError::Exists { .. } => Status::DestinationInvalid,
            StoreError::NotFound { .. } => Status::ArchiveMissing,
            StoreError::Hostile { .. } => Status::ArchiveCorrupt,
            StoreError::Failed { .. } => Status::BackupError,
        }
    }

    /// True when the store could not be reached or failed for a reason
    /// that may pass: worth retrying later.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Failed { .. })
    }
}
