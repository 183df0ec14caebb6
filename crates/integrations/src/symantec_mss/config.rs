//! Instance settings of Symantec MSS: the server, the client certificate (decoded once, kept in
//! memory), the fetch severities and HTTP options.

use watchfloor_core::{InstanceConfig, Secret};

use super::certificate;
use crate::CommandError;
use crate::http::HttpOptions;

/// The severities SWS knows, most severe first: the allowed values of the definition's
/// `severities` argument, so the parameter and the argument accept the same words.
fn known_severities() -> &'static [String] {
    super::definition()
        .command("symantec-mss-incidents-list")
        .and_then(|c| c.arg("severities"))
        .map(|a| a.allowed.as_slice())
        .unwrap_or_default()
}

/// What one instance needs to reach SWS.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: String,
    /// Severities to fetch, checked.
    pub severities: Vec<String>,
    pub http: HttpOptions,
}

impl Settings {
    pub fn from_config(config: &InstanceConfig) -> Result<Self, CommandError> {
        let bad = |m: String| CommandError::NotConfigured(m);
        let der = match (
            config.optional::<&Secret>("certificate"),
            config.optional::<&str>("certificate_file"),
        ) {
            (Some(b64), None) => certificate::from_base64(b64).map_err(bad)?,
            (None, Some(path)) => std::fs::read(path)
                .map_err(|e| bad(format!("cannot read certificate_file {path}: {e}")))?,
            (Some(_), Some(_)) => {
                return Err(bad("give certificate or certificate_file, not both".into()));
            }
            (None, None) => return Err(bad(
                "no client certificate: set certificate (base64 of the .p12) or certificate_file"
                    .into(),
            )),
        };
        let passphrase = config
            .optional::<&Secret>("passphrase")
            .map(|s| s.expose().to_string())
            .unwrap_or_default();
        let identity = certificate::identity_pem(&der, &passphrase).map_err(bad)?;
        Ok(Settings {
            server: config.get::<&str>("server")?.to_string(),
            severities: parse_severities(config.get("severities")?).map_err(bad)?,
            http: HttpOptions {
                identity: Some(identity),
                ..HttpOptions::from_config(config)?
            },
        })
    }
}

/// Checks a comma-separated severity list; spaces around values are ignored.
pub fn parse_severities(text: &str) -> Result<Vec<String>, String> {
    let values: Vec<String> = text
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    let known = known_severities();
    if values.is_empty() {
        return Err(format!(
            "severities is empty; use some of {}",
            known.join(", ")
        ));
    }
    if let Some(v) = values.iter().find(|v| !known.contains(v)) {
        return Err(format!(
            "severities: `{v}` is not one of {}",
            known.join(", ")
        ));
    }
    Ok(values)
}
