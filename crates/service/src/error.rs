//! `ServiceError`: why the service refused or failed, with no HTTP in it. Each front end maps
//! it to its own form: an exit code, a status with `{error, code}`, XSOAR's error, a flash.

use watchfloor_storage::StoreError;

/// Why an operation did not happen. Messages say what failed and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Nothing by that name or id, as far as this caller can tell (another organization's
    /// incident is "not found", so its existence does not leak).
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this (a viewer's change, another organization, not an admin).
    #[error("{0}")]
    Forbidden(String),
    /// The request itself is wrong: an empty note, a filter that cannot be read.
    #[error("{0}")]
    Invalid(String),
    /// Someone else changed the incident since the caller read it.
    #[error("{0}")]
    Conflict(String),
    /// The lifecycle refuses the change (closing a closed incident, editing a closed one).
    #[error("{0}")]
    Refused(String),
    /// What is needed is not running here (no instances configured, no engine).
    #[error("{0}")]
    Unavailable(String),
    /// Something outside watchfloor failed: a receiver refused a message, a server did not
    /// answer.
    #[error("{0}")]
    Failed(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl ServiceError {
    /// The caller's mistake or right, as opposed to a failure of the store.
    pub fn is_callers(&self) -> bool {
        !matches!(self, ServiceError::Store(_) | ServiceError::Unavailable(_))
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => ServiceError::Conflict(e.to_string()),
            StoreError::Refused { .. } => ServiceError::Refused(e.to_string()),
            StoreError::NoIncident(id) => ServiceError::NotFound(format!("no incident {id}")),
            StoreError::NoUser(_) => ServiceError::NotFound(e.to_string()),
            StoreError::UserExists(_) => ServiceError::Conflict(e.to_string()),
            StoreError::Unavailable(_) => ServiceError::Unavailable(e.to_string()),
            e => ServiceError::Store(e),
        }
    }
}

/// Refuses text with a NUL character, which the store cannot keep as written: `what` names
/// the field.
pub(crate) fn no_nul(what: &str, text: &str) -> Result<(), ServiceError> {
    match text.contains('\0') {
        true => Err(ServiceError::Invalid(format!(
            "{what} has a NUL character, which cannot be stored: remove it"
        ))),
        false => Ok(()),
    }
}
