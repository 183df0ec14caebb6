//! Extraction, case by case: each line of `CASES` is a text and every indicator it holds
//! (kind:value, in order), with the install's exclusions applied where a case says so; then
//! a property test that no input panics, and a guard that pathological text of 1 MiB is
//! read in one pass.

use watchfloor_indicators::{Exclusions, Extractor, FieldMap, Indicator, Kind, extract, labelled};

/// (text, expected indicators as `kind:value`). `!` before the text applies the default
/// exclusions (private and reserved ranges, `*.corp.com`, `8.8.8.8`, `192.0.2.0/24`). Names
/// under `.example` are no domains: the public suffix list does not have it.
const CASES: &[(&str, &[&str])] = &[
    // IPv4
    (
        "scan from 203.0.113.7 to 198.51.100.20",
        &["ip:203.0.113.7", "ip:198.51.100.20"],
    ),
    (
        "src=203.0.113.7 dst=198.51.100.20:443",
        &["ip:203.0.113.7", "ip:198.51.100.20"],
    ),
    ("(203.0.113.7)", &["ip:203.0.113.7"]),
    ("203.0.113.7.", &["ip:203.0.113.7"]),
    (
        "203.0.113.7,198.51.100.1;",
        &["ip:203.0.113.7", "ip:198.51.100.1"],
    ),
    ("256.1.1.1 and 1.2.3", &[]),
    ("version 1.2.3.4.5", &[]),
    ("net 203.0.113.0/24", &["cidr:203.0.113.0/24"]),
    ("net 203.0.113.0/33", &["ip:203.0.113.0"]),
    ("203.0.113.7 203.0.113.7 again", &["ip:203.0.113.7"]),
    // IPv6
    (
        "from 2001:db8::1 to 2001:db8:0:0:1:0:0:1",
        &["ip:2001:db8::1", "ip:2001:db8::1:0:0:1"],
    ),
    ("[2001:db8::5]:8443 answered", &["ip:2001:db8::5"]),
    ("net 2001:db8::/32", &["cidr:2001:db8::/32"]),
    ("at 12:30:45 and 10:00", &[]),
    ("std::vec::Vec", &[]),
    ("fe80::1%eth0 link", &["ip:fe80::1"]),
    // defanged
    (
        "hxxp://evil[.]com/payload",
        &["url:http://evil.com/payload", "domain:evil.com"],
    ),
    (
        "hxxps://login(.)bank-secure[.]com/x?y=1",
        &[
            "url:https://login.bank-secure.com/x?y=1",
            "domain:login.bank-secure.com",
        ],
    ),
    ("203[.]0[.]113[.]9", &["ip:203.0.113.9"]),
    ("evil[dot]com", &["domain:evil.com"]),
    ("mallory[@]evil[.]com", &["email:mallory@evil.com"]),
    ("mallory[at]evil.com", &["email:mallory@evil.com"]),
    (
        "fxp://files.net/a",
        &["url:ftp://files.net/a", "domain:files.net"],
    ),
    (
        "hxxp[://]evil.com/",
        &["url:http://evil.com/", "domain:evil.com"],
    ),
    // URLs
    (
        "see https://example.com:8080/a/b?c=d#e now",
        &[
            "url:https://example.com:8080/a/b?c=d#e",
            "domain:example.com",
        ],
    ),
    (
        "(https://example.com/path)",
        &["url:https://example.com/path", "domain:example.com"],
    ),
    (
        "https://example.com/wiki/Foo_(bar)",
        &[
            "url:https://example.com/wiki/Foo_(bar)",
            "domain:example.com",
        ],
    ),
    (
        "<https://example.com/x>",
        &["url:https://example.com/x", "domain:example.com"],
    ),
    (
        "\"http://203.0.113.5/c2.php\"",
        &["url:http://203.0.113.5/c2.php", "ip:203.0.113.5"],
    ),
    (
        "http://[2001:db8::7]:80/x",
        &["url:http://[2001:db8::7]:80/x", "ip:2001:db8::7"],
    ),
    (
        "http://user:pw@evil.com/",
        &["url:http://user:pw@evil.com/", "domain:evil.com"],
    ),
    (
        "HTTPS://Example.COM/Path",
        &["url:HTTPS://Example.COM/Path", "domain:example.com"],
    ),
    ("https:// nothing", &[]),
    (
        "visit https://example.com.",
        &["url:https://example.com", "domain:example.com"],
    ),
    // domains
    ("beacon to c2.evil.com.", &["domain:c2.evil.com"]),
    ("www.example.co.uk resolved", &["domain:www.example.co.uk"]),
    ("co.uk alone is a suffix", &[]),
    ("report.pdf and setup.exe", &[]),
    ("EXAMPLE.ORG", &["domain:example.org"]),
    ("docs.example and test.invalid", &[]),
    ("-bad-.com", &[]),
    ("a..b.com", &[]),
    ("host=files.net.net", &["domain:files.net.net"]),
    (
        "dns query xn--80ak6aa92e.com",
        &["domain:xn--80ak6aa92e.com"],
    ),
    ("the file was readme.txt", &[]),
    // e-mail
    ("from alice@example.com.", &["email:alice@example.com"]),
    (
        "<Bob.Smith+tag@Mail.Example.org>",
        &["email:bob.smith+tag@mail.example.org"],
    ),
    ("user@localhost", &[]),
    ("@example.com", &["domain:example.com"]),
    ("a..b@example.com", &["domain:example.com"]),
    // hashes
    (
        "md5 d41d8cd98f00b204e9800998ecf8427e",
        &["md5:d41d8cd98f00b204e9800998ecf8427e"],
    ),
    (
        "sha1=DA39A3EE5E6B4B0D3255BFEF95601890AFD80709",
        &["sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709"],
    ),
    (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        &["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    ),
    (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855aa",
        &[],
    ),
    (
        "0e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        &[],
    ),
    ("12345678901234567890123456789012", &[]),
    ("d41d8cd98f00b204e9800998ecf8427g", &[]),
    (
        "(d41d8cd98f00b204e9800998ecf8427e)",
        &["md5:d41d8cd98f00b204e9800998ecf8427e"],
    ),
    // mixed and markup
    ("<b>203.0.113.7</b>", &["ip:203.0.113.7"]),
    ("ip `203.0.113.8` in code", &["ip:203.0.113.8"]),
    ("*evil.com*", &["domain:evil.com"]),
    ("", &[]),
    // exclusions
    ("! from 10.1.2.3 and 203.0.113.7", &["ip:203.0.113.7"]),
    (
        "! 127.0.0.1 169.254.1.1 224.0.0.1 0.0.0.0 255.255.255.255 100.64.0.1",
        &[],
    ),
    ("! 8.8.8.8 and 9.9.9.9", &["ip:9.9.9.9"]),
    ("! 192.0.2.44 192.0.3.1", &["ip:192.0.3.1"]),
    ("! ::1 fe80::9 fd00::1 2001:db8::9", &["ip:2001:db8::9"]),
    (
        "! intranet.corp.com corp.com notcorp.com",
        &["domain:notcorp.com"],
    ),
    ("! https://wiki.corp.com/page http://10.0.0.5/x", &[]),
    ("! ceo@corp.com and ceo@evil.com", &["email:ceo@evil.com"]),
    ("! 10.0.0.0/8 203.0.113.0/24", &["cidr:203.0.113.0/24"]),
];

fn shown(found: &[Indicator]) -> Vec<String> {
    found
        .iter()
        .map(|i| format!("{}:{}", i.kind.as_str(), i.value))
        .collect()
}

#[test]
fn every_case_finds_what_it_holds() {
    assert!(CASES.len() >= 60);
    let exclusions = Exclusions::parse(
        &["*.corp.com".into(), "8.8.8.8".into(), "192.0.2.0/24".into()],
        true,
    )
    .unwrap();
    let mut wrong = Vec::new();
    for (text, expected) in CASES {
        let found = match text.strip_prefix("! ") {
            Some(t) => exclusions.keep(extract(t)),
            None => extract(text),
        };
        if shown(&found) != *expected {
            wrong.push(format!(
                "{text:?}: found {:?}, expected {expected:?}",
                shown(&found)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn exclusion_lists_that_cannot_mean_anything_are_refused() {
    for (entry, message) in [
        ("10.0.0.0/40", "a prefix length is 0 to 32"),
        ("10.0.0/8", "is not a network"),
        ("*.com", "excludes too much"),
        (" ", "an empty entry"),
    ] {
        let e = Exclusions::parse(&[entry.to_string()], true).unwrap_err();
        assert!(e.contains(message), "{entry}: {e}");
    }
}

proptest::proptest! {
    #[test]
    fn no_input_panics(text in "\\PC{0,400}") {
        let _ = extract(&text);
    }

    #[test]
    fn no_incident_panics(text in "\\PC{0,300}", path in "[a-z]{1,5}(\\.[a-z]{1,5}){0,2}") {
        let map = FieldMap::parse(&[(path, "host".to_string())].into()).unwrap();
        let extractor = Extractor::new(
            Exclusions::default_reserved(),
            [("p".to_string(), map)].into(),
        );
        let _ = extractor.incident("p", &text, &text, &text);
        let _ = labelled(&text);
    }

    #[test]
    fn indicator_like_noise_never_panics(
        text in "([0-9a-f.:/\\[\\]()@%=-]{0,40}[ \\n]){0,20}"
    ) {
        let _ = extract(&text);
    }
}

/// A guard against quadratic time: 1 MiB of text built to be the worst case for each kind
/// (long runs of dots, hex, colons, at signs and brackets, defanged forms, one token) is read
/// in one pass. Quadratic extraction would take minutes here; the bound is loose on purpose.
#[test]
fn a_mebibyte_of_pathological_text_is_read_in_one_pass() {
    let mib = 1 << 20;
    for unit in [
        "a.",
        "f",
        "1:",
        "a@",
        "[.]",
        "(",
        "hxxp://a[.]b/",
        "1.2.3.4/",
        "x ",
    ] {
        let text = unit.repeat(mib / unit.len());
        let started = std::time::Instant::now();
        let _ = extract(&text);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{unit:?} repeated to 1 MiB took {:?}",
            started.elapsed()
        );
    }
}

/// Hosts and users named by a label in prose, as the providers write them.
#[test]
fn labelled_hosts_and_users_are_found() {
    for (text, want) in [
        (
            "Malware was blocked on WS-0192 (user: jdoe).",
            vec!["user jdoe"],
        ),
        (
            "host: WS-0192, user=ASmith",
            vec!["host ws-0192", "user asmith"],
        ),
        (
            "hostname=db01.corp.example;",
            vec!["host db01.corp.example"],
        ),
        ("Account: svc_backup.", vec!["user svc_backup"]),
        ("user: ", vec![]),
        ("see http://user:pw@example.com", vec![]),
        ("the user is unknown", vec![]),
    ] {
        let found: Vec<String> = labelled(text)
            .iter()
            .map(|i| format!("{} {}", i.kind.as_str(), i.value))
            .collect();
        assert_eq!(found, want, "{text:?}");
    }
}

/// A provider's mapped fields: paths into the record (arrays looked into), a host field that
/// holds an address taken as an address, exclusions applied to mapped values too, and the
/// text of every string of the record read as well.
#[test]
fn mapped_fields_name_indicators_by_type() {
    let map = FieldMap::parse(
        &[
            ("sourceIp".to_string(), "ip".to_string()),
            ("destDomainName".to_string(), "host".to_string()),
            ("assets.hostname".to_string(), "host".to_string()),
            ("data.user".to_string(), "user".to_string()),
        ]
        .into(),
    )
    .unwrap();
    let extractor = Extractor::new(
        Exclusions::parse(&["*.corp.example".into()], true).unwrap(),
        [("cov".to_string(), map)].into(),
    );
    let raw = serde_json::json!({
        "sourceIp": "203.0.113.7",
        "destDomainName": "198.51.100.9",
        "assets": [{"hostname": "WS-01"}, {"hostname": "db.corp.example"}],
        "data": {"user": "JDoe@Acme.example"},
        "notes": ["see hxxps://bad[.]example.org/p"],
        "other": {"sourceIp": "10.0.0.1"},
    });
    let found: Vec<String> = extractor
        .incident("cov", "Alert", "", &raw.to_string())
        .iter()
        .map(|i| format!("{} {}", i.kind.as_str(), i.value))
        .collect();
    for want in [
        "ip 203.0.113.7",
        "ip 198.51.100.9",
        "host ws-01",
        "user jdoe@acme.example",
        "url https://bad.example.org/p",
        "domain bad.example.org",
    ] {
        assert!(found.contains(&want.to_string()), "{want} in {found:?}");
    }
    assert!(
        !found.iter().any(|f| f.contains("corp.example")),
        "{found:?}"
    );
    assert!(!found.iter().any(|f| f.contains("10.0.0.1")), "{found:?}");
    // Another integration's records are read as text only.
    let plain = extractor.incident("other", "", "", &raw.to_string());
    assert!(!plain.iter().any(|i| i.kind == Kind::Host), "{plain:?}");
    // A field the integration ignores is not read as text, wherever it is nested.
    let map = FieldMap::parse(
        &[
            ("display_url".to_string(), "ignore".to_string()),
            ("links.self".to_string(), "ignore".to_string()),
        ]
        .into(),
    )
    .unwrap();
    let extractor = Extractor::new(
        Exclusions::default_reserved(),
        [("fes".to_string(), map)].into(),
    );
    let raw = serde_json::json!({
        "display_url": "https://portal.example.org/aro/7",
        "links": [{"self": "https://portal.example.org/x"}, {"other": "https://evil.example.org/y"}],
        "details": "see https://bad.example.net/z",
    });
    let found: Vec<String> = extractor
        .incident("fes", "", "", &raw.to_string())
        .iter()
        .map(|i| i.value.clone())
        .collect();
    assert!(
        found.contains(&"https://bad.example.net/z".to_string()),
        "{found:?}"
    );
    assert!(
        found.contains(&"https://evil.example.org/y".to_string()),
        "{found:?}"
    );
    assert!(
        !found.iter().any(|v| v.contains("portal.example.org")),
        "{found:?}"
    );
    for bad in [("a..b", "ip"), ("x", "hash")] {
        assert!(FieldMap::parse(&[(bad.0.to_string(), bad.1.to_string())].into()).is_err());
    }
}
