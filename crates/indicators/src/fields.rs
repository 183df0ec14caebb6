//! An incident's indicators as a whole: those its provider's fields name by type (the
//! integration's field map: more reliable than reading text), and those found in its name,
//! details and the text of its provider record, less what the exclusions remove.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde_json::Value;

use crate::{Exclusions, Indicator, Kind, extract};

/// How much of a provider record's text is read for indicators: records are capped at
/// 16 MiB, and the first megabyte of one is where its indicators are.
const TEXT_BUDGET: usize = 1 << 20;

/// An integration's fields that name indicators: a dotted path into the provider record
/// (arrays are looked into on the way) and the kind of what it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMap {
    fields: Vec<(Vec<String>, Kind)>,
    /// Fields whose text names no indicator (`display_url = "ignore"`: the provider's own
    /// link to its record).
    ignored: Vec<Vec<String>>,
}

impl FieldMap {
    /// The map as an integration's definition writes it: `{ "sourceIp" = "ip", "data.host" =
    /// "host", "display_url" = "ignore" }`. An unknown kind or an empty path is named in the
    /// error.
    pub fn parse(entries: &BTreeMap<String, String>) -> Result<FieldMap, String> {
        let mut map = FieldMap::default();
        for (path, kind) in entries {
            let steps: Vec<String> = path.split('.').map(str::to_string).collect();
            if steps.iter().any(String::is_empty) {
                return Err(format!("field `{path}`: a path is names joined by dots"));
            }
            if kind.trim().eq_ignore_ascii_case("ignore") {
                map.ignored.push(steps);
                continue;
            }
            let kind = Kind::parse(kind).map_err(|e| format!("field `{path}`: {e}, or ignore"))?;
            map.fields.push((steps, kind));
        }
        Ok(map)
    }

    /// The fields, as paths, with their kinds.
    pub fn fields(&self) -> impl Iterator<Item = (String, Kind)> + '_ {
        self.fields.iter().map(|(p, k)| (p.join("."), *k))
    }
}

/// A value of kind `kind` as it is kept: addresses as the standard library writes them,
/// domains, hosts, e-mail addresses and hashes in lower case, user names trimmed and in
/// lower case (directories compare them so). `None` for what is not a value of that kind.
pub fn normalize(kind: Kind, value: &str) -> Option<String> {
    let v = value.trim();
    if v.is_empty() || v.len() > 2048 || v.chars().any(char::is_control) {
        return None;
    }
    match kind {
        Kind::Ip => v.parse::<IpAddr>().ok().map(|ip| ip.to_string()),
        Kind::Cidr => {
            let (addr, bits) = v.split_once('/')?;
            let ip: IpAddr = addr.parse().ok()?;
            let bits: u8 = bits.parse().ok()?;
            (bits <= if ip.is_ipv4() { 32 } else { 128 }).then(|| format!("{ip}/{bits}"))
        }
        Kind::Md5 | Kind::Sha1 | Kind::Sha256 => {
            let want = match kind {
                Kind::Md5 => 32,
                Kind::Sha1 => 40,
                _ => 64,
            };
            (v.len() == want && v.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| v.to_ascii_lowercase())
        }
        Kind::Domain | Kind::Email => {
            let found = extract(v);
            found
                .into_iter()
                .find(|i| i.kind == kind)
                .map(|i| i.value)
                .filter(|x| x.eq_ignore_ascii_case(v.trim_end_matches('.')))
        }
        Kind::Url => extract(v)
            .into_iter()
            .find(|i| i.kind == Kind::Url)
            .map(|i| i.value),
        Kind::Host => {
            let host = v.trim_end_matches('.').to_lowercase();
            (!host.contains(char::is_whitespace) && host.len() <= 253).then_some(host)
        }
        Kind::User => (!v.contains(char::is_whitespace)).then(|| v.to_lowercase()),
    }
}

/// What an incident's indicators are made of: the exclusions and each integration's field map.
#[derive(Debug, Clone)]
pub struct Extractor {
    exclusions: Exclusions,
    maps: HashMap<String, FieldMap>,
    /// False for [`Extractor::off`].
    on: bool,
}

impl Default for Extractor {
    /// Text only, with private and reserved ranges excluded.
    fn default() -> Extractor {
        Extractor::new(Exclusions::default_reserved(), HashMap::new())
    }
}

impl Extractor {
    /// `maps` by integration id.
    pub fn new(exclusions: Exclusions, maps: HashMap<String, FieldMap>) -> Extractor {
        Extractor {
            exclusions,
            maps,
            on: true,
        }
    }

    /// One that finds nothing (and whose store reads nothing for it): what ingest costs
    /// without indicators, for benchmarks.
    pub fn off() -> Extractor {
        Extractor {
            on: false,
            ..Extractor::default()
        }
    }

    pub fn is_off(&self) -> bool {
        !self.on
    }

    /// The indicators of an incident of `integration`: its mapped fields first, then what its
    /// name, details and provider record (`raw_json`, as stored) hold as text; each once,
    /// sorted, without what is excluded. A host field holding an address is an address.
    pub fn incident(
        &self,
        integration: &str,
        name: &str,
        details: &str,
        raw_json: &str,
    ) -> Vec<Indicator> {
        if !self.on {
            return Vec::new();
        }
        match serde_json::from_str::<Value>(raw_json) {
            Ok(raw) => self.incident_with(integration, name, details, Ok(&raw)),
            Err(_) => self.incident_with(integration, name, details, Err(raw_json)),
        }
    }

    /// [`Extractor::incident`] of a provider record read already: parsed (`Ok`), or text
    /// that is not JSON (`Err`), searched as it is.
    pub fn incident_with(
        &self,
        integration: &str,
        name: &str,
        details: &str,
        raw: Result<&Value, &str>,
    ) -> Vec<Indicator> {
        if !self.on {
            return Vec::new();
        }
        let mut found: Vec<Indicator> = Vec::new();
        if let (Some(map), Ok(raw)) = (self.maps.get(integration), raw) {
            for (path, kind) in &map.fields {
                let mut values = Vec::new();
                collect(raw, path, &mut values);
                for v in values {
                    let kind = match (*kind, v.parse::<IpAddr>()) {
                        (Kind::Host | Kind::Domain, Ok(_)) => Kind::Ip,
                        (k, _) => k,
                    };
                    if let Some(value) = normalize(kind, &v) {
                        found.push(Indicator::new(kind, value));
                    }
                }
            }
        }
        let mut text = String::with_capacity(name.len() + details.len() + 2);
        text.push_str(name);
        text.push('\n');
        text.push_str(details);
        text.push('\n');
        let ignored = self
            .maps
            .get(integration)
            .map(|m| m.ignored.as_slice())
            .unwrap_or_default();
        match raw {
            Ok(raw) => strings_but(raw, &mut Vec::new(), ignored, &mut text),
            Err(raw_json) => text.push_str(raw_json),
        }
        let cut = (0..=text.len().min(TEXT_BUDGET))
            .rev()
            .find(|n| text.is_char_boundary(*n))
            .unwrap_or(0);
        text.truncate(cut);
        found.extend(extract(&text));
        found.extend(labelled(&text));
        found.sort();
        found.dedup();
        self.exclusions.keep(found)
    }
}

/// Hosts and users that text names by a label, as providers write them in prose: `(user:
/// jdoe)`, `host: WS-0192`, `username=jdoe`. One pass over the words.
pub fn labelled(text: &str) -> Vec<Indicator> {
    const LABELS: [(&str, Kind); 7] = [
        ("host", Kind::Host),
        ("hostname", Kind::Host),
        ("computer", Kind::Host),
        ("user", Kind::User),
        ("username", Kind::User),
        ("account", Kind::User),
        ("login", Kind::User),
    ];
    let label_of = |word: &str| {
        let w = word
            .trim_start_matches(['(', '[', '{'])
            .to_ascii_lowercase();
        LABELS.iter().find(|(l, _)| *l == w).map(|(_, k)| *k)
    };
    let clean = |v: &str| {
        v.trim_start_matches(['(', '[', '{', '"', '\''])
            .trim_end_matches(['.', ':', ')', ']', '}', ',', ';', '"', '\''])
            .to_string()
    };
    let mut out = Vec::new();
    let mut pending: Option<Kind> = None;
    for word in text.split_whitespace() {
        if let Some(kind) = pending.take() {
            if let Some(v) = normalize(kind, &clean(word)) {
                out.push(Indicator::new(kind, v));
            }
            continue;
        }
        let Some(at) = word.find([':', '=']) else {
            continue;
        };
        let Some(kind) = label_of(&word[..at]) else {
            continue;
        };
        let rest = &word[at + 1..];
        if rest.is_empty() {
            pending = Some(kind);
        } else if !rest.starts_with("//")
            && let Some(v) = normalize(kind, &clean(rest))
        {
            out.push(Indicator::new(kind, v));
        }
    }
    out.retain(|i| !i.value.is_empty());
    out
}

/// The values at `path` in `v`, looking into arrays on the way; scalars as text.
fn collect(v: &Value, path: &[String], out: &mut Vec<String>) {
    match (v, path.split_first()) {
        (Value::Array(items), _) => {
            for item in items {
                collect(item, path, out);
            }
        }
        (Value::Object(map), Some((first, rest))) => {
            if let Some(next) = map.get(first) {
                collect(next, rest, out);
            }
        }
        (Value::String(s), None) => out.push(s.clone()),
        (Value::Number(n), None) => out.push(n.to_string()),
        _ => {}
    }
}

/// Every string in `v` but those at an `ignored` path (`at` is where `v` is), one per line,
/// until the budget is spent.
fn strings_but(v: &Value, at: &mut Vec<String>, ignored: &[Vec<String>], out: &mut String) {
    if ignored.is_empty() {
        return strings(v, out);
    }
    if out.len() >= TEXT_BUDGET || ignored.iter().any(|p| p == at) {
        return;
    }
    match v {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        // Arrays are looked into, as field paths do.
        Value::Array(items) => items.iter().for_each(|i| strings_but(i, at, ignored, out)),
        Value::Object(map) => {
            for (k, i) in map {
                at.push(k.clone());
                strings_but(i, at, ignored, out);
                at.pop();
            }
        }
        _ => {}
    }
}

/// Every string in `v`, one per line, until the budget is spent.
fn strings(v: &Value, out: &mut String) {
    if out.len() >= TEXT_BUDGET {
        return;
    }
    match v {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Object(map) => map.values().for_each(|i| strings(i, out)),
        _ => {}
    }
}

/// The forms a value asked for (`indicator:EVIL.example`) is stored under: as written, in
/// lower case, and as each type would keep it.
pub fn lookups(value: &str) -> Vec<String> {
    let value = crate::refang(value.trim());
    let mut out = vec![value.clone(), value.to_lowercase()];
    out.extend(Kind::ALL.into_iter().filter_map(|k| normalize(k, &value)));
    out.sort();
    out.dedup();
    out
}

/// Whether an incident's text or provider record mentions the indicator `value` (what a rule's
/// `indicator:` term asks of an incident before it is indexed; no exclusion applies).
pub fn mentions(name: &str, details: &str, raw: &Value, value: &str) -> bool {
    let wanted = lookups(value);
    let mut text = format!("{name}\n{details}\n");
    strings(raw, &mut text);
    let mut scalars = Vec::new();
    scalar_strings(raw, &mut scalars);
    scalars
        .iter()
        .any(|s| wanted.iter().any(|w| s.trim().eq_ignore_ascii_case(w)))
        || extract(&text).iter().any(|i| wanted.contains(&i.value))
}

fn scalar_strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|i| scalar_strings(i, out)),
        Value::Object(map) => map.values().for_each(|i| scalar_strings(i, out)),
        _ => {}
    }
}
