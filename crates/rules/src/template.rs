//! Templated text of actions (`note`, `run`, `close`): XSOAR's references `${incident.<field>}`
//! and `${<ContextKey>.<path>}`, and the rules' own `${rule.name}`, `${trigger}` and
//! `${change.<field>.old|new}`, checked when a rule is imported.

use watchfloor_core::incident::XSOAR_FIELDS;

/// A reference inside `${...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    /// `${incident.<field>}`, by XSOAR's field names.
    Incident(String),
    /// `${rule.name}`.
    RuleName,
    /// `${trigger}`: the event that fired the rule.
    Trigger,
    /// `${change.<field>.old}` or `.new`.
    Change { field: String, new: bool },
    /// `${<ContextKey>.<path>}`: known only when the rule runs.
    Context(String),
    /// `${indicator.<type>}`: in a `run` line, each indicator of that type the incident holds,
    /// one run each.
    Indicator(String),
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Ref(Ref),
}

/// Text with references, as written and as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub source: String,
    pub parts: Vec<Part>,
}

impl Template {
    /// Reads `source`; an unknown field or an unclosed `${` is an error that says what to write.
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(format!(
                    "`{}` has no closing `}}`; write references as ${{incident.<field>}}",
                    &rest[start..]
                ));
            };
            parts.push(Part::Ref(reference(after[..end].trim())?));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    /// The indicator type the template names (`${indicator.ip}`), if it names one.
    pub fn indicator_kind(&self) -> Option<&str> {
        self.parts.iter().find_map(|p| match p {
            Part::Ref(Ref::Indicator(k)) => Some(k.as_str()),
            _ => None,
        })
    }

    /// Whether a reference reads the incident's context.
    pub fn needs_context(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Ref(Ref::Context(_))))
    }

    /// The text with each reference replaced by what `resolve` finds for it.
    pub fn render(
        &self,
        resolve: &dyn Fn(&Ref) -> Result<String, String>,
    ) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Ref(r) => out.push_str(&resolve(r)?),
            }
        }
        Ok(out)
    }
}

fn reference(text: &str) -> Result<Ref, String> {
    if text.is_empty() {
        return Err("`${}` names nothing; write ${incident.<field>}, ${rule.name}, ${trigger} or ${change.<field>.old}".into());
    }
    if let Some(field) = text.strip_prefix("incident.") {
        return match XSOAR_FIELDS.contains(&field) {
            true => Ok(Ref::Incident(field.to_string())),
            false => Err(format!(
                "`${{{text}}}`: incidents have no field `{field}`; they have {}",
                XSOAR_FIELDS.join(", ")
            )),
        };
    }
    if let Some(kind) = text.strip_prefix("indicator.") {
        return watchfloor_indicators::Kind::parse(kind)
            .map(|k| Ref::Indicator(k.as_str().to_string()))
            .map_err(|e| format!("`${{{text}}}`: {e}"));
    }
    match text {
        "rule.name" => return Ok(Ref::RuleName),
        "trigger" => return Ok(Ref::Trigger),
        _ => {}
    }
    if let Some(rest) = text.strip_prefix("change.") {
        let (field, which) = rest.rsplit_once('.').unwrap_or((rest, ""));
        if !crate::CHANGE_FIELDS.contains(&field) {
            return Err(format!(
                "`${{{text}}}`: a change has no field `{field}`; it has {}",
                crate::CHANGE_FIELDS.join(", ")
            ));
        }
        return match which {
            "old" | "new" => Ok(Ref::Change {
                field: field.to_string(),
                new: which == "new",
            }),
            _ => Err(format!(
                "`${{{text}}}`: say which value, `${{change.{field}.old}}` or `${{change.{field}.new}}`"
            )),
        };
    }
    if text.starts_with("rule.") {
        return Err(format!("`${{{text}}}`: a rule has only `${{rule.name}}`"));
    }
    Ok(Ref::Context(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_read_and_checked() {
        let t = Template::parse("Auto: ${incident.severity} for ${ incident.organization } by ${rule.name} on ${trigger}; was ${change.owner.old}, ${Covalence.Alert.id}").unwrap();
        let refs: Vec<&Ref> = t
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Ref(r) => Some(r),
                Part::Text(_) => None,
            })
            .collect();
        assert_eq!(
            refs,
            [
                &Ref::Incident("severity".into()),
                &Ref::Incident("organization".into()),
                &Ref::RuleName,
                &Ref::Trigger,
                &Ref::Change {
                    field: "owner".into(),
                    new: false
                },
                &Ref::Context("Covalence.Alert.id".into()),
            ]
        );
        let shown = t.render(&|r| Ok(format!("<{r:?}>"))).unwrap();
        assert!(
            shown.starts_with("Auto: <Incident(\"severity\")> for"),
            "{shown}"
        );
        for (bad, says) in [
            ("${incident.colour}", "incidents have no field `colour`"),
            ("${incident.name", "has no closing `}`"),
            ("${}", "names nothing"),
            ("${change.owner}", "say which value"),
            ("${change.colour.old}", "a change has no field `colour`"),
            ("${rule.id}", "a rule has only"),
        ] {
            let err = Template::parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
