//! Credentials: passwords as argon2 hashes, API keys as random tokens whose SHA-256 is all the
//! store keeps. Nothing here logs or returns a secret.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};
use base64::Engine;
use sha2::{Digest, Sha256};

/// A secret could not be made: no randomness, or the hash failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SecretError(String);

/// The argon2 hash of a password, in PHC form.
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    Ok(Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| SecretError(format!("cannot hash the password: {e}")))?
        .to_string())
}

/// Whether `password` matches a stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A new random secret: 32 bytes, URL-safe base64.
pub fn random_secret() -> Result<String, SecretError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| SecretError(format!("no randomness for a key: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What the store keeps of an API key: its SHA-256, in hex.
pub fn key_hash(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why a user could not be made.
#[derive(Debug, thiserror::Error)]
pub enum NewUserError {
    #[error("user name `{0}` must be non-empty and have no spaces")]
    BadName(String),
    #[error("the password is empty")]
    EmptyPassword,
    #[error(transparent)]
    Store(#[from] watchfloor_storage::StoreError),
    #[error("{0}")]
    Secret(String),
}

/// Makes a user, the one way the CLI and the API do it. Without a password, one is made and
/// returned, to be shown once.
pub async fn new_user(
    store: &dyn watchfloor_storage::Store,
    actor: &watchfloor_storage::Actor,
    name: &str,
    role: watchfloor_storage::Role,
    orgs: &[String],
    password: Option<String>,
) -> Result<(watchfloor_storage::User, Option<String>), NewUserError> {
    if name.trim().is_empty() || name.contains(char::is_whitespace) {
        return Err(NewUserError::BadName(name.to_string()));
    }
    let (password, made) = match password {
        Some(p) if p.is_empty() => return Err(NewUserError::EmptyPassword),
        Some(p) => (p, false),
        None => (
            random_secret().map_err(|e| NewUserError::Secret(e.to_string()))?,
            true,
        ),
    };
    let hash = hash_password(&password).map_err(|e| NewUserError::Secret(e.to_string()))?;
    let user = store.create_user(actor, name, role, orgs, &hash).await?;
    Ok((user, made.then_some(password)))
}

/// A new API key of a user, and its id; the store keeps only its hash. With `replace`, the
/// user's other keys are revoked.
pub async fn new_api_key(
    store: &dyn watchfloor_storage::Store,
    actor: &watchfloor_storage::Actor,
    name: &str,
    replace: bool,
) -> Result<(String, i64), NewUserError> {
    let key = random_secret().map_err(|e| NewUserError::Secret(e.to_string()))?;
    let id = store
        .add_api_key(actor, name, &key_hash(&key), replace)
        .await?;
    Ok((key, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_keys() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("x", "not a hash"));
        let (a, b) = (random_secret().unwrap(), random_secret().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(key_hash("k").len(), 64);
        assert_eq!(key_hash("k"), key_hash("k"));
    }
}
