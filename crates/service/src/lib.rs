//! watchfloor-service: the rules every front end shares (the CLI, the API, XSOAR's API, the UI
//! and, later, automation rules), in one place, so that each front end only translates.
//!
//! - [`commands`]: provider commands run in an incident, for a [`Caller`], under the
//!   organization rule ([`tenancy`]) and with `${...}` references resolved ([`refs`]).

pub mod commands;
pub mod refs;
pub mod tenancy;

use watchfloor_storage::{Role, Scope, User};

/// Who asks: the name the war room records, the role, and the organizations seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    pub scope: Scope,
}

impl Caller {
    /// A user of the store.
    pub fn of(user: &User) -> Caller {
        Caller {
            name: user.name.clone(),
            role: user.role,
            scope: Scope::of(user),
        }
    }

    /// Someone on the machine itself (the CLI): an administrator, recorded as `name`.
    pub fn local(name: &str) -> Caller {
        Caller {
            name: name.to_string(),
            role: Role::Admin,
            scope: Scope::All,
        }
    }
}
