//! The organization rule for provider commands, for a caller who does not see every
//! organization: what a command may name, what it may act on, which instance it may run on,
//! and which of its results the caller gets. The binding of each command is data in its
//! definition ([`watchfloor_core::Tenancy`]); this is the one place that applies it.

use serde_json::Value;
use watchfloor_core::tenancy::{OrgBy, retain_records, text_at};
use watchfloor_core::{Entry, Incident, InstanceWide};
use watchfloor_integrations::Prepared;
use watchfloor_storage::{IncidentFilter, Store, StoreError};

/// Why a command was not run for this caller.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refuse<T>(message: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::Refused(message.into()))
}

/// How a checked command's results are narrowed to the caller's organizations.
#[derive(Debug, Default)]
pub struct Narrow {
    /// The field that names each record's organization, and the organizations kept.
    by: Option<(String, OrgBy, Vec<String>)>,
}

/// The organizations of a caller on one command: those the caller sees, limited to the
/// instance's own when the config binds it to one.
struct Ctx<'a> {
    store: &'a dyn Store,
    incident: &'a Incident,
    allowed: Vec<String>,
    instance: &'a str,
    raw_org_id: Option<&'a str>,
}

impl Ctx<'_> {
    fn allowed_name(&self, name: &str) -> Option<&str> {
        self.allowed
            .iter()
            .find(|a| a.eq_ignore_ascii_case(name.trim()))
            .map(String::as_str)
    }

    /// The organization that fills a left-out organization argument: the incident's, else
    /// the caller's only one.
    fn home(&self) -> Option<&str> {
        self.incident
            .organization
            .as_deref()
            .and_then(|o| self.allowed_name(o))
            .or(match self.allowed.as_slice() {
                [only] => Some(only.as_str()),
                _ => None,
            })
    }

    /// The provider's id of organization `org` on this instance, as its fetched incidents
    /// record it.
    async fn id_of(&self, org: &str) -> Result<Option<String>, StoreError> {
        let Some(path) = self.raw_org_id else {
            return Ok(None);
        };
        let same = |i: &Incident| {
            i.instance == self.instance
                && i.organization
                    .as_deref()
                    .is_some_and(|o| o.eq_ignore_ascii_case(org))
        };
        if same(self.incident)
            && let Some(id) = text_at(&self.incident.raw, path)
        {
            return Ok(Some(id));
        }
        let filter = IncidentFilter {
            instance: Some(self.instance.to_string()),
            organization: Some(org.to_string()),
            limit: Some(1),
            ..IncidentFilter::default()
        };
        let found = self.store.incidents(&filter).await?;
        Ok(found.first().and_then(|i| text_at(&i.raw, path)))
    }

    /// The caller's organization that `value` names, by name or by provider id.
    async fn resolve(&self, value: &str, by: OrgBy) -> Result<Option<String>, StoreError> {
        match by {
            OrgBy::Name => Ok(self.allowed_name(value).map(str::to_string)),
            OrgBy::Id => {
                for org in &self.allowed {
                    if self.id_of(org).await?.as_deref() == Some(value.trim()) {
                        return Ok(Some(org.clone()));
                    }
                }
                Ok(None)
            }
        }
    }

    /// The value that names the home organization, by name or by id.
    async fn home_value(&self, by: OrgBy, arg: &str) -> Result<String, Refusal> {
        let Some(home) = self.home() else {
            return refuse(format!(
                "give `{arg}`: this incident has no organization of yours to fill it with (yours: {})",
                self.allowed.join(", ")
            ));
        };
        match by {
            OrgBy::Name => Ok(home.to_string()),
            OrgBy::Id => match self.id_of(home).await? {
                Some(id) => Ok(id),
                None => refuse(format!(
                    "the provider's id of organization `{home}` is not known on instance `{}` (none of its incidents there names it), so `{arg}` cannot be filled; ask an administrator",
                    self.instance
                )),
            },
        }
    }

    fn not_yours(&self, what: &str) -> Refusal {
        Refusal::Refused(format!(
            "{what} is not one of your organizations ({}); provider commands reach only your organizations' data",
            self.allowed.join(", ")
        ))
    }
}

/// Checks `prepared` for a caller who sees only `orgs`, running in `incident`, and fills the
/// organization arguments it leaves out. Nothing is sent to the provider before this passes.
pub async fn check(
    store: &dyn Store,
    incident: &Incident,
    orgs: &[String],
    prepared: &mut Prepared<'_>,
) -> Result<Narrow, Refusal> {
    let sees = |o: &str| orgs.iter().any(|s| s.eq_ignore_ascii_case(o));
    // Instances: the incident's own, or one bound to an organization the caller sees.
    let own = (!incident.is_manual()).then_some(incident.instance.as_str());
    if own != Some(prepared.instance) && !prepared.organization.is_some_and(sees) {
        return match own {
            Some(own) => refuse(format!(
                "instance `{}` serves organizations you do not see; in this incident, commands run on its own instance `{own}`",
                prepared.instance
            )),
            None => refuse(format!(
                "incident {} was made by hand, so it has no instance of its own, and instance `{}` serves organizations you do not see; run provider commands in an incident fetched from the instance",
                incident.id, prepared.instance
            )),
        };
    }
    let allowed: Vec<String> = match prepared.organization {
        Some(bound) if sees(bound) => vec![bound.to_string()],
        Some(_) => {
            return refuse(format!(
                "instance `{}` serves an organization you do not see",
                prepared.instance
            ));
        }
        None => orgs.to_vec(),
    };
    let bound = prepared.organization.is_some();
    let command = prepared.command;
    let tenancy = &command.tenancy;
    let ctx = Ctx {
        store,
        incident,
        allowed,
        instance: prepared.instance,
        raw_org_id: prepared.integration.tenancy.raw_org_id.as_deref(),
    };
    if tenancy.instance_wide == Some(InstanceWide::Refused) && !bound {
        return refuse(format!(
            "`{}` reads the whole instance `{}`, which serves organizations you do not see; ask an administrator to run it",
            command.name, prepared.instance
        ));
    }
    for org_arg in &tenancy.org_args {
        match prepared.line.value_of(command, &org_arg.arg) {
            Some(value) => {
                if ctx.resolve(value, org_arg.by).await?.is_none() {
                    return Err(ctx.not_yours(&format!(
                        "the organization `{value}` given in `{}`",
                        org_arg.arg
                    )));
                }
            }
            None => {
                let value = ctx.home_value(org_arg.by, &org_arg.arg).await?;
                prepared.line.set(command, &org_arg.arg, value);
            }
        }
    }
    check_query_keys(&ctx, prepared).await?;
    if !bound {
        for arg in &tenancy.objects {
            let Some(value) = prepared.line.value_of(command, arg) else {
                continue;
            };
            let owner = store
                .incident_by_external_id(prepared.instance, value.trim())
                .await?
                .and_then(|i| i.organization);
            if owner.is_none_or(|o| ctx.allowed_name(&o).is_none()) {
                return refuse(format!(
                    "`{arg}` {value} is not a record of your organizations on instance `{}`; you can act only on records fetched into your organizations' incidents",
                    prepared.instance
                ));
            }
        }
    }
    Ok(Narrow {
        by: match (&tenancy.result, bound) {
            (Some(field), false) => Some((field.path.clone(), field.by, ctx.allowed.clone())),
            _ => None,
        },
    })
}

/// Checks the organization keys of query-string arguments (`org=Acme&...`), and adds the
/// home organization to a query that names none.
async fn check_query_keys(ctx: &Ctx<'_>, prepared: &mut Prepared<'_>) -> Result<(), Refusal> {
    let command = prepared.command;
    let mut query_args: Vec<&str> = command
        .tenancy
        .query_keys
        .iter()
        .map(|k| k.arg.as_str())
        .collect();
    query_args.dedup();
    for arg in query_args {
        let keys: Vec<_> = command
            .tenancy
            .query_keys
            .iter()
            .filter(|k| k.arg == arg)
            .collect();
        let query = prepared.line.value_of(command, arg).unwrap_or_default();
        let mut named = false;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let Some(k) = keys.iter().find(|k| k.key == key) else {
                continue;
            };
            named = true;
            if ctx.resolve(&value, k.by).await?.is_none() {
                return Err(ctx.not_yours(&format!(
                    "the organization `{value}` given as `{key}=` in `{arg}`"
                )));
            }
        }
        if named {
            continue;
        }
        // By id when it is known (exact), else by name.
        let mut filled = None;
        for k in &keys {
            let value = match k.by {
                OrgBy::Id => match ctx.home().map(|h| ctx.id_of(h)) {
                    Some(lookup) => lookup.await?,
                    None => None,
                },
                OrgBy::Name => ctx.home().map(str::to_string),
            };
            if let Some(v) = value {
                filled = Some((k.key.as_str(), v));
                if k.by == OrgBy::Id {
                    break;
                }
            }
        }
        let Some((key, value)) = filled else {
            return refuse(format!(
                "name one of your organizations in `{arg}` ({}): this incident has none to fill it with",
                ctx.allowed.join(", ")
            ));
        };
        let pair: String = form_urlencoded::Serializer::new(String::new())
            .append_pair(key, &value)
            .finish();
        let query = match query.trim() {
            "" => pair,
            q => format!("{q}&{pair}"),
        };
        prepared.line.set(command, arg, query);
    }
    Ok(())
}

/// Keeps `entry`'s records to the caller's organizations; the readable output says how many
/// were withheld and names none of them.
pub fn narrow(narrow: &Narrow, command: &watchfloor_core::CommandDef, mut entry: Entry) -> Entry {
    let Some((path, by, allowed)) = &narrow.by else {
        return entry;
    };
    // Records name their organization by name here (ids are checked before the run).
    let keep =
        |o: &str| *by == OrgBy::Name && allowed.iter().any(|a| a.eq_ignore_ascii_case(o.trim()));
    let (shown, withheld) = match &entry.outputs {
        Some(o) => retain_records(&o.value, path, &keep),
        None => (Value::Null, 0),
    };
    let (raw, raw_withheld) = match &entry.raw {
        Value::Array(_) => retain_records(&entry.raw, path, &keep),
        // A raw answer that is not a list of records is replaced by what the caller may see.
        _ => (shown.clone(), 0),
    };
    entry.raw = raw;
    let withheld = withheld.max(raw_withheld);
    if let Some(o) = &mut entry.outputs {
        o.value = shown.clone();
    }
    if withheld > 0 {
        entry.readable = format!(
            "{}\n\n**{withheld} record{} withheld: {} to organizations you do not see.**\n",
            command.readable(&shown).trim_end(),
            if withheld == 1 { "" } else { "s" },
            if withheld == 1 {
                "it belongs"
            } else {
                "they belong"
            },
        );
    }
    entry
}
