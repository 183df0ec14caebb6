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
    let escaped = "Table cells escape HTML";
    check(
        "covalence-managed-security",
        &[escaped, "`occured`", "unknown query keys are rejected"],
    );
    check(
        "covalence-security-providers",
        &[
            escaped,
            "`occured`",
            "tagged with `org_name` and `appliance_id`",
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
        ],
    );
}
