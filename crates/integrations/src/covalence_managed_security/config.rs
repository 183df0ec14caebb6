//! Instance settings of Covalence Managed Security, read from a checked [`InstanceConfig`].

use watchfloor_core::{CloseReason, InstanceConfig, Secret};

use crate::CommandError;
use crate::http::HttpOptions;

/// What one instance needs to talk to the portal and the Broker.
#[derive(Debug, Clone)]
pub struct Settings {
    pub portal_url: String,
    pub api_key: Secret,
    pub broker_url: Option<String>,
    pub http: HttpOptions,
    /// The ARO resolution each close reason becomes when a close is mirrored out.
    pub close_resolutions: CloseResolutions,
}

/// The ARO resolution of each close reason: `close_resolutions`, e.g.
/// `Resolved=Resolved, False Positive=Dismissed, Duplicate=Dismissed, Other=Resolved`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseResolutions(Vec<(CloseReason, String)>);

impl CloseResolutions {
    /// Reads `reason=resolution` pairs; every reason must be given once, and a resolution is
    /// Resolved or Dismissed (the ones that close an ARO).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pairs: Vec<(CloseReason, String)> = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (reason, resolution) = part
                .split_once('=')
                .ok_or_else(|| format!("close_resolutions: `{part}` is not REASON=RESOLUTION"))?;
            let reason =
                CloseReason::parse(reason).map_err(|e| format!("close_resolutions: {e}"))?;
            let resolution = resolution.trim();
            if !matches!(resolution, "Resolved" | "Dismissed") {
                return Err(format!(
                    "close_resolutions: `{resolution}` is not an ARO resolution that closes it: use Resolved or Dismissed"
                ));
            }
            if pairs.iter().any(|(r, _)| *r == reason) {
                return Err(format!("close_resolutions: {reason} is given twice"));
            }
            pairs.push((reason, resolution.to_string()));
        }
        if let Some(missing) = CloseReason::ALL
            .iter()
            .find(|r| !pairs.iter().any(|(p, _)| p == *r))
        {
            return Err(format!(
                "close_resolutions: give a resolution for {missing}"
            ));
        }
        Ok(CloseResolutions(pairs))
    }

    pub fn of(&self, reason: CloseReason) -> &str {
        self.0
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or("Resolved", |(_, res)| res.as_str())
    }
}

impl Settings {
    pub fn from_config(config: &InstanceConfig) -> Result<Self, CommandError> {
        Ok(Settings {
            portal_url: config.get::<&str>("portal_url")?.to_string(),
            api_key: config.get::<&Secret>("api_key")?.clone(),
            broker_url: config.optional::<&str>("broker_url").map(str::to_string),
            http: HttpOptions::from_config(config)?,
            close_resolutions: CloseResolutions::parse(config.get("close_resolutions")?)
                .map_err(CommandError::NotConfigured)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_resolutions_are_checked() {
        let map = CloseResolutions::parse(
            "Resolved=Resolved, False Positive=Resolved, Duplicate=Dismissed, Other=Dismissed",
        )
        .unwrap();
        assert_eq!(map.of(CloseReason::FalsePositive), "Resolved");
        assert_eq!(map.of(CloseReason::Other), "Dismissed");
        for (text, error) in [
            (
                "Resolved=Resolved",
                "close_resolutions: give a resolution for False Positive",
            ),
            (
                "Resolved=Open",
                "close_resolutions: `Open` is not an ARO resolution that closes it: use Resolved or Dismissed",
            ),
            (
                "Fixed=Resolved",
                "close_resolutions: `Fixed` is not a close reason: use Resolved, False Positive, Duplicate or Other",
            ),
            (
                "Resolved",
                "close_resolutions: `Resolved` is not REASON=RESOLUTION",
            ),
        ] {
            assert_eq!(
                CloseResolutions::parse(text),
                Err(error.to_string()),
                "{text}"
            );
        }
    }
}
