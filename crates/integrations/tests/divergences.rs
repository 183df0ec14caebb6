//! Every known divergence from the reference integrations is in the integration's list of
//! fixes (which the generated docs show): a user moving from XSOAR finds each one, with why.

fn check(integration: &str, divergences: &[&str]) {
    let defs = watchfloor_integrations::definitions();
    let def = defs
        .iter()
        .find(|d| d.id == integration)
        .unwrap_or_else(|| panic!("no integration {integration}"));
    let fixes = def.fixes.join("\n");
    for d in divergences {
        assert!(
            fixes.contains(d),
            "{integration}: the fixes do not mention {d:?}:\n{fixes}"
        );
    }
}

#[test]
fn every_divergence_is_listed_with_its_reason() {
    let escaped = "a backslash written just before `|` or a backtick is escaped too";
    check(
        "covalence-managed-security",
        &[
            escaped,
            "`occured`",
            "unknown query keys are rejected",
            "transition-aro returns the whole ARO by default",
            "comments to `FESPortal.AROComment` (keyed by `id`)",
            "Escalation contacts are sorted by `priority`",
            "labels `ARO type` and `Organization`",
        ],
    );
    check(
        "covalence-security-providers",
        &[
            escaped,
            "`occured`",
            "tagged with `org_name` and `appliance_id`",
            "adds an `appliance_ids` column and context key",
            "labels `Alert type`, `Organization` (broker mode) and `Source IP`",
            "Its context is the network object",
        ],
    );
    check(
        "symantec-mss",
        &[
            escaped,
            "details (category, source IP",
            "`Severity` and `Category` labels",
            "`Comment` cell holds every comment",
            "`status` and `resolution` of update-incident are checked",
            "`Signaturtes` is spelled `Signatures`",
            "Times in outputs are explicit UTC",
            "says `Update failed` when SWS answers `false`",
            "is `\"\"` in the context",
            "Context keys compare with `==`",
        ],
    );
}
