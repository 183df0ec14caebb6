//! Instance settings of Covalence for Security Providers, and the base URLs built from `host`.

use watchfloor_core::{InstanceConfig, Secret};

use crate::CommandError;
use crate::http::HttpOptions;

/// What one instance needs to reach its appliance or broker.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base of the REST API, e.g. `https://10.0.0.5/CovalenceWebUI/services`.
    pub services_url: String,
    /// Scheme and authority, where a broker serves `/index`.
    pub root_url: String,
    pub broker: bool,
    pub username: String,
    pub password: Secret,
    pub http: HttpOptions,
}

impl Settings {
    pub fn from_config(config: &InstanceConfig) -> Result<Self, CommandError> {
        let (services_url, root_url) = build_urls(config.get("host")?)?;
        Ok(Settings {
            services_url,
            root_url,
            broker: config.get("broker")?,
            username: config.get::<&str>("username")?.to_string(),
            password: config.get::<&Secret>("password")?.clone(),
            http: HttpOptions::from_config(config)?,
        })
    }
}

/// The reference's `build_host`: `https://` unless a scheme is given; `https` bases end in
/// `/CovalenceWebUI/services`, `http` bases in `/services`. Also returns scheme and authority,
/// where the broker's index page lives.
pub fn build_urls(host: &str) -> Result<(String, String), CommandError> {
    let host = host.trim().trim_end_matches('/');
    if host.is_empty() {
        return Err(CommandError::NotConfigured(
            "parameter `host` is empty".into(),
        ));
    }
    let full = if host.starts_with("http://") || host.starts_with("https://") {
        host.to_string()
    } else {
        format!("https://{host}")
    };
    let (scheme, rest) = full.split_once("://").unwrap_or(("https", &full));
    let authority = rest.split('/').next().unwrap_or_default();
    let services = match scheme {
        "https" if !full.ends_with("/CovalenceWebUI/services") => {
            format!("{full}/CovalenceWebUI/services")
        }
        "http" if !full.ends_with("/services") => format!("{full}/services"),
        _ => full.clone(),
    };
    Ok((services, format!("{scheme}://{authority}")))
}

#[cfg(test)]
mod tests {
    use super::build_urls;

    #[test]
    fn builds_urls_like_the_reference() {
        for (host, services, root) in [
            (
                "foo.bar",
                "https://foo.bar/CovalenceWebUI/services",
                "https://foo.bar",
            ),
            (
                "foo.bar/",
                "https://foo.bar/CovalenceWebUI/services",
                "https://foo.bar",
            ),
            (
                "https://10.0.0.5:8443",
                "https://10.0.0.5:8443/CovalenceWebUI/services",
                "https://10.0.0.5:8443",
            ),
            (
                "https://h/CovalenceWebUI/services",
                "https://h/CovalenceWebUI/services",
                "https://h",
            ),
            (
                "http://10.0.0.5",
                "http://10.0.0.5/services",
                "http://10.0.0.5",
            ),
        ] {
            assert_eq!(
                build_urls(host).unwrap(),
                (services.to_string(), root.to_string()),
                "{host}"
            );
        }
        assert!(build_urls(" ").is_err());
    }
}
