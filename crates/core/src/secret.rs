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

#[cfg(test)]
mod tests {
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
