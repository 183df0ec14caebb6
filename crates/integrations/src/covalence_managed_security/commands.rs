//! The commands of Covalence Managed Security: each asks the portal or Broker and shapes the
//! answer into context outputs; [`CommandDef::entry`] turns that into the entry.

use serde_json::{Map, Value, json};
use watchfloor_core::{Args, CommandDef, Entry};

use super::client::{Broker, Portal};
use super::config::Settings;
use crate::{BoxFuture, CommandError, Instance, required as arg};

/// Keys an ARO keeps when `details=false`. `ID` stays so context entries merge by key.
const ARO_SUMMARY: [&str; 7] = [
    "ID",
    "organization",
    "resolution",
    "severity",
    "status",
    "title",
    "type",
];
/// Keys `query` accepts in get-aro.
const QUERY_KEYS: [&str; 8] = [
    "id",
    "status",
    "resolution",
    "type",
    "org",
    "organization_id",
    "since",
    "until",
];
const KEY_CONTACT_TYPES: [&str; 5] = [
    "Administrative",
    "Technical - Primary",
    "Technical - Secondary",
    "Primary",
    "Technical",
];

/// A connected instance: one portal client and, if configured, one Broker client.
pub struct CovalenceManagedSecurityInstance {
    portal: Portal,
    broker: Option<Broker>,
    close_resolutions: super::config::CloseResolutions,
}

/// What a command produced: context outputs, the raw provider response, and readable output
/// when it is not simply the table of the outputs.
struct Output {
    context: Value,
    raw: Value,
    readable: Option<String>,
    /// A line under the readable output, e.g. that the list was cut.
    note: Option<String>,
}

impl Output {
    fn new(context: Value, raw: Value) -> Self {
        Output {
            context,
            raw,
            readable: None,
            note: None,
        }
    }
}

impl Instance for CovalenceManagedSecurityInstance {
    fn execute<'a>(
        &'a self,
        command: &'a CommandDef,
        args: &'a Args,
    ) -> BoxFuture<'a, Result<Entry, CommandError>> {
        Box::pin(async move {
            let out = match command.name.as_str() {
                "cov-mgsec-get-aro" => self.get_aro(args).await?,
                "cov-mgsec-list-org" => {
                    let orgs = self.portal.organizations().await?;
                    Output::new(json!(orgs), json!(orgs))
                }
                "cov-mgsec-transition-aro" => self.transition_aro(args).await?,
                "cov-mgsec-comment-aro" => self.comment_aro(args).await?,
                "cov-mgsec-list-escalation-contacts" => self.escalation_contacts(args).await?,
                "cov-mgsec-list-key-contacts" => self.key_contacts(args).await?,
                "cov-mgsec-list-language" => self.language(args).await?,
                "cov-mgsec-broker-ping" => self.broker_ping().await?,
                "cov-mgsec-broker-list-org" => {
                    let orgs = self.broker()?.organizations().await?;
                    Output::new(json!(orgs), json!(orgs))
                }
                "cov-mgsec-broker-endpoint-action-by-host" => {
                    let body = json!({"org_id": arg(args, "org_id")?, "host_identifier": arg(args, "host_identifier")?});
                    self.broker_action("endpoint/host", args, body).await?
                }
                "cov-mgsec-broker-endpoint-action-by-aro" => {
                    self.broker_action(
                        "endpoint/aro",
                        args,
                        json!({"aro_id": arg(args, "aro_id")?}),
                    )
                    .await?
                }
                "cov-mgsec-broker-cloud-action-by-aro" => {
                    self.broker_action("cloud/aro", args, json!({"aro_id": arg(args, "aro_id")?}))
                        .await?
                }
                other => return Err(CommandError::not_implemented(other)),
            };
            let mut readable = out
                .readable
                .unwrap_or_else(|| command.readable(&out.context));
            if let Some(note) = out.note {
                readable.push_str(&format!("\n**{note}**\n"));
            }
            Ok(command.entry_with_readable(readable, out.context, out.raw))
        })
    }

    fn test(&self) -> BoxFuture<'_, Result<(), CommandError>> {
        Box::pin(self.test_module())
    }

    fn mirroring(&self) -> crate::Mirroring {
        // The documented API cannot list an ARO's comments.
        crate::Mirroring {
            incoming: true,
            outgoing: true,
            notes_checkable: false,
        }
    }

    fn push<'a>(
        &'a self,
        external_id: &'a str,
        change: &'a crate::Outgoing,
        send_by: Option<std::time::Instant>,
    ) -> BoxFuture<'a, Result<crate::Pushed, CommandError>> {
        Box::pin(super::mirror::push(
            &self.portal,
            &self.close_resolutions,
            external_id,
            change,
            send_by,
        ))
    }

    fn pull<'a>(
        &'a self,
        external_id: &'a str,
        seen: &'a Value,
    ) -> BoxFuture<'a, Result<Option<crate::RemoteChange>, CommandError>> {
        Box::pin(super::mirror::pull(&self.portal, external_id, seen))
    }

    fn pull_many<'a>(
        &'a self,
        open: &'a [crate::OpenAlert],
    ) -> BoxFuture<'a, Result<Vec<Option<crate::RemoteChange>>, CommandError>> {
        Box::pin(super::mirror::pull_many(&self.portal, open))
    }

    fn mirror_state(&self, seen: Value) -> Value {
        super::mirror::state(&seen)
    }

    fn fetch<'a>(
        &'a self,
        _scope: &'a str,
        cursor: Option<&'a Value>,
        settings: &'a watchfloor_core::FetchSettings,
    ) -> BoxFuture<'a, Result<crate::fetch::FetchBatch, CommandError>> {
        Box::pin(super::fetch::fetch(&self.portal, cursor, settings))
    }
}

/// The ARO as shown for `details`: whole, or reduced to its summary keys (those present).
fn shape_aro(aro: &Value, details: bool) -> Value {
    if details {
        return aro.clone();
    }
    let summary: Map<String, Value> = ARO_SUMMARY
        .iter()
        .filter_map(|k| aro.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    Value::Object(summary)
}

impl CovalenceManagedSecurityInstance {
    pub fn new(settings: &Settings) -> Result<Self, CommandError> {
        Ok(CovalenceManagedSecurityInstance {
            portal: Portal::new(settings)?,
            broker: settings
                .broker_url
                .as_deref()
                .map(|url| Broker::new(settings, url))
                .transpose()?,
            close_resolutions: settings.close_resolutions.clone(),
        })
    }

    fn broker(&self) -> Result<&Broker, CommandError> {
        self.broker.as_ref().ok_or_else(|| {
            CommandError::NotConfigured("no broker_url is configured; set broker_url in the instance's params to use Broker commands".into())
        })
    }

    async fn get_aro(&self, args: &Args) -> Result<Output, CommandError> {
        let mut filters: Vec<(String, String)> = Vec::new();
        let mut org_name = None;
        for (key, value) in form_urlencoded::parse(arg(args, "query")?.as_bytes()) {
            if !QUERY_KEYS.contains(&key.as_ref()) {
                return Err(CommandError::Invalid(format!(
                    "unknown query key `{key}`; use {}",
                    QUERY_KEYS.join(", ")
                )));
            }
            if value.is_empty() {
                return Err(CommandError::Invalid(format!(
                    "query key `{key}` has no value; write `{key}=value`"
                )));
            }
            if filters.iter().any(|(k, _)| *k == key) || (key == "org" && org_name.is_some()) {
                return Err(CommandError::Invalid(format!(
                    "query key `{key}` is given more than once"
                )));
            }
            match key.as_ref() {
                "org" => org_name = Some(value.into_owned()),
                _ => filters.push((key.into_owned(), value.into_owned())),
            }
        }
        if let Some(name) = org_name {
            if filters.iter().any(|(k, _)| k == "organization_id") {
                return Err(CommandError::Invalid(
                    "give either org or organization_id in the query, not both".into(),
                ));
            }
            let id = self.org_id_by_name(&name).await?;
            filters.push(("organization_id".into(), id));
        }
        let found = self
            .portal
            .newest_aros(&filters, super::client::MAX_COMMAND_AROS)
            .await?;
        let aros = found.items;
        let details = args.bool("details");
        let shaped: Vec<Value> = aros.iter().map(|a| shape_aro(a, details)).collect();
        let mut out = Output::new(json!(shaped), json!(aros));
        let mut notes = Vec::new();
        if found.more {
            notes.push(format!(
                "Showing the newest {} AROs; more match: narrow the query, e.g. with since= or resolution=.",
                aros.len()
            ));
        }
        for huge in &found.oversized {
            notes.push(format!(
                "ARO {} is left out: {}.",
                huge.id("ID").unwrap_or_else(|| "(no ID)".into()),
                huge.reason()
            ));
        }
        if !notes.is_empty() {
            out.note = Some(notes.join(" "));
        }
        Ok(out)
    }

    /// An organization id by name: the exact name (ignoring case), else the one name containing it.
    async fn org_id_by_name(&self, name: &str) -> Result<String, CommandError> {
        let orgs = self.portal.organizations().await?;
        let wanted = name.to_lowercase();
        let org_name = |o: &Value| o["name"].as_str().unwrap_or_default().to_lowercase();
        let exact: Vec<&Value> = orgs.iter().filter(|o| org_name(o) == wanted).collect();
        let matches = if exact.is_empty() {
            orgs.iter()
                .filter(|o| org_name(o).contains(&wanted))
                .collect()
        } else {
            exact
        };
        let names = |list: &[&Value]| {
            list.iter()
                .filter_map(|o| o["name"].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match matches.as_slice() {
            [one] => one["ID"].as_str().map(str::to_string).ok_or_else(|| {
                CommandError::Provider(format!(
                    "organization `{name}` has no ID in the portal's answer"
                ))
            }),
            [] => Err(CommandError::Invalid(format!(
                "unknown organization named `{name}`; known organizations: {}",
                names(&orgs.iter().collect::<Vec<_>>())
            ))),
            many => Err(CommandError::Invalid(format!(
                "organization name `{name}` matches several organizations ({}); give the full name or organization_id",
                names(many)
            ))),
        }
    }

    async fn transition_aro(&self, args: &Args) -> Result<Output, CommandError> {
        let body = Portal::transition_body(
            arg(args, "resolution")?,
            args.str("comment")
                .map(|c| (c, args.bool("is_comment_sensitive"))),
        );
        let aro = self.portal.transition(arg(args, "aro_id")?, &body).await?;
        if !aro.is_object() {
            return Err(CommandError::Provider(
                "FES Portal answered the transition without an ARO".into(),
            ));
        }
        Ok(Output::new(shape_aro(&aro, args.bool("details")), aro))
    }

    /// The comment as the portal answers it, in the table and the context, as the reference
    /// gave it (at its own keyed prefix, not among AROs).
    async fn comment_aro(&self, args: &Args) -> Result<Output, CommandError> {
        let comment = self
            .portal
            .comment(
                arg(args, "aro_id")?,
                arg(args, "comment")?,
                args.bool("is_comment_sensitive"),
            )
            .await?;
        if !comment.is_object() {
            return Err(CommandError::Provider(
                "FES Portal answered the comment without a comment object".into(),
            ));
        }
        Ok(Output::new(comment.clone(), comment))
    }

    async fn escalation_contacts(&self, args: &Args) -> Result<Output, CommandError> {
        let org_id = arg(args, "org_id")?;
        let lists = self.portal.escalation_lists(org_id).await?;
        let mut rows: Vec<Value> = lists
            .iter()
            .filter(|l| l["organization_id"] == org_id)
            .flat_map(|l| {
                l["escalation_contacts"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|c| {
                let keys = [
                    "priority",
                    "first_name",
                    "last_name",
                    "job_title",
                    "phone_number",
                    "secondary_phone",
                    "email",
                    "notes",
                    "id",
                ];
                let mut row: Map<String, Value> = keys
                    .iter()
                    .map(|k| (k.to_string(), c[*k].clone()))
                    .collect();
                row.insert("organization_id".into(), json!(org_id));
                Value::Object(row)
            })
            .collect();
        rows.sort_by_key(|r| r["priority"].as_u64().unwrap_or(u64::MAX));
        Ok(Output::new(json!(rows), json!(lists)))
    }

    async fn key_contacts(&self, args: &Args) -> Result<Output, CommandError> {
        let org_id = arg(args, "org_id")?;
        let org = self.portal.organization(org_id).await?;
        let rows: Vec<Value> = org["contacts"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|c| {
                c["type"]
                    .as_str()
                    .is_some_and(|t| KEY_CONTACT_TYPES.contains(&t))
            })
            .map(|c| {
                let info = if c["contact_info"].is_object() {
                    &c["contact_info"]
                } else {
                    &c["user"]
                };
                json!({
                    "first_name": info["first_name"], "last_name": info["last_name"],
                    "phone_number": info["phone_number"], "email": info["email"],
                    "type": c["type"], "organization_id": org_id, "id": c["id"],
                })
            })
            .collect();
        Ok(Output::new(json!(rows), org))
    }

    async fn language(&self, args: &Args) -> Result<Output, CommandError> {
        let org_id = arg(args, "org_id")?;
        let org = self.portal.organization(org_id).await?;
        let context = match org["profile"]["default_locale"].as_str() {
            Some(locale) if !locale.is_empty() => {
                json!({"organization_id": org_id, "default_language": locale})
            }
            _ => Value::Null,
        };
        Ok(Output::new(context, org))
    }

    async fn broker_ping(&self) -> Result<Output, CommandError> {
        let body = self.broker()?.ping().await?;
        // As the reference: an answer other than pong is a note that says so, not an error.
        let readable = match pong_answer(&body) {
            Ok(_) => "## Success".to_string(),
            Err(_) => format!("Failure - {}.", body.trim()),
        };
        let answer = pong_answer(&body).unwrap_or_else(|_| body.trim().to_string());
        Ok(Output {
            context: json!(answer),
            raw: json!(body),
            readable: Some(readable),
            note: None,
        })
    }

    async fn broker_action(
        &self,
        kind: &str,
        args: &Args,
        body: Value,
    ) -> Result<Output, CommandError> {
        let action = arg(args, "action_type")?.to_lowercase();
        let result = self.broker()?.action(kind, &action, &body).await?;
        if !result.is_object() {
            return Err(CommandError::Provider(format!(
                "FES Broker answered POST /{kind}/{action} without a result object"
            )));
        }
        Ok(Output::new(result.clone(), result))
    }

    /// Checks the API key against the portal and, if configured, pings the Broker.
    async fn test_module(&self) -> Result<(), CommandError> {
        let mut failures = Vec::new();
        if let Err(e) = self.portal.fetch_provider_id().await {
            failures.push(format!("portal: {e}"));
        }
        if let Some(broker) = &self.broker
            && let Err(e) = broker.ping().await.and_then(|body| pong_answer(&body))
        {
            failures.push(format!("broker: {e}"));
        }
        match failures.is_empty() {
            true => Ok(()),
            false => Err(CommandError::Provider(failures.join("; "))),
        }
    }
}

/// The Broker's ping answer if it says pong, plain or JSON-encoded.
fn pong_answer(body: &str) -> Result<String, CommandError> {
    let text = match serde_json::from_str::<Value>(body) {
        Ok(Value::String(s)) => s,
        _ => body.trim().to_string(),
    };
    if text.contains("pong") {
        Ok(text)
    } else {
        Err(CommandError::Provider(format!(
            "Broker ping failed: expected `pong`, got `{text}`"
        )))
    }
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        #![proptest_config(crate::test_support::cases())]

        /// An ARO of any shape becomes a context object and a table: no panic.
        #[test]
        fn any_aro_json_is_shaped(aro in crate::test_support::arbitrary_json(), details: bool) {
            let shaped = super::shape_aro(&aro, details);
            let command = super::super::definition().command("cov-mgsec-get-aro").unwrap();
            let _ = command.entry(serde_json::json!([shaped]), aro);
        }
    }
}
