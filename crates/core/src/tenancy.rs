//! How a command binds to organizations, as data in its definition: which arguments name an
//! organization or an object one owns, which result field says whose a record is, or that the
//! command reads the whole instance. The rule that uses it lives in the service layer.

use serde::Deserialize;
use serde_json::Value;

use crate::definition::CommandDef;

/// A command's binding to organizations (`tenancy` in `integration.toml`). Every command
/// declares one, so that an organization-scoped caller's command is checked before it runs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenancy {
    /// Arguments that name an organization.
    #[serde(default)]
    pub org_args: Vec<OrgArg>,
    /// Keys inside a query-string argument (`org=Acme&resolution=Unresolved`) that name an
    /// organization.
    #[serde(default)]
    pub query_keys: Vec<QueryKey>,
    /// Arguments that name a provider record the instance fetches as an incident (an alert,
    /// an ARO), which belongs to that incident's organization.
    #[serde(default)]
    pub objects: Vec<String>,
    /// The field of each result record that names its organization.
    pub result: Option<OrgField>,
    /// The command reads what no one organization owns.
    pub instance_wide: Option<InstanceWide>,
}

/// An argument that names an organization.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgArg {
    pub arg: String,
    pub by: OrgBy,
}

/// A key of a query-string argument that names an organization.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryKey {
    pub arg: String,
    pub key: String,
    pub by: OrgBy,
}

/// A field of a result record (a dotted path) that names the record's organization.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgField {
    pub path: String,
    pub by: OrgBy,
}

/// How an organization is named: by the provider's id, or by the name incidents carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgBy {
    Id,
    Name,
}

/// What a command that reads the whole instance does for an organization-scoped caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceWide {
    /// Its records each name their organization (`result`): the caller gets their own.
    Narrowed,
    /// It cannot be narrowed, so it is refused.
    Refused,
    /// It answers nothing any organization owns (a ping).
    Harmless,
}

/// Where an integration's fetched records say their organization's provider id, so that an
/// organization named by id can be matched with the organization incidents carry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationTenancy {
    /// Dotted path in a fetched incident's raw record, e.g. `organization.ID`.
    pub raw_org_id: Option<String>,
}

impl Tenancy {
    /// Checks the binding against the command's arguments: every named argument exists, and
    /// the command says at least one way its results are tied to organizations.
    pub fn validate(&self, command: &CommandDef) -> Result<(), String> {
        let named = self
            .org_args
            .iter()
            .map(|a| &a.arg)
            .chain(self.query_keys.iter().map(|k| &k.arg))
            .chain(self.objects.iter());
        for arg in named {
            if command.arg(arg).is_none() {
                return Err(format!(
                    "{}: tenancy names argument `{arg}`, which the command does not have",
                    command.name
                ));
            }
        }
        if self.instance_wide == Some(InstanceWide::Narrowed) && self.result.is_none() {
            return Err(format!(
                "{}: a narrowed instance-wide command needs `result`, the field that names each record's organization",
                command.name
            ));
        }
        let binds = !self.org_args.is_empty()
            || !self.query_keys.is_empty()
            || !self.objects.is_empty()
            || self.result.is_some()
            || self.instance_wide.is_some();
        if !binds {
            return Err(format!(
                "{}: tenancy binds nothing; name its organization arguments, objects or result field, or say it is instance_wide",
                command.name
            ));
        }
        Ok(())
    }

    /// The binding in words, for the docs and `commands NAME`.
    pub fn describe(&self) -> String {
        let by = |b: OrgBy| match b {
            OrgBy::Id => "id",
            OrgBy::Name => "name",
        };
        let mut parts = Vec::new();
        for a in &self.org_args {
            parts.push(format!(
                "organization argument `{}` (by {})",
                a.arg,
                by(a.by)
            ));
        }
        for k in &self.query_keys {
            parts.push(format!(
                "organization key `{}=` in `{}` (by {})",
                k.key,
                k.arg,
                by(k.by)
            ));
        }
        for o in &self.objects {
            parts.push(format!("object argument `{o}` (a fetched alert)"));
        }
        match self.instance_wide {
            Some(InstanceWide::Narrowed) => parts.push("instance-wide, narrowed".into()),
            Some(InstanceWide::Refused) => parts.push("instance-wide, refused".into()),
            Some(InstanceWide::Harmless) => {
                parts.push("instance-wide, no organization's data".into())
            }
            None => {}
        }
        if let Some(r) = &self.result {
            parts.push(format!("results by `{}` ({})", r.path, by(r.by)));
        }
        parts.join("; ")
    }
}

/// The text at a dotted `path` of `value`, if it is a string or a number.
pub fn text_at(value: &Value, path: &str) -> Option<String> {
    let mut cur = value;
    for part in path.split('.') {
        cur = cur.as_object()?.get(part)?;
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Keeps the records of `value` (an array of records, or one record) whose field at `path`
/// `keep` accepts; a record without the field is not kept. Returns what is kept and how many
/// records were left out.
pub fn retain_records(value: &Value, path: &str, keep: &dyn Fn(&str) -> bool) -> (Value, usize) {
    let kept = |v: &Value| text_at(v, path).is_some_and(|t| keep(&t));
    match value {
        Value::Array(items) => {
            let held: Vec<Value> = items.iter().filter(|v| kept(v)).cloned().collect();
            let withheld = items.len() - held.len();
            (Value::Array(held), withheld)
        }
        Value::Null => (Value::Null, 0),
        one if kept(one) => (one.clone(), 0),
        _ => (Value::Null, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_of_other_organizations_and_records_naming_none_are_left_out() {
        let rows = json!([
            {"organization": {"name": "Acme"}},
            {"organization": {"name": "Globex"}},
            {"title": "no organization"},
            {"organization": {"name": "acme"}},
        ]);
        let keep = |o: &str| o.eq_ignore_ascii_case("Acme");
        let (kept, withheld) = retain_records(&rows, "organization.name", &keep);
        assert_eq!(kept.as_array().unwrap().len(), 2);
        assert_eq!(withheld, 2);
        let (one, withheld) = retain_records(&json!({"org_name": "Globex"}), "org_name", &keep);
        assert_eq!((one, withheld), (Value::Null, 1));
        assert_eq!(retain_records(&Value::Null, "x", &keep), (Value::Null, 0));
    }
}
