//! A secret value (API key, password, passphrase) that never shows itself.

use std::fmt;

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
