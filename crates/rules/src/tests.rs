//! The rule language against good and bad files: what is read, and what each mistake says.

use super::*;

fn catalog_users() -> Vec<(String, Vec<String>)> {
    vec![
        ("alice".into(), vec![]),
        ("bob".into(), vec!["Acme Corp".into()]),
        ("gina".into(), vec!["Globex".into()]),
    ]
}

fn check(text: &str) -> Result<Vec<Rule>, RuleErrors> {
    let users = catalog_users();
    let channels = vec!["oncall".to_string()];
    parse(
        text,
        &Catalog {
            users: &users,
            channels: &channels,
            command_exists: &|c| c == "cov-mgsec-get-aro" || c == "cov-secpr-list-alerts",
            lenient: false,
            unavailable: &[],
        },
    )
}

const GOOD: &str = r#"
[[rules]]
name = "acme-critical-to-oncall"
on = ["created", "changed"]
changed = ["severity", "owner"]
when = 'organization:"Acme Corp" severity:critical -status:closed'
actions = [
  { action = "assign", to = "bob" },
  { action = "note", text = "Auto-assigned: ${incident.severity} for ${incident.organization}" },
  { action = "notify", channel = "oncall" },
]

[[rules]]
name = "spread"
on = ["created"]
mode = "dry-run"
max_per_hour = 50
actions = [
  { action = "assign", to = ["alice", "bob"], pick = "least-loaded" },
  { action = "run", line = '!cov-mgsec-get-aro query="id=${incident.dbotMirrorId}"' },
  { action = "label", name = "triage", value = "${rule.name}" },
  { action = "severity", to = "high" },
  { action = "status", to = "active" },
  { action = "type", to = "Phishing" },
  { action = "link-duplicates", key = ["name", "organization"], within = "1h" },
  { action = "close", reason = "Duplicate", notes = "was ${change.owner.old}" },
  { action = "stop" },
]

[[rules]]
name = "stale observations"
on = ["schedule"]
every = "15m"
enabled = false
when = "type:Observation severity:informational"
actions = [{ action = "close", reason = "Resolved" }]
"#;

#[test]
fn a_good_file_reads_whole_and_exports_as_it_reads() {
    let rules = check(GOOD).unwrap();
    assert_eq!(rules.len(), 3);
    let first = &rules[0];
    assert_eq!(first.on, [Trigger::Created, Trigger::Changed]);
    assert_eq!(first.changed, ["severity", "owner"]);
    assert!(first.fires_on(Trigger::Changed, &["owner".into()]));
    assert!(!first.fires_on(Trigger::Changed, &["type".into()]));
    assert!(first.fires_on(Trigger::Created, &[]));
    assert!(!first.fires_on(Trigger::Closed, &[]));
    assert_eq!(rules[1].mode, Mode::DryRun);
    assert_eq!(rules[1].max_per_hour, 50);
    assert_eq!(
        rules[1].actions[0],
        Action::Assign(Assign {
            to: vec!["alice".into(), "bob".into()],
            pick: Pick::LeastLoaded
        })
    );
    assert_eq!(rules[2].every, Some(Duration::from_secs(900)));
    assert!(!rules[2].enabled);
    // Exported, each reads back as the same rule.
    for rule in &rules {
        let again = check(&rule.to_toml()).unwrap();
        assert_eq!(again, std::slice::from_ref(rule), "{}", rule.to_toml());
    }
}

/// Bad input names the rule, the line and the key, and says what to write.
#[test]
fn each_mistake_is_named_with_its_rule_line_and_key() {
    let rule = |body: &str| format!("[[rules]]\nname = \"r\"\n{body}\n");
    let cases: Vec<(String, &str)> = vec![
        (
            rule("on = [\"craeted\"]\nactions = [{ action = \"stop\" }]"),
            "rule `r`, line 3, `on`: unknown trigger `craeted`: expected one of created, changed, closed, reopened, note, remote, sla-at-risk, sla-breached, schedule",
        ),
        (
            rule("on = [\"created\"]\nactions = [{ action = \"asign\", to = \"bob\" }]"),
            "rule `r`, line 4, `action`: unknown action `asign`: expected one of assign, severity, status, type, label, note, run, close, link-duplicates, notify, stop",
        ),
        (
            rule("on = [\"created\"]\nactions = [{ action = \"note\", txt = \"x\" }]"),
            "rule `r`, line 4, `txt`: `note` has no `txt`; it takes text, mirror",
        ),
        (
            rule(
                "on = [\"created\"]\nactions = [{ action = \"note\", text = \"${incident.colour}\" }]",
            ),
            "rule `r`, line 4, `text`: `${incident.colour}`: incidents have no field `colour`",
        ),
        (
            rule(
                "on = [\"created\"]\nwhen = \"status:closed (a\"\nactions = [{ action = \"stop\" }]",
            ),
            "rule `r`, line 4, `when`: cannot read the query",
        ),
        (
            rule(
                "on = [\"created\"]\nactions = [{ action = \"note\", text = \"${indicator.ip}\" }]",
            ),
            "rule `r`, line 4, `text`: `${indicator.<type>}` is for a `run` line, which runs once per indicator",
        ),
        (
            rule(
                "on = [\"created\"]\nactions = [{ action = \"run\", line = \"!cov-mgsec-get-aro query=${indicator.ip} b=${indicator.user}\" }]",
            ),
            "rule `r`, line 4, `line`: a line names one indicator type (it runs once per indicator of it)",
        ),
        (
            rule(
                "on = [\"created\"]\nactions = [{ action = \"run\", line = \"!cov-mgsec-get-aro query=${indicator.ip}\", cache = \"a day\" }]",
            ),
            "rule `r`, line 4, `cache`: `a day` is not a duration such as 24h",
        ),
        (
            rule(
                "on = [\"created\"]\nactions = [{ action = \"run\", line = \"!cov-mgsec-get-aro query=${indicator.hash}\" }]",
            ),
            "rule `r`, line 4, `line`: `${indicator.hash}`: `hash` is not an indicator type",
        ),
        (
            rule("on = [\"created\"]\nactions = [{ action = \"notify\", channel = \"pager\" }]"),
            "rule `r`, line 4, `channel`: no channel named `pager`; there are oncall",
        ),
        (
            rule("on = [\"created\"]\nactions = [{ action = \"assign\", to = \"zed\" }]"),
            "rule `r`, line 4, `to`: no user named `zed`",
        ),
        (
            rule(
                "on = [\"created\"]\nwhen = 'organization:\"Acme Corp\"'\nactions = [{ action = \"assign\", to = \"gina\" }]",
            ),
            "rule `r`, line 5, `to`: user `gina` cannot see organization `Acme Corp`, which the rule's `when` names",
        ),
        (
            rule(
                "on = [\"created\"]\nactions = [{ action = \"run\", line = \"!no-such-command\" }]",
            ),
            "rule `r`, line 4, `line`: no integration has a command `no-such-command`",
        ),
        (
            rule("on = [\"created\"]\ncolour = \"red\"\nactions = [{ action = \"stop\" }]"),
            "line 4, `colour`: unknown field `colour`",
        ),
        (
            rule("on = [\"schedule\"]\nactions = [{ action = \"stop\" }]"),
            "rule `r`, line 3, `every`: a `schedule` rule says how often it runs",
        ),
        (
            rule("on = [\"closed\"]\nchanged = [\"owner\"]\nactions = [{ action = \"stop\" }]"),
            "rule `r`, line 4, `changed`: `changed` narrows the `changed` trigger",
        ),
        (
            rule("on = [\"created\"]\nactions = [{ action = \"status\", to = \"closed\" }]"),
            "rule `r`, line 4, `to`: a rule closes with",
        ),
        (
            format!(
                "{}{}",
                rule("on = [\"created\"]\nactions = [{ action = \"stop\" }]"),
                rule("on = [\"note\"]\nactions = [{ action = \"stop\" }]")
            ),
            "rule `r`, line 6, `name`: another rule is already named `r`",
        ),
        (
            rule("on = [\"created\"]\nactions = []"),
            "rule `r`, line 4, `actions`: a rule has at least one action",
        ),
    ];
    for (text, says) in cases {
        let err = check(&text).unwrap_err().to_string();
        assert!(
            err.starts_with(says),
            "{text}\n---\nsaid:     {err}\nexpected: {says}"
        );
    }
}

#[test]
fn every_error_of_a_file_is_listed() {
    let text = "[[rules]]\nname = \"a\"\non = [\"x\"]\nactions = [{ action = \"y\" }]\n";
    let err = check(text).unwrap_err();
    assert_eq!(err.0.len(), 2, "{err}");
}
