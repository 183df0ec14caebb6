//! `watchfloor indicators` and `incidents show` from the command line: `--as` a user of one
//! organization reads that organization's incidents for an indicator and a count of the
//! others (none with `[indicators] cross_org_counts = false`), and names nothing of theirs.

mod common;

use common::*;
use serde_json::Value;

const FOREIGN: [&str; 3] = ["Globex", "payroll exfil", "globex-only.example.com"];

fn json(out: &Out) -> Value {
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

fn created(dir: &std::path::Path, cfg: &str, name: &str, org: &str, details: &str) -> i64 {
    let out = watchfloor(
        dir,
        &[
            "--config",
            cfg,
            "incidents",
            "create",
            "--name",
            name,
            "--severity",
            "high",
            "--org",
            org,
            "--details",
            details,
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| !w.is_empty())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("an id in {:?}", out.stdout))
}

#[test]
fn the_cli_reads_indicators_as_the_user_it_runs_as() {
    let dir = tempfile::tempdir().unwrap();
    let on = dir.path().join("on.toml");
    let off = dir.path().join("off.toml");
    std::fs::write(&on, "[storage]\nurl = \"sqlite://wf.db\"\n").unwrap();
    std::fs::write(
        &off,
        "[storage]\nurl = \"sqlite://wf.db\"\n[indicators]\ncross_org_counts = false\n",
    )
    .unwrap();
    let (on, off) = (on.to_str().unwrap(), off.to_str().unwrap());
    create_user_with_password(
        dir.path(),
        on,
        "dana",
        "analyst",
        &["--org", "Acme"],
        "a-long-password",
    );
    let a1 = created(
        dir.path(),
        on,
        "Beacon",
        "Acme",
        "to 203.0.113.7 and evil.example.com",
    );
    let a2 = created(dir.path(), on, "Beacon again", "Acme", "203.0.113.7");
    let g1 = created(
        dir.path(),
        on,
        "Globex payroll exfil",
        "Globex",
        "to 203.0.113.7 via globex-only.example.com",
    );

    let list = json(&watchfloor(
        dir.path(),
        &[
            "--config",
            on,
            "indicators",
            "list",
            "--as",
            "dana",
            "--output",
            "json",
        ],
    ));
    let ip = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["value"] == "203.0.113.7")
        .expect("listed");
    assert_eq!(
        (ip["incidents"].clone(), ip["other_organizations"].clone()),
        (2.into(), 1.into())
    );
    assert!(
        !list.to_string().contains("globex-only"),
        "another organization's indicator is not listed: {list}"
    );
    let shown = watchfloor(
        dir.path(),
        &[
            "--config",
            on,
            "indicators",
            "show",
            "203.0.113.7",
            "--as",
            "dana",
            "--output",
            "json",
        ],
    );
    let one = json(&shown);
    let mut ids: Vec<i64> = one["found_in"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, [a1, a2]);
    let table = watchfloor(
        dir.path(),
        &[
            "--config",
            on,
            "indicators",
            "show",
            "203.0.113.7",
            "--as",
            "dana",
        ],
    );
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains("seen in 1 other organization"),
        "{}",
        table.stdout
    );
    for out in [&shown, &table] {
        for text in FOREIGN {
            assert!(!out.stdout.contains(text), "names {text}: {}", out.stdout);
        }
        assert!(
            !out.stdout.contains(&format!("\"id\": {g1}")),
            "{}",
            out.stdout
        );
    }
    // An admin (no --as) sees all three; counts of others are for scoped users.
    let all = json(&watchfloor(
        dir.path(),
        &[
            "--config",
            on,
            "indicators",
            "show",
            "203.0.113.7",
            "--output",
            "json",
        ],
    ));
    assert_eq!(all["incidents"], 3);
    assert!(all.get("other_organizations").is_none());

    // Switched off: no count at all.
    let list = json(&watchfloor(
        dir.path(),
        &[
            "--config",
            off,
            "indicators",
            "list",
            "--as",
            "dana",
            "--output",
            "json",
        ],
    ));
    assert!(!list.to_string().contains("other_organizations"), "{list}");
    let only_elsewhere = watchfloor(
        dir.path(),
        &[
            "--config",
            off,
            "indicators",
            "show",
            "globex-only.example.com",
            "--as",
            "dana",
        ],
    );
    assert_ne!(only_elsewhere.code, 0);
    assert!(
        only_elsewhere.stderr.contains("no indicator"),
        "{}",
        only_elsewhere.stderr
    );

    // incidents show --output json carries the incident's indicators.
    let incident = json(&watchfloor(
        dir.path(),
        &[
            "--config",
            on,
            "incidents",
            "show",
            &a1.to_string(),
            "--output",
            "json",
        ],
    ));
    let values: Vec<&str> = incident["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["evil.example.com", "203.0.113.7"], "{incident}");

    // A verdict, as dana: Acme's, shown to Acme's readers.
    let set = watchfloor(
        dir.path(),
        &[
            "--config",
            on,
            "indicators",
            "verdict",
            "203.0.113.7",
            "malicious",
            "--as",
            "dana",
        ],
    );
    assert_eq!(set.code, 0, "{}", set.stderr);
    assert!(
        set.stdout.contains("ip 203.0.113.7 is malicious (by dana)"),
        "{}",
        set.stdout
    );
    let bad_verdict = watchfloor(
        dir.path(),
        &[
            "--config",
            on,
            "indicators",
            "verdict",
            "203.0.113.7",
            "evil",
        ],
    );
    assert_eq!(bad_verdict.code, 2, "{}", bad_verdict.stderr);
    let shown = json(&watchfloor(
        dir.path(),
        &[
            "--config",
            on,
            "indicators",
            "show",
            "203.0.113.7",
            "--as",
            "dana",
            "--output",
            "json",
        ],
    ));
    assert_eq!(shown["verdict"]["verdict"], "malicious");
    // The allow list.
    let added = watchfloor(
        dir.path(),
        &[
            "--config",
            on,
            "indicators",
            "allow",
            "add",
            "*.example.com",
        ],
    );
    assert_eq!(added.code, 0, "{}", added.stderr);
    let refused = watchfloor(
        dir.path(),
        &["--config", on, "indicators", "allow", "add", "*.com"],
    );
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("excludes too much"),
        "{}",
        refused.stderr
    );
    let listed = json(&watchfloor(
        dir.path(),
        &[
            "--config",
            on,
            "indicators",
            "allow",
            "list",
            "--output",
            "json",
        ],
    ));
    assert_eq!(listed[0]["entry"], "*.example.com");

    let bad = watchfloor(
        dir.path(),
        &["--config", on, "indicators", "list", "--type", "hash"],
    );
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("not an indicator type"),
        "{}",
        bad.stderr
    );
    let reindexed = watchfloor(dir.path(), &["--config", on, "indicators", "reindex"]);
    assert_eq!(reindexed.code, 0, "{}", reindexed.stderr);
}

/// `incidents create --raw` keeps the source record it is given (JSON, or `@FILE`), shows it
/// as a fetched incident's, and its indicators are found; JSON it cannot read is a usage error
/// that says so, and makes nothing.
#[test]
fn an_incident_made_by_hand_keeps_its_source_record() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("wf.toml");
    std::fs::write(&cfg, "[storage]\nurl = \"sqlite://wf.db\"\n").unwrap();
    let cfg = cfg.to_str().unwrap();
    let source = r#"{"alert": {"src": "198.51.100.77", "note": "<b>bold</b>"}}"#;
    let file = dir.path().join("source.json");
    std::fs::write(&file, source).unwrap();
    let create = |raw: &str| {
        watchfloor(
            dir.path(),
            &[
                "--config",
                cfg,
                "incidents",
                "create",
                "--name",
                "From a script",
                "--severity",
                "low",
                "--org",
                "Acme",
                "--raw",
                raw,
            ],
        )
    };
    for raw in [source.to_string(), format!("@{}", file.display())] {
        let out = create(&raw);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let list = json(&watchfloor(
        dir.path(),
        &["--config", cfg, "incidents", "list", "--output", "json"],
    ));
    let incidents = list.as_array().unwrap();
    assert_eq!(incidents.len(), 2, "{list}");
    let expected: Value = serde_json::from_str(source).unwrap();
    for incident in incidents {
        let id = incident["id"].as_i64().unwrap().to_string();
        let shown = json(&watchfloor(
            dir.path(),
            &[
                "--config",
                cfg,
                "incidents",
                "show",
                &id,
                "--output",
                "json",
            ],
        ));
        assert_eq!(shown["raw"], expected, "{shown}");
        assert_eq!(shown["indicators"][0]["value"], "198.51.100.77", "{shown}");
    }
    let found = json(&watchfloor(
        dir.path(),
        &[
            "--config",
            cfg,
            "indicators",
            "show",
            "198.51.100.77",
            "--output",
            "json",
        ],
    ));
    assert_eq!(
        found["found_in"].as_array().map(Vec::len),
        Some(2),
        "{found}"
    );
    for bad in ["{not json", "@/no/such/file.json"] {
        let out = create(bad);
        assert_eq!(out.code, 2, "{bad}: {}", out.stderr);
        assert!(out.stderr.contains("--raw"), "{}", out.stderr);
    }
    let list = json(&watchfloor(
        dir.path(),
        &["--config", cfg, "incidents", "list", "--output", "json"],
    ));
    assert_eq!(
        list.as_array().unwrap().len(),
        2,
        "nothing made of bad input"
    );
}
