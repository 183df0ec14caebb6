//! Reading a provider's list of records as it streams in. Each record is measured on its own:
//! one larger than [`MAX_RECORD`] is set aside, keeping only its short top-level fields (which
//! name it), while the others are parsed and kept. What is kept of one answer is bounded by
//! [`crate::http::MAX_BODY`], so neither one huge record nor a huge page can take the memory.

use serde_json::{Map, Value};

/// The largest record kept. A larger one is set aside, not read, so that one hostile or broken
/// alert cannot stop the others from arriving.
pub const MAX_RECORD: usize = 16 * 1024 * 1024;

/// What one listing keeps across all its pages: a provider that keeps sending pages is
/// stopped here, or by its page count, whichever comes first.
pub const MAX_LISTING: usize = crate::http::MAX_BODY;

/// Short fields of an oversized record kept to name it: at most this many, each at most
/// [`MAX_FIELD`] bytes as sent.
const MAX_FIELDS: usize = 64;
const MAX_FIELD: usize = 1024;
/// The answer around the records (e.g. `has_next`) is small; more than this is not a listing.
const MAX_ENVELOPE: usize = 1024 * 1024;
/// Deeper nesting than this is refused rather than followed.
const MAX_DEPTH: usize = 512;

/// A listing as read: the answer with its record list emptied, the records kept, and those set
/// aside as too large.
#[derive(Debug, Default)]
pub struct Listing {
    /// The whole answer, with the record list (if found) left empty.
    pub envelope: Value,
    pub records: Vec<Value>,
    pub oversized: Vec<Oversized>,
    /// Bytes kept: the records and the envelope, not the oversized records.
    pub kept: usize,
}

/// A record larger than [`MAX_RECORD`]: its size and its short top-level scalar fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Oversized {
    pub bytes: usize,
    pub fields: Map<String, Value>,
}

impl Oversized {
    /// Its id, if the short field `field` holds a string or a number.
    pub fn id(&self, field: &str) -> Option<String> {
        match self.fields.get(field)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// It, set aside in a fetch, named by its `field`.
    pub fn set_aside(&self, field: &str) -> watchfloor_core::SetAside {
        watchfloor_core::SetAside {
            id: self.id(field).unwrap_or_else(|| "?".into()),
            reason: self.reason(),
        }
    }

    /// Why it was set aside, for the instance's health.
    pub fn reason(&self) -> String {
        format!(
            "it is {:.1} MiB, more than the {} MiB one record may be; read it at the provider",
            self.bytes as f64 / (1024.0 * 1024.0),
            MAX_RECORD / (1024 * 1024)
        )
    }
}

/// Why a body is not a listing that can be kept.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ListingError {
    #[error("{0}")]
    Malformed(String),
    /// More than the cap is kept.
    #[error("too large")]
    TooLarge,
}

/// Lexical class of one byte.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ev {
    Open(u8),
    Close,
    StrStart,
    InStr,
    StrEnd,
    Colon,
    Comma,
    Ws,
    Other,
}

/// The record being read.
struct Record {
    buf: Vec<u8>,
    bytes: usize,
    /// Its first byte: `{`, `[`, `"`, or that of a number or literal.
    first: u8,
    /// A bare number or literal, which ends at the next delimiter rather than a bracket.
    bare: bool,
    oversized: bool,
    fields: Map<String, Value>,
    /// Top-level member parsing: expecting a key, the key read, the scalar being captured.
    expect_key: bool,
    key: Option<String>,
    capture: Option<Vec<u8>>,
}

impl Record {
    fn new(first: u8, ev: Ev) -> Self {
        Record {
            buf: Vec::new(),
            bytes: 0,
            first,
            bare: ev == Ev::Other,
            oversized: false,
            fields: Map::new(),
            expect_key: false,
            key: None,
            capture: None,
        }
    }

    /// Ends a captured top-level scalar: a key, or the value of the last key.
    fn end_capture(&mut self) {
        let Some(raw) = self.capture.take() else {
            return;
        };
        if raw.len() > MAX_FIELD {
            self.key = None;
            return;
        }
        let Ok(value) = serde_json::from_slice::<Value>(&raw) else {
            self.key = None;
            return;
        };
        if self.expect_key {
            self.key = value.as_str().map(str::to_string);
        } else if let Some(key) = self.key.take()
            && self.fields.len() < MAX_FIELDS
        {
            self.fields.insert(key, value);
        }
    }
}

/// Splits a JSON body into its records as bytes arrive. The records are the elements of the
/// top-level array, or of the array under the top-level key `key`.
pub struct Splitter {
    key: Option<&'static str>,
    max_kept: usize,
    stack: Vec<u8>,
    in_string: bool,
    escaped: bool,
    /// Stack depth inside the record list, while in it.
    records_at: Option<usize>,
    found: bool,
    envelope: Vec<u8>,
    /// The last string at the envelope's top level: the key of the value that follows it.
    last_string: Vec<u8>,
    capturing_key: bool,
    record: Option<Record>,
    listing: Listing,
}

impl Splitter {
    pub fn new(key: Option<&'static str>, max_kept: usize) -> Self {
        Splitter {
            key,
            max_kept,
            stack: Vec::new(),
            in_string: false,
            escaped: false,
            records_at: None,
            found: false,
            envelope: Vec::new(),
            last_string: Vec::new(),
            capturing_key: false,
            record: None,
            listing: Listing::default(),
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), ListingError> {
        let mut i = 0;
        while i < chunk.len() {
            // Long strings are where the bytes are: take their plain runs whole.
            if self.in_string && !self.escaped {
                let run = memchr::memchr2(b'"', b'\\', &chunk[i..]).unwrap_or(chunk.len() - i);
                if run > 0 {
                    self.string_run(&chunk[i..i + run])?;
                    i += run;
                    continue;
                }
            }
            self.byte(chunk[i])?;
            i += 1;
        }
        Ok(())
    }

    /// Bytes inside a string with no quote or backslash among them: what [`Self::byte`] does
    /// for each, at once.
    fn string_run(&mut self, run: &[u8]) -> Result<(), ListingError> {
        let depth = self.stack.len();
        let at = self.records_at.unwrap_or_default();
        if let Some(rec) = self.record.as_mut() {
            rec.bytes += run.len();
            if !rec.oversized {
                if rec.bytes > MAX_RECORD {
                    rec.oversized = true;
                    rec.buf = Vec::new();
                } else {
                    rec.buf.extend_from_slice(run);
                }
            }
            if depth == at + 1
                && self.stack.get(at) == Some(&b'{')
                && let Some(c) = rec.capture.as_mut().filter(|c| c.len() <= MAX_FIELD)
            {
                c.extend_from_slice(&run[..run.len().min(MAX_FIELD + 1 - c.len())]);
            }
            return Ok(());
        }
        if self.capturing_key && self.last_string.len() <= 256 {
            let room = 257 - self.last_string.len();
            self.last_string
                .extend_from_slice(&run[..run.len().min(room)]);
        }
        self.envelope.extend_from_slice(run);
        if self.envelope.len() > MAX_ENVELOPE {
            return Err(ListingError::Malformed(format!(
                "more than {} KiB around the list of records",
                MAX_ENVELOPE / 1024
            )));
        }
        Ok(())
    }

    /// The listing, once the body has ended.
    pub fn finish(mut self) -> Result<Listing, ListingError> {
        if self.record.is_some() || !self.stack.is_empty() || self.in_string {
            return Err(ListingError::Malformed(
                "the body ends in the middle of a value".into(),
            ));
        }
        self.listing.envelope = serde_json::from_slice(&self.envelope)
            .map_err(|e| ListingError::Malformed(e.to_string()))?;
        self.listing.kept += self.envelope.len();
        Ok(self.listing)
    }

    fn lex(&mut self, b: u8) -> Ev {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
                Ev::InStr
            } else if b == b'\\' {
                self.escaped = true;
                Ev::InStr
            } else if b == b'"' {
                self.in_string = false;
                Ev::StrEnd
            } else {
                Ev::InStr
            }
        } else {
            match b {
                b'"' => {
                    self.in_string = true;
                    Ev::StrStart
                }
                b'{' | b'[' => Ev::Open(b),
                b'}' | b']' => Ev::Close,
                b':' => Ev::Colon,
                b',' => Ev::Comma,
                b' ' | b'\t' | b'\n' | b'\r' => Ev::Ws,
                _ => Ev::Other,
            }
        }
    }

    fn byte(&mut self, b: u8) -> Result<(), ListingError> {
        let ev = self.lex(b);
        if let Some(at) = self.records_at
            && self.stack.len() == at
        {
            // A bare record ends at the first delimiter after it.
            if self.record.as_ref().is_some_and(|r| r.bare)
                && matches!(ev, Ev::Ws | Ev::Comma | Ev::Close)
            {
                self.end_record()?;
            }
            if self.record.is_none() {
                match ev {
                    // Separators between records are dropped: the list is kept empty.
                    Ev::Ws | Ev::Comma => return Ok(()),
                    Ev::Close => self.records_at = None,
                    _ => self.record = Some(Record::new(b, ev)),
                }
            }
        }
        match ev {
            Ev::Open(kind) => {
                if self.stack.len() >= MAX_DEPTH {
                    return Err(ListingError::Malformed(format!(
                        "values are nested more than {MAX_DEPTH} deep"
                    )));
                }
                let opens_records = !self.found
                    && self.record.is_none()
                    && kind == b'['
                    && match self.key {
                        None => self.stack.is_empty(),
                        Some(key) => self.stack == [b'{'] && self.last_string == key.as_bytes(),
                    };
                self.stack.push(kind);
                if opens_records {
                    self.found = true;
                    self.records_at = Some(self.stack.len());
                    self.envelope.push(b);
                    return Ok(());
                }
            }
            Ev::Close if self.stack.pop().is_none() => {
                return Err(ListingError::Malformed(
                    "a closing bracket without an opening one".into(),
                ));
            }
            _ => {}
        }
        if self.record.is_some() {
            return self.record_byte(b, ev);
        }
        // The envelope: everything outside the records.
        if self.stack.len() == 1 && self.stack[0] == b'{' {
            match ev {
                Ev::StrStart => {
                    self.capturing_key = true;
                    self.last_string.clear();
                }
                Ev::InStr if self.capturing_key && self.last_string.len() <= 256 => {
                    self.last_string.push(b)
                }
                Ev::StrEnd => self.capturing_key = false,
                _ => {}
            }
        }
        self.envelope.push(b);
        if self.envelope.len() > MAX_ENVELOPE {
            return Err(ListingError::Malformed(format!(
                "more than {} KiB around the list of records",
                MAX_ENVELOPE / 1024
            )));
        }
        Ok(())
    }

    /// A byte of the record being read; `ev` has already moved the stack.
    fn record_byte(&mut self, b: u8, ev: Ev) -> Result<(), ListingError> {
        let at = self.records_at.unwrap_or_default();
        let depth = self.stack.len();
        let Some(rec) = self.record.as_mut() else {
            return Ok(());
        };
        rec.bytes += 1;
        if !rec.oversized {
            if rec.bytes > MAX_RECORD {
                rec.oversized = true;
                rec.buf = Vec::new();
            } else {
                rec.buf.push(b);
            }
        }
        // Top-level members of an object record: depth `at + 1` is inside its braces.
        if depth == at + 1 && self.stack.get(at) == Some(&b'{') {
            match ev {
                Ev::Open(_) if rec.bytes == 1 => rec.expect_key = true,
                Ev::Comma => {
                    rec.end_capture();
                    rec.expect_key = true;
                }
                Ev::Colon => {
                    rec.end_capture();
                    rec.expect_key = false;
                }
                Ev::StrStart => rec.capture = Some(vec![b]),
                Ev::Other => match rec.capture.as_mut() {
                    Some(c) if c[0] != b'"' => {
                        if c.len() <= MAX_FIELD {
                            c.push(b)
                        }
                    }
                    _ => rec.capture = Some(vec![b]),
                },
                Ev::InStr | Ev::StrEnd => {
                    if let Some(c) = rec.capture.as_mut().filter(|c| c.len() <= MAX_FIELD) {
                        c.push(b);
                    }
                }
                Ev::Ws => {
                    if rec.capture.as_ref().is_some_and(|c| c[0] != b'"') {
                        rec.end_capture();
                    }
                }
                Ev::Close | Ev::Open(_) => rec.capture = None,
            }
        } else if depth == at && ev == Ev::Close && rec.capture.is_some() {
            // The record's closing brace ends its last member.
            rec.end_capture();
        }
        let ended = match ev {
            Ev::Close => depth == at,
            Ev::StrEnd => depth == at && rec.first == b'"',
            _ => false,
        };
        if ended {
            self.end_record()?;
        }
        Ok(())
    }

    fn end_record(&mut self) -> Result<(), ListingError> {
        let Some(rec) = self.record.take() else {
            return Ok(());
        };
        if rec.oversized {
            self.listing.oversized.push(Oversized {
                bytes: rec.bytes,
                fields: rec.fields,
            });
            return Ok(());
        }
        self.listing.kept += rec.bytes;
        if self.listing.kept > self.max_kept {
            return Err(ListingError::TooLarge);
        }
        let value =
            serde_json::from_slice(&rec.buf).map_err(|e| ListingError::Malformed(e.to_string()))?;
        self.listing.records.push(value);
        Ok(())
    }
}

/// Splits a whole body at once (for tests and bodies already read).
pub fn split(
    body: &[u8],
    key: Option<&'static str>,
    max_kept: usize,
) -> Result<Listing, ListingError> {
    let mut s = Splitter::new(key, max_kept);
    s.feed(body)?;
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_are_split_from_the_envelope() {
        let cases: &[(&str, Option<&'static str>, Value, Value)] = &[
            (
                r#"{"items": [{"ID": "a", "x": [1, {"y": "]}"}]}, {"ID":"b"} ], "has_next": true}"#,
                Some("items"),
                json!({"items": [], "has_next": true}),
                json!([{"ID": "a", "x": [1, {"y": "]}"}]}, {"ID": "b"}]),
            ),
            (
                r#"[1, "two", true, null, {"a": "\"]"}, [3]]"#,
                None,
                json!([]),
                json!([1, "two", true, null, {"a": "\"]"}, [3]]),
            ),
            (
                r#"{"other": [1], "items": [], "n": {"items": [2]}}"#,
                Some("items"),
                json!({"other": [1], "items": [], "n": {"items": [2]}}),
                json!([]),
            ),
            (
                r#"{"name": "items", "list": [1]}"#,
                Some("items"),
                json!({"name": "items", "list": [1]}),
                json!([]),
            ),
            (r#"{"error": "x"}"#, None, json!({"error": "x"}), json!([])),
        ];
        for (body, key, envelope, records) in cases {
            // Whole, and a byte at a time: chunk edges change nothing.
            let whole = split(body.as_bytes(), *key, usize::MAX).unwrap();
            let mut s = Splitter::new(*key, usize::MAX);
            for b in body.as_bytes() {
                s.feed(&[*b]).unwrap();
            }
            let bytewise = s.finish().unwrap();
            for got in [whole, bytewise] {
                assert_eq!(&got.envelope, envelope, "{body}");
                assert_eq!(&Value::Array(got.records), records, "{body}");
                assert!(got.oversized.is_empty());
            }
        }
    }

    /// Regression (hardening 27.3): one ARO over 64 MiB failed every fetch of its instance.
    /// The record is set aside, named by its short fields, and the others are kept.
    #[test]
    fn an_oversized_record_is_set_aside_and_the_others_kept() {
        let big = "x".repeat(MAX_RECORD + 10);
        let body = format!(
            r#"{{"items": [{{"ID": "small", "n": 1}}, {{"title": "t\"1", "details": "{big}", "nested": {{"ID": "inner"}}, "ID": "huge", "score": 9.5, "ok": false}}, {{"ID": "last"}}], "has_next": false}}"#
        );
        let got = split(body.as_bytes(), Some("items"), crate::http::MAX_BODY).unwrap();
        assert_eq!(
            Value::Array(got.records),
            json!([{"ID": "small", "n": 1}, {"ID": "last"}])
        );
        assert_eq!(got.envelope, json!({"items": [], "has_next": false}));
        assert_eq!(got.oversized.len(), 1);
        let huge = &got.oversized[0];
        assert_eq!(
            Value::Object(huge.fields.clone()),
            json!({"title": "t\"1", "ID": "huge", "score": 9.5, "ok": false})
        );
        assert!(huge.bytes > MAX_RECORD);
        assert!(got.kept < 1024, "{}", got.kept);
        assert_eq!(
            huge.reason(),
            "it is 16.0 MiB, more than the 16 MiB one record may be; read it at the provider"
        );
    }

    #[test]
    fn what_is_kept_is_bounded_and_bad_bodies_are_named() {
        let body = br#"[{"a": "0123456789"}, {"a": "0123456789"}]"#;
        assert_eq!(
            split(body, None, 30).unwrap_err(),
            ListingError::TooLarge,
            "two records of 19 bytes exceed 30"
        );
        assert_eq!(split(body, None, 38).unwrap().records.len(), 2);
        for bad in [
            &b"[{\"a\": 1}"[..],
            b"{\"items\": [1, 2",
            b"]",
            b"[{\"a\" 1}]",
            b"",
        ] {
            assert!(
                matches!(
                    split(bad, Some("items"), usize::MAX),
                    Err(ListingError::Malformed(_))
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = "[".repeat(MAX_DEPTH + 1);
        assert_eq!(
            split(deep.as_bytes(), None, usize::MAX).unwrap_err(),
            ListingError::Malformed("values are nested more than 512 deep".into())
        );
    }
}
