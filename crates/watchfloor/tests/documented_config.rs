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
    assert_eq!(config.listen, Some("127.0.0.1:8080".parse().unwrap()));
    assert_eq!(
        config.retention,
        Some(std::time::Duration::from_secs(365 * 86400))
    );
    assert_eq!(config.lease, Some(std::time::Duration::from_secs(30)));
    assert_eq!(config.channels.len(), 2);
    assert_eq!(config.reports.len(), 1);
    assert_eq!(config.public_url.as_deref(), Some("https://soc.example"));
}

/// An XSOAR parameter name gets an error that names what to write here (XSOAR fidelity 1).
#[test]
fn xsoar_parameter_names_say_what_to_write_instead() {
    for (integration, param, says) in [
        (
            "covalence-managed-security",
            "credentials",
            "here write `api_key`",
        ),
        (
            "covalence-managed-security",
            "isFetch",
            "here write `fetch = true` above `[instances.params]`",
        ),
        (
            "covalence-security-providers",
            "first_run_time_range",
            "here write `first_fetch = \"N days\"`",
        ),
        (
            "symantec-mss",
            "passphrase_creds",
            "here write `passphrase`",
        ),
    ] {
        let text = format!(
            "[[instances]]\nname = \"i\"\nintegration = \"{integration}\"\n[instances.params]\n{param} = \"x\"\n"
        );
        let err = watchfloor_core::Config::parse(
            Path::new("watchfloor.toml"),
            &text,
            &watchfloor_integrations::definitions(),
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(&format!("`{param}` is the XSOAR pack's name; {says}")),
            "{err}"
        );
        assert!(
            err.contains(&format!("docs/integrations/{integration}.md")),
            "{err}"
        );
    }
    // Regression: written above `[instances.params]`, among the instance's settings, an XSOAR
    // parameter got serde's generic "unknown field"; it gets the same hint.
    let text = "[[instances]]\nname = \"i\"\nintegration = \"covalence-managed-security\"\nisFetch = true\n[instances.params]\n";
    let err = watchfloor_core::Config::parse(
        Path::new("watchfloor.toml"),
        text,
        &watchfloor_integrations::definitions(),
        &|_| None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("line 4")
            && err.contains("`isFetch` is the XSOAR pack's name; here write `fetch = true` above `[instances.params]`"),
        "{err}"
    );
}
