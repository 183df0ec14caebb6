//! Users, their roles and organizations, API keys and login sessions: who may manage them
//! (admins), and how a login is checked and limited.

use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use watchfloor_storage::{Actor, ApiKey, AuditEvent, Role, StoreError, User};

use crate::auth::{self, NewUserError, key_hash, random_secret, verify_password};
use crate::{Caller, Service, ServiceError};

/// Most audit events one read returns.
pub const MAX_AUDIT: usize = 10_000;

/// Characters of a failed login's name the audit log keeps.
const MAX_NAME_SHOWN: usize = 128;

/// How long a login session lasts.
pub const SESSION: chrono::TimeDelta = chrono::TimeDelta::hours(12);

/// Why a login was refused. The answer never says whether the name or the password was wrong.
#[derive(Debug, thiserror::Error)]
pub enum LoginRefused {
    /// Too many failures: wait this many seconds.
    #[error("too many failed logins; try again in {0}s")]
    Wait(u64),
    #[error("the name or the password is wrong")]
    Wrong,
    #[error(transparent)]
    Failed(ServiceError),
}

impl From<NewUserError> for ServiceError {
    fn from(e: NewUserError) -> Self {
        match e {
            NewUserError::Store(e) => e.into(),
            NewUserError::Secret(m) => ServiceError::Unavailable(m),
            e => ServiceError::Invalid(e.to_string()),
        }
    }
}

/// Refuses organizations on an admin: an admin sees every organization, whatever it is given.
fn admin_without_orgs(role: Role, orgs: &[String]) -> Result<(), ServiceError> {
    match (role, orgs.is_empty()) {
        (Role::Admin, false) => Err(ServiceError::Invalid(
            "an admin sees every organization, so it is given none: make the user an analyst or a viewer of those organizations, or an admin without them".into(),
        )),
        _ => Ok(()),
    }
}

/// A value a user typed, as a log line may show it: control characters escaped (so it cannot
/// forge a line or drive a terminal) and at most 64 characters.
pub fn log_safe(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(64)
        .flat_map(char::escape_debug)
        .collect();
    if value.chars().count() > 64 {
        out.push('…');
    }
    out
}

impl Service {
    /// Refuses all but admins.
    pub fn admin_only(&self, caller: &Caller) -> Result<(), ServiceError> {
        self.admins_only(caller, "manage users")
    }

    /// Refuses all but admins, saying what only they do (`"keep the allow list"`).
    pub fn admins_only(&self, caller: &Caller, what: &str) -> Result<(), ServiceError> {
        match caller.role {
            Role::Admin => Ok(()),
            _ => Err(ServiceError::Forbidden(format!("only admins {what}"))),
        }
    }

    pub async fn users(&self, caller: &Caller) -> Result<Vec<User>, ServiceError> {
        self.admin_only(caller)?;
        Ok(self.store.users().await?)
    }

    /// Makes a user; without a password, one is made and returned, to be shown once.
    pub async fn create_user(
        &self,
        caller: &Caller,
        name: &str,
        role: Role,
        orgs: &[String],
        password: Option<String>,
    ) -> Result<(User, Option<String>), ServiceError> {
        self.admin_only(caller)?;
        admin_without_orgs(role, orgs)?;
        crate::error::no_nul("the user name", name)?;
        orgs.iter()
            .try_for_each(|o| crate::error::no_nul("an organization", o))?;
        let made =
            auth::new_user(&*self.store, &caller.actor(), name, role, orgs, password).await?;
        tracing::info!(user = %name, by = %caller.name, "user created");
        Ok(made)
    }

    /// Disables a user and revokes its keys and sessions.
    pub async fn disable_user(&self, caller: &Caller, name: &str) -> Result<(), ServiceError> {
        self.admin_only(caller)?;
        self.known_user(name).await?;
        self.store.disable_user(&caller.actor(), name).await?;
        tracing::info!(user = %name, by = %caller.name, "user disabled");
        Ok(())
    }

    /// Enables a disabled user again; its old keys and sessions stay revoked.
    pub async fn enable_user(&self, caller: &Caller, name: &str) -> Result<(), ServiceError> {
        self.admin_only(caller)?;
        if !self.known_user(name).await?.disabled {
            return Err(ServiceError::Invalid(format!(
                "user `{name}` is not disabled"
            )));
        }
        self.store.enable_user(&caller.actor(), name).await?;
        tracing::info!(user = %name, by = %caller.name, "user enabled");
        Ok(())
    }

    /// A new API key of a user and its id, the key to be shown once. With `replace`, its
    /// other keys are revoked.
    pub async fn new_api_key(
        &self,
        caller: &Caller,
        name: &str,
        replace: bool,
    ) -> Result<(String, i64), ServiceError> {
        self.admin_only(caller)?;
        if self.known_user(name).await?.disabled {
            return Err(ServiceError::Invalid(format!(
                "user `{name}` is disabled, and a disabled user's keys do not work: enable it first"
            )));
        }
        Ok(auth::new_api_key(&*self.store, &caller.actor(), name, replace).await?)
    }

    /// A user's API keys (never the keys themselves).
    pub async fn api_keys(&self, caller: &Caller, name: &str) -> Result<Vec<ApiKey>, ServiceError> {
        self.admin_only(caller)?;
        self.known_user(name).await?;
        Ok(self.store.api_keys(name).await?)
    }

    /// Revokes one API key of a user.
    pub async fn revoke_api_key(
        &self,
        caller: &Caller,
        name: &str,
        id: i64,
    ) -> Result<(), ServiceError> {
        self.admin_only(caller)?;
        self.known_user(name).await?;
        match self.store.revoke_api_key(&caller.actor(), name, id).await? {
            true => {
                tracing::info!(user = %name, key = id, by = %caller.name, "API key revoked");
                Ok(())
            }
            false => Err(ServiceError::NotFound(format!(
                "user `{name}` has no API key {id} that is not revoked already"
            ))),
        }
    }

    /// The audit log, newest first (admins).
    pub async fn audit(
        &self,
        caller: &Caller,
        since: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, ServiceError> {
        match caller.role {
            Role::Admin => Ok(self
                .store
                .audit_log(since, limit.clamp(1, MAX_AUDIT))
                .await?),
            _ => Err(ServiceError::Forbidden(
                "only admins read the audit log".into(),
            )),
        }
    }

    /// Sets a user's role and organizations; the change applies to its next request.
    pub async fn set_user_access(
        &self,
        caller: &Caller,
        name: &str,
        role: Role,
        orgs: &[String],
    ) -> Result<User, ServiceError> {
        self.admin_only(caller)?;
        admin_without_orgs(role, orgs)?;
        orgs.iter()
            .try_for_each(|o| crate::error::no_nul("an organization", o))?;
        let changed = self
            .store
            .set_user_access(&caller.actor(), name, role, orgs)
            .await
            .map_err(|e| match e {
                StoreError::NoUser(_) => ServiceError::NotFound(format!("no user named `{name}`")),
                e => e.into(),
            })?;
        tracing::info!(user = %name, by = %caller.name, role = role.as_str(), "user access set");
        Ok(changed)
    }

    async fn known_user(&self, name: &str) -> Result<User, ServiceError> {
        self.store
            .user(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no user named `{name}`")))
    }

    /// The user an API key or a session token belongs to, if it is valid.
    pub async fn authenticate(&self, key: &str) -> Result<Option<User>, ServiceError> {
        let hash = key_hash(key);
        Ok(match self.store.user_by_key(&hash).await? {
            Some(user) => Some(user),
            None => self.store.user_by_session(&hash).await?,
        })
    }

    /// The user of a login session, if it is still valid.
    pub async fn session_user(&self, token: &str) -> Result<Option<User>, ServiceError> {
        Ok(self.store.user_by_session(&key_hash(token)).await?)
    }

    /// Checks a name and password and starts a session: its token and when it ends. Failed
    /// attempts are limited per user and per address; the API and the login form both come
    /// here.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        addr: SocketAddr,
    ) -> Result<(String, DateTime<Utc>), LoginRefused> {
        let now = std::time::Instant::now();
        let ip = addr.ip().to_string();
        if let Some(wait) = self.limiter.wait(name, &ip, now) {
            return Err(LoginRefused::Wait(wait.as_secs().max(1)));
        }
        let failed = |e: StoreError| LoginRefused::Failed(e.into());
        let user = self.store.user(name).await.map_err(failed)?;
        let valid = user
            .as_ref()
            .is_some_and(|u| !u.disabled && verify_password(password, &u.password_hash));
        let actor = Actor::new(name, Some(ip.clone()));
        if !valid {
            self.limiter.failed(name, &ip, now);
            tracing::warn!(user = %log_safe(name), address = %ip, "failed login");
            let why = match &user {
                None => "no such user",
                Some(u) if u.disabled => "the user is disabled",
                Some(_) => "wrong password",
            };
            // The name as typed, cut: it may be an attacker's.
            let shown: String = name.chars().take(MAX_NAME_SHOWN).collect();
            self.store
                .record_audit(
                    &Actor::new(&shown, Some(ip.clone())),
                    "login_failed",
                    &shown,
                    why,
                )
                .await
                .map_err(failed)?;
            return Err(LoginRefused::Wrong);
        }
        self.limiter.succeeded(name, &ip);
        let token = random_secret()
            .map_err(|e| LoginRefused::Failed(ServiceError::Unavailable(e.to_string())))?;
        let expires = Utc::now() + SESSION;
        self.store
            .add_session(&actor, name, &key_hash(&token), expires)
            .await
            .map_err(failed)?;
        Ok((token, expires))
    }

    /// Ends a login session.
    pub async fn logout(&self, caller: &Caller, token: &str) -> Result<(), ServiceError> {
        Ok(self
            .store
            .end_session(&caller.actor(), &key_hash(token))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    /// Regression (a login name with a newline and ESC forged a log line and drove the
    /// terminal; a 1 MB name added 1 MB a request): what a user typed is escaped and cut.
    #[test]
    fn what_users_type_is_escaped_and_cut_in_logs() {
        let shown = super::log_safe("dana\n2026-01-01 INFO forged\u{1b}[31m");
        assert!(
            !shown.contains('\n') && !shown.contains('\u{1b}'),
            "{shown}"
        );
        assert!(
            shown.contains("\\n") && shown.contains("\\u{1b}"),
            "{shown}"
        );
        let long = super::log_safe(&"x".repeat(1_000_000));
        assert_eq!(long.chars().count(), 65);
    }
}
