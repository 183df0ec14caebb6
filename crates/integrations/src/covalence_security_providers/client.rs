//! The Covalence REST client: one session per appliance, reused until the appliance answers 401,
//! the broker's index page (organizations -> appliances), and fan-out to every appliance of an
//! organization, concurrently.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::future::try_join_all;
use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use super::config::Settings;
use crate::CommandError;
use crate::http::{Call, HttpClient, HttpError, Payload, path_segment};

/// Records per request when paging with `initialIndex`.
pub const PAGE_SIZE: u64 = 500;
/// Records one listing reads at most: 200 pages, far past any real appliance listing.
pub const MAX_RECORDS: u64 = 100_000;

/// One appliance: the direct one (no ids), or one behind the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appliance {
    pub org: Option<String>,
    pub cov_id: Option<String>,
}

impl Appliance {
    fn describe(&self) -> String {
        match (&self.org, &self.cov_id) {
            (Some(org), Some(id)) => format!("organization `{org}`, appliance {id}"),
            _ => "the appliance".to_string(),
        }
    }
}

/// A link of the broker's index page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgLink {
    pub org: String,
    pub cov_id: String,
}

type Session = Arc<tokio::sync::Mutex<Option<HeaderValue>>>;

/// A Covalence appliance or broker.
pub struct Covalence {
    services: HttpClient,
    root: HttpClient,
    pub broker: bool,
    username: String,
    password: watchfloor_core::Secret,
    sessions: Mutex<HashMap<String, Session>>,
    index: tokio::sync::Mutex<Option<Vec<OrgLink>>>,
}

impl Covalence {
    pub fn new(settings: &Settings) -> Result<Self, CommandError> {
        let services = HttpClient::new("Covalence", &settings.services_url, None, &settings.http)?
            .with_auth_hint("check the instance's username and password");
        Ok(Covalence {
            root: services.with_base(&settings.root_url),
            services,
            broker: settings.broker,
            username: settings.username.clone(),
            password: settings.password.clone(),
            sessions: Mutex::new(HashMap::new()),
            index: tokio::sync::Mutex::new(None),
        })
    }

    /// The broker's organizations and their appliances, read from `/index` (cached unless `fresh`).
    pub async fn index(&self, fresh: bool) -> Result<Vec<OrgLink>, CommandError> {
        let mut cached = self.index.lock().await;
        if let (Some(links), false) = (cached.as_ref(), fresh) {
            return Ok(links.clone());
        }
        let page = self.root.get_text("/index").await?;
        let links = parse_index(&page);
        *cached = Some(links.clone());
        Ok(links)
    }

    /// The appliances a command for `target_org` goes to.
    pub async fn appliances(
        &self,
        target_org: Option<&str>,
    ) -> Result<Vec<Appliance>, CommandError> {
        if !self.broker {
            return Ok(vec![Appliance {
                org: None,
                cov_id: None,
            }]);
        }
        let mut links = self.index(false).await?;
        let Some(target) = target_org.map(str::trim).filter(|t| !t.is_empty()) else {
            return Err(CommandError::Invalid(format!(
                "target_org is required in broker mode; organizations: {}",
                org_names(&links)
            )));
        };
        let matching = |links: &[OrgLink]| -> Vec<Appliance> {
            links
                .iter()
                .filter(|l| l.org.trim().eq_ignore_ascii_case(target))
                .map(|l| Appliance {
                    org: Some(l.org.clone()),
                    cov_id: Some(l.cov_id.clone()),
                })
                .collect()
        };
        let mut found = matching(&links);
        if found.is_empty() {
            // The broker may have gained an organization since the index was read.
            links = self.index(true).await?;
            found = matching(&links);
        }
        if found.is_empty() {
            return Err(CommandError::Invalid(format!(
                "unknown organization `{target}`; organizations behind the broker: {}",
                org_names(&links)
            )));
        }
        Ok(found)
    }

    /// Runs `f` on every appliance of `target_org` concurrently and concatenates the records;
    /// in broker mode each record is tagged with `org_name` and `appliance_id`.
    pub async fn fan_out<F, Fut>(
        &self,
        target_org: Option<&str>,
        f: F,
    ) -> Result<Vec<Value>, CommandError>
    where
        F: Fn(Appliance) -> Fut,
        Fut: Future<Output = Result<Vec<Value>, CommandError>>,
    {
        let appliances = self.appliances(target_org).await?;
        let per_appliance = try_join_all(appliances.into_iter().map(|a| {
            let work = f(a.clone());
            async move {
                let mut records = work.await.map_err(|e| match self.broker {
                    true => CommandError::At {
                        place: a.describe(),
                        source: Box::new(e),
                    },
                    false => e,
                })?;
                if let (Some(org), Some(id)) = (&a.org, &a.cov_id) {
                    for r in records.iter_mut().filter_map(Value::as_object_mut) {
                        r.insert("org_name".into(), json!(org));
                        r.insert("appliance_id".into(), json!(id));
                    }
                }
                Ok::<_, CommandError>(records)
            }
        }))
        .await?;
        Ok(per_appliance.into_iter().flatten().collect())
    }

    /// GETs up to `max` records from `path`, `PAGE_SIZE` at a time from `start`, or one
    /// unpaged request when `max` is `None`. Past [`MAX_RECORDS`] it stops with an error, so an
    /// appliance that always sends a full page cannot keep a command or a fetch running.
    pub async fn list(
        &self,
        app: &Appliance,
        path: &str,
        query: &[(String, String)],
        max: Option<u64>,
        start: u64,
    ) -> Result<Vec<Value>, CommandError> {
        let pairs = |extra: &[(String, String)]| -> Vec<(String, String)> {
            query.iter().chain(extra).cloned().collect()
        };
        let Some(max) = max else {
            return records(
                self.request(app, &Method::GET, path, &pairs(&[]), Payload::Empty)
                    .await?,
                path,
            );
        };
        let mut out = Vec::new();
        while (out.len() as u64) < max {
            if out.len() as u64 >= MAX_RECORDS {
                return Err(CommandError::TooMuch(format!(
                    "Covalence GET {path} still sends more after {MAX_RECORDS} records; narrow the query (a time range or advanced_filter)"
                )));
            }
            let want = (max - out.len() as u64).min(PAGE_SIZE);
            let page = [
                ("maxCount".to_string(), want.to_string()),
                (
                    "initialIndex".to_string(),
                    (start + out.len() as u64).to_string(),
                ),
            ];
            let batch = records(
                self.request(app, &Method::GET, path, &pairs(&page), Payload::Empty)
                    .await?,
                path,
            )?;
            let done = (batch.len() as u64) < want;
            out.extend(batch);
            if done {
                break;
            }
        }
        Ok(out)
    }

    /// One request to an appliance with its session; logs in first if needed, and once more
    /// if the appliance answers 401.
    pub async fn request(
        &self,
        app: &Appliance,
        method: &Method,
        path: &str,
        query: &[(String, String)],
        payload: Payload<'_>,
    ) -> Result<Value, CommandError> {
        let query: Vec<(&str, &str)> = query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let slot = self.session_slot(app);
        let mut renewed = false;
        loop {
            let cookie = {
                let mut session = slot.lock().await;
                match session.as_ref() {
                    Some(c) => c.clone(),
                    None => {
                        let c = self.login(app).await?;
                        *session = Some(c.clone());
                        c
                    }
                }
            };
            let call = Call {
                method,
                path,
                query: &query,
                payload,
                cookie: Some(&cookie),
            };
            match self.services.call_json(call).await {
                Err(HttpError::Unauthorized { .. }) if !renewed => {
                    let mut session = slot.lock().await;
                    if session.as_ref() == Some(&cookie) {
                        *session = None;
                    }
                    renewed = true;
                    tracing::info!(appliance = %app.describe(), "session expired; logging in again");
                }
                other => return other.map_err(Into::into),
            }
        }
    }

    fn session_slot(&self, app: &Appliance) -> Session {
        let key = app.cov_id.clone().unwrap_or_default();
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.entry(key).or_default().clone()
    }

    /// Logs in: in broker mode, first visits `/index/{cov_id}` so the session routes to that
    /// appliance. Returns the `Cookie` header for later requests, marked sensitive.
    async fn login(&self, app: &Appliance) -> Result<HeaderValue, CommandError> {
        let mut cookies: Vec<String> = Vec::new();
        if let Some(cov_id) = &app.cov_id {
            let routed = self
                .root
                .call(Call::get(&format!("/index/{}", path_segment(cov_id)), &[]))
                .await?;
            cookies.extend(routed.set_cookies);
        }
        let route = cookie_header(&cookies)?;
        let form = [
            ("username", self.username.as_str()),
            ("password", self.password.expose()),
        ];
        let call = Call {
            method: &Method::POST,
            path: "/rest/login",
            query: &[],
            payload: Payload::Form(&form),
            cookie: route.as_ref(),
        };
        let reply = self.services.call(call).await?;
        if reply.set_cookies.is_empty() {
            return Err(CommandError::Provider(format!(
                "login to {} set no session cookie",
                app.describe()
            )));
        }
        for c in reply.set_cookies {
            let name = c.split('=').next().unwrap_or_default().to_string();
            cookies.retain(|old| old.split('=').next() != Some(name.as_str()));
            cookies.push(c);
        }
        tracing::debug!(appliance = %app.describe(), "logged in");
        cookie_header(&cookies)?
            .ok_or_else(|| CommandError::Provider("login set no usable cookie".into()))
    }
}

fn cookie_header(cookies: &[String]) -> Result<Option<HeaderValue>, CommandError> {
    if cookies.is_empty() {
        return Ok(None);
    }
    let mut value = HeaderValue::from_str(&cookies.join("; ")).map_err(|_| {
        CommandError::Provider("the appliance set a cookie that cannot be sent back".into())
    })?;
    value.set_sensitive(true);
    Ok(Some(value))
}

fn org_names(links: &[OrgLink]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for l in links {
        if !names.contains(&l.org.as_str()) {
            names.push(&l.org);
        }
    }
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// A response as a list of records: a list as is, an object as one record.
fn records(v: Value, path: &str) -> Result<Vec<Value>, CommandError> {
    match v {
        Value::Array(a) => Ok(a),
        Value::Object(_) => Ok(vec![v]),
        Value::Null => Ok(vec![]),
        other => Err(CommandError::Provider(format!(
            "unexpected response from Covalence GET {path}: expected a list or an object, got {other}"
        ))),
    }
}

/// The `<a href="/index/{cov_id}">{organization}</a>` links of the broker's index page, in order.
pub fn parse_index(html: &str) -> Vec<OrgLink> {
    let mut links = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("href=\"/index/") {
        rest = &rest[start + "href=\"/index/".len()..];
        let Some(end) = rest.find('"') else { break };
        let cov_id = rest[..end].to_string();
        rest = &rest[end..];
        let Some(open) = rest.find('>') else { break };
        rest = &rest[open + 1..];
        let Some(close) = rest.find("</a>") else {
            break;
        };
        let org = html_unescape(rest[..close].trim());
        rest = &rest[close..];
        if !cov_id.is_empty() && !org.is_empty() {
            links.push(OrgLink {
                org,
                cov_id: html_unescape(&cov_id),
            });
        }
    }
    links
}

fn html_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_broker_index() {
        let html = r#"<html><body><h1>Select Covalence</h1>
<p><a href="/index/2019-004-AA">Globex</a><p><a href="/index/2019-004-AB">Initech</a>
<p><a href="/index/2019-004-AC"> Initech </a><p><a href="/index/X">Soylent &amp; Sons &lt;Foods&gt;</a>
<p><a href="/other">Not an org</a></body></html>"#;
        let links: Vec<(String, String)> = parse_index(html)
            .into_iter()
            .map(|l| (l.org, l.cov_id))
            .collect();
        let expected = [
            ("Globex", "2019-004-AA"),
            ("Initech", "2019-004-AB"),
            ("Initech", "2019-004-AC"),
            ("Soylent & Sons <Foods>", "X"),
        ];
        assert_eq!(links, expected.map(|(o, c)| (o.to_string(), c.to_string())));
        assert!(parse_index("<p>no links</p>").is_empty());
        assert!(parse_index("<a href=\"/index/unterminated").is_empty());
    }
}
