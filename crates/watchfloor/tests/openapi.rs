//! The native API's OpenAPI document is one a client can be made from: every route's path and
//! query parameters, JSON body and typed answers, error schemas, and a document that a validator
//! (openapi-spec-validator, from PyPI) accepts; the answers of a running `serve` match it
//! (jsonschema, `openapi/answers.py`).

mod common;

use common::*;

/// Regression (first hour: the document listed paths with no parameters and no schemas).
#[test]
fn the_openapi_document_is_valid_and_names_what_each_route_takes() {
    let doc = watchfloor_api::openapi_document();
    let op = |method: &str, path: &str| doc["paths"][path][method].clone();
    let names = |op: &serde_json::Value| -> Vec<String> {
        op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                format!(
                    "{}:{}",
                    p["in"].as_str().unwrap(),
                    p["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    let list = names(&op("get", "/api/v1/incidents"));
    for wanted in [
        "query:status",
        "query:severity",
        "query:q",
        "query:limit",
        "query:after",
    ] {
        assert!(list.contains(&wanted.to_string()), "{list:?}");
    }
    assert_eq!(
        names(&op("get", "/api/v1/incidents/{id}")),
        ["path:id".to_string()]
    );
    let login = op("post", "/api/v1/login");
    let body = &login["requestBody"]["content"]["application/json"]["schema"]["properties"];
    assert!(
        body["name"].is_object() && body["password"].is_object(),
        "{login}"
    );
    assert_eq!(
        op("get", "/api/v1/me")["responses"]["401"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Error"
    );

    let Some(python) = python_for("the OpenAPI validation") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(open(sys.argv[1])))\nprint('valid')",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "valid",
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One HTTP answer: status and body, the body as JSON where it is JSON, else a string.
fn answer(text: &str) -> (u16, serde_json::Value) {
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // Chunks: size line, data, CRLF; the test's answers are small.
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
        out
    } else {
        body.to_string()
    };
    let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
    (status, json)
}

/// Issue 32, point 10: every route's answer has a schema in the document, and the answers a
/// running `serve` gives (with incidents fetched from the FES simulator, a rule, a channel and
/// indicators) match their route's schema, checked with jsonschema (from PyPI, in the same
/// venv as openapi-spec-validator). A route whose answer changes shape fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_answers_match_the_documented_response_schemas() {
    let doc = watchfloor_api::openapi_document();
    for e in watchfloor_api::endpoints() {
        assert!(
            watchfloor_api::schemas::names_known(e.returns),
            "{} {}: its answer `{}` names a schema that is not in the document",
            e.method,
            e.path,
            e.returns
        );
    }
    let Some(python) = python_for("the OpenAPI response check") else {
        return;
    };
    let sim = watchfloor_simulators::CovalenceManagedSecuritySimulator::start(
        watchfloor_simulators::CovalenceManagedSecurityOptions::default(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = fes_fetch_config(dir.path(), &sim, "");
    let cfg = config.to_str().unwrap();
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap()
            + "[[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/none\"\n",
    )
    .unwrap();
    let fetched = watchfloor(dir.path(), &["--config", cfg, "fetch"]);
    assert_eq!(fetched.code, 0, "{}", fetched.stderr);
    let password = "a long test password";
    create_user_with_password(dir.path(), cfg, "root", "admin", &[], password);
    let key = watchfloor(dir.path(), &["--config", cfg, "users", "api-key", "root"])
        .stdout
        .trim()
        .to_string();
    let serve = Served::start(
        dir.path(),
        &["--config", cfg, "serve", "--listen", "127.0.0.1:0"],
        None,
        std::process::Stdio::null(),
    );
    let mut answers = Vec::new();
    let mut call_as = |credential: &str,
                       method: &str,
                       route: &str,
                       path: &str,
                       body: &str|
     -> serde_json::Value {
        let (status, json) = answer(&serve.call(method, path, credential, body));
        answers.push(serde_json::json!({
            "method": method.to_ascii_lowercase(), "route": route, "status": status, "body": json,
        }));
        json
    };
    let mut call = |method: &str, route: &str, path: &str, body: &str| {
        call_as(&key, method, route, path, body)
    };
    // The rule first, so that the incident made below is noted and notified.
    let rules = r#"{"toml": "[[rules]]\nname = \"triage\"\non = [\"created\"]\nwhen = \"severity:high\"\nactions = [{ action = \"note\", text = \"high\" }, { action = \"notify\", channel = \"hook\" }]\n"}"#;
    call(
        "POST",
        "/api/v1/rules/import",
        "/api/v1/rules/import",
        rules,
    );
    let list = call(
        "GET",
        "/api/v1/incidents",
        "/api/v1/incidents?limit=5&count=true",
        "",
    );
    let id = list["data"][0]["id"].as_i64().expect("an incident");
    let other = list["data"][1]["id"].as_i64().expect("another incident");
    let gone = list["data"][2]["id"].as_i64().expect("a third incident");
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let one = |p: &str| {
        p.replace("{id}", &id.to_string())
            .replace("{name}", "ann")
            .replace("{month}", &month)
    };
    let test_rule = format!(r#"{{"incident": {id}}}"#);
    let bulk = format!(r#"{{"ids": [{other}], "action": "assign", "owner": "root"}}"#);
    let bulk_dry_run =
        r#"{"filter": {"q": "-status:closed"}, "action": "reopen", "dry_run": true}"#;
    let delete = format!("/api/v1/incidents/{gone}");
    for (method, route, path, body) in [
        ("GET", "/healthz", "", ""),
        ("GET", "/readyz", "", ""),
        ("GET", "/metrics", "", ""),
        ("GET", "/api/v1/openapi.json", "", ""),
        ("GET", "/api/v1/me", "", ""),
        ("GET", "/api/v1/instances", "", ""),
        ("GET", "/api/v1/instances/health", "", ""),
        ("GET", "/api/v1/incidents/facets", "", ""),
        ("GET", "/api/v1/incidents/{id}", "", ""),
        (
            "POST",
            "/api/v1/incidents/{id}/notes",
            "",
            r#"{"text": "Called the site lead"}"#,
        ),
        (
            "POST",
            "/api/v1/incidents/{id}/run",
            "",
            r#"{"line": "!cov-mgsec-list-org"}"#,
        ),
        ("GET", "/api/v1/incidents/{id}/context", "", ""),
        ("GET", "/api/v1/incidents/{id}/entries", "", ""),
        ("GET", "/api/v1/incidents/{id}/indicators", "", ""),
        (
            "PATCH",
            "/api/v1/incidents/{id}",
            "",
            r#"{"owner": "root"}"#,
        ),
        (
            "POST",
            "/api/v1/incidents/{id}/close",
            "",
            r#"{"reason": "Resolved", "notes": "done"}"#,
        ),
        ("POST", "/api/v1/incidents/{id}/reopen", "", "{}"),
        (
            "POST",
            "/api/v1/incidents",
            "",
            r#"{"name": "Made by hand", "severity": "high", "organization": "Acme"}"#,
        ),
        ("GET", "/api/v1/commands", "", ""),
        (
            "POST",
            "/api/v1/commands/run",
            "",
            r#"{"line": "!cov-mgsec-list-org"}"#,
        ),
        (
            "POST",
            "/api/v1/instances/{name}/test",
            "/api/v1/instances/fes/test",
            "",
        ),
        (
            "POST",
            "/api/v1/instances/{name}/fetch",
            "/api/v1/instances/fes/fetch",
            "",
        ),
        ("GET", "/api/v1/users", "", ""),
        (
            "POST",
            "/api/v1/users",
            "",
            r#"{"name": "ann", "role": "analyst", "orgs": ["Acme"]}"#,
        ),
        (
            "PATCH",
            "/api/v1/users/{name}",
            "",
            r#"{"role": "analyst", "orgs": ["Acme", "Globex"]}"#,
        ),
        ("POST", "/api/v1/users/{name}/api-key", "", "{}"),
        ("GET", "/api/v1/users/{name}/api-keys", "", ""),
        (
            "DELETE",
            "/api/v1/users/{name}/api-keys/{id}",
            "/api/v1/users/ann/api-keys/2",
            "",
        ),
        ("POST", "/api/v1/users/{name}/disable", "", ""),
        ("POST", "/api/v1/users/{name}/enable", "", ""),
        ("GET", "/api/v1/audit", "", ""),
        ("GET", "/api/v1/rules", "", ""),
        ("GET", "/api/v1/rules/export", "", ""),
        ("GET", "/api/v1/rules/{name}", "/api/v1/rules/triage", ""),
        (
            "POST",
            "/api/v1/rules/{name}/disable",
            "/api/v1/rules/triage/disable",
            "",
        ),
        (
            "POST",
            "/api/v1/rules/{name}/enable",
            "/api/v1/rules/triage/enable",
            "",
        ),
        (
            "POST",
            "/api/v1/rules/{name}/test",
            "/api/v1/rules/triage/test",
            &test_rule,
        ),
        (
            "GET",
            "/api/v1/rules/{name}/backtest",
            "/api/v1/rules/triage/backtest",
            "",
        ),
        ("GET", "/api/v1/channels", "", ""),
        (
            "POST",
            "/api/v1/channels/{name}/test",
            "/api/v1/channels/hook/test",
            "",
        ),
        ("GET", "/api/v1/indicators/allowlist", "", ""),
        (
            "POST",
            "/api/v1/indicators/allowlist",
            "",
            r#"{"entry": "192.0.2.1"}"#,
        ),
        (
            "DELETE",
            "/api/v1/indicators/allowlist/{entry}",
            "/api/v1/indicators/allowlist/192.0.2.1",
            "",
        ),
        ("POST", "/api/v1/indicators/reindex", "", ""),
        (
            "GET",
            "/api/v1/reports",
            "/api/v1/reports?period={month}",
            "",
        ),
        ("GET", "/api/v1/reports/sends", "", ""),
        ("POST", "/api/v1/incidents/bulk", "", &bulk),
        ("POST", "/api/v1/incidents/bulk", "", bulk_dry_run),
        ("DELETE", "/api/v1/incidents/{id}", &delete, ""),
    ] {
        let path = one(if path.is_empty() { route } else { path });
        call(method, route, &path, body);
    }
    let indicators = call("GET", "/api/v1/indicators", "/api/v1/indicators", "");
    let first = &indicators["indicators"][0];
    let (kind, value) = (
        first["type"].as_str().unwrap(),
        first["value"].as_str().unwrap(),
    );
    let path = format!(
        "/api/v1/indicators/{kind}/{}",
        form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>()
    );
    call("GET", "/api/v1/indicators/{type}/{value}", &path, "");
    call(
        "POST",
        "/api/v1/indicators/{type}/{value}/verdict",
        &format!("{path}/verdict"),
        r#"{"verdict": "suspicious"}"#,
    );
    // The rule's notification of the incident made above, once the worker has queued it.
    let started = std::time::Instant::now();
    while serve
        .call("GET", "/api/v1/notifications", &key, "")
        .contains("\"notifications\":[]")
        && started.elapsed() < std::time::Duration::from_secs(20)
    {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    call("GET", "/api/v1/notifications", "/api/v1/notifications", "");
    let refused = call(
        "POST",
        "/api/v1/login",
        "/api/v1/login",
        r#"{"name": "ann", "password": "wrong"}"#,
    );
    assert_eq!(refused["code"], "unauthorized", "{refused}");
    let session = call(
        "POST",
        "/api/v1/login",
        "/api/v1/login",
        &format!(r#"{{"name": "root", "password": "{password}"}}"#),
    );
    let token = session["token"].as_str().expect("a session").to_string();
    call_as(&token, "POST", "/api/v1/logout", "/api/v1/logout", "");
    let routes: std::collections::BTreeSet<(String, String)> = answers
        .iter()
        .map(|a| {
            (
                a["method"].as_str().unwrap().to_string(),
                a["route"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            assert!(
                routes.contains(&(method.clone(), path.clone())),
                "{method} {path} is not called here"
            );
        }
    }
    assert_eq!(serve.stop(), Some(0));
    let file = dir.path().join("answers.json");
    std::fs::write(
        &file,
        serde_json::to_string(&serde_json::json!({"doc": doc, "answers": answers})).unwrap(),
    )
    .unwrap();
    if let Ok(out) = std::env::var("WATCHFLOOR_DUMP_ANSWERS") {
        std::fs::copy(&file, out).unwrap();
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let ok = op["responses"]
                .as_object()
                .unwrap()
                .iter()
                .find(|(code, _)| code.starts_with('2'))
                .map(|(_, r)| r.clone())
                .unwrap_or_default();
            assert!(
                ok["content"]
                    .as_object()
                    .is_none_or(|c| c.values().all(|m| m["schema"] != serde_json::json!({}))),
                "{method} {path}: its answer has no schema: {ok}"
            );
        }
    }
    let out = std::process::Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/openapi/answers.py"
        ))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
