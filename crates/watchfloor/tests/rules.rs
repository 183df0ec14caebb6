//! `watchfloor rules` from the command line: a file is checked whole before anything is
//! stored, exported as it reads back, tested against an incident and back-tested, and each
//! change is in the audit log.

mod common;

use common::watchfloor;
use serde_json::Value;

const RULES: &str = r#"
[[rules]]
name = "acme-critical"
on = ["created", "changed"]
when = 'organization:Acme severity:critical -status:closed'
actions = [
  { action = "assign", to = "alice" },
  { action = "note", text = "Auto-assigned: ${incident.name} for ${incident.organization}" },
]

[[rules]]
name = "quiet"
on = ["note"]
mode = "dry-run"
actions = [{ action = "severity", to = "low" }]
"#;

#[test]
fn rules_are_checked_stored_exported_tested_and_backtested() {
    let dir = tempfile::tempdir().unwrap();
    let wf = |args: &[&str]| {
        let mut all = vec!["--db", "sqlite://wf.db"];
        all.extend_from_slice(args);
        watchfloor(dir.path(), &all)
    };
    assert_eq!(
        wf(&[
            "users", "create", "alice", "--role", "analyst", "--org", "Acme"
        ])
        .code,
        0
    );
    // A bad file changes nothing, and says where each problem is.
    let bad = format!(
        "{RULES}\n[[rules]]\nname = \"typo\"\non = [\"craeted\"]\nactions = [{{ action = \"assign\", to = \"zed\" }}]\n"
    );
    std::fs::write(dir.path().join("bad.toml"), &bad).unwrap();
    let line_of = |needle: &str| bad.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let refused = wf(&["rules", "import", "bad.toml"]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains(&format!(
            "rule `typo`, line {}, `on`: unknown trigger `craeted`: expected one of created,",
            line_of("craeted")
        )) && refused.stderr.contains(&format!(
            "rule `typo`, line {}, `to`: no user named `zed`",
            line_of("zed")
        )),
        "{}",
        refused.stderr
    );
    assert!(
        wf(&["rules", "list"]).stdout.contains("No entries"),
        "nothing stored"
    );

    std::fs::write(dir.path().join("rules.toml"), RULES).unwrap();
    let imported = wf(&["rules", "import", "rules.toml"]);
    assert_eq!(
        imported.stdout.trim(),
        "imported 2 rules: acme-critical, quiet",
        "{}",
        imported.stderr
    );
    let listed: Value =
        serde_json::from_str(&wf(&["rules", "list", "--output", "json"]).stdout).unwrap();
    let rows: Vec<(String, String, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["mode"].as_str().unwrap().to_string(),
                r["enabled"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("acme-critical".into(), "live".into(), true),
            ("quiet".into(), "dry-run".into(), true)
        ]
    );

    // Exported, disabled, and imported again with --replace: the same rules come back.
    assert_eq!(wf(&["rules", "disable", "quiet"]).code, 0);
    let exported = wf(&["rules", "export", "out.toml"]);
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    let text = std::fs::read_to_string(dir.path().join("out.toml")).unwrap();
    assert!(text.contains("enabled = false"), "{text}");
    assert_eq!(wf(&["rules", "import", "out.toml", "--replace"]).code, 0);
    assert_eq!(wf(&["rules", "export"]).stdout.trim(), text.trim());
    assert!(
        wf(&["rules", "show", "quiet"])
            .stdout
            .starts_with("# disabled; changed by")
    );
    assert_eq!(wf(&["rules", "enable", "nope"]).code, 2);

    // Tested and back-tested against real incidents.
    for (name, severity) in [("Ransomware", "critical"), ("Scan", "low")] {
        let made = wf(&[
            "incidents",
            "create",
            "--name",
            name,
            "--severity",
            severity,
            "--org",
            "Acme",
        ]);
        assert_eq!(made.code, 0, "{}", made.stderr);
    }
    let plan = wf(&["rules", "test", "acme-critical", "--incident", "1"]);
    assert_eq!(
        plan.stdout.trim(),
        "rule acme-critical matches incident 1; it would:\n- assign to alice\n- add a note: Auto-assigned: Ransomware for Acme"
    );
    let plan = wf(&["rules", "test", "acme-critical", "--incident", "2"]);
    assert!(
        plan.stdout
            .starts_with("rule acme-critical does not match incident 2")
    );
    let back: Value = serde_json::from_str(
        &wf(&[
            "rules",
            "backtest",
            "acme-critical",
            "--since",
            "1 day",
            "--output",
            "json",
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(back["matched"], 1);
    assert_eq!(back["first"][0][1], "Ransomware");

    let audit = wf(&["audit", "--output", "json"]);
    let actions: Vec<String> = serde_json::from_str::<Value>(&audit.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        &actions[..3],
        ["rules_imported", "rule_disabled", "rules_imported"]
    );
}
