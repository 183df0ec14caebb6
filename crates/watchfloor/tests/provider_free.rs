//! The binary names no provider: every provider-specific word (integration ids, parameters,
//! command names) comes from the integrations' and simulators' registries, so adding a provider
//! never touches this crate.

use std::path::Path;

/// Every quoted string and comment word in the binary's sources, checked against what the
/// definitions name.
#[test]
fn the_binary_names_no_provider_parameter_integration_or_command() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            sources.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
        }
    }
    assert!(sources.len() >= 3, "found the binary's sources");
    let mut named = Vec::new();
    for def in watchfloor_integrations::definitions() {
        // Parameters as the binary would have to spell them: a quoted name or a TOML key.
        for p in &def.params {
            named.push(format!("\"{}\"", p.name));
            named.push(format!("{} = ", p.name));
        }
        named.push(def.id.clone());
        for c in def.commands.iter().filter(|c| c.name != "test-module") {
            named.push(c.name.clone());
        }
    }
    let mut found = Vec::new();
    for (path, text) in &sources {
        for word in &named {
            if let Some(at) = text.find(word.as_str()) {
                let line = text[..at].matches('\n').count() + 1;
                found.push(format!("{}:{line}: {word}", path.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the binary names provider specifics; move them into the integration's or simulator's folder:\n{}",
        found.join("\n")
    );
}
