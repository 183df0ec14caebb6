//! Indicators of compromise in incident text: IPv4 and IPv6 addresses and networks, domains
//! (against the public suffix list), URLs, e-mail addresses and MD5/SHA-1/SHA-256 hashes,
//! found after refanging (`hxxp`, `[.]`, `(.)`), and the exclusions that keep them meaningful
//! (private and reserved ranges by default, and the install's own list).
//!
//! Extraction is one pass over the text's tokens, each looked at a bounded number of times,
//! so its time grows with the text's length and nothing else.

mod exclude;
mod fields;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use exclude::{Exclusions, reserved};
pub use fields::{Extractor, FieldMap, labelled, lookups, mentions, normalize};

/// What an indicator is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Ip,
    /// A network in CIDR notation.
    Cidr,
    Domain,
    Url,
    Email,
    Md5,
    Sha1,
    Sha256,
    /// A host name, from a provider's field that names one (text alone cannot tell a host).
    Host,
    /// A user name, from a provider's field that names one.
    User,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ip => "ip",
            Kind::Cidr => "cidr",
            Kind::Domain => "domain",
            Kind::Url => "url",
            Kind::Email => "email",
            Kind::Md5 => "md5",
            Kind::Sha1 => "sha1",
            Kind::Sha256 => "sha256",
            Kind::Host => "host",
            Kind::User => "user",
        }
    }

    /// Every kind, in the order they are listed.
    pub const ALL: [Kind; 10] = [
        Kind::Ip,
        Kind::Cidr,
        Kind::Domain,
        Kind::Url,
        Kind::Email,
        Kind::Md5,
        Kind::Sha1,
        Kind::Sha256,
        Kind::Host,
        Kind::User,
    ];

    /// The kind named `name` (as [`Kind::as_str`] writes it, in any case).
    pub fn parse(name: &str) -> Result<Kind, String> {
        let name = name.trim().to_ascii_lowercase();
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .ok_or_else(|| {
                let all: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "`{name}` is not an indicator type; use one of {}",
                    all.join(", ")
                )
            })
    }
}

/// One indicator: its kind and its value, normalized (domains, e-mails and hashes in lower
/// case, addresses as the standard library writes them, URLs as written after refanging).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Indicator {
    pub kind: Kind,
    pub value: String,
}

impl Indicator {
    pub fn new(kind: Kind, value: impl Into<String>) -> Indicator {
        Indicator {
            kind,
            value: value.into(),
        }
    }
}

/// `text` with defanged forms made whole again: `hxxp(s)` and `fxp` schemes, `[.]`, `(.)`,
/// `{.}`, `[dot]`, `[:]`, `[://]`, `[@]` and `[at]`.
pub fn refang(text: &str) -> String {
    let mut out = text.to_string();
    for (from, to) in [
        ("[://]", "://"),
        ("[:]", ":"),
        ("[.]", "."),
        ("(.)", "."),
        ("{.}", "."),
        ("[dot]", "."),
        ("(dot)", "."),
        ("[@]", "@"),
        ("[at]", "@"),
        ("(at)", "@"),
    ] {
        if out.contains(from) {
            out = out.replace(from, to);
        }
    }
    for (from, to) in [
        ("hxxps://", "https://"),
        ("hxxp://", "http://"),
        ("hXXps://", "https://"),
        ("hXXp://", "http://"),
        ("fxp://", "ftp://"),
    ] {
        if out.contains(from) {
            out = out.replace(from, to);
        }
    }
    out
}

/// The indicators in `text`, each once, in the order they first appear. Nothing is excluded
/// here: see [`Exclusions`].
pub fn extract(text: &str) -> Vec<Indicator> {
    let text = refang(text);
    let mut found: Vec<Indicator> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut push = |i: Indicator| {
        if seen.insert(i.clone()) {
            found.push(i);
        }
    };
    for token in text.split(is_separator) {
        let token = trim(token);
        if token.is_empty() || token.len() > 4096 {
            continue;
        }
        if let Some(url) = url_in(token) {
            let host = url_host(url);
            push(Indicator::new(Kind::Url, url));
            if let Some(i) = host.as_deref().and_then(host_indicator) {
                push(i);
            }
            continue;
        }
        // `key=value` names its indicator after the `=`.
        for part in token.split('=') {
            let part = trim(part);
            if let Some(url) = url_in(part) {
                let host = url_host(url);
                push(Indicator::new(Kind::Url, url));
                if let Some(i) = host.as_deref().and_then(host_indicator) {
                    push(i);
                }
                continue;
            }
            if part.contains('@') {
                match email(part) {
                    Some(e) => push(Indicator::new(Kind::Email, e)),
                    // Not an address, but its domain may be one.
                    None => {
                        if let Some(d) = part.rsplit('@').next().and_then(domain) {
                            push(Indicator::new(Kind::Domain, d));
                        }
                    }
                }
                continue;
            }
            let mut any = false;
            for i in address(part) {
                push(i);
                any = true;
            }
            if any {
                continue;
            }
            // Hashes come as `sha256:value` too.
            for sub in part.split(':') {
                let sub = trim(sub);
                if let Some(h) = hash(sub) {
                    push(h);
                } else if let Some(d) = domain(sub) {
                    push(Indicator::new(Kind::Domain, d));
                }
            }
        }
    }
    found
}

/// What separates tokens: white space and the characters that quote or list.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ',' | ';' | '|' | '\\')
}

/// A token without the punctuation around it: opening brackets before, closing ones and
/// sentence punctuation after (a `)` or `]` that closes one the token opened stays).
fn trim(token: &str) -> &str {
    let mut t = token.trim_start_matches(['(', '[', '{', '*', '!', '?']);
    loop {
        let before = t;
        t = t.trim_end_matches(['.', ',', ';', ':', '!', '?', '*', '}']);
        for (open, close) in [('(', ')'), ('[', ']')] {
            if t.ends_with(close) && t.matches(close).count() > t.matches(open).count() {
                t = &t[..t.len() - 1];
            }
        }
        if t == before {
            return t;
        }
    }
}

fn url_in(token: &str) -> Option<&str> {
    let lower = token.get(..token.len().min(8))?.to_ascii_lowercase();
    let scheme = ["http://", "https://", "ftp://"]
        .into_iter()
        .find(|s| lower.starts_with(s))?;
    let rest = &token[scheme.len()..];
    // A URL needs a host.
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    (!host.is_empty()).then_some(token)
}

/// The host of a URL (without user, port or IPv6 brackets).
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit('@').next()?;
    let host = match hostport.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => hostport.split(':').next()?,
    };
    Some(host.to_ascii_lowercase())
}

/// A URL's host as an indicator: an address or a domain.
fn host_indicator(host: &str) -> Option<Indicator> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(Indicator::new(Kind::Ip, ip.to_string()));
    }
    domain(host).map(|d| Indicator::new(Kind::Domain, d))
}

fn email(token: &str) -> Option<String> {
    let (local, host) = token.split_once('@')?;
    let local = local.trim_start_matches(['(', '[', '{', ':']);
    if local.is_empty()
        || local.len() > 64
        || !local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c))
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return None;
    }
    let domain = domain(host)?;
    Some(format!("{}@{domain}", local.to_ascii_lowercase()))
}

/// IPv4 or IPv6, alone, as a network (`/n`), or with a port (`1.2.3.4:443`, `[::1]:443`).
fn address(token: &str) -> Vec<Indicator> {
    let mut out = Vec::new();
    let (addr, prefix) = match token.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (token, None),
    };
    // `[2001:db8::5]:443` comes here without its `[` (trimmed as punctuation).
    let addr = addr.trim_start_matches('[');
    let addr = match addr.split_once(']') {
        Some((inside, rest)) if rest.is_empty() || rest.starts_with(':') => inside,
        _ => addr,
    };
    let ip = if let Some(v6) = addr.strip_prefix('[') {
        v6.split(']')
            .next()
            .and_then(|a| a.parse::<Ipv6Addr>().ok())
            .map(IpAddr::V6)
    } else if let Ok(v4) = addr.parse::<Ipv4Addr>() {
        Some(IpAddr::V4(v4))
    } else if let Some((a, port)) = addr.rsplit_once(':')
        && port.parse::<u16>().is_ok()
        && let Ok(v4) = a.parse::<Ipv4Addr>()
    {
        Some(IpAddr::V4(v4))
    } else if addr.matches(':').count() >= 2 && addr != "::" {
        addr.split('%')
            .next()
            .and_then(|a| a.parse::<Ipv6Addr>().ok())
            .map(IpAddr::V6)
    } else {
        None
    };
    let Some(ip) = ip else {
        return out;
    };
    match prefix.map(str::parse::<u8>) {
        None => out.push(Indicator::new(Kind::Ip, ip.to_string())),
        Some(Ok(n)) if n <= if ip.is_ipv4() { 32 } else { 128 } => {
            out.push(Indicator::new(Kind::Cidr, format!("{ip}/{n}")))
        }
        // `1.2.3.4/evil.php` is an address followed by something else.
        Some(_) => out.push(Indicator::new(Kind::Ip, ip.to_string())),
    }
    out
}

fn hash(part: &str) -> Option<Indicator> {
    if !part.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // Only digits is a number, not a hash.
    if part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let kind = match part.len() {
        32 => Kind::Md5,
        40 => Kind::Sha1,
        64 => Kind::Sha256,
        _ => return None,
    };
    Some(Indicator::new(kind, part.to_ascii_lowercase()))
}

/// A registrable domain name or one of its subdomains, in lower case, under a suffix of the
/// public suffix list.
fn domain(s: &str) -> Option<String> {
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.len() > 253 || !s.contains('.') {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    let labels_ok = lower.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !labels_ok {
        return None;
    }
    // The last label names a known top-level domain (a name under an unknown one, such as a
    // file name `report.pdf`, is not taken), and the name is more than the suffix.
    let suffix = psl::suffix(lower.as_bytes())?;
    if !suffix.is_known() {
        return None;
    }
    psl::domain(lower.as_bytes())?;
    if lower
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some(lower)
}
