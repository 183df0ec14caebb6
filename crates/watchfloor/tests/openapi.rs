//! The native API's OpenAPI document is one a client can be made from: every route's path and
//! query parameters and JSON body, an error schema, and a document that a validator
//! (openapi-spec-validator, from PyPI) accepts.

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
