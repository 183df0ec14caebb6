//! Property tests: whatever a user types or a provider sends, the command-line parser, argument
//! binding, the config loader, time parsing and the XML reader answer with a value or an error,
//! never a panic. Inputs are random text and text built from each grammar's own pieces.

use std::path::Path;

use proptest::prelude::*;
use watchfloor_core::time::TimeSpec;
use watchfloor_core::{Args, CommandLine, Config, IntegrationDef};

const DEF: &str = r#"
id = "demo-int"
display = "Demo"
description = "d"
[[params]]
name = "url"
type = "url"
default = "https://portal.example/v1"
description = "d"
[[params]]
name = "key"
type = "secret"
required = true
description = "d"
[[params]]
name = "timeout"
type = "duration"
default = "30s"
description = "d"
[[params]]
name = "flag"
type = "bool"
default = false
description = "d"
[fetch]
first_fetch = "1 day"
incident_type = "Demo"
description = "d"
[[commands]]
name = "demo-cmd"
tenancy = { objects = ["a"] }
description = "d"
args = [
    { name = "a", description = "d", required = true },
    { name = "n", type = "number", min = 1, max = 500, description = "d" },
    { name = "b", type = "boolean", default = "false", description = "d" },
    { name = "t", type = "time", description = "d" },
    { name = "l", array = true, allowed = ["x", "y"], description = "d" },
]
"#;

fn def() -> IntegrationDef {
    IntegrationDef::from_toml(DEF).expect("the test definition parses")
}

/// Text made of a grammar's pieces, so that random inputs get past the first check.
fn pieces(parts: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(parts).prop_map(str::to_string),
            1 => any::<String>(),
        ],
        0..24,
    )
    .prop_map(|v| v.concat())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Any JSON, three levels deep at most: what a provider could send into a table.
fn json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        Just(Value::from("a|b `c` <d> [e](f) \\ \r\n")),
    ];
    leaf.prop_recursive(3, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn tables_of_any_json_never_panic(rows in json(), title in any::<String>()) {
        let table = watchfloor_core::table::table_to_markdown(
            &title,
            &rows,
            &watchfloor_core::table::TableOptions::default(),
        );
        let _ = watchfloor_core::table::terminal_safe(&table);
        let _ = watchfloor_core::table::escape_markdown(&table);
    }

    #[test]
    fn command_lines_never_panic(line in pieces(&[
        "!", "demo-cmd", " ", "a=", "n=", "b=", "t=", "l=", "using=", "\"", "'", "\\", "=", ",",
        "x", "y", "-1", "0", "501", "1e9", "true", "maybe", "3 days", "2024-05-01", "\u{1b}", "é",
    ])) {
        let def = def();
        if let Ok(parsed) = CommandLine::parse(&line) {
            let _ = Args::bind(&def.commands[0], &parsed).map(|a| (a.integer("n"), a.time("t")));
        }
    }

    #[test]
    fn config_files_never_panic(text in pieces(&[
        "[[instances]]\n", "[instances.params]\n", "[storage]\n", "name = \"i\"\n",
        "integration = \"demo-int\"\n", "key = \"k\"\n", "key = { env = \"X\" }\n",
        "key = { file = \"/dev/null\" }\n", "url = \"http://\"\n", "timeout = \"0s\"\n",
        "timeout = 5\n", "flag = 1\n", "fetch = true\n", "fetch_limit = -3\n",
        "first_fetch = \"soon\"\n", "look_back = \"1m\"\n", "url = \"sqlite://x\"\n", "=", "\"", "[",
    ])) {
        let def = def();
        let _ = Config::parse(Path::new("/tmp/p.toml"), &text, &[&def], &|_| None);
    }

    #[test]
    fn times_never_panic(text in pieces(&[
        "3", " ", "days", "ago", "-", ":", "T", "Z", "+02:00", "2024", "99999999999999", ".", "week",
    ])) {
        if let Ok(t) = TimeSpec::parse(&text) {
            let _ = t.at(chrono::Utc::now()).to_rfc3339();
            let _ = t.to_string();
        }
    }

    #[test]
    fn xml_never_panics(text in pieces(&[
        "<a>", "</a>", "<b x=\"1\">", "</b>", "<c/>", "&amp;", "&nbsp;", "&#x41;", "&#99999999;",
        "<!DOCTYPE x>", "<![CDATA[", "]]>", "<?xml version=\"1.0\"?>", "<soap:Body>", "text", "<", ">",
    ])) {
        if let Ok(root) = watchfloor_core::xml::parse(&text) {
            let _ = root.to_json();
        }
    }
}
