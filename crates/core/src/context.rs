//! A context store that merges entry contexts the way XSOAR does.
//!
//! For a key `Prefix(val.K && val.K == obj.K)`, the value at `Prefix` is a list; each new object
//! replaces the element whose key fields are all present and equal, and is appended otherwise.
//! Objects that lack a key field never match, so they are always appended. A plain key
//! (`FESBroker.APIStatus`) is set outright. Dots in the prefix make nested objects.

use serde_json::{Map, Value};

/// Accumulated context, as a JSON object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContextStore {
    root: Map<String, Value>,
}

impl ContextStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `context` (an object; anything else starts empty).
    pub fn from_json(context: Value) -> Self {
        match context {
            Value::Object(root) => ContextStore { root },
            _ => Self::default(),
        }
    }

    /// The whole context.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.root
    }

    /// The value at a dotted path, if any.
    pub fn get(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.');
        let mut cur = self.root.get(parts.next()?)?;
        for part in parts {
            cur = cur.as_object()?.get(part)?;
        }
        Some(cur)
    }

    /// Merges one entry context (`{key: value}` pairs) into the store.
    pub fn merge(&mut self, entry_context: &Map<String, Value>) {
        for (key, value) in entry_context {
            let (prefix, key_fields) = split_key(key);
            let slot = slot(&mut self.root, prefix);
            if key_fields.is_empty() {
                *slot = value.clone();
                continue;
            }
            let list = match slot.take() {
                Value::Array(a) => a,
                Value::Null => Vec::new(),
                other => vec![other],
            };
            let mut list = list;
            let new_items = match value {
                Value::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            for item in new_items {
                match list
                    .iter()
                    .position(|old| same_key(old, &item, &key_fields))
                {
                    Some(i) => list[i] = item,
                    None => list.push(item),
                }
            }
            *slot = Value::Array(list);
        }
    }
}

/// Splits `Prefix(val.A && val.A == obj.A && ...)` into the prefix and its key fields.
fn split_key(key: &str) -> (&str, Vec<String>) {
    let Some(open) = key.find('(') else {
        return (key, vec![]);
    };
    let predicate = key[open + 1..].trim_end_matches(')');
    let fields = predicate
        .split("&&")
        .filter_map(|clause| {
            let clause = clause.trim();
            let (lhs, rhs) = clause
                .split_once("==")
                .or_else(|| clause.split_once("==="))?;
            let field = lhs.trim().strip_prefix("val.")?;
            rhs.trim()
                .trim_start_matches('=')
                .trim()
                .strip_prefix("obj.")?;
            Some(field.to_string())
        })
        .collect();
    (&key[..open], fields)
}

fn slot<'a>(root: &'a mut Map<String, Value>, prefix: &str) -> &'a mut Value {
    let mut parts = prefix.split('.').peekable();
    let mut map = root;
    loop {
        let part = parts.next().unwrap_or_default();
        if parts.peek().is_none() {
            return map.entry(part.to_string()).or_insert(Value::Null);
        }
        let next = map
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        map = next.as_object_mut().expect("just made an object");
    }
}

fn same_key(old: &Value, new: &Value, key_fields: &[String]) -> bool {
    key_fields.iter().all(|k| match (old.get(k), new.get(k)) {
        (Some(a), Some(b)) => truthy(a) && a == b,
        _ => false,
    })
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(true) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(steps: &[Value]) -> Value {
        let mut store = ContextStore::new();
        for step in steps {
            store.merge(step.as_object().unwrap());
        }
        Value::Object(store.as_map().clone())
    }

    #[test]
    fn replaces_by_key_and_appends_otherwise() {
        let key = "FESPortal.ARO(val.ID && val.ID == obj.ID)";
        let got = merged(&[
            json!({key: [{"ID": "1", "resolution": "Unresolved"}, {"ID": "2"}]}),
            json!({key: {"ID": "1", "resolution": "Resolved"}}),
            json!({key: [{"ID": "3"}, {"title": "no id"}]}),
            json!({key: {"title": "no id"}}),
        ]);
        assert_eq!(
            got,
            json!({"FESPortal": {"ARO": [
                {"ID": "1", "resolution": "Resolved"}, {"ID": "2"}, {"ID": "3"},
                {"title": "no id"}, {"title": "no id"}
            ]}})
        );
    }

    #[test]
    fn compound_keys_plain_keys_and_siblings() {
        let key = "P.C(val.org && val.org == obj.org && val.type && val.type == obj.type)";
        let got = merged(&[
            json!({key: [{"org": "a", "type": "x", "v": 1}, {"org": "a", "type": "y"}]}),
            json!({key: {"org": "a", "type": "x", "v": 2}}),
            json!({"P.Status": "pong"}),
            json!({"P.Status": "pong again"}),
        ]);
        assert_eq!(
            got,
            json!({"P": {"C": [{"org": "a", "type": "x", "v": 2}, {"org": "a", "type": "y"}], "Status": "pong again"}})
        );
        let store = {
            let mut s = ContextStore::new();
            s.merge(json!({"A.B": 1}).as_object().unwrap());
            s
        };
        assert_eq!(store.get("A.B"), Some(&json!(1)));
        assert_eq!(store.get("A.C"), None);
    }
}
