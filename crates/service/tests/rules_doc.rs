//! `docs/rules.md` lists the triggers and actions as the definitions have them.

#[test]
fn the_rules_reference_matches_the_definitions() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/rules.md"))
        .unwrap();
    let tables = watchfloor_rules::reference(&watchfloor_service::rules::UNAVAILABLE);
    assert!(
        doc.contains(&tables),
        "docs/rules.md's tables of triggers and actions are out of date; they should read:\n{tables}"
    );
}
