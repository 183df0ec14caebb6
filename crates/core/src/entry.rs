//! Result entries: the readable markdown, the context outputs with their prefix and key fields,
//! and the provider's raw response.

use serde_json::{Map, Value, json};

/// Context outputs of an entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    /// Dotted context path, e.g. `FESPortal.ARO`.
    pub prefix: String,
    /// Fields that identify an object; empty means the prefix is a plain key.
    pub key_fields: Vec<String>,
    pub value: Value,
}

impl Outputs {
    /// The entry-context key: `Prefix(val.K && val.K == obj.K)` joined with ` && ` for several
    /// key fields, or the bare prefix when there are none.
    pub fn context_key(&self) -> String {
        if self.key_fields.is_empty() {
            return self.prefix.clone();
        }
        let predicate = self
            .key_fields
            .iter()
            .map(|k| format!("val.{k} && val.{k} == obj.{k}"))
            .collect::<Vec<_>>()
            .join(" && ");
        format!("{}({predicate})", self.prefix)
    }
}

/// One command result.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Markdown for people.
    pub readable: String,
    pub outputs: Option<Outputs>,
    /// The provider's response, unchanged.
    pub raw: Value,
}

impl Entry {
    /// An entry with only readable text and a raw response.
    pub fn text(readable: impl Into<String>, raw: Value) -> Self {
        Entry {
            readable: readable.into(),
            outputs: None,
            raw,
        }
    }

    /// The entry context: `{key: outputs}`, or empty when there are no outputs.
    pub fn entry_context(&self) -> Map<String, Value> {
        let mut map = Map::new();
        if let Some(o) = &self.outputs
            && !matches!(&o.value, Value::Array(a) if a.is_empty())
            && !o.value.is_null()
        {
            map.insert(o.context_key(), o.value.clone());
        }
        map
    }

    /// The whole entry as XSOAR writes it.
    /// The object keys of the raw response and the outputs (three levels deep): what the
    /// readable tables' headers were made from.
    pub fn keys(&self) -> Vec<String> {
        fn walk(v: &Value, depth: usize, out: &mut std::collections::BTreeSet<String>) {
            if depth == 0 {
                return;
            }
            match v {
                Value::Object(map) => {
                    for (k, v) in map {
                        out.insert(k.clone());
                        walk(v, depth - 1, out);
                    }
                }
                Value::Array(items) => items.iter().for_each(|i| walk(i, depth, out)),
                _ => {}
            }
        }
        let mut keys = std::collections::BTreeSet::new();
        walk(&self.raw, 3, &mut keys);
        if let Some(o) = &self.outputs {
            walk(&o.value, 3, &mut keys);
        }
        keys.into_iter().collect()
    }

    pub fn to_json(&self) -> Value {
        let contents_format = match self.raw {
            Value::String(_) | Value::Number(_) => "text",
            _ => "json",
        };
        json!({
            "Type": 1,
            "ContentsFormat": contents_format,
            "Contents": self.raw,
            "HumanReadable": self.readable,
            "ReadableContentsFormat": "markdown",
            "EntryContext": self.entry_context(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs(prefix: &str, keys: &[&str]) -> Outputs {
        Outputs {
            prefix: prefix.to_string(),
            key_fields: keys.iter().map(|k| k.to_string()).collect(),
            value: json!([{"ID": "1"}]),
        }
    }

    #[test]
    fn context_keys_follow_xsoar() {
        assert_eq!(
            outputs("FESPortal.ARO", &["ID"]).context_key(),
            "FESPortal.ARO(val.ID && val.ID == obj.ID)"
        );
        assert_eq!(
            outputs("A.B", &["x", "y"]).context_key(),
            "A.B(val.x && val.x == obj.x && val.y && val.y == obj.y)"
        );
        assert_eq!(
            outputs("FESBroker.APIStatus", &[]).context_key(),
            "FESBroker.APIStatus"
        );
    }

    #[test]
    fn entry_json_carries_readable_context_and_raw() {
        let entry = Entry {
            readable: "## Success".into(),
            outputs: Some(Outputs {
                prefix: "FESBroker.APIStatus".into(),
                key_fields: vec![],
                value: json!("pong"),
            }),
            raw: json!("pong"),
        };
        assert_eq!(
            entry.to_json(),
            json!({"Type": 1, "ContentsFormat": "text", "Contents": "pong", "HumanReadable": "## Success",
                   "ReadableContentsFormat": "markdown", "EntryContext": {"FESBroker.APIStatus": "pong"}})
        );
        let empty = Entry {
            outputs: Some(Outputs {
                value: json!([]),
                ..outputs("P", &["ID"])
            }),
            ..entry
        };
        assert_eq!(empty.entry_context(), Map::new());
    }
}
