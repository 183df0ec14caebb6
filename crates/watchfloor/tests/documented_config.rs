//! The documentation's example config is one watchfloor accepts.

use std::path::Path;

/// docs/configuration.md's example config parses as it is, so the annotated example cannot
/// drift from what watchfloor accepts.
#[test]
fn the_documented_example_config_is_valid() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md"),
    )
    .unwrap();
    let example = doc
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a toml block");
    let env = |var: &str| Some(format!("value-of-{var}"));
    let config = watchfloor_core::Config::parse(
        Path::new("/etc/watchfloor/watchfloor.toml"),
        example,
        &watchfloor_integrations::definitions(),
        &env,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.instances.len(), 3);
    assert_eq!(
        config.storage_url.as_deref(),
        Some("sqlite:///etc/watchfloor/watchfloor-data/watchfloor.db")
    );
}
