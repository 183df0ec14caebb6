//! Markdown from providers and commands as safe HTML: raw HTML in the source is shown as text,
//! links keep only http, https and mailto targets, and images become links (nothing is loaded
//! from elsewhere).

use pulldown_cmark::{CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};

/// Whether a link target may be followed.
fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:")
}

/// `text` (markdown) as HTML that runs nothing: a person's note, whose http, https and mailto
/// links work.
pub fn to_html(text: &str) -> String {
    render(text, true)
}

/// A command's result as HTML that runs nothing and links nowhere. Its tables hold provider
/// text as XSOAR wrote it (brackets unescaped), so a link in it shows as its text and its
/// target, to read, not to follow.
pub fn command_html(text: &str) -> String {
    render(text, false)
}

fn render(text: &str, links: bool) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let mut in_unsafe_link = 0usize;
    let mut pending_targets: Vec<CowStr<'_>> = Vec::new();
    let events = Parser::new_ext(text, options).filter_map(|event| match event {
        // Raw HTML is text here.
        Event::Html(html) | Event::InlineHtml(html) => Some(Event::Text(html)),
        // Providers write a field a line ("Category: ...\nSource IP: ..."): a line break in
        // their text stays one.
        Event::SoftBreak => Some(Event::HardBreak),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            if !links {
                pending_targets.push(dest_url);
                None
            } else if safe_url(&dest_url) {
                Some(Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                }))
            } else {
                in_unsafe_link += 1;
                None
            }
        }
        Event::End(TagEnd::Link) if !links => pending_targets
            .pop()
            .map(|target| Event::Text(CowStr::from(format!(" ({target})")))),
        Event::End(TagEnd::Link) if in_unsafe_link > 0 => {
            in_unsafe_link -= 1;
            None
        }
        // An image is a link to it, if its target is safe, else its description alone.
        Event::Start(Tag::Image { dest_url, .. }) => {
            if !links {
                pending_targets.push(dest_url);
                None
            } else if safe_url(&dest_url) {
                Some(Event::Start(Tag::Link {
                    link_type: LinkType::Inline,
                    dest_url,
                    title: CowStr::from(""),
                    id: CowStr::from(""),
                }))
            } else {
                in_unsafe_link += 1;
                None
            }
        }
        Event::End(TagEnd::Image) => {
            if !links {
                pending_targets
                    .pop()
                    .map(|target| Event::Text(CowStr::from(format!(" ({target})"))))
            } else if in_unsafe_link > 0 {
                in_unsafe_link -= 1;
                None
            } else {
                Some(Event::End(TagEnd::Link))
            }
        }
        other => Some(other),
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(markdown: &str, contains: &[&str], lacks: &[&str]) {
        let html = to_html(markdown);
        for c in contains {
            assert!(html.contains(c), "{markdown:?} → {html:?} lacks {c:?}");
        }
        for l in lacks {
            assert!(!html.contains(l), "{markdown:?} → {html:?} has {l:?}");
        }
    }

    #[test]
    fn provider_text_cannot_run_anything() {
        check(
            "<img src=x onerror=alert(1)>",
            &["&lt;img src=x onerror=alert(1)&gt;"],
            &["<img"],
        );
        check(
            "<script>alert(1)</script>",
            &["&lt;script&gt;"],
            &["<script"],
        );
        check(
            "[click](javascript:alert(1))",
            &["click"],
            &["<a", "javascript"],
        );
        check("[click](JaVaScRiPt:alert(1))", &["click"], &["<a"]);
        check("![x](data:text/html,boom)", &["x"], &["<img", "data:"]);
        check(
            "![logo](https://example.com/a.png)",
            &["<a href=\"https://example.com/a.png\">logo</a>"],
            &["<img"],
        );
        check(
            "[ok](https://example.com/?a=\"b\")",
            &["href=\"https://example.com/?a=%22b%22\""],
            &[],
        );
        check(
            "|A|B|\n|---|---|\n|<b>x</b>|2|",
            &["<table>", "<td>&lt;b&gt;x&lt;/b&gt;</td>"],
            &["<b>"],
        );
    }

    /// Command results keep provider brackets as XSOAR does (issue 33), so a link written by a
    /// provider shows as text with its target and cannot be clicked.
    #[test]
    fn provider_links_in_command_results_cannot_be_followed() {
        for (markdown, shown) in [
            (
                "|t|\n|---|\n| [click me](http://evil.example/phish) |\n",
                "click me (http://evil.example/phish)",
            ),
            (
                "see [x](javascript:alert(1))",
                "see x (javascript:alert(1))",
            ),
            (
                "![logo](https://example.com/a.png)",
                "logo (https://example.com/a.png)",
            ),
            (
                "[a [nested](https://b.example)](https://c.example)",
                "nested (https://b.example)",
            ),
        ] {
            let html = command_html(markdown);
            assert!(html.contains(shown), "{markdown:?} → {html:?}");
            assert!(!html.contains("<a") && !html.contains("<img"), "{html:?}");
        }
        // A note's links still work.
        assert!(
            to_html("[docs](https://example.com)").contains("<a href=\"https://example.com\">")
        );
    }

    /// Regression (first hour: Symantec's details ran together on one line): a provider's
    /// line breaks stay line breaks.
    #[test]
    fn each_line_of_provider_text_stays_a_line() {
        check(
            "Category: Malware\nSource IP: 203.0.113.7\nCountry: <Nowhere>",
            &["Category: Malware<br />\nSource IP: 203.0.113.7<br />\nCountry: &lt;Nowhere&gt;"],
            &["<Nowhere>"],
        );
    }
}
