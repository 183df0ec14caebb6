//! A secret value (API key, password, passphrase) that never shows itself, and where a
//! secret of the config comes from.

use std::fmt;
use std::path::{Path, PathBuf};

/// A secret. `Debug` and `Display` print `<redacted>`; only [`Secret::expose`] reveals it, and
/// only code that sends it to the provider should call that.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a secret comes from; read by [`SecretSource::read`] when it is needed.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    Inline(Secret),
    Env(String),
    File(PathBuf),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Inline(_) => f.write_str("Inline(<redacted>)"),
            SecretSource::Env(var) => write!(f, "Env({var})"),
            SecretSource::File(path) => write!(f, "File({})", path.display()),
        }
    }
}

impl SecretSource {
    /// A secret as the config writes it: a string, `{ env = "VAR" }` or `{ file = "path" }`
    /// (relative to `base_dir`).
    pub fn from_toml(value: &toml::Value, base_dir: &Path) -> Result<SecretSource, String> {
        use toml::Value as V;
        let shape = "a secret is a string, { env = \"VAR\" } or { file = \"path\" }";
        match value {
            V::String(s) if s.is_empty() => Err("the secret is empty".into()),
            V::String(s) => Ok(SecretSource::Inline(Secret::new(s.clone()))),
            V::Table(t) => match (t.get("env"), t.get("file"), t.len()) {
                (Some(V::String(var)), None, 1) => Ok(SecretSource::Env(var.clone())),
                (None, Some(V::String(file)), 1) => Ok(SecretSource::File(base_dir.join(file))),
                _ => Err(shape.into()),
            },
            _ => Err(shape.into()),
        }
    }

    /// The secret; an error names where it should have come from, never the value.
    pub fn read(&self) -> Result<Secret, String> {
        self.read_with(&|var| std::env::var(var).ok())
    }

    /// The secret, with environment variables looked up by `env`.
    pub fn read_with(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Secret, String> {
        let value = match self {
            SecretSource::Inline(s) => return Ok(s.clone()),
            SecretSource::Env(var) => {
                env(var).ok_or_else(|| format!("environment variable `{var}` is not set"))?
            }
            SecretSource::File(path) => crate::config::read_secret_file(path)?,
        };
        if value.is_empty() {
            return Err("the secret is empty".into());
        }
        Ok(Secret::new(value))
    }
}

/// A URL as it may be shown: a password in it (`scheme://user:password@host`) replaced by
/// `***`. URLs that name no password are shown as they are.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// `text` with the password of `url` (if it has one) replaced by `***` wherever it appears.
pub fn without_url_password(text: &str, url: &str) -> String {
    let password = url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or_default())
        .and_then(|authority| authority.rsplit_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password)
        .filter(|p| !p.is_empty());
    let text = text.replace(url, &redact_url(url));
    match password {
        Some(p) => text.replace(p, "***"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_password_in_a_url_is_not_shown() {
        let url = "http://proxyuser:S3cr3tPass@proxy.example:notaport/x";
        assert_eq!(
            redact_url(url),
            "http://proxyuser:***@proxy.example:notaport/x"
        );
        assert_eq!(redact_url("https://host/v1"), "https://host/v1");
        let said = without_url_password(&format!("bad {url}, port of S3cr3tPass@proxy"), url);
        assert!(!said.contains("S3cr3tPass"), "{said}");
    }

    use super::*;

    #[test]
    fn never_formats_its_value() {
        let s = Secret::new("canary-5f1e2d");
        assert_eq!(
            format!("{s} {s:?} {s:#?}"),
            "<redacted> Secret(<redacted>) Secret(<redacted>)"
        );
        assert_eq!(s.expose(), "canary-5f1e2d");
    }
}
