//! What `watchfloor simulate` and `watchfloor demo` ask of every simulator, so that both are a
//! loop over [`SIMULATORS`] and the binary names no provider and no parameter.

use std::future::Future;
use std::pin::Pin;

use crate::SimOptions;

/// What the person running `simulate` asks of every simulator. Sizes left `None` keep each
/// simulator's own default.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    /// Seed, faults, late arrival and generator, for every simulator.
    pub options: SimOptions<()>,
    /// Organizations, for providers that have them.
    pub orgs: Option<usize>,
    /// Alerts per organization (or per appliance).
    pub alerts_per_org: Option<usize>,
    /// XML providers put undefined `&nbsp;`-style entities into some text.
    pub stray_entities: bool,
}

/// One instance of an integration that points at a running simulator.
#[derive(Debug, Clone)]
pub struct SimInstance {
    pub name: String,
    pub integration: &'static str,
    /// Parameters as TOML values; secrets as `{ file = "NAME" }` of one of `files`.
    pub params: Vec<(&'static str, toml::Value)>,
    /// Files the parameters name, relative to the config file's directory, with their contents.
    pub files: Vec<(&'static str, Vec<u8>)>,
    /// How often the instance fetches, e.g. `1m`.
    pub fetch_interval: &'static str,
    /// Where its first fetch starts: before the simulator's seeded data.
    pub first_fetch: &'static str,
    /// The one organization the account serves, when it serves one (`organization = ".."`).
    pub organization: Option<&'static str>,
}

impl SimInstance {
    /// Its `[[instances]]` block of a config file: fetching, its parameters.
    pub fn toml(&self) -> String {
        let string = |s: &str| toml::Value::String(s.into());
        let mut out = format!(
            "[[instances]]\nname = {}\nintegration = {}\nfetch = true\nfetch_interval = {}\nfirst_fetch = {}\n",
            string(&self.name),
            string(self.integration),
            string(self.fetch_interval),
            string(self.first_fetch),
        );
        if let Some(org) = self.organization {
            out.push_str(&format!("organization = {}\n", string(org)));
        }
        out.push_str("[instances.params]\n");
        for (key, value) in &self.params {
            out.push_str(&format!("{key} = {value}\n"));
        }
        out
    }

    /// Writes the files its parameters name into `dir`, the config file's folder.
    pub fn write_files(&self, dir: &std::path::Path) -> std::io::Result<()> {
        for (name, contents) in &self.files {
            std::fs::write(dir.join(name), contents)?;
        }
        Ok(())
    }
}

/// A running simulator, as `simulate` and `demo` see it. Dropping it stops its servers.
pub trait Running: Send + Sync {
    /// What serves where, e.g. `("FES Portal", "http://127.0.0.1:41234/v1")`.
    fn endpoints(&self) -> Vec<(&'static str, String)>;
    /// The base URL of its `/_sim/*` control endpoints (faults, request counts).
    fn control_url(&self) -> String;
    /// The instances of its integration that point at it.
    fn instances(&self) -> Vec<SimInstance>;
    /// Command lines worth trying against it, the first one the most telling.
    fn examples(&self) -> Vec<String>;
}

/// A started simulator, or why it could not start.
pub type Started = std::io::Result<Box<dyn Running>>;
/// Starts one simulator on loopback for a scenario.
pub type Launch = for<'a> fn(&'a Scenario) -> Pin<Box<dyn Future<Output = Started> + Send + 'a>>;

/// The registry: every simulator, one line each, named by the integration it simulates.
pub static SIMULATORS: [(&str, Launch); 3] = [
    (
        "covalence-managed-security",
        crate::covalence_managed_security::launch,
    ),
    (
        "covalence-security-providers",
        crate::covalence_security_providers::launch,
    ),
    ("symantec-mss", crate::symantec_mss::launch),
];

/// Starts every simulator; the error names the one that failed.
pub async fn start_all(scenario: &Scenario) -> Result<Vec<Box<dyn Running>>, String> {
    let mut running = Vec::new();
    for (integration, launch) in &SIMULATORS {
        let sim = launch(scenario)
            .await
            .map_err(|e| format!("cannot start the {integration} simulator on loopback: {e}"))?;
        running.push(sim);
    }
    Ok(running)
}

impl SimOptions<()> {
    /// These shared options around a simulator's own setup.
    pub fn with<S>(&self, setup: S) -> SimOptions<S> {
        SimOptions {
            seed: self.seed,
            faults: self.faults.clone(),
            late_arrival: self.late_arrival,
            generate_every: self.generate_every,
            seeded_until: self.seeded_until,
            setup,
        }
    }
}

/// `{ file = "NAME" }`, how an instance reads a secret from a file.
pub fn secret_file(name: &str) -> toml::Value {
    let mut table = toml::Table::new();
    table.insert("file".into(), toml::Value::String(name.into()));
    toml::Value::Table(table)
}

/// A TOML string.
pub fn text(s: &str) -> toml::Value {
    toml::Value::String(s.into())
}
