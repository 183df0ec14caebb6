//! Indicators of what the engine fetches from each provider's simulator: the fields each
//! integration maps (Covalence alerts' source and destination addresses, Symantec incidents'
//! source address) and the users that FES AROs name in their details are found in every
//! incident whose record holds them, read from the records themselves.

use std::sync::Arc;

use tokio::sync::watch;
use watchfloor_core::Config;
use watchfloor_engine::{Engine, Steps};
use watchfloor_integrations::Runner;
use watchfloor_simulators::{
    CovalenceManagedSecuritySimulator, CovalenceSecurityProvidersSimulator, Running,
    SymantecMssSimulator,
};
use watchfloor_storage::prelude::*;
use watchfloor_storage::{IncidentFilter, Scope, SqlStore};

/// What each integration's records should yield, read from a record by hand: (type, value).
fn expected(integration: &str, i: &watchfloor_core::Incident) -> Vec<(String, String)> {
    let field = |k: &str| i.raw[k].as_str().map(str::to_string);
    let mut out = Vec::new();
    match integration {
        "covalence-security-providers" => {
            for k in ["sourceIp", "destIp", "sourceDomainName", "destDomainName"] {
                out.extend(field(k).map(|v| ("ip".to_string(), v)));
            }
        }
        "symantec-mss" => out.extend(field("SourceIPString").map(|v| ("ip".to_string(), v))),
        "covalence-managed-security" => {
            // "... on WS-0192 (user: jdoe)."
            let user = i
                .details
                .split("(user: ")
                .nth(1)
                .and_then(|r| r.split(')').next())
                .map(str::to_lowercase);
            out.extend(user.map(|u| ("user".to_string(), u)));
        }
        other => panic!("no expectation for {other}"),
    }
    out.retain(|(_, v)| !v.is_empty());
    out
}

#[tokio::test]
async fn each_providers_records_yield_their_mapped_indicators() {
    let fes = CovalenceManagedSecuritySimulator::start(Default::default())
        .await
        .unwrap();
    let cov = CovalenceSecurityProvidersSimulator::start(Default::default())
        .await
        .unwrap();
    let sym = SymantecMssSimulator::start(Default::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    let instances: Vec<_> = [&fes as &dyn Running, &cov, &sym]
        .into_iter()
        .flat_map(|s| s.instances())
        .collect();
    for instance in &instances {
        instance.write_files(dir.path()).unwrap();
        text.push_str(&instance.toml());
    }
    // The simulators' networks are private: kept here, so that the mapped fields show.
    text.push_str("[indicators]\nexclude_reserved = false\n");
    let config = Config::parse(
        &dir.path().join("watchfloor.toml"),
        &text,
        &watchfloor_integrations::definitions(),
        &|_| None,
    )
    .unwrap();
    let runner = Arc::new(Runner::new(watchfloor_integrations::builtin(), &config).unwrap());
    let store = Arc::new(
        SqlStore::open(&format!("sqlite://{}/wf.db", dir.path().display()))
            .await
            .unwrap(),
    );
    store.set_indicator_extractor(watchfloor_indicators::Extractor::new(
        config.indicators.exclusions(),
        watchfloor_integrations::indicator_maps(),
    ));
    let engine = Engine::new(runner, store.clone());
    let stop = watch::channel(false).1;
    for instance in &instances {
        engine
            .cycle(&instance.name, Steps::UntilCaughtUp, &|_| {}, &stop)
            .await
            .unwrap();
    }
    let mut checked = std::collections::BTreeMap::<&str, usize>::new();
    for instance in &instances {
        let incidents = store
            .incidents(&IncidentFilter {
                instance: Some(instance.name.clone()),
                limit: Some(1000),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(!incidents.is_empty(), "{} fetched nothing", instance.name);
        for i in &incidents {
            let found: Vec<(String, String)> = store
                .incident_indicators(&Scope::All, i.id)
                .await
                .unwrap()
                .into_iter()
                .map(|s| (s.kind, s.value))
                .collect();
            let want = expected(instance.integration, i);
            for w in &want {
                assert!(
                    found.contains(w),
                    "{} incident {} ({}): {w:?} not in {found:?}\nrecord: {}",
                    instance.name,
                    i.id,
                    i.external_id,
                    serde_json::to_string(&i.raw).unwrap_or_default()
                );
            }
            *checked.entry(instance.integration).or_default() += want.len();
        }
    }
    for integration in [
        "covalence-security-providers",
        "symantec-mss",
        "covalence-managed-security",
    ] {
        assert!(
            checked.get(integration).copied().unwrap_or(0) > 0,
            "{integration}: no mapped indicator was checked: {checked:?}"
        );
    }
}
