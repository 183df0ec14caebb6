//! HTTP clients of the FES Portal and the Broker. The provider id is looked up once per
//! instance; ARO and escalation-list paging stops on an empty page or `has_next = false`, and
//! after at most [`MAX_PAGES`] pages.

use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::config::Settings;
use crate::CommandError;
use crate::http::{HttpClient, path_segment as segment};
use crate::listing::{MAX_LISTING, Oversized};

const PAGE_SIZE: &str = "500";
/// AROs a command shows at most, the newest, with a note that more match: a person cannot read
/// more, and holding them all costs memory.
pub const MAX_COMMAND_AROS: usize = 5_000;
/// Pages one listing reads at most: 100,000 items, far past any real portal listing, so a
/// server that always says "more" cannot keep a command or a fetch running.
const MAX_PAGES: u64 = 200;

/// The FES Portal API.
pub struct Portal {
    http: HttpClient,
    provider_id: OnceCell<String>,
}

impl Portal {
    pub fn new(settings: &Settings) -> Result<Self, CommandError> {
        Ok(Portal {
            http: HttpClient::new(
                "FES Portal",
                &settings.portal_url,
                Some(&settings.api_key),
                &settings.http,
            )?
            .with_not_found_hint(
                "this is not the FES Portal API: check that `portal_url` ends with /v1",
            ),
            provider_id: OnceCell::new(),
        })
    }

    /// `GET /my_providers`, uncached: the first provider's id.
    pub async fn fetch_provider_id(&self) -> Result<String, CommandError> {
        let providers = self.http.get_json("/my_providers", &[]).await?;
        providers
            .as_array()
            .and_then(|p| p.first())
            .and_then(|p| p["ID"].as_str())
            .map(str::to_string)
            .ok_or_else(|| {
                CommandError::Provider(
                    "the API key's account is not part of any provider (GET /my_providers returned no provider)".into(),
                )
            })
    }

    /// The provider id, looked up on first use and kept for the life of the instance.
    pub async fn provider_id(&self) -> Result<&str, CommandError> {
        self.provider_id
            .get_or_try_init(|| self.fetch_provider_id())
            .await
            .map(String::as_str)
    }

    pub async fn organizations(&self) -> Result<Vec<Value>, CommandError> {
        let path = format!(
            "/my_providers/{}/organizations",
            segment(self.provider_id().await?)
        );
        let orgs = self.http.get_json(&path, &[]).await?;
        into_list(orgs, &path)
    }

    /// All AROs matching `filters`, newest first, across every page, and those too large to
    /// read.
    pub async fn aros(&self, filters: &[(String, String)]) -> Result<Paged, CommandError> {
        let path = format!("/providers/{}/aros", segment(self.provider_id().await?));
        self.paged(&path, filters, None).await
    }

    /// The newest `max` AROs matching `filters` ([`Paged::more`] says whether more match).
    pub async fn newest_aros(
        &self,
        filters: &[(String, String)],
        max: usize,
    ) -> Result<Paged, CommandError> {
        let path = format!("/providers/{}/aros", segment(self.provider_id().await?));
        self.paged(&path, filters, Some(max)).await
    }

    /// One ARO by id.
    pub async fn aro(&self, id: &str) -> Result<Value, CommandError> {
        let found = self.aros(&[("id".into(), id.into())]).await?;
        if let Some(huge) = found.oversized.first() {
            return Err(CommandError::Provider(format!(
                "ARO `{id}` cannot be read here: {}",
                huge.reason()
            )));
        }
        found
            .items
            .into_iter()
            .next()
            .ok_or_else(|| CommandError::Invalid(format!("no ARO with id `{id}`")))
    }

    /// `GET /my_organizations/{id}`: details with the active response profile.
    pub async fn my_organization(&self, id: &str) -> Result<Value, CommandError> {
        Ok(self
            .http
            .get_json(&format!("/my_organizations/{}", segment(id)), &[])
            .await?)
    }

    /// `GET /organizations/{id}`: details with contacts and profile.
    pub async fn organization(&self, id: &str) -> Result<Value, CommandError> {
        Ok(self
            .http
            .get_json(&format!("/organizations/{}", segment(id)), &[])
            .await?)
    }

    pub async fn escalation_lists(&self, org_id: &str) -> Result<Vec<Value>, CommandError> {
        let lists = self
            .paged(
                "/escalation_contact_lists",
                &[("organization_id".into(), org_id.into())],
                None,
            )
            .await?;
        match lists.oversized.first() {
            Some(huge) => Err(CommandError::Provider(format!(
                "an escalation contact list of organization `{org_id}` cannot be read here: {}",
                huge.reason()
            ))),
            None => Ok(lists.items),
        }
    }

    /// The transition body for `resolution`, and the comment if any. The status is `Open`, as
    /// the reference always sends it: nothing documents another value.
    pub fn transition_body(resolution: &str, comment: Option<(&str, bool)>) -> Value {
        let mut body = json!({"status": "Open", "resolution": resolution});
        if let Some((text, sensitive)) = comment {
            body["comment"] = json!({"text": text, "sensitive": sensitive});
        }
        body
    }

    pub async fn transition(&self, aro_id: &str, body: &Value) -> Result<Value, CommandError> {
        Ok(self
            .http
            .post_json(&format!("/aros/{}/transition", segment(aro_id)), body)
            .await?)
    }

    pub async fn comment(
        &self,
        aro_id: &str,
        text: &str,
        sensitive: bool,
    ) -> Result<Value, CommandError> {
        let body = json!({"aro_id": aro_id, "sensitive": sensitive, "text": text});
        Ok(self.http.post_json("/aro_comments", &body).await?)
    }

    /// Every page of a listing, or the first `max` items and whether more follow. Stops with
    /// [`CommandError::TooMuch`] past [`MAX_PAGES`] pages or [`MAX_LISTING`] bytes kept.
    async fn paged(
        &self,
        path: &str,
        filters: &[(String, String)],
        max: Option<usize>,
    ) -> Result<Paged, CommandError> {
        let mut items = Vec::new();
        let mut oversized = Vec::new();
        let mut kept = 0;
        let mut page: u64 = 1;
        loop {
            let page_text = page.to_string();
            let mut query: Vec<(&str, &str)> = filters
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            query.push(("limit", PAGE_SIZE));
            if page > 1 {
                query.push(("page", &page_text));
            }
            let listing = self.http.get_listing(path, &query, Some("items")).await?;
            let envelope = listing.envelope;
            if !envelope["items"].is_array() {
                return Err(CommandError::Provider(format!(
                    "unexpected response from FES Portal GET {path}: no `items` list in the page"
                )));
            }
            let batch_len = listing.records.len() + listing.oversized.len();
            items.extend(listing.records);
            oversized.extend(listing.oversized);
            kept += listing.kept;
            let has_next = match envelope["has_next"].as_bool() {
                Some(b) => b,
                None => envelope["total"]
                    .as_u64()
                    .is_some_and(|t| (items.len() as u64) < t),
            };
            if let Some(max) = max.filter(|m| items.len() >= *m) {
                let more = has_next || items.len() > max;
                items.truncate(max);
                return Ok(Paged {
                    items,
                    more,
                    oversized,
                });
            }
            if batch_len == 0 || !has_next {
                return Ok(Paged {
                    items,
                    more: false,
                    oversized,
                });
            }
            if page >= MAX_PAGES {
                return Err(CommandError::TooMuch(format!(
                    "FES Portal GET {path} still says more follow after {MAX_PAGES} pages ({} items); narrow the query, e.g. with since= or resolution=",
                    items.len()
                )));
            }
            if kept > MAX_LISTING {
                return Err(CommandError::TooMuch(format!(
                    "FES Portal GET {path} sent more than {} MiB in {page} pages ({} items) and says more follow; narrow the query, e.g. with since= or resolution=",
                    MAX_LISTING / (1024 * 1024),
                    items.len()
                )));
            }
            page += 1;
        }
    }
}

/// A listing read across its pages.
#[derive(Debug, Default)]
pub struct Paged {
    pub items: Vec<Value>,
    /// More match than were read (only when a maximum was asked for).
    pub more: bool,
    /// Items too large to read, set aside.
    pub oversized: Vec<Oversized>,
}

/// The Broker API.
pub struct Broker {
    http: HttpClient,
}

impl Broker {
    pub fn new(settings: &Settings, url: &str) -> Result<Self, CommandError> {
        Ok(Broker {
            http: HttpClient::new("FES Broker", url, Some(&settings.api_key), &settings.http)?,
        })
    }

    pub async fn ping(&self) -> Result<String, CommandError> {
        Ok(self.http.get_text("/ping").await?)
    }

    pub async fn organizations(&self) -> Result<Vec<Value>, CommandError> {
        let orgs = self.http.get_json("/organizations", &[]).await?;
        into_list(orgs, "/organizations")
    }

    /// POSTs an action; `kind` is `endpoint/host`, `endpoint/aro` or `cloud/aro`.
    pub async fn action(
        &self,
        kind: &str,
        action: &str,
        body: &Value,
    ) -> Result<Value, CommandError> {
        Ok(self
            .http
            .post_json(&format!("/{kind}/{}", segment(action)), body)
            .await?)
    }
}

fn into_list(v: Value, path: &str) -> Result<Vec<Value>, CommandError> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(CommandError::Provider(format!(
            "unexpected response from GET {path}: expected a list, got {}",
            kind_of(&other)
        ))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
