//! Seeded data of the Covalence simulator: appliances and their collections (alerts, sensors,
//! connections, DNS, networks, agents, processes, software, health).

use super::*;

impl CovState {
    pub(super) fn seeded(opts: &SimOptions<CovalenceSecurityProvidersSetup>) -> Self {
        let mut rng = Rng::new(opts.seed ^ 0xc0fa_1e4c_e000);
        let extra = (4..=opts.setup.broker_orgs)
            .map(|n| (format!("2019-005-{n:03}"), format!("Org {n:03}")));
        let all: Vec<(String, String)> = APPLIANCES
            .iter()
            .map(|(id, org)| (id.to_string(), org.to_string()))
            .chain(extra)
            .collect();
        // The newest seeded alert is at most this long after the base (see `seed_appliance`).
        let span = all.len().saturating_sub(1) as i64 * 97
            + opts.setup.alerts_per_appliance.saturating_sub(1) as i64 * 600
            + 299;
        let base = opts
            .seeded_until
            .map_or(BASE_EPOCH, |until| until.timestamp() - span);
        let appliances = all
            .into_iter()
            .enumerate()
            .map(|(i, (cov_id, org))| Appliance {
                cov_id,
                org,
                logins: 0,
                collections: seed_appliance(&mut rng, i, opts.setup.alerts_per_appliance, base),
            })
            .collect();
        CovState {
            username: opts.setup.username.clone(),
            password: opts.setup.password.clone(),
            session_ttl: opts.setup.session_ttl,
            appliances,
            sessions: HashMap::new(),
            rng,
            visible_at: HashMap::new(),
            late_arrival: opts.late_arrival.as_secs() as i64,
        }
    }

    /// Adds an alert created now to appliance `index`; it shows after the late-arrival delay.
    pub(super) fn add_alert(&mut self, index: usize, title: &str) -> Value {
        let now = chrono::Utc::now().timestamp();
        self.add_alert_at(index, title, now, self.late_arrival)
    }

    /// An alert made at `now` (epoch seconds), shown `late` seconds after.
    pub(super) fn add_alert_at(&mut self, index: usize, title: &str, now: i64, late: i64) -> Value {
        let index = index % self.appliances.len().max(1);
        let mut alert = seed_appliance(&mut self.rng, index, 1, BASE_EPOCH)
            .remove("alerts")
            .and_then(|mut a| a.pop())
            .unwrap_or_default();
        alert["createdTime"] = json!(now);
        alert["lastAlertedTime"] = json!(now);
        alert["analystTitle"] = json!(title);
        let id = alert["id"].as_str().unwrap_or_default().to_string();
        self.visible_at.insert(id, now + late);
        if let Some(list) = self.appliances[index].collections.get_mut("alerts") {
            list.push(alert.clone());
        }
        alert
    }
}

pub(super) const ALERT_TITLES: [&str; 6] = [
    "Suspicious scheduled task",
    "Outbound connection to known C2",
    "Port scan from internal host",
    "Brute force against SSH",
    "Unusual DNS volume",
    "Script injection <script>alert(1)</script> | in title",
];
pub(super) const ALERT_TYPES: [&str; 3] = ["ANALYST GENERIC", "NETWORK", "ENDPOINT"];
pub(super) const SUB_TYPES: [&str; 3] = ["Analytic", "Signature", "Blacklist"];
pub(super) const DOMAINS: [&str; 5] = [
    "example.com",
    "login.example.org",
    "evil.example",
    "updates.vendor.example",
    "cdn.example.net",
];
pub(super) const VENDORS: [&str; 3] = ["Dell Inc.", "LENOVO", "HP"];

/// Appliance `index`'s collections, its `alerts` created from `base` (epoch seconds) on.
pub(super) fn seed_appliance(
    rng: &mut Rng,
    index: usize,
    alerts: usize,
    base: i64,
) -> HashMap<&'static str, Vec<Value>> {
    let net = 10 + index;
    let ip = |rng: &mut Rng| format!("10.{net}.{}.{}", rng.below(4), 2 + rng.below(250));
    let mut c: HashMap<&'static str, Vec<Value>> = HashMap::new();
    let alert_list = (0..alerts)
        .map(|n| {
            let created = base + (index as i64) * 97 + (n as i64) * 600 + rng.below(300) as i64;
            let (src, dst) = (ip(rng), ip(rng));
            let title = ALERT_TITLES[(n + index) % ALERT_TITLES.len()];
            let host = format!("HOST-{}", rng.below(90) + 10);
            json!({
                "id": rng.uuid(), "sensorId": null, "type": ALERT_TYPES[n % 3], "organizationId": null,
                "subType": SUB_TYPES[n % 3], "severity": *rng.pick(&FIELD_EFFECT_SEVERITIES),
                "facility": null, "priority": null, "createdTime": created, "lastAlertedTime": created,
                "title": format!("{} alert", ALERT_TYPES[n % 3]), "notes": null,
                "alertHash": format!("{:016x}", rng.next_u64()), "assignee": null,
                "analystTitle": title, "analystDescription": format!("{title} observed on {host} ({src} -> {dst})."),
                "endpointAgentUuid": null, "pcapResourceUuid": null, "sourceCityName": null, "sourceCountryName": null,
                "destCityName": null, "destCountryName": null, "destIp": dst, "destPort": "443", "protocol": "6",
                "destDomainName": dst, "destCiscoUmbrellaRanking": null, "destMajesticMillionRanking": null,
                "destCiscoUmbrellaTopLevelDomainRanking": null, "destMajesticMillionTopLevelDomainRanking": null,
                "sourceIp": src, "sourcePort": format!("{}", 49152 + rng.below(16000)), "sourceDomainName": src,
                "sourceCiscoUmbrellaRanking": null, "sourceMajesticMillionRanking": null,
                "sourceCiscoUmbrellaTopLevelDomainRanking": null, "sourceMajesticMillionTopLevelDomainRanking": null,
                "sourceGeoX": null, "sourceGeoY": null, "destGeoX": null, "destGeoY": null, "isFavorite": false,
                "alertCount": 1 + rng.below(3), "acknowledgedStatus": if n % 4 == 0 { "Acknowledged" } else { "None" },
                // Blacklist and Signature alerts say why; attributes on some (no draw from the
                // generator, so every other value stays as seeded).
                "blacklistDetails": if n % 3 == 2 {
                    json!({"blacklistedEntity": dst, "bytesIn": 1200 + n, "bytesOut": 300 + n,
                           "listLabels": ["Known C2"], "listUuids": ["6f1c2d3e-0000-4000-8000-00000000c2c2"]})
                } else { Value::Null },
                "sigEvalDetails": if n % 3 == 1 {
                    json!({"id": 2_013_028 + n, "message": "ET POLICY Outbound connection to a suspicious host"})
                } else { Value::Null },
                "sourceIpAttributes": if n % 2 == 0 { json!([{"k": "asset", "t": "string", "v": "workstation"}]) } else { json!([]) },
                "destIpAttributes": if n % 3 == 2 { json!([{"k": "reputation", "t": "string", "v": "malicious"}]) } else { json!([]) },
            })
        })
        .collect();
    c.insert("alerts", alert_list);
    let sensors = vec![
        json!({"id": rng.uuid(), "name": "External Sources", "isAuthorized": false, "listeningInterfaces": [],
               "isNetflowGenerator": true, "bytesIn": null, "bytesOut": null, "lastActive": null}),
        json!({"id": rng.uuid(), "name": format!("10.{net}.0.4"), "isAuthorized": true, "listeningInterfaces": ["eth0", "eth1"],
               "isNetflowGenerator": false, "bytesIn": 18_442_001, "bytesOut": 2_100_340, "lastActive": "2024-05-02T10:00:00Z"}),
    ];
    c.insert("sensors", sensors);
    let mut ip_summaries = Vec::new();
    let mut port_summaries = Vec::new();
    for n in 0..6 {
        let (src, dst) = (
            ip(rng),
            if n % 3 == 2 {
                format!("203.0.113.{}", 10 + n)
            } else {
                ip(rng)
            },
        );
        let common = json!({
            "id": rng.uuid(), "sourceId": n, "sourceIpAddress": src, "sourceMacAddress": "00:16:3e:00:00:01",
            "destinationId": n + 100, "destinationIpAddress": dst, "destinationMacAddress": "00:16:3e:00:00:02",
            "bytesIn": 1000 * (n + 1), "bytesOut": 300 * (n + 1), "packetsIn": 10 + n, "packetsOut": 5 + n,
            "continuingConnectionCount": n % 2, "terminatedConnectionCount": 3 + n, "totalDuration": 60 * (n + 1),
            "averageDuration": 20, "sourceCity": null, "sourceCountry": null, "destinationCity": null,
            "destinationCountry": if n % 3 == 2 { json!("Canada") } else { Value::Null },
            "sourceDomainName": src, "dstDomainName": if n % 3 == 2 { json!("cdn.example.net") } else { json!(dst) },
        });
        let mut ip_row = common.clone();
        ip_row["serverPortCount"] = json!(2);
        ip_row["serverPorts"] = json!("53,443");
        ip_row["clientServerRelationship"] = json!(if n % 2 == 0 { "CLIENT" } else { "SERVER" });
        ip_summaries.push(ip_row);
        let mut port_row = common;
        port_row["id"] = json!(rng.uuid());
        port_row["serverPort"] = json!([443, 53, 22][n % 3]);
        port_row["protocol"] = json!("6");
        port_row["startTime"] = json!(format!("2024-05-01T{:02}:00:00.000Z", 8 + n));
        port_row["endTime"] = json!(format!("2024-05-01T{:02}:30:00.000Z", 8 + n));
        port_summaries.push(port_row);
    }
    c.insert("ipsummary", ip_summaries);
    c.insert("portsummary", port_summaries);
    let dns = (0..5)
        .map(|n| {
            json!({"id": rng.uuid(), "domainName": DOMAINS[n],
                   "resolvedIp": format!("203.0.113.{}", 20 + n), "requestOriginIp": ip(rng), "nameserverIp": format!("10.{net}.0.53"),
                   "nodeLabel": "sensor-1", "requestTime": BASE_EPOCH + 3600 * n as i64, "byteCount": 120 + n, "pktCount": 2})
        })
        .collect();
    c.insert("dns", dns);
    c.insert(
        "internal_networks",
        vec![
            json!({"cidr": format!("10.{net}.0.0/24"), "notes": "Office LAN"}),
            json!({"cidr": format!("10.{net}.1.0/24"), "notes": "Servers"}),
        ],
    );
    let users = ["jdoe", "asmith", "bwayne"];
    let agents: Vec<Value> = (0..3)
        .map(|n| {
            json!({"agentUuid": rng.uuid(), "agentVersion": "3.4.1", "firstSeenTime": "2024-03-08 13:57:39",
                   "lastSeenTime": "2024-05-02 09:12:00", "lastSessionUser": users[n], "isMobile": false,
                   "isConnected": n != 2, "coreVersion": "3.4", "coreArchitecture": "x86_64", "coreOs": "windows",
                   "operatingSystem": "Windows 11 Pro", "hostName": format!("WS-{:04}", 100 * (index + 1) + n),
                   "hardwareVendor": VENDORS[n], "hardwareModel": "Latitude 7440", "arch": "x64",
                   "osDistro": null, "osVersion": "10.0.22631", "kernelVersion": null, "operatingSystemReleaseId": "23H2",
                   "ipAddress": ip(rng), "secondaryIpAddress": null, "ipAddresses": [], "serialNumber": format!("SN{:06}", rng.below(1_000_000)),
                   "deviceIdentifier": null, "cpuArchitectureEnum": 1})
        })
        .collect();
    let processes = agents
        .iter()
        .enumerate()
        .flat_map(|(n, a)| {
            ["powershell.exe", "chrome.exe"].iter().enumerate().map(move |(k, name)| {
                json!({"id": (n * 2 + k + 1) as u64, "agentUuid": a["agentUuid"], "processName": name,
                       "processPath": format!("C:\\Windows\\System32\\{name}"), "parentProcessName": "explorer.exe",
                       "parentProcessPath": "C:\\Windows\\explorer.exe", "commandLine": format!("{name} -NoProfile"),
                       "username": a["lastSessionUser"], "firstSeenTime": "2024-05-01T08:00:00.000Z",
                       "lastSeenTime": "2024-05-02T08:00:00.000Z", "lastEndTime": "2024-05-02T08:05:00.000Z",
                       "seenCount": 4, "activeCount": 1})
            })
        })
        .collect();
    let software = agents
        .iter()
        .enumerate()
        .flat_map(|(n, a)| {
            [("7-Zip", "23.01"), ("Google Chrome", "124.0.6367.91")].iter().enumerate().map(move |(k, (name, version))| {
                json!({"arch": 1, "type": 0, "packageManager": 0, "installTimestamp": "2024-01-10T10:00:00.000Z",
                       "uninstallTimestamp": null, "name": name, "version": version, "vendor": "Vendor",
                       "installPath": format!("C:\\Program Files\\{name}"), "appDataPath": null, "sharedDataPath": null,
                       "installedForUser": null, "installSource": null, "id": (n * 2 + k + 1) as u64,
                       "agentUuid": a["agentUuid"], "softwareNotifyAction": null})
            })
        })
        .collect();
    c.insert("agents", agents);
    c.insert("processes", processes);
    c.insert("software", software);
    c
}
