//! XSOAR markdown as a person reads it in a terminal: titles without `#`, tables as aligned
//! columns with the markdown escapes undone (`\|` is `|`, `<br/>` a line break, and an entity
//! such as `&lt;` its character, as a markdown renderer reads them),
//! cells wrapped to the terminal's width, and tables too wide for it shown one record at a
//! time, and moments in one format ([`TIME_FORMAT`]) whatever the provider sent. Scripts and golden tests keep the markdown (`--output md`); control characters are made
//! visible by [`crate::table::terminal_safe`] on the way out.

use chrono::DateTime;

use crate::table::CELL_BREAK;

/// How every table in a terminal shows a moment, ours and the providers' alike.
pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%SZ";

/// The narrowest a wrapped column gets before the table is shown record by record: its longest
/// word, up to this, so that words are not cut when it can be helped.
const MIN_COLUMN: usize = 14;
/// Space between columns.
const GAP: &str = "  ";

/// Renders `markdown` for a terminal `width` characters wide.
pub fn render(markdown: &str, width: usize) -> String {
    render_with_keys(markdown, width, &[])
}

/// As [`render`], with the keys the tables were made from: a header XSOAR's transform made
/// from one of them (`acknowledgedStatus` → "Acknowledgedstatus") reads as words instead
/// ("Acknowledged Status").
pub fn render_with_keys(markdown: &str, width: usize, keys: &[String]) -> String {
    let headers: std::collections::HashMap<String, String> = keys
        .iter()
        .map(|k| {
            (
                crate::table::string_to_table_header(k),
                crate::table::readable_header(k),
            )
        })
        .filter(|(xsoar, readable)| xsoar != readable)
        .collect();
    let width = width.max(20);
    let mut out = String::new();
    let mut lines = markdown.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with('|') {
            let mut block = vec![line];
            while let Some(next) = lines.peek().filter(|l| l.trim_start().starts_with('|')) {
                block.push(next);
                lines.next();
            }
            out.push_str(&table(&block, width, &headers));
        } else if let Some(title) = line.strip_prefix('#') {
            out.push_str(&unescape(title.trim_start_matches('#').trim()));
            out.push('\n');
        } else {
            out.push_str(&unescape(&line.replace("**", "")));
            out.push('\n');
        }
    }
    out
}

/// Undoes the markdown escapes of `table::escape` (`\|`, `` \` ``, `<br/>`) and the HTML and
/// markdown escapes of `escape_markdown`; a backslash before anything but ASCII punctuation
/// stays, as CommonMark reads it.
pub fn unescape(s: &str) -> String {
    let s = s.replace(CELL_BREAK, "\n");
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            // As in CommonMark, a backslash escapes ASCII punctuation only: `C:\Windows` keeps
            // its backslash.
            '\\' => match chars.clone().next() {
                Some(next) if next.is_ascii_punctuation() => {
                    out.push(next);
                    chars.next();
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The cells of one markdown table row: split on `|` that no backslash escapes.
fn cells(row: &str) -> Vec<String> {
    let row = row.trim();
    let inner = row.strip_prefix('|').unwrap_or(row);
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cell.push('\\');
                if let Some(next) = chars.next() {
                    cell.push(next);
                }
            }
            '|' => cells.push(std::mem::take(&mut cell)),
            c => cell.push(c),
        }
    }
    cells.push(cell);
    cells.iter().map(|c| unescape(c.trim())).collect()
}

fn is_separator(row: &str) -> bool {
    row.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
}

fn width_of(s: &str) -> usize {
    s.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

/// `text` broken into lines of at most `width` characters, at spaces where it can.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let mut current = String::new();
        for word in line.split(' ') {
            let mut word = word.to_string();
            loop {
                let used = current.chars().count();
                let need = word.chars().count() + usize::from(used > 0);
                if used + need <= width {
                    if used > 0 {
                        current.push(' ');
                    }
                    current.push_str(&word);
                    break;
                }
                if used > 0 {
                    out.push(std::mem::take(&mut current));
                    continue;
                }
                // A word longer than the column: cut it.
                let cut: String = word.chars().take(width).collect();
                word = word.chars().skip(width).collect();
                out.push(cut);
                if word.is_empty() {
                    break;
                }
            }
        }
        out.push(current);
    }
    out
}

fn table(
    block: &[&str],
    width: usize,
    headers: &std::collections::HashMap<String, String>,
) -> String {
    let mut rows: Vec<Vec<String>> = block
        .iter()
        .filter(|r| !is_separator(r))
        .map(|r| cells(r))
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    for row in &mut rows {
        row.resize(columns, String::new());
    }
    for header in rows[0].iter_mut() {
        if let Some(readable) = headers.get(header.as_str()) {
            *header = readable.clone();
        }
    }
    let time_columns: Vec<bool> = rows[0].iter().map(|h| is_time_header(h)).collect();
    for row in rows.iter_mut().skip(1) {
        for (cell, time_column) in row.iter_mut().zip(&time_columns) {
            if let Some(readable) = readable_time(cell, *time_column) {
                *cell = readable;
            }
        }
    }
    let mut widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| width_of(&r[c])).max().unwrap_or(0))
        .collect();
    let gaps = GAP.len() * columns.saturating_sub(1);
    let floors: Vec<usize> = (0..columns)
        .map(|c| {
            let longest_word = rows
                .iter()
                .flat_map(|r| r[c].split_whitespace())
                .map(|w| w.chars().count())
                .max()
                .unwrap_or(0);
            longest_word.min(MIN_COLUMN).min(widths[c])
        })
        .collect();
    // Narrow the widest columns until the table fits, none below its floor.
    while widths.iter().sum::<usize>() + gaps > width {
        let Some((widest, w)) = widths
            .iter()
            .copied()
            .enumerate()
            .filter(|(c, w)| *w > floors[*c])
            .max_by_key(|(_, w)| *w)
        else {
            return records(&rows);
        };
        widths[widest] = w - 1;
    }
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let wrapped: Vec<Vec<String>> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| wrap(cell, *w))
            .collect();
        let height = wrapped.iter().map(Vec::len).max().unwrap_or(1);
        for line in 0..height {
            let parts: Vec<String> = wrapped
                .iter()
                .zip(&widths)
                .map(|(cell, w)| {
                    let text = cell.get(line).map(String::as_str).unwrap_or("");
                    format!(
                        "{text}{}",
                        " ".repeat(w.saturating_sub(text.chars().count()))
                    )
                })
                .collect();
            out.push_str(parts.join(GAP).trim_end());
            out.push('\n');
        }
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
            out.push_str(&rule.join(GAP));
            out.push('\n');
        }
    }
    out
}

/// Whether a column's header names a moment (`Created`, `requestTime`, `Last Seen`).
fn is_time_header(header: &str) -> bool {
    let header = header.to_ascii_lowercase();
    [
        "time", "date", "seen", "created", "modified", "occurred", "fetched",
    ]
    .iter()
    .any(|word| header.contains(word))
}

/// `cell` in [`TIME_FORMAT`] when it is a moment: an RFC 3339 time in any column; in a column
/// named for a time, also a time without zone (taken as UTC) and Unix seconds or milliseconds.
fn readable_time(cell: &str, time_column: bool) -> Option<String> {
    let s = cell.trim();
    let epoch = matches!(s.len(), 10 | 13) && s.bytes().all(|b| b.is_ascii_digit());
    let wanted = if time_column {
        // Not bare dates or other counts, which are shown as sent.
        epoch || s.contains(':')
    } else {
        DateTime::parse_from_rfc3339(s).is_ok()
    };
    if !wanted {
        return None;
    }
    Some(crate::time::moment(s)?.format(TIME_FORMAT).to_string())
}

/// A table too wide for the terminal: each row as `header: value` lines.
fn records(rows: &[Vec<String>]) -> String {
    let (header, body) = rows
        .split_first()
        .map_or((&[][..], &[][..]), |(h, b)| (h.as_slice(), b));
    let label = header.iter().map(|h| h.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (n, row) in body.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        for (h, value) in header.iter().zip(row) {
            if value.is_empty() {
                continue;
            }
            let pad = " ".repeat(label - h.chars().count());
            let value = value.replace('\n', &format!("\n{}", " ".repeat(label + 2)));
            out.push_str(&format!("{h}:{pad} {value}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(markdown: &str, width: usize, expected: &str) {
        assert_eq!(render(markdown, width), expected, "markdown:\n{markdown}");
    }

    #[test]
    fn tables_become_aligned_columns_with_escapes_undone() {
        check(
            "### AROs\n|ID|Title|\n|---|---|\n| a1 | x -&gt; y \\| \\[z\\] |\n| a22 | 1<br/>2 |\n",
            80,
            "AROs\nID   Title\n───  ────────────\na1   x -> y | [z]\na22  1\n     2\n",
        );
        // Backslashes that escape nothing stay (a Windows path).
        check(
            "|Path|\n|---|\n| C:\\Windows\\cmd.exe \\| x |\n",
            80,
            "Path\n──────────────────────\nC:\\Windows\\cmd.exe | x\n",
        );
        check(
            "### Incidents\n**No entries.**\n",
            80,
            "Incidents\nNo entries.\n",
        );
    }

    /// Three timestamp formats across commands, and epoch times in DNS results, all read
    /// alike in a terminal.
    #[test]
    fn moments_read_in_one_format() {
        for (header, cell, expected) in [
            ("Created", "2024-04-01T12:30:05Z", "2024-04-01 12:30:05Z"),
            (
                "Created",
                "2024-04-01T12:30:05.123456Z",
                "2024-04-01 12:30:05Z",
            ),
            (
                "Created",
                "2024-04-01T14:30:05+02:00",
                "2024-04-01 12:30:05Z",
            ),
            ("Note", "2024-04-01T12:30:05Z", "2024-04-01 12:30:05Z"),
            ("requestTime", "1711974605", "2024-04-01 12:30:05Z"),
            ("requestTime", "1711974605123", "2024-04-01 12:30:05Z"),
            ("Last Seen", "2024-04-01 12:30:05.5", "2024-04-01 12:30:05Z"),
            ("Update Date", "2024-04-01T12:30:05", "2024-04-01 12:30:05Z"),
            // Not moments: numbers outside time columns, other lengths, text.
            ("Bytes", "1711974605", "1711974605"),
            ("requestTime", "17119746", "17119746"),
            ("Created", "yesterday", "yesterday"),
            ("Note", "2024-04-01 12:30:05", "2024-04-01 12:30:05"),
        ] {
            let md = format!("|{header}|\n|---|\n|{cell}|\n");
            let out = render(&md, 80);
            let value = out.lines().nth(2).unwrap_or_default();
            assert_eq!(value, expected, "{header} = {cell}");
        }
    }

    #[test]
    fn wide_cells_wrap_to_the_terminal() {
        check(
            "|Name|Details|\n|---|---|\n| n | one two three four five six |\n",
            20,
            "Name  Details\n────  ──────────────\nn     one two three\n      four five six\n",
        );
    }

    #[test]
    fn tables_too_wide_are_shown_one_record_at_a_time() {
        let header: Vec<String> = (0..12).map(|i| format!("Column{i}")).collect();
        let row: Vec<String> = (0..12).map(|i| format!("value{i}")).collect();
        let md = format!(
            "|{}|\n|{}|\n|{}|\n",
            header.join("|"),
            ["---"; 12].join("|"),
            row.join("|")
        );
        let out = render(&md, 60);
        assert!(
            out.starts_with("Column0:  value0\nColumn1:  value1\n"),
            "{out}"
        );
        assert_eq!(out.lines().count(), 12);
    }
}
