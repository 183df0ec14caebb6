//! XSOAR's `tableToMarkdown`, rule for rule (see the XSOAR conventions notes).
//!
//! Headers come from the first row's keys, sorted, unless given. `remove_null` drops columns that
//! are empty (`""`, null, `[]`, `{}`) in every row. Cells format dicts as `k: v` lines and lists as
//! `,`-joined Python `str()` items; line breaks become `<br/>`, and `|` and backticks are escaped,
//! as XSOAR does, and nothing else: the bytes are XSOAR's. The one addition is that a backslash
//! written just before `|` or a backtick is escaped too, so provider text cannot split a cell.
//! Where tables are shown (terminal, UI), raw HTML reads as text and provider links do not work.

use serde::Deserialize;
use serde_json::{Map, Value};

/// The line break used inside cells. The seed documentation shows `<br/>`, and golden tests
/// reproduce it byte for byte; XSOAR's code writes the equivalent `<br>`.
pub const CELL_BREAK: &str = "<br/>";

/// How header names are shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeaderTransform {
    /// Keys as they are, escaped like cells.
    #[default]
    None,
    /// XSOAR's `string_to_table_header`: `email_aro_details` -> `Email Aro Details`.
    Title,
}

/// Options of [`table_to_markdown`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TableOptions<'a> {
    pub headers: Option<&'a [String]>,
    pub header_transform: HeaderTransform,
    pub remove_null: bool,
}

/// Renders `t` (an object or a list of rows) as a markdown table titled `name`.
pub fn table_to_markdown(name: &str, t: &Value, opts: &TableOptions<'_>) -> String {
    let mut out = String::new();
    if !name.is_empty() {
        out.push_str("### ");
        out.push_str(name);
        out.push('\n');
    }
    if is_empty_value(t) {
        out.push_str("**No entries.**\n");
        return out;
    }
    let mut headers: Option<Vec<String>> = opts.headers.map(<[String]>::to_vec);
    let mut t = t;
    if headers.is_none()
        && let Value::Object(o) = t
        && o.len() == 1
    {
        let (k, v) = o.iter().next().expect("one key");
        headers = Some(vec![k.clone()]);
        t = v;
    }
    let rows: Vec<Value> = match t {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let rows: Vec<Map<String, Value>> = rows
        .into_iter()
        .map(|row| match row {
            Value::Object(o) => o,
            scalar => {
                let header = headers
                    .as_ref()
                    .and_then(|h| h.first().cloned())
                    .unwrap_or_else(|| "Value".to_string());
                headers.get_or_insert_with(|| vec![header.clone()]);
                Map::from_iter([(header, scalar)])
            }
        })
        .collect();
    let mut headers = headers.unwrap_or_else(|| {
        let mut keys: Vec<String> = rows
            .first()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    });
    if opts.remove_null {
        headers.retain(|h| {
            rows.iter().any(|r| {
                r.get(h)
                    .is_some_and(|v| !is_empty_value(v) && *v != Value::String(String::new()))
            })
        });
    }
    if headers.is_empty() {
        out.push_str("**No entries.**\n");
        return out;
    }
    let shown: Vec<String> = headers
        .iter()
        .map(|h| match opts.header_transform {
            HeaderTransform::Title => escape(&string_to_table_header(h)),
            HeaderTransform::None => escape(h),
        })
        .collect();
    out.push('|');
    out.push_str(&shown.join("|"));
    out.push_str("|\n|");
    out.push_str(&vec!["---"; headers.len()].join("|"));
    out.push_str("|\n");
    for row in &rows {
        let cells: Vec<String> = headers
            .iter()
            .map(|h| escape(&format_cell(row.get(h).unwrap_or(&Value::Null))))
            .collect();
        out.push_str("| ");
        out.push_str(&cells.join(" | "));
        out.push_str(" |\n");
    }
    out
}

/// XSOAR's `string_to_table_header`: `_` becomes a space and each word is capitalised with the
/// rest lower-cased (`ID` -> `Id`).
pub fn string_to_table_header(s: &str) -> String {
    s.replace('_', " ")
        .split_whitespace()
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first
                    .to_uppercase()
                    .chain(chars.flat_map(char::to_lowercase))
                    .collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<String>>()
        .join(" ")
}

/// A key as a person reads it in a terminal: camelCase and snake_case split into words, each
/// capitalised, acronyms kept (`acknowledgedStatus` is "Acknowledged Status", `srcIP` "Src IP").
pub fn readable_header(key: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = key.chars().collect();
    for (n, &c) in chars.iter().enumerate() {
        if c == '_' || c == '-' || c.is_whitespace() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        let prev = n.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(n + 1);
        let boundary = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
            });
        if boundary && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
        .iter()
        .map(|w| {
            if w.chars().count() > 1 && w.chars().all(|c| c.is_uppercase() || c.is_ascii_digit()) {
                w.clone()
            } else {
                let mut chars = w.chars();
                chars
                    .next()
                    .map(|f| f.to_uppercase().chain(chars).collect())
                    .unwrap_or_default()
            }
        })
        .collect::<Vec<String>>()
        .join(" ")
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Escapes `&`, `<` and `>` as HTML entities, so text shows as text wherever markdown is
/// rendered as HTML.
pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Escapes a cell as XSOAR's `tableToMarkdown` does: line breaks become [`CELL_BREAK`], and `|`
/// and backticks get a backslash. One addition keeps the table whole: a backslash the provider
/// wrote just before `|` or a backtick is itself escaped, so it cannot cancel that escape and
/// split the cell. Everything else (`&`, `<`, `>`, `[`, `]`, other backslashes) is kept as
/// written; where the table is shown, raw HTML reads as text and provider links do not work.
pub fn escape(s: &str) -> String {
    let s = s.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some('|' | '`')) => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '`' => out.push_str("\\`"),
            '\n' => out.push_str(CELL_BREAK),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text shown as a markdown block (not a table cell): HTML, backslashes, link brackets,
/// backticks and emphasis marks, so provider text shows as written and cannot carry links or
/// code spans. Line breaks stay.
pub fn escape_markdown(s: &str) -> String {
    let html = escape_html(s);
    let mut out = String::with_capacity(html.len());
    for c in html.chars() {
        if matches!(c, '\\' | '[' | ']' | '`' | '*' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text for a terminal: control characters (escape sequences, bell, backspace, C1 controls)
/// become visible symbols, so provider text cannot move the cursor, retitle the window or clear
/// the screen; bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069) become
/// U+FFFD, so text cannot show itself reversed. Line breaks and tabs stay.
pub fn terminal_safe(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || c == '\u{7f}'
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    s.chars()
        .map(|c| match c {
            // The Unicode "control pictures" ␀ to ␟ show C0 controls; DEL is ␡.
            '\u{0}'..='\u{1f}' if bad(c) => char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'),
            '\u{7f}' => '\u{2421}',
            c if bad(c) => '\u{fffd}',
            c => c,
        })
        .collect::<String>()
        .into()
}

fn format_cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{k}: {}", flat(v)))
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Array(a) => list_cell(a),
        scalar => scalar.to_string(),
    }
}

fn list_cell(items: &[Value]) -> String {
    items.iter().map(python_str).collect::<Vec<_>>().join(",\n")
}

fn flat(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => list_cell(a),
        other => python_json_dumps(other),
    }
}

/// Python's `str()`: strings bare, everything else as `repr()`.
fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => python_repr(other),
    }
}

fn python_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let quote = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            let mut out = String::from(quote);
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out.push(quote);
            out
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(python_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!(
                    "{}: {}",
                    python_repr(&Value::String(k.clone())),
                    python_repr(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Python's `json.dumps` with its default separators and `ensure_ascii`.
pub fn python_json_dumps(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let mut out = String::from('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                        let mut buf = [0u16; 2];
                        for unit in c.encode_utf16(&mut buf) {
                            out.push_str(&format!("\\u{unit:04x}"));
                        }
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter()
                .map(python_json_dumps)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!(
                    "{}: {}",
                    python_json_dumps(&Value::String(k.clone())),
                    python_json_dumps(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        scalar => scalar.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(name: &str, t: Value, opts: TableOptions<'_>, expected: &str) {
        assert_eq!(table_to_markdown(name, &t, &opts), expected, "table: {t}");
    }

    #[test]
    fn renders_like_table_to_markdown() {
        let plain = TableOptions::default();
        check(
            "T",
            json!([{"a": "x", "b": {"k": "v", "n": null}}]),
            plain,
            "### T\n|a|b|\n|---|---|\n| x | k: v<br/>n: null |\n",
        );
        check("T", json!([]), plain, "### T\n**No entries.**\n");
        check("", json!(null), plain, "**No entries.**\n");
        check("", json!({"a": 1}), plain, "|a|\n|---|\n| 1 |\n");
        check(
            "L",
            json!([{"nics": ["eth0", "eth1"]}]),
            plain,
            "### L\n|nics|\n|---|\n| eth0,<br/>eth1 |\n",
        );
        check(
            "S",
            json!([{"steps": [{"ID": "x", "completed": true}, null]}]),
            plain,
            "### S\n|steps|\n|---|\n| {'ID': 'x', 'completed': True},<br/>None |\n",
        );
        check(
            "N",
            json!([{"b": false, "n": 0.5, "i": 42}]),
            plain,
            "### N\n|b|i|n|\n|---|---|---|\n| false | 42 | 0.5 |\n",
        );
        check(
            "D",
            json!([{"o": {"deep": {"a": 1}, "l": ["x"], "u": "é"}}]),
            plain,
            "### D\n|o|\n|---|\n| deep: {\"a\": 1}<br/>l: x<br/>u: é |\n",
        );
        // Headers come from the first row only; missing cells are empty.
        check(
            "",
            json!([{"b": 1}, {"a": 2, "b": 3}]),
            plain,
            "|b|\n|---|\n| 1 |\n| 3 |\n",
        );
    }

    /// Regression (hardening 5): a backslash before a `|` or a backtick cancelled its escape,
    /// so provider text could split a cell or open a code span.
    #[test]
    fn a_provider_backslash_cannot_cancel_an_escape() {
        check(
            "",
            json!([{"t": "a\\|b \\`code"}]),
            TableOptions::default(),
            "|t|\n|---|\n| a\\\\\\|b \\\\\\`code |\n",
        );
    }

    /// Cells keep XSOAR's bytes: `tableToMarkdown` escapes only line breaks, `|` and backticks,
    /// so Windows paths, JSON lists and HTML-looking text read as the provider wrote them
    /// (issue 33, point 1: `C:\\Windows` came out as `C:\\\\Windows`, `[` as `\\[`).
    #[test]
    fn cells_keep_xsoars_bytes() {
        for (cell, expected) in [
            (
                "C:\\Windows\\System32\\cmd.exe",
                "C:\\Windows\\System32\\cmd.exe",
            ),
            ("[\"1235\", \"123456\"]", "[\"1235\", \"123456\"]"),
            ("[{}]", "[{}]"),
            ("a & <b> -> c", "a & <b> -> c"),
            ("\\\\server\\share", "\\\\server\\share"),
            ("one|two", "one\\|two"),
            ("`x`", "\\`x\\`"),
            ("l1\r\nl2\rl3\nl4", "l1<br/>l2<br/>l3<br/>l4"),
            ("trailing\\", "trailing\\"),
        ] {
            assert_eq!(escape(cell), expected, "{cell:?}");
        }
    }

    /// Regression (hardening 7): details shown by `incidents show` kept links live.
    #[test]
    fn markdown_blocks_show_provider_text_as_text() {
        assert_eq!(
            escape_markdown("[click](javascript:alert(1)) *b* _i_ `c` \\ <x>\nnext"),
            "\\[click\\](javascript:alert(1)) \\*b\\* \\_i\\_ \\`c\\` \\\\ &lt;x&gt;\nnext"
        );
    }

    /// Regression (hardening 6): terminal escapes in a title reached the terminal.
    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(
            terminal_safe("a\u{1b}]0;owned\u{7}b\u{1b}[2J\tc\nd\u{7f}\u{9b}"),
            "a\u{241b}]0;owned\u{2407}b\u{241b}[2J\tc\nd\u{2421}\u{fffd}"
        );
        assert!(matches!(
            terminal_safe("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    /// Regression (U+202E passed into CLI tables, showing text reversed): bidirectional
    /// overrides and isolates are shown as U+FFFD.
    #[test]
    fn bidirectional_overrides_are_not_obeyed() {
        assert_eq!(
            terminal_safe("invoice\u{202e}fdp.exe \u{2066}x\u{2069}"),
            "invoice\u{fffd}fdp.exe \u{fffd}x\u{fffd}"
        );
    }

    /// Hostile text cannot break the table: a `|` or a line break stays in its cell, a backtick
    /// opens no code span. HTML and links stay as written, as in XSOAR; the UI shows raw HTML
    /// as text and provider links as text (see `ui::markdown`).
    #[test]
    fn attacker_controlled_cells_stay_in_their_cell() {
        check(
            "",
            json!([{"title": "a|b `rm -rf` <script>\r\nline2 [x](http://evil) &amp;"}]),
            TableOptions::default(),
            "|title|\n|---|\n| a\\|b \\`rm -rf\\` <script><br/>line2 [x](http://evil) &amp; |\n",
        );
        check(
            "",
            json!([{"a|b<i>": 1}]),
            TableOptions::default(),
            "|a\\|b<i>|\n|---|\n| 1 |\n",
        );
    }

    #[test]
    fn remove_null_and_header_transform() {
        let headers = vec!["b".to_string(), "a".to_string()];
        let opts = TableOptions {
            headers: Some(&headers),
            header_transform: HeaderTransform::Title,
            remove_null: true,
        };
        check(
            "",
            json!([{"a": "", "b": 0, "c": 1}, {"a": null}]),
            opts,
            "|B|\n|---|\n| 0 |\n|  |\n",
        );
        let opts = TableOptions {
            remove_null: true,
            ..TableOptions::default()
        };
        check(
            "E",
            json!([{"a": [], "b": {}}]),
            opts,
            "### E\n**No entries.**\n",
        );
        check(
            "",
            json!(["x", "y"]),
            TableOptions {
                headers: Some(&headers),
                ..TableOptions::default()
            },
            "|b|a|\n|---|---|\n| x |  |\n| y |  |\n",
        );
    }

    #[test]
    fn readable_headers_split_words() {
        for (input, expected) in [
            ("acknowledgedStatus", "Acknowledged Status"),
            ("srcIP", "Src IP"),
            ("ID", "ID"),
            ("email_aro_details", "Email Aro Details"),
            ("HTTPServer", "HTTP Server"),
            ("lastUpdated2", "Last Updated2"),
            ("IncidentNumber", "Incident Number"),
        ] {
            assert_eq!(readable_header(input), expected, "{input}");
        }
    }

    #[test]
    fn string_to_table_header_matches_python() {
        for (input, expected) in [
            ("ID", "Id"),
            ("email_aro_details", "Email Aro Details"),
            ("acknowledgedStatus", "Acknowledgedstatus"),
            ("org_name", "Org Name"),
            ("  a__b ", "A B"),
        ] {
            assert_eq!(string_to_table_header(input), expected);
        }
    }
}
