//! A small, safe XML reader for SOAP APIs, and XSOAR's `xml2json` shape.
//!
//! - Elements and attributes are read by **local name**, whatever their namespace.
//! - DOCTYPE declarations are rejected, so no entity can be defined or expanded.
//! - The five predefined entities and character references are decoded once. Undefined
//!   entities (`&nbsp;` and the like, which some servers emit stray) are dropped, as the XSOAR
//!   integration's retry did.
//! - One child and many children read alike through [`Element::children_named`].

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::events::Event;
use serde_json::{Map, Value};

/// How deep elements may nest before the document is refused.
const MAX_DEPTH: usize = 64;

/// XML that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("malformed XML at byte {position}: {message}")]
    Syntax { position: u64, message: String },
    #[error("refused XML: {0}")]
    Refused(&'static str),
    #[error("the XML document has no root element")]
    Empty,
}

/// An element: local name, attributes (local names, `xmlns` declarations left out), children
/// and text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

/// Parses a document into its root element.
pub fn parse(xml: &str) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let syntax = |reader: &Reader<&[u8]>, message: String| XmlError::Syntax {
        position: reader.buffer_position(),
        message,
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| syntax(&reader, e.to_string()))?;
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() && stack.is_empty() => {
                return Err(syntax(&reader, "content after the root element".into()));
            }
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::Refused("elements nest too deeply"));
                }
                stack.push(start_element(&e).map_err(|m| syntax(&reader, m))?);
            }
            Event::Empty(e) => {
                let el = start_element(&e).map_err(|m| syntax(&reader, m))?;
                attach(&mut stack, &mut root, el);
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| syntax(&reader, "unexpected end tag".into()))?;
                attach(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                let text = t.xml_content(XmlVersion::Implicit1_0);
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(syntax(&reader, "text outside the root element".into())),
                }
            }
            Event::CData(c) => {
                let text = c.into_inner().into_owned();
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r
                    .resolve_char_ref()
                    .map_err(|e| syntax(&reader, e.to_string()))?
                {
                    Some(c) => Some(c),
                    None => match r.xml_content(XmlVersion::Implicit1_0).as_ref() {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        _ => None, // a stray, undefined entity: dropped
                    },
                };
                if let (Some(c), Some(top)) = (resolved, stack.last_mut()) {
                    top.text.push(c);
                }
            }
            Event::DocType(_) => {
                return Err(XmlError::Refused(
                    "DOCTYPE declarations (and so entity definitions) are not accepted",
                ));
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(syntax(
            &reader,
            format!("element <{}> is not closed", stack[stack.len() - 1].name),
        ));
    }
    root.ok_or(XmlError::Empty)
}

fn start_element(e: &quick_xml::events::BytesStart<'_>) -> Result<Element, String> {
    let name = e.local_name().as_ref().to_string();
    let mut attrs = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|e| e.to_string())?;
        let key = attr.key;
        if key.as_ref() == "xmlns" || key.prefix().is_some_and(|p| p.as_ref() == "xmlns") {
            continue;
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| e.to_string())?
            .into_owned();
        attrs.push((key.local_name().as_ref().to_string(), value));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
        text: String::new(),
    })
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

impl Element {
    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child with this local name: one or many alike.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The first element with this local name, depth first, including this one.
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }

    /// Every element with this local name, depth first.
    pub fn find_all<'a>(&'a self, name: &str, out: &mut Vec<&'a Element>) {
        if self.name == name {
            out.push(self);
        }
        for c in &self.children {
            c.find_all(name, out);
        }
    }

    /// The trimmed text.
    pub fn text(&self) -> &str {
        self.text.trim()
    }

    /// The trimmed text of a child, if the child exists and has text.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(Element::text)
            .filter(|t| !t.is_empty())
    }

    /// The element's value in XSOAR's `xml2json` shape: text or `null` for a leaf; otherwise an
    /// object of children (repeated names become lists), `@attr` keys, and `#text`.
    pub fn to_json(&self) -> Value {
        if self.children.is_empty() && self.attrs.is_empty() {
            return match self.text() {
                "" => Value::Null,
                t => Value::String(t.to_string()),
            };
        }
        let mut map = Map::new();
        for (k, v) in &self.attrs {
            map.insert(format!("@{k}"), Value::String(v.clone()));
        }
        for child in &self.children {
            let value = child.to_json();
            match map.get_mut(&child.name) {
                Some(Value::Array(list)) if self.children_named(&child.name).count() > 1 => {
                    list.push(value)
                }
                Some(existing) => {
                    let first = existing.take();
                    *existing = Value::Array(vec![first, value]);
                }
                None => {
                    map.insert(child.name.clone(), value);
                }
            }
        }
        if !self.text().is_empty() {
            map.insert("#text".into(), Value::String(self.text().to_string()));
        }
        Value::Object(map)
    }
}

/// Escapes text for an XML element or attribute, once.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_by_local_name_and_handles_one_or_many_children() {
        let doc = parse(
            r#"<?xml version="1.0"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>
            <R xmlns="https://x/"><SecurityIncident xmlns=""><N>1</N><C><Comment>a &amp; b</Comment></C>
            <L><I>7</I><I>8</I></L><E /><T a="1">t&#233;</T></SecurityIncident></R></soap:Body></soap:Envelope>"#,
        )
        .unwrap();
        let inc = doc.find("SecurityIncident").unwrap();
        assert_eq!(inc.child_text("N"), Some("1"));
        assert_eq!(
            inc.to_json(),
            json!({"N": "1", "C": {"Comment": "a & b"}, "L": {"I": ["7", "8"]}, "E": null, "T": {"@a": "1", "#text": "té"}})
        );
        assert_eq!(inc.child("L").unwrap().children_named("I").count(), 2);
        assert_eq!(inc.child("C").unwrap().children_named("Comment").count(), 1);
    }

    #[test]
    fn drops_stray_entities_and_refuses_hostile_documents() {
        assert_eq!(parse("<a>x&nbsp;y &lt;z&gt;</a>").unwrap().text(), "xy <z>");
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><a>&lol2;</a>"#;
        assert_eq!(
            parse(bomb),
            Err(XmlError::Refused(
                "DOCTYPE declarations (and so entity definitions) are not accepted"
            ))
        );
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert_eq!(
            parse(&deep),
            Err(XmlError::Refused("elements nest too deeply"))
        );
        for bad in ["", "<a>", "<a></b>", "<a/><b/>", "text"] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn escapes_once() {
        assert_eq!(
            escape(r#"a & <b> "c" 'd'"#),
            "a &amp; &lt;b&gt; &quot;c&quot; &apos;d&apos;"
        );
        let round = parse(&format!("<a>{}</a>", escape("x &amp; y"))).unwrap();
        assert_eq!(round.text(), "x &amp; y");
    }
}
