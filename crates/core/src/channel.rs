//! Notification channels as the config file declares them (`[[channels]]`): where a `notify`
//! action sends, how often at most, and for how long a failing delivery is retried.
//!
//! ```toml
//! [[channels]]
//! name = "oncall"
//! kind = "email"                          # email | webhook | slack | teams
//! smtp = "smtp://127.0.0.1:2525"          # STARTTLS when offered; smtps:// for implicit TLS
//! password = { env = "SMTP_PASSWORD" }
//! from = "watchfloor@soc.example"
//! to = ["oncall@soc.example"]
//! ```
//!
//! Secrets are read when they are used (a delivery, `channels test`), so that commands that
//! send nothing run without them; `serve` reads every one at start and refuses to start
//! without them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub use crate::secret::SecretSource;

/// What a channel delivers through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Email,
    Webhook,
    Slack,
    Teams,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 4] = [
        ChannelKind::Email,
        ChannelKind::Webhook,
        ChannelKind::Slack,
        ChannelKind::Teams,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Email => "email",
            ChannelKind::Webhook => "webhook",
            ChannelKind::Slack => "slack",
            ChannelKind::Teams => "teams",
        }
    }
}

/// One configured channel. Its `Debug` shows [`ChannelConfig::target`], not the URL, whose
/// path carries Slack's and Teams' tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
    /// E-mail: `smtp://host:port` (STARTTLS when the server offers it) or `smtps://host:port`.
    pub smtp: Option<String>,
    /// E-mail: a PEM file of a private CA to trust besides the system's.
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    pub from: Option<String>,
    pub to: Vec<String>,
    /// Webhook, Slack and Teams: where to POST.
    pub url: Option<String>,
    /// Webhook: the HMAC-SHA256 key of the signature header.
    pub secret: Option<SecretSource>,
    /// Messages an hour at most; beyond, notifications wait and go out as one digest.
    pub max_per_hour: u32,
    /// How long a failing delivery is retried before it fails for good.
    pub give_up_after: Duration,
}

/// Where an e-mail channel sends: `smtp://host[:port]` (STARTTLS when offered, port 587 by
/// default) or `smtps://host[:port]` (TLS from the start, port 465).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    pub implicit_tls: bool,
    pub host: String,
    pub port: u16,
}

impl SmtpServer {
    /// Reads an `smtp` setting; an error says what to write.
    pub fn parse(url: &str) -> Result<SmtpServer, String> {
        let bad = || {
            format!(
                "`{}` is not an smtp:// or smtps:// address with a host",
                crate::secret::redact_url(url)
            )
        };
        let (implicit_tls, rest) = match url.split_once("://") {
            Some(("smtps", rest)) => (true, rest),
            Some(("smtp", rest)) => (false, rest),
            _ => return Err(bad()),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let hostport = authority.rsplit('@').next().unwrap_or_default();
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.trim_matches(['[', ']']),
                p.parse::<u16>()
                    .map_err(|_| format!("`{p}` in `smtp` is not a port (1 to 65535)"))?,
            ),
            None => (hostport, if implicit_tls { 465 } else { 587 }),
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(SmtpServer {
            implicit_tls,
            host: host.to_string(),
            port,
        })
    }
}

/// The default of `max_per_hour`.
pub const DEFAULT_MAX_PER_HOUR: u32 = 30;
/// The default of `give_up_after`.
pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

impl std::fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("target", &self.target())
            .field("ca_file", &self.ca_file)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("from", &self.from)
            .field("secret", &self.secret)
            .field("max_per_hour", &self.max_per_hour)
            .field("give_up_after", &self.give_up_after)
            .finish()
    }
}

impl ChannelConfig {
    /// Where it delivers, as it may be shown: a URL's password and query (where webhook
    /// tokens live) left out.
    pub fn target(&self) -> String {
        match self.kind {
            ChannelKind::Email => format!(
                "{} to {}",
                crate::secret::redact_url(self.smtp.as_deref().unwrap_or_default()),
                self.to.join(", ")
            ),
            _ => {
                let url = self.url.as_deref().unwrap_or_default();
                let shown = crate::secret::redact_url(url);
                // Slack's and Teams' incoming-webhook URLs carry their token in the path.
                match shown.split_once("://") {
                    Some((scheme, rest)) => {
                        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
                        format!("{scheme}://{host}/…")
                    }
                    None => shown,
                }
            }
        }
    }

    /// Reads every secret the channel has, to fail at start rather than at the first send.
    pub fn check_secrets(&self) -> Result<(), String> {
        for (key, source) in [("password", &self.password), ("secret", &self.secret)] {
            if let Some(source) = source {
                source.read().map_err(|e| format!("`{key}`: {e}"))?;
            }
        }
        Ok(())
    }
}

/// `[[channels]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawChannel {
    name: Spanned<String>,
    kind: Spanned<String>,
    smtp: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password: Option<Spanned<toml::Value>>,
    from: Option<Spanned<String>>,
    #[serde(default)]
    to: Vec<Spanned<String>>,
    url: Option<Spanned<String>>,
    secret: Option<Spanned<toml::Value>>,
    max_per_hour: Option<Spanned<i64>>,
    give_up_after: Option<Spanned<String>>,
}

type Problem = (std::ops::Range<usize>, String, String);

fn secret_source(
    value: &Spanned<toml::Value>,
    key: String,
    base_dir: &Path,
) -> Result<SecretSource, Problem> {
    SecretSource::from_toml(value.get_ref(), base_dir).map_err(|m| (value.span(), key, m))
}

/// Checks the `[[channels]]` of a config file; an error gives the span, key and message.
pub(crate) fn read_channels(
    raw: &[Spanned<RawChannel>],
    base_dir: &Path,
) -> Result<Vec<ChannelConfig>, Problem> {
    let mut out: Vec<ChannelConfig> = Vec::new();
    for (i, c) in raw.iter().enumerate() {
        let whole = c.span();
        let c = c.get_ref();
        let key = |k: &str| format!("channels[{i}].{k}");
        let name = c.name.get_ref().trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            return Err((
                c.name.span(),
                key("name"),
                "a channel's name is letters, digits, `-` and `_`, e.g. \"oncall\"".into(),
            ));
        }
        if out.iter().any(|o| o.name == name) {
            return Err((
                c.name.span(),
                key("name"),
                format!("there are two channels named `{name}`; give each its own name"),
            ));
        }
        let kind = ChannelKind::ALL
            .into_iter()
            .find(|k| k.as_str() == c.kind.get_ref())
            .ok_or_else(|| {
                (
                    c.kind.span(),
                    key("kind"),
                    format!(
                        "`{}` is not a kind of channel; one of: email, webhook, slack, teams",
                        c.kind.get_ref()
                    ),
                )
            })?;
        let a_kind = match kind {
            ChannelKind::Email => "an email channel".to_string(),
            k => format!("a {} channel", k.as_str()),
        };
        let need = |v: &Option<Spanned<String>>, k: &str, what: &str| match v {
            Some(v) if !v.get_ref().trim().is_empty() => Ok(v.get_ref().trim().to_string()),
            _ => Err((
                whole.clone(),
                key(k),
                format!("{a_kind} needs `{k}`: {what}"),
            )),
        };
        let unused = |v: bool, k: &str| match v {
            true => Err((whole.clone(), key(k), format!("{a_kind} has no `{k}`"))),
            false => Ok(()),
        };
        let (mut smtp, mut from, mut url) = (None, None, None);
        let mut to = Vec::new();
        match kind {
            ChannelKind::Email => {
                let s = need(
                    &c.smtp,
                    "smtp",
                    "the server, e.g. \"smtp://mail.example:587\"",
                )?;
                if let Err(message) = SmtpServer::parse(&s) {
                    return Err((
                        c.smtp.as_ref().map_or(whole.clone(), Spanned::span),
                        key("smtp"),
                        message,
                    ));
                }
                smtp = Some(s);
                from = Some(need(
                    &c.from,
                    "from",
                    "the sender, e.g. \"watchfloor@soc.example\"",
                )?);
                to =
                    c.to.iter()
                        .map(|t| t.get_ref().trim().to_string())
                        .collect();
                if to.is_empty() || to.iter().any(|t| !t.contains('@')) {
                    return Err((
                        whole.clone(),
                        key("to"),
                        "an email channel needs `to`: a list of addresses, e.g. [\"oncall@soc.example\"]".into(),
                    ));
                }
                unused(c.url.is_some(), "url")?;
                unused(c.secret.is_some(), "secret")?;
            }
            _ => {
                let u = need(
                    &c.url,
                    "url",
                    "where to POST, e.g. \"https://hooks.example/x\"",
                )?;
                if !(u.starts_with("https://") || u.starts_with("http://")) {
                    return Err((
                        c.url.as_ref().map_or(whole.clone(), Spanned::span),
                        key("url"),
                        "the url is an http:// or https:// address".into(),
                    ));
                }
                url = Some(u);
                for (set, k) in [
                    (c.smtp.is_some(), "smtp"),
                    (c.from.is_some(), "from"),
                    (!c.to.is_empty(), "to"),
                    (c.username.is_some(), "username"),
                    (c.password.is_some(), "password"),
                    (c.ca_file.is_some(), "ca_file"),
                ] {
                    unused(set, k)?;
                }
                if kind != ChannelKind::Webhook {
                    unused(c.secret.is_some(), "secret")?;
                }
            }
        }
        let max_per_hour = match &c.max_per_hour {
            None => DEFAULT_MAX_PER_HOUR,
            Some(n) if (1..=10_000).contains(n.get_ref()) => *n.get_ref() as u32,
            Some(n) => {
                return Err((
                    n.span(),
                    key("max_per_hour"),
                    "max_per_hour is from 1 to 10000".into(),
                ));
            }
        };
        let give_up_after = match &c.give_up_after {
            None => DEFAULT_GIVE_UP_AFTER,
            Some(v) => humantime::parse_duration(v.get_ref().trim())
                .ok()
                .filter(|d| *d >= Duration::from_secs(60))
                .ok_or_else(|| {
                    (
                        v.span(),
                        key("give_up_after"),
                        format!(
                            "`{}` is not a duration of a minute or more, e.g. \"24h\"",
                            v.get_ref()
                        ),
                    )
                })?,
        };
        out.push(ChannelConfig {
            name,
            kind,
            smtp,
            ca_file: c.ca_file.as_ref().map(|f| base_dir.join(f.get_ref())),
            username: c.username.as_ref().map(|u| u.get_ref().clone()),
            password: c
                .password
                .as_ref()
                .map(|p| secret_source(p, key("password"), base_dir))
                .transpose()?,
            from,
            to,
            url,
            secret: c
                .secret
                .as_ref()
                .map(|s| secret_source(s, key("secret"), base_dir))
                .transpose()?,
            max_per_hour,
            give_up_after,
        });
    }
    Ok(out)
}
