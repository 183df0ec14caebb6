//! Standard output for the CLI. `println!` panics when the reader has gone (`watchfloor commands
//! | head`); these macros end the program quietly instead, as command-line tools do. Everything
//! goes through [`watchfloor_core::table::terminal_safe`], so provider text cannot send terminal
//! escape sequences.

use std::io::Write;

/// Writes to standard output, control characters made visible (provider text reaches it);
/// when the reader has closed the pipe, exits with success.
pub fn write(args: std::fmt::Arguments<'_>) {
    let text = args.to_string();
    let text = watchfloor_core::table::terminal_safe(&text);
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// `println!` that survives a closed pipe.
#[macro_export]
macro_rules! say {
    () => { $crate::output::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Writes to standard output, control characters made visible, and carries on whatever
/// becomes of it: a long-running server's status lines are a courtesy, and a reader that has
/// gone must not stop the server.
pub fn tell(args: std::fmt::Arguments<'_>) {
    let text = args.to_string();
    let text = watchfloor_core::table::terminal_safe(&text);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// `println!` for a long-running server: a closed pipe is ignored (see [`tell`]).
#[macro_export]
macro_rules! tell {
    ($($arg:tt)*) => { $crate::output::tell(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that survives a closed pipe.
#[macro_export]
macro_rules! say_raw {
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*)) };
}

/// Markdown as the user asked to see it: rendered for the terminal (`table`, or by default
/// when standard output is one), or as it is (`md`, or by default when piped).
pub fn present(markdown: String, table: bool, md: bool) -> String {
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    if table || (!md && terminal) {
        watchfloor_core::terminal::render(&markdown, terminal_width())
    } else {
        markdown
    }
}

/// An entry's markdown as the user asked to see it, with headers made readable in a terminal.
pub fn present_entry(entry: &watchfloor_core::Entry, table: bool, md: bool) -> String {
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    if table || (!md && terminal) {
        watchfloor_core::terminal::render_with_keys(
            &entry.readable,
            terminal_width(),
            &entry.keys(),
        )
    } else {
        entry.readable.clone()
    }
}

/// The width tables are drawn to: `$COLUMNS` when set (to override), else the width of the
/// terminal standard output is, else 100.
fn terminal_width() -> usize {
    let terminal = terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| w.0);
    width_of(std::env::var("COLUMNS").ok().as_deref(), terminal)
}

/// The width from `$COLUMNS` (if it is a width) and the terminal's (if there is one).
fn width_of(columns: Option<&str>, terminal: Option<u16>) -> usize {
    columns
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c > 0)
        .or(terminal.map(usize::from).filter(|w| *w > 0))
        .unwrap_or(100)
}

/// Markdown as a terminal shows text: the words, emphasis marks dropped, code as it is, a link
/// as its text and its address, a list item a line; raw HTML stays text.
pub fn markdown_as_text(markdown: &str) -> String {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut out = String::new();
    let mut links: Vec<String> = Vec::new();
    for event in Parser::new(markdown) {
        match event {
            Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => {
                out.push_str(&t)
            }
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Start(Tag::Link { dest_url, .. }) => links.push(dest_url.to_string()),
            Event::End(TagEnd::Link) => {
                if let Some(url) = links.pop() {
                    out.push_str(&format!(" ({url})"));
                }
            }
            Event::Start(Tag::Item) => out.push_str("- "),
            Event::End(
                TagEnd::Paragraph | TagEnd::Item | TagEnd::Heading(_) | TagEnd::CodeBlock,
            ) => out.push('\n'),
            _ => {}
        }
    }
    out.trim_end().to_string()
}

/// Rows as XSOAR's markdown table under `title`, with these columns in this order.
pub fn headed_table(title: &str, rows: Vec<serde_json::Value>, headers: &[&str]) -> String {
    let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    watchfloor_core::table::table_to_markdown(
        title,
        &serde_json::Value::Array(rows),
        &watchfloor_core::table::TableOptions {
            headers: Some(&headers),
            ..watchfloor_core::table::TableOptions::default()
        },
    )
}

#[cfg(test)]
mod tests {
    /// Regression (first hour: the war room read as raw markdown in the CLI): a note's markdown
    /// reads as text in a terminal.
    #[test]
    fn markdown_reads_as_text() {
        for (md, text) in [
            ("plain", "plain"),
            ("**bold** and _it_", "bold and it"),
            (
                "see [the runbook](https://wiki/r)",
                "see the runbook (https://wiki/r)",
            ),
            ("`whoami` ran", "whoami ran"),
            ("one\ntwo", "one\ntwo"),
            ("- a\n- b", "- a\n- b"),
            ("<b>x</b>", "<b>x</b>"),
            ("para\n\nnext", "para\nnext"),
        ] {
            assert_eq!(super::markdown_as_text(md), text, "{md:?}");
        }
    }

    /// `$COLUMNS` overrides the terminal's width; without either, tables are 100 wide.
    #[test]
    fn the_width_is_columns_else_the_terminals_else_100() {
        for (columns, terminal, width) in [
            (None, Some(180), 180),
            (Some("72"), Some(180), 72),
            (Some("wide"), Some(180), 180),
            (Some("0"), Some(60), 60),
            (None, None, 100),
            (None, Some(0), 100),
            (Some(" 90 "), None, 90),
        ] {
            assert_eq!(
                super::width_of(columns, terminal),
                width,
                "{columns:?} {terminal:?}"
            );
        }
    }
}
