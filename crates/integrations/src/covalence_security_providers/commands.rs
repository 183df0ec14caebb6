//! The commands of Covalence for Security Providers. Most are "list records from an endpoint":
//! those are rows of [`LISTS`] and share one path; the rest have their own functions.

use reqwest::Method;
use serde_json::{Map, Value, json};
use watchfloor_core::{Args, CommandDef, Entry};

use super::client::Covalence;
use super::config::Settings;
use crate::http::{Payload, path_segment};
use crate::{BoxFuture, CommandError, Instance, required as arg};

/// A command that lists records from one endpoint.
struct ListSpec {
    command: &'static str,
    path: &'static str,
    /// Argument -> query parameter, sent when the argument is given.
    params: &'static [(&'static str, &'static str)],
    /// Boolean arguments sent as `True` when true, and not at all otherwise.
    flags: &'static [(&'static str, &'static str)],
    /// Whether `max_count`/`initial_index` page the request.
    paged: bool,
    /// Fields kept when `details=false`; empty keeps every field.
    summary: &'static [&'static str],
    /// Fields always dropped.
    drop: &'static [&'static str],
}

const ADV: (&str, &str) = ("advanced_filter", "advancedFilter");
const CONNECTION_PARAMS: &[(&str, &str)] = &[
    ("source_ip", "sourceIp"),
    ("start_time", "startTime"),
    ("end_time", "endTime"),
    ADV,
];
const CONNECTION_FLAGS: &[(&str, &str)] = &[
    ("clients_only", "clientsOnly"),
    ("internal_only", "internalOnly"),
];

const LISTS: &[ListSpec] = &[
    ListSpec {
        command: "cov-secpr-list-alerts",
        path: "/rest/v1/alerts",
        params: &[
            ("alert_type", "alertType"),
            ("alert_time_min", "alertTimeMin"),
            ("alert_time_max", "alertTimeMax"),
            ADV,
        ],
        flags: &[],
        paged: true,
        summary: &[
            "acknowledgedStatus",
            "analystDescription",
            "analystTitle",
            "destIp",
            "sourceIp",
            "subType",
            "title",
            "type",
        ],
        drop: &[],
    },
    ListSpec {
        command: "cov-secpr-list-sensors",
        path: "/rest/v1/sensors",
        params: &[],
        flags: &[],
        paged: false,
        summary: &["isAuthorized", "isNetflowGenerator", "name"],
        drop: &["lastActive"],
    },
    ListSpec {
        command: "cov-secpr-connections-summary-ip",
        path: "/rest/v1/connections/ipsummary",
        params: CONNECTION_PARAMS,
        flags: CONNECTION_FLAGS,
        paged: true,
        summary: &[
            "averageDuration",
            "bytesIn",
            "bytesOut",
            "clientServerRelationship",
            "destinationIpAddress",
            "dstDomainName",
            "serverPorts",
            "sourceDomainName",
            "sourceIpAddress",
        ],
        drop: &[],
    },
    ListSpec {
        command: "cov-secpr-connections-summary-port",
        path: "/rest/v1/connections/portsummary",
        params: CONNECTION_PARAMS,
        flags: CONNECTION_FLAGS,
        paged: true,
        summary: &[
            "averageDuration",
            "bytesIn",
            "bytesOut",
            "destinationIpAddress",
            "dstDomainName",
            "serverPort",
            "sourceDomainName",
            "sourceIpAddress",
        ],
        drop: &[],
    },
    ListSpec {
        command: "cov-secpr-list-dns-resolutions",
        path: "/rest/v1/dns/resolutions",
        params: &[
            ("request_time_after", "requestTimeAfter"),
            ("request_time_before", "requestTimeBefore"),
            ("domain_name", "domainName"),
            ("resolved_ip", "resolvedIp"),
            ("request_origin_ip", "requestOriginIp"),
            ("nameserver_ip", "nameserverIp"),
            ADV,
        ],
        flags: &[],
        paged: true,
        summary: &["domainName", "requestOriginIp", "requestTime", "resolvedIp"],
        drop: &[],
    },
    ListSpec {
        command: "cov-secpr-list-internal-networks",
        path: "/rest/v1/internal_networks",
        params: &[],
        flags: &[],
        paged: false,
        summary: &[],
        drop: &[],
    },
    ListSpec {
        command: "cov-secpr-list-endpoint-agents",
        path: "/rest/v2/endpoint/agent/agents",
        params: &[ADV],
        flags: &[],
        paged: false,
        summary: &[
            "hardwareVendor",
            "hostName",
            "ipAddress",
            "isConnected",
            "lastSessionUser",
            "operatingSystem",
            "serialNumber",
        ],
        drop: &[],
    },
    ListSpec {
        command: "cov-secpr-search-endpoint-process",
        path: "/rest/v2/endpoint/process/search",
        params: &[("name", "name"), ADV],
        flags: &[],
        paged: false,
        summary: &[
            "commandLine",
            "firstSeenTime",
            "lastSeenTime",
            "processPath",
            "username",
        ],
        drop: &[],
    },
    ListSpec {
        command: "cov-secpr-search-endpoint-installed-software",
        path: "/rest/v2/endpoint/software/search",
        params: &[("name", "name"), ("version", "version"), ADV],
        flags: &[],
        paged: false,
        summary: &[
            "installTimestamp",
            "name",
            "uninstallTimestamp",
            "vendor",
            "version",
        ],
        drop: &[],
    },
];

const AGENTS_PATH: &str = "/rest/v2/endpoint/agent/agents";
const NETWORKS_PATH: &str = "/rest/v1/internal_networks";

/// A connected instance.
pub struct CovalenceSecurityProvidersInstance {
    client: Covalence,
}

impl Instance for CovalenceSecurityProvidersInstance {
    fn execute<'a>(
        &'a self,
        command: &'a CommandDef,
        args: &'a Args,
    ) -> BoxFuture<'a, Result<Entry, CommandError>> {
        Box::pin(async move {
            let target = args.str("target_org");
            if let Some(spec) = LISTS.iter().find(|s| s.command == command.name) {
                let rows = self.list(spec, args).await?;
                return Ok(command.entry(json!(rows), json!(rows)));
            }
            let rows = match command.name.as_str() {
                "cov-secpr-get-sensor" => {
                    let path =
                        &format!("/rest/v1/sensors/{}", path_segment(arg(args, "sensor_id")?));
                    let rows = self
                        .client
                        .fan_out(target, |a| async move {
                            self.client.list(&a, path, &[], None, 0).await
                        })
                        .await?;
                    shape(rows, &[], &["lastActive"])
                }
                "cov-secpr-find-endpoint-agents-by-user" => {
                    self.agents_where("lastSessionUser", arg(args, "user")?, target)
                        .await?
                }
                "cov-secpr-find-endpoint-agents-by-uuid" => {
                    self.agents_where("agentUuid", arg(args, "uuid")?, target)
                        .await?
                }
                "cov-secpr-set-internal-networks" => return self.set_network(command, args).await,
                "cov-secpr-list-organizations" => self.organizations().await?,
                other => return Err(CommandError::not_implemented(other)),
            };
            Ok(command.entry(json!(rows), json!(rows)))
        })
    }

    fn test(&self) -> BoxFuture<'_, Result<(), CommandError>> {
        Box::pin(self.test_module())
    }

    fn fetch_scopes(&self) -> BoxFuture<'_, Result<Vec<String>, CommandError>> {
        Box::pin(super::fetch::scopes(&self.client))
    }

    fn mirroring(&self) -> crate::Mirroring {
        crate::Mirroring {
            incoming: true,
            outgoing: false,
            notes_checkable: false,
        }
    }

    fn pull<'a>(
        &'a self,
        external_id: &'a str,
        seen: &'a Value,
    ) -> BoxFuture<'a, Result<Option<crate::RemoteChange>, CommandError>> {
        Box::pin(super::mirror::pull(&self.client, external_id, seen))
    }

    fn pull_many<'a>(
        &'a self,
        open: &'a [crate::OpenAlert],
    ) -> BoxFuture<'a, Result<Vec<Option<crate::RemoteChange>>, CommandError>> {
        Box::pin(super::mirror::pull_many(&self.client, open))
    }

    fn mirror_state(&self, seen: Value) -> Value {
        super::mirror::mirror_state(&seen)
    }

    fn fetch<'a>(
        &'a self,
        scope: &'a str,
        cursor: Option<&'a serde_json::Value>,
        settings: &'a watchfloor_core::FetchSettings,
    ) -> BoxFuture<'a, Result<crate::fetch::FetchBatch, CommandError>> {
        Box::pin(super::fetch::fetch(&self.client, scope, cursor, settings))
    }
}

/// Keeps `summary` fields (all when empty) and the broker tags, and drops `drop` fields.
fn shape(rows: Vec<Value>, summary: &[&str], drop: &[&str]) -> Vec<Value> {
    rows.into_iter()
        .map(|row| match row {
            Value::Object(mut o) => {
                if !summary.is_empty() {
                    o.retain(|k, _| {
                        summary.contains(&k.as_str()) || k == "org_name" || k == "appliance_id"
                    });
                }
                o.retain(|k, _| !drop.contains(&k.as_str()));
                Value::Object(o)
            }
            other => other,
        })
        .collect()
}

/// Quotes a value for `advancedFilter`, so it cannot add clauses.
pub(super) fn filter_value(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

impl CovalenceSecurityProvidersInstance {
    pub fn new(settings: &Settings) -> Result<Self, CommandError> {
        Ok(CovalenceSecurityProvidersInstance {
            client: Covalence::new(settings)?,
        })
    }

    async fn list(&self, spec: &ListSpec, args: &Args) -> Result<Vec<Value>, CommandError> {
        let mut query: Vec<(String, String)> = spec
            .params
            .iter()
            .filter_map(|(arg, param)| args.str(arg).map(|v| (param.to_string(), v.to_string())))
            .collect();
        query.extend(
            spec.flags
                .iter()
                .filter(|(arg, _)| args.bool(arg))
                .map(|(_, param)| (param.to_string(), "True".to_string())),
        );
        let (max, start) = match spec.paged {
            true => (
                args.integer("max_count").map(|n| n.unsigned_abs()),
                args.integer("initial_index")
                    .map_or(0, |n| n.unsigned_abs()),
            ),
            false => (None, 0),
        };
        let query = &query;
        let rows = self
            .client
            .fan_out(args.str("target_org"), |a| async move {
                self.client.list(&a, spec.path, query, max, start).await
            })
            .await?;
        let summary = if args.bool("details") {
            &[][..]
        } else {
            spec.summary
        };
        Ok(shape(rows, summary, spec.drop))
    }

    async fn agents_where(
        &self,
        field: &str,
        value: &str,
        target: Option<&str>,
    ) -> Result<Vec<Value>, CommandError> {
        let query = &[(
            "advancedFilter".to_string(),
            format!("{field}={}", filter_value(value)),
        )];
        self.client
            .fan_out(target, |a| async move {
                self.client.list(&a, AGENTS_PATH, query, None, 0).await
            })
            .await
    }

    /// Adds or replaces one network (by CIDR) on every appliance of the organization, keeping the
    /// others; `replace=true` makes it the only one.
    async fn set_network(&self, command: &CommandDef, args: &Args) -> Result<Entry, CommandError> {
        let cidr = arg(args, "cidr")?.trim();
        check_cidr(cidr)?;
        let notes = arg(args, "notes")?;
        let network = &json!({"cidr": cidr, "notes": notes});
        let replace = args.bool("replace");
        let written = self
            .client
            .fan_out(args.str("target_org"), |a| async move {
                let mut list = match replace {
                    true => Vec::new(),
                    false => self.client.list(&a, NETWORKS_PATH, &[], None, 0).await?,
                };
                list.retain(|n| n["cidr"].as_str() != Some(cidr));
                list.push(network.clone());
                let body = Value::Array(list);
                self.client
                    .request(&a, &Method::PUT, NETWORKS_PATH, &[], Payload::Json(&body))
                    .await?;
                Ok(vec![network.clone()])
            })
            .await?;
        let verb = if replace {
            "Internal networks replaced by"
        } else {
            "Internal network set as"
        };
        // The reference's sentence, byte for byte: where it is shown, raw HTML reads as text.
        let readable = format!("{verb} {cidr} with notes \"{notes}\"");
        let context = if written.len() == 1 {
            written[0].clone()
        } else {
            Value::Array(written.clone())
        };
        Ok(command.entry_with_readable(readable, context, Value::Array(written)))
    }

    async fn organizations(&self) -> Result<Vec<Value>, CommandError> {
        if !self.client.broker {
            return Err(CommandError::NotConfigured(
                "cov-secpr-list-organizations needs broker mode (set broker = true)".into(),
            ));
        }
        let mut orgs: Vec<Map<String, Value>> = Vec::new();
        for link in self.client.index(true).await? {
            match orgs.iter_mut().find(|o| o["org_name"] == link.org.as_str()) {
                Some(o) => o["appliance_ids"]
                    .as_array_mut()
                    .into_iter()
                    .for_each(|ids| ids.push(json!(link.cov_id))),
                None => orgs.push(Map::from_iter([
                    ("org_name".into(), json!(link.org)),
                    ("appliance_ids".into(), json!([link.cov_id])),
                ])),
            }
        }
        Ok(orgs.into_iter().map(Value::Object).collect())
    }

    /// Logs in and reads the health of the appliance, or of every appliance behind the broker.
    async fn test_module(&self) -> Result<(), CommandError> {
        let orgs: Vec<Option<String>> = match self.client.broker {
            false => vec![None],
            true => {
                let mut names: Vec<Option<String>> = Vec::new();
                for link in self.client.index(true).await? {
                    if !names.contains(&Some(link.org.clone())) {
                        names.push(Some(link.org));
                    }
                }
                if names.is_empty() {
                    return Err(CommandError::Provider(
                        "the broker's index page lists no organizations".into(),
                    ));
                }
                names
            }
        };
        for org in &orgs {
            self.client
                .fan_out(org.as_deref(), |a| async move {
                    let health = self
                        .client
                        .request(&a, &Method::GET, "/rest/v1/health", &[], Payload::Empty)
                        .await?;
                    let unhealthy = health.is_null()
                        || health.as_object().is_some_and(|o| o.is_empty())
                        || health["healthy"] == false
                        || health["status"]
                            .as_str()
                            .is_some_and(|s| !s.eq_ignore_ascii_case("ok"));
                    match unhealthy {
                        true => Err(CommandError::Provider(format!(
                            "the appliance reports itself unhealthy: {health}"
                        ))),
                        false => Ok(vec![]),
                    }
                })
                .await?;
        }
        Ok(())
    }
}

fn check_cidr(cidr: &str) -> Result<(), CommandError> {
    let bad = || {
        CommandError::Invalid(format!(
            "`{cidr}` is not a network in CIDR notation, e.g. 10.20.0.0/24"
        ))
    };
    let (ip, len) = cidr.split_once('/').ok_or_else(bad)?;
    let ip: std::net::IpAddr = ip.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(bad());
    }
    Ok(())
}
