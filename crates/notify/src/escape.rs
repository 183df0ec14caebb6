//! Provider text made inert for each format a message is written in: a title of `<script>`
//! or `*bold*` arrives as those characters, not as markup.

/// `s` with each character that `special` maps replaced by what it gives.
fn replace_each(s: &str, special: impl Fn(char) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match special(c) {
            Some(r) => out.push_str(&r),
            None => out.push(c),
        }
    }
    out
}

/// `& < >` as entities, which every format here needs.
fn entity(c: char) -> Option<String> {
    match c {
        '&' => Some("&amp;".into()),
        '<' => Some("&lt;".into()),
        '>' => Some("&gt;".into()),
        _ => None,
    }
}

/// For HTML (the e-mail's HTML part): `& < > " '` as entities (`&#39;`, which e-mail clients
/// of HTML 4 read, where `&apos;` is XML's).
pub fn html(s: &str) -> String {
    replace_each(s, |c| match c {
        '"' => Some("&quot;".into()),
        '\'' => Some("&#39;".into()),
        c => entity(c),
    })
}

/// For Slack's `mrkdwn` text: `& < >` as the entities Slack asks for (so that no `<url|x>`
/// link or `<!channel>` mention can be made), and the formatting characters `* _ ~ `` ` ``
/// kept from formatting by a zero-width joiner after each, which Slack shows as nothing.
pub fn slack(s: &str) -> String {
    replace_each(s, |c| match c {
        '*' | '_' | '~' | '`' => Some(format!("{c}\u{200D}")),
        c => entity(c),
    })
}

/// For Teams' Markdown (Adaptive Card text blocks): each Markdown character escaped with a
/// backslash, and `< > &` as entities.
pub fn teams(s: &str) -> String {
    replace_each(s, |c| match c {
        '\\' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '~' | '`' | '-' | '+' | '!' | '|' => {
            Some(format!("\\{c}"))
        }
        c => entity(c),
    })
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
