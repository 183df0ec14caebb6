//! The commands of Symantec MSS: list incidents, get one, update its workflow, test-module.

use chrono::{TimeDelta, Utc};
use serde_json::{Map, Value, json};
use watchfloor_core::table::python_json_dumps;
use watchfloor_core::xml::Element;
use watchfloor_core::{Args, CommandDef, Entry};

use super::client::{Sws, utc_time, utc_timestamp};
use super::config::Settings;
use crate::{BoxFuture, CommandError, Instance, required as arg};

/// Summary fields that hold times.
const SUMMARY_TIMES: [&str; 5] = [
    "TimeCreated",
    "LatestKeyEvent",
    "FirstSeenInLast30Days",
    "FirstSeenGlobally",
    "UpdateTimestampGMT",
];

fn utc_fields(mut record: Value, fields: &[&str]) -> Value {
    for f in fields {
        if let Some(Value::String(t)) = record.get_mut(*f) {
            *t = utc_timestamp(t);
        }
    }
    record
}

const SIGNATURE_FIELDS: [&str; 5] = [
    "SourceIPString",
    "SignatureName",
    "VendorSignature",
    "NumberBlocked",
    "NumberNotBlocked",
];
const COMMENT_FIELDS: [&str; 3] = ["CommentedTimeStampGMT", "Comment", "CommentedBy"];
const ATTACHMENT_FIELDS: [&str; 5] = [
    "AttachmentNumber",
    "AttachmentName",
    "UploadDateGMT",
    "UploadBy",
    "Comment",
];

impl SymantecMssInstance {
    pub(super) fn sws(&self) -> &Sws {
        &self.sws
    }
}

/// Workflow fields to set; `None` keeps the current value.
#[derive(Debug, Default)]
pub(super) struct Workflow<'a> {
    pub status: Option<&'a str>,
    pub resolution: Option<&'a str>,
    pub severity: Option<&'a str>,
    pub org: Option<&'a str>,
    pub person: Option<&'a str>,
    pub reference: Option<&'a str>,
    pub comments: Option<&'a str>,
}

/// A connected instance.
pub struct SymantecMssInstance {
    sws: Sws,
    /// The instance's `severities`, which test-module (and fetching) query with.
    severities: Vec<String>,
}

impl Instance for SymantecMssInstance {
    fn execute<'a>(
        &'a self,
        command: &'a CommandDef,
        args: &'a Args,
    ) -> BoxFuture<'a, Result<Entry, CommandError>> {
        Box::pin(async move {
            match command.name.as_str() {
                "symantec-mss-incidents-list" => self.list(command, args).await,
                "symantec-mss-get-incident" => self.get(command, args).await,
                "symantec-mss-update-incident" => self.update(command, args).await,
                other => Err(CommandError::not_implemented(other)),
            }
        })
    }

    /// Workflow fields and comments go both ways; comments can be read back.
    fn mirroring(&self) -> crate::Mirroring {
        crate::Mirroring {
            incoming: true,
            outgoing: true,
            notes_checkable: true,
        }
    }

    fn push<'a>(
        &'a self,
        external_id: &'a str,
        change: &'a crate::Outgoing,
        send_by: Option<std::time::Instant>,
    ) -> BoxFuture<'a, Result<crate::Pushed, CommandError>> {
        Box::pin(self.push_change(external_id, change, send_by))
    }

    fn pull<'a>(
        &'a self,
        external_id: &'a str,
        seen: &'a Value,
    ) -> BoxFuture<'a, Result<Option<crate::RemoteChange>, CommandError>> {
        Box::pin(self.pull_change(external_id, seen))
    }

    fn pull_many<'a>(
        &'a self,
        open: &'a [crate::OpenAlert],
    ) -> BoxFuture<'a, Result<Vec<Option<crate::RemoteChange>>, CommandError>> {
        Box::pin(self.pull_many_changes(open))
    }

    fn mirror_state(&self, seen: Value) -> Value {
        super::mirror::mirror_state(seen)
    }

    /// IncidentGetList with the instance's severities, over mutual TLS.
    fn test(&self) -> BoxFuture<'_, Result<(), CommandError>> {
        Box::pin(async move {
            self.sws
                .incidents(Utc::now(), &self.severities, None, Some(1))
                .await?;
            Ok(())
        })
    }

    fn fetch<'a>(
        &'a self,
        _scope: &'a str,
        cursor: Option<&'a serde_json::Value>,
        settings: &'a watchfloor_core::FetchSettings,
    ) -> BoxFuture<'a, Result<crate::fetch::FetchBatch, CommandError>> {
        Box::pin(super::fetch::fetch(
            &self.sws,
            &self.severities,
            cursor,
            settings,
        ))
    }
}

/// The fields of each `item` child of `parent` under `el`, as a list of objects.
fn records(el: &Element, parent: &str, item: &str, fields: &[&str]) -> Vec<Value> {
    el.child(parent)
        .map(|p| {
            p.children_named(item)
                .map(|c| {
                    Value::Object(
                        fields
                            .iter()
                            .map(|f| (f.to_string(), text_value(c.child_text(f))))
                            .collect(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn text_value(t: Option<&str>) -> Value {
    t.map(|t| json!(t)).unwrap_or(Value::Null)
}

fn text(el: &Element, name: &str) -> Value {
    json!(el.child_text(name).unwrap_or_default())
}

impl SymantecMssInstance {
    pub fn new(settings: &Settings) -> Result<Self, CommandError> {
        Ok(SymantecMssInstance {
            sws: Sws::new(settings)?,
            severities: settings.severities.clone(),
        })
    }

    async fn list(&self, command: &CommandDef, args: &Args) -> Result<Entry, CommandError> {
        let start = args
            .time("time")
            .unwrap_or_else(|| Utc::now() - TimeDelta::hours(24));
        let wanted = args.integer("max").map(|m| m.max(1) as usize);
        let severities: Vec<String> = args
            .list("severities")
            .into_iter()
            .map(str::to_string)
            .collect();
        let raw = self
            .incidents_from(start, &severities, args.str("sourceIp"), wanted)
            .await?;
        Ok(list_entry(command, raw))
    }

    /// Incidents created from `start`, at most `wanted` (all when `None`), read through SWS's
    /// cap of 500 a call: each call starts at the newest creation time the last one returned,
    /// and incidents seen twice at that edge are kept once.
    async fn incidents_from(
        &self,
        mut start: chrono::DateTime<Utc>,
        severities: &[String],
        source_ip: Option<&str>,
        wanted: Option<usize>,
    ) -> Result<Vec<Value>, CommandError> {
        const CAP: usize = 500;
        const MAX_CALLS: usize = 200;
        let mut all: Vec<Value> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..MAX_CALLS {
            // A full page each call: the first incidents may repeat the last call's edge.
            let page = self
                .sws
                .incidents(start, severities, source_ip, Some(CAP as u32))
                .await?;
            let capped = page.len() >= CAP;
            let newest = page
                .iter()
                .filter_map(|i| i["TimeCreated"].as_str())
                .filter_map(utc_time)
                .max();
            for inc in page {
                let number = inc["IncidentNumber"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if seen.insert(number) {
                    all.push(inc);
                }
            }
            let done = wanted.is_some_and(|w| all.len() >= w);
            match newest {
                // The next call starts at the newest time returned; if that does not move,
                // every incident of that second has been read.
                Some(newest) if capped && !done && newest > start => start = newest,
                _ => break,
            }
        }
        if let Some(w) = wanted {
            all.truncate(w);
        }
        Ok(all)
    }

    async fn get(&self, command: &CommandDef, args: &Args) -> Result<Entry, CommandError> {
        let inc = self.sws.incident(arg(args, "number")?).await?;
        Ok(incident_entry(command, &inc))
    }

    /// Updates an incident's workflow, for mirroring: an update SWS does not confirm is an error,
    /// so the push is tried again.
    pub(super) async fn confirmed_update(
        &self,
        number: &str,
        w: &Workflow<'_>,
    ) -> Result<(), CommandError> {
        if self.update_workflow(number, w).await? {
            Ok(())
        } else {
            Err(CommandError::Provider(format!(
                "Symantec MSS did not confirm the update of incident {number}"
            )))
        }
    }

    /// Updates an incident's workflow; whether SWS confirmed it (`true`). SWS takes every field
    /// at once, so values left out come from the current workflow, which is queried only when
    /// one is needed.
    async fn update_workflow(&self, number: &str, w: &Workflow<'_>) -> Result<bool, CommandError> {
        let (mut status, mut resolution, mut severity) = (
            w.status.map(str::to_string),
            w.resolution.map(str::to_string),
            w.severity.map(str::to_string),
        );
        let (mut org, mut person) = (w.org.map(str::to_string), w.person.map(str::to_string));
        let needs_workflow = status.is_none()
            || resolution.is_none()
            || severity.is_none()
            || (org.is_none() && person.is_none());
        if needs_workflow {
            let inc = self.sws.incident(number).await?;
            let workflow = inc.child("WorkFlowDetail").cloned().unwrap_or_default();
            let current = |el: &Element, name: &str| el.child_text(name).map(str::to_string);
            status = status.or_else(|| current(&workflow, "Status"));
            resolution = resolution.or_else(|| current(&workflow, "Resolution"));
            severity = severity.or_else(|| current(&inc, "Severity"));
            if org.is_none() && person.is_none() {
                org = current(&workflow, "AssignedOrganization");
                person = if org.is_none() {
                    current(&workflow, "AssignedPerson")
                } else {
                    None
                };
            }
        }
        let missing = |value: &Option<String>, name: &str| {
            value.clone().ok_or_else(|| {
                CommandError::Invalid(format!(
                    "incident {number} has no current {name}; give {name}=…"
                ))
            })
        };
        let (status, resolution, severity) = (
            missing(&status, "status")?,
            missing(&resolution, "resolution")?,
            missing(&severity, "severity")?,
        );
        let confirmed = self
            .sws
            .update(&[
                ("IncidentNumber", Some(number)),
                ("Status", Some(&status)),
                ("Resolution", Some(&resolution)),
                ("Reference", w.reference),
                ("Severity", Some(&severity)),
                // The WSDL's spelling.
                ("AssignedToOrganiztion", org.as_deref()),
                ("AssignedToPerson", person.as_deref()),
                ("Comments", w.comments),
            ])
            .await?;
        Ok(confirmed)
    }

    /// Updates the workflow (the update-incident command).
    async fn update(&self, command: &CommandDef, args: &Args) -> Result<Entry, CommandError> {
        let (org, person) = (args.str("assignOrganization"), args.str("assignPerson"));
        if org.is_some() && person.is_some() {
            return Err(CommandError::Invalid(
                "give assignOrganization or assignPerson, not both: an incident is assigned to one"
                    .into(),
            ));
        }
        let confirmed = self
            .update_workflow(
                arg(args, "number")?,
                &Workflow {
                    status: args.str("status"),
                    resolution: args.str("resolution"),
                    severity: args.str("severity"),
                    org,
                    person,
                    reference: args.str("reference"),
                    comments: args.str("comments"),
                },
            )
            .await?;
        // As the reference: SWS answering `false` is a result that says so, not an error, so a
        // playbook goes on and can branch on it.
        let message = if confirmed {
            "Updated successfully"
        } else {
            "Update failed"
        };
        Ok(command.entry_with_readable(
            command.readable(&json!([{"Update status": message}])),
            Value::Null,
            json!(message),
        ))
    }
}

/// The entry of `symantec-mss-get-incident` for an incident as SWS answers it. The table keeps
/// the reference's cells: the signatures and related incidents as JSON (Python's `json.dumps`),
/// the comment's text.
fn incident_entry(command: &CommandDef, inc: &Element) -> Entry {
    let workflow = inc.child("WorkFlowDetail").cloned().unwrap_or_default();
    let signatures = records(inc, "SignatureList", "Signature", &SIGNATURE_FIELDS);
    let comments: Vec<Value> = records(inc, "IncidentComments", "IncidentComment", &COMMENT_FIELDS)
        .into_iter()
        .map(|c| utc_fields(c, &["CommentedTimeStampGMT"]))
        .collect();
    let attachments: Vec<Value> = records(
        inc,
        "IncidentAttachmentItems",
        "IncidentAttachmentItem",
        &ATTACHMENT_FIELDS,
    )
    .into_iter()
    .map(|a| utc_fields(a, &["UploadDateGMT"]))
    .collect();
    let related: Vec<Value> = inc
        .child("RelatedIncidents")
        .map(|r| {
            r.children_named("IncidentNumber")
                .map(|n| json!(n.text()))
                .collect()
        })
        .unwrap_or_default();
    let context = json!({
        "IncidentNumber": text(inc, "IncidentNumber"),
        "NumberOfAnalyzedSignatures": text(inc, "NumberOfAnalyzedSignatures"),
        "SignatureList": {"Signature": signatures},
        "TimeCreated": utc_timestamp(inc.child_text("TimeCreated").unwrap_or_default()),
        "Classification": text(inc, "Classification"),
        "Description": text(inc, "Description"),
        "AnalystAssessment": text(inc, "AnalystAssessment"),
        "CountryCode": text(inc, "CountryCode"),
        "CountryName": text(inc, "CountryName"),
        "RelatedTickets": text(inc, "RelatedTickets"),
        "WorkFlowDetail": {
            "Status": text(&workflow, "Status"),
            "Resolution": text(&workflow, "Resolution"),
            "AssignedPerson": text(&workflow, "AssignedPerson"),
            "AssignedOrganization": text(&workflow, "AssignedOrganization"),
        },
        "RelatedIncidents": {"IncidentNumber": related},
        "IncidentComments": {"IncidentComment": comments},
        "IncidentAttachmentItems": {"IncidentAttachmentItem": attachments},
    });
    let comment_texts: Vec<Value> = comments.iter().map(|c| c["Comment"].clone()).collect();
    let row: Map<String, Value> = [
        ("Incident Number", context["IncidentNumber"].clone()),
        ("Time Created", context["TimeCreated"].clone()),
        ("Status", context["WorkFlowDetail"]["Status"].clone()),
        ("Classification", context["Classification"].clone()),
        (
            "Assigned Person",
            context["WorkFlowDetail"]["AssignedPerson"].clone(),
        ),
        ("Description", context["Description"].clone()),
        ("Analyst Assessment", context["AnalystAssessment"].clone()),
        (
            "Number of Analyzed Signatures",
            context["NumberOfAnalyzedSignatures"].clone(),
        ),
        ("Signatures", json!(python_json_dumps(&json!(signatures)))),
        (
            "Related Incidents",
            if related.is_empty() {
                json!("")
            } else {
                json!(python_json_dumps(&json!(related)))
            },
        ),
        (
            "Comment",
            match comment_texts.as_slice() {
                [] => json!(""),
                [one] => one.clone(),
                many => json!(many),
            },
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let readable = command.readable(&json!([row]));
    command.entry_with_readable(readable, context, inc.to_json())
}

/// The entry of `symantec-mss-incidents-list` for summaries as SWS answers them: the times in
/// UTC (a documented fix), everything else as the reference shows it.
fn list_entry(command: &CommandDef, raw: Vec<Value>) -> Entry {
    let incidents: Vec<Value> = raw
        .iter()
        .cloned()
        .map(|i| utc_fields(i, &SUMMARY_TIMES))
        .collect();
    command.entry(json!(incidents), json!(raw))
}

/// Seed 003's documented examples, byte for byte, apart from the documented fixes: times in
/// UTC with milliseconds, the `Signaturtes` header spelt `Signatures`, and every comment.
#[cfg(test)]
mod golden {
    use super::*;

    fn command(name: &str) -> &'static CommandDef {
        super::super::definition().command(name).unwrap()
    }

    #[test]
    fn incidents_list_matches_seed_003() {
        let summary = |n: &str, cat: &str, cc: &str, dest: &str, src: &str, corr: &str, t: &str| {
            json!({"Category": cat, "Severity": "Warning", "DaysSeenGlobally": "0", "HostNameList": null,
                   "GlobalLookbackDays": "2", "CustomerSeverity": null, "CountryCode": cc,
                   "DaysSeenInLast30Days": "0", "DestOrganizationName": dest, "SourceOrganizationName": src,
                   "UserList": null, "IncidentNumber": n, "CountryOfOrigin": null, "SourceIPString": "127.0.0.1",
                   "Correlation": corr, "IsInternalExternal": null, "LatestKeyEvent": t,
                   "Classification": "Scan for Web Servers", "TimeCreated": t, "FirstSeenInLast30Days": t,
                   "FirstSeenGlobally": t, "CountryName": format!("CName{}", &cc[2..]),
                   "UpdateTimestampGMT": t, "PrevalenceGlobally": "L"})
        };
        let entry = list_entry(
            command("symantec-mss-incidents-list"),
            vec![
                summary(
                    "565656",
                    "No Category",
                    "CC0",
                    "Org0",
                    "Org1",
                    "No",
                    "2017-12-20T10:04:35.4355923+00:00",
                ),
                summary(
                    "565657",
                    "Authorized Activity",
                    "CC1",
                    "Org1",
                    "Org2",
                    "Yes",
                    "2017-12-20T10:03:35.4355923+00:00",
                ),
            ],
        );
        assert_eq!(
            entry.readable,
            "### Incidents\n\
             |IncidentNumber|TimeCreated|Severity|Category|CountryOfOrigin|DaysSeenGlobally|SourceIPString|Correlation|HostNameList|IsInternalExternal|GlobalLookbackDays|LatestKeyEvent|CustomerSeverity|CountryCode|FirstSeenInLast30Days|DaysSeenInLast30Days|DestOrganizationName|SourceOrganizationName|FirstSeenGlobally|CountryName|UserList|Classification|UpdateTimestampGMT|PrevalenceGlobally|\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n\
             | 565656 | 2017-12-20T10:04:35.435Z | Warning | No Category |  | 0 | 127.0.0.1 | No |  |  | 2 | 2017-12-20T10:04:35.435Z |  | CC0 | 2017-12-20T10:04:35.435Z | 0 | Org0 | Org1 | 2017-12-20T10:04:35.435Z | CName0 |  | Scan for Web Servers | 2017-12-20T10:04:35.435Z | L |\n\
             | 565657 | 2017-12-20T10:03:35.435Z | Warning | Authorized Activity |  | 0 | 127.0.0.1 | Yes |  |  | 2 | 2017-12-20T10:03:35.435Z |  | CC1 | 2017-12-20T10:03:35.435Z | 0 | Org1 | Org2 | 2017-12-20T10:03:35.435Z | CName1 |  | Scan for Web Servers | 2017-12-20T10:03:35.435Z | L |\n"
        );
        // The context holds the summaries, keyed by incident number.
        let ctx = entry.entry_context();
        let listed = ctx.values().next().unwrap();
        assert_eq!(listed[0]["IncidentNumber"], "565656");
        assert_eq!(listed[1]["Category"], "Authorized Activity");
    }

    #[test]
    fn get_incident_matches_seed_003() {
        let signatures: String = ["0.0.0.0", "1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4", "5.5.5.5"]
            .iter()
            .map(|ip| format!(
                "<Signature><SourceIPString>{ip}</SourceIPString><SignatureName>Symantec AV Alert</SignatureName>\
                 <VendorSignature /><NumberBlocked>0</NumberBlocked><NumberNotBlocked>0</NumberNotBlocked></Signature>"
            ))
            .collect();
        let xml = format!(
            "<SecurityIncident><IncidentNumber>565656</IncidentNumber>\
             <TimeCreated>2017-12-20T09:53:18.1855923+00:00</TimeCreated>\
             <Classification>Activity Summary - Scans for Web Servers</Classification>\
             <Description>Scans for Web Servers have been detected</Description>\
             <AnalystAssessment>Lorem ipsum dolor sit amet, consectetur adipisicing elit.</AnalystAssessment>\
             <NumberOfAnalyzedSignatures>5</NumberOfAnalyzedSignatures><SignatureList>{signatures}</SignatureList>\
             <RelatedIncidents><IncidentNumber>1235</IncidentNumber><IncidentNumber>123456</IncidentNumber>\
             <IncidentNumber>123457</IncidentNumber></RelatedIncidents>\
             <WorkFlowDetail><Status /><Resolution /><AssignedPerson /><AssignedOrganization /></WorkFlowDetail>\
             <IncidentComments><IncidentComment><CommentedTimeStampGMT>2017-12-20T10:00:00</CommentedTimeStampGMT>\
             <Comment>CommentTest</Comment><CommentedBy>analyst1</CommentedBy></IncidentComment></IncidentComments>\
             </SecurityIncident>"
        );
        let inc = watchfloor_core::xml::parse(&xml).unwrap();
        let entry = incident_entry(command("symantec-mss-get-incident"), &inc);
        let signature = |ip: &str| {
            format!(
                "{{\"SourceIPString\": \"{ip}\", \"SignatureName\": \"Symantec AV Alert\", \"VendorSignature\": null, \"NumberBlocked\": \"0\", \"NumberNotBlocked\": \"0\"}}"
            )
        };
        let all: Vec<String> = [
            "0.0.0.0", "1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4", "5.5.5.5",
        ]
        .iter()
        .map(|ip| signature(ip))
        .collect();
        assert_eq!(
            entry.readable,
            format!(
                "### Incident query\n\
                 |Incident Number|Time Created|Status|Classification|Assigned Person|Description|Analyst Assessment|Number of Analyzed Signatures|Signatures|Related Incidents|Comment|\n\
                 |---|---|---|---|---|---|---|---|---|---|---|\n\
                 | 565656 | 2017-12-20T09:53:18.185Z |  | Activity Summary - Scans for Web Servers |  | Scans for Web Servers have been detected | Lorem ipsum dolor sit amet, consectetur adipisicing elit. | 5 | [{}] | [\"1235\", \"123456\", \"123457\"] | CommentTest |\n",
                all.join(", ")
            )
        );
        let ctx = entry.entry_context();
        let query = ctx.values().next().unwrap();
        assert_eq!(
            query["RelatedIncidents"]["IncidentNumber"],
            json!(["1235", "123456", "123457"])
        );
        assert_eq!(
            query["SignatureList"]["Signature"]
                .as_array()
                .unwrap()
                .len(),
            6
        );
        assert_eq!(
            query["IncidentComments"]["IncidentComment"][0]["Comment"],
            "CommentTest"
        );
    }
}
