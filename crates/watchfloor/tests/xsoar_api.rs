//! XSOAR's API as the official Python client drives it: `watchfloor serve` on the FES
//! simulator, and `xsoar/demisto_py_suite.py` run with demisto-py from PyPI.
//!
//! The suite runs in a virtual environment: `WATCHFLOOR_PYTHON` if set, else
//! `target/demisto-venv`, made here on first use from `xsoar/requirements.txt` (`.ci/run`
//! makes it beforehand).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use watchfloor_simulators::{CovalenceManagedSecurityOptions, CovalenceManagedSecuritySimulator};

fn api_key(dir: &Path, cfg: &str, name: &str) -> String {
    let out = watchfloor(dir, &["--config", cfg, "users", "api-key", name]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout.trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demisto_py_works_against_watchfloor() {
    let Some(python) = python_for("the demisto-py test") else {
        return;
    };
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("watchfloor.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nurl = \"sqlite://wf.db\"\n[server]\nlisten = \"127.0.0.1:0\"\n\
             [[instances]]\nname = \"fes\"\nintegration = \"covalence-managed-security\"\n\
             fetch = true\nfirst_fetch = \"2024-04-01T00:00:00Z\"\n\
             [instances.params]\nportal_url = \"{}\"\napi_key = \"{}\"\n",
            sim.portal_url, sim.api_key
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let users = [
        ("root", "admin", vec![]),
        ("dana", "analyst", vec!["--org", "Acme"]),
        ("vera", "viewer", vec![]),
    ];
    for (name, role, orgs) in &users {
        create_user_with_password(dir.path(), cfg, name, role, orgs, "a-long-password");
    }
    let keys: Vec<String> = users
        .iter()
        .map(|(name, ..)| api_key(dir.path(), cfg, name))
        .collect();
    let serve = Served::start(dir.path(), &["--config", cfg, "serve"], None, Stdio::null());
    let started = Instant::now();
    while !serve
        .call("GET", "/api/v1/incidents", &keys[0], "")
        .contains("\"external_id\"")
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "nothing fetched"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/xsoar/demisto_py_suite.py");
    let out = Command::new(&python)
        .arg(&suite)
        .env("WF_URL", format!("http://{}", serve.addr))
        .env("WF_ADMIN_KEY", &keys[0])
        .env("WF_ACME_KEY", &keys[1])
        .env("WF_VIEWER_KEY", &keys[2])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the demisto-py suite failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    assert_eq!(serve.stop(), Some(0));
}
