//! Provider text made inert for each format a message is written in: a title of `<script>`
//! or `*bold*` arrives as those characters, not as markup.

/// For HTML (the e-mail's HTML part): `& < > " '` as entities.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// For Slack's `mrkdwn` text: `& < >` as the entities Slack asks for (so that no `<url|x>`
/// link or `<!channel>` mention can be made), and the formatting characters `* _ ~ `` ` ``
/// and `>` at a line's start kept from formatting by a zero-width joiner after each, which
/// Slack shows as nothing.
pub fn slack(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '*' | '_' | '~' | '`' => {
                out.push(c);
                out.push('\u{200D}');
            }
            c => out.push(c),
        }
    }
    out
}

/// For Teams' Markdown (Adaptive Card text blocks): each Markdown character escaped with a
/// backslash, and `< > &` as entities.
pub fn teams(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '~' | '`' | '-' | '+' | '!' | '|' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_arrives_as_text() {
        let title = "<script>alert(1)</script> *bold* _it_ [x](http://evil) <!channel> & co";
        let h = html(title);
        assert!(!h.contains('<') && !h.contains('>'), "{h}");
        assert!(h.contains("&lt;script&gt;") && h.contains("&amp; co"));
        let s = slack(title);
        assert!(!s.contains('<') && !s.contains('>'), "{s}");
        assert!(!s.contains("*bold*") && !s.contains("_it_"), "{s}");
        assert!(s.contains("&lt;!channel&gt;"));
        let t = teams(title);
        assert!(!t.contains('<'), "{t}");
        assert!(
            t.contains("\\*bold\\*") && t.contains("\\[x\\]\\(http://evil\\)"),
            "{t}"
        );
    }
}
