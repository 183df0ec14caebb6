//! Seeded incidents of the SWS simulator: signatures, comments, attachments and related
//! incidents.

use super::*;

pub(super) const CLASSIFICATIONS: [(&str, &str); 5] = [
    ("Web Server Attack", "Malicious Activity"),
    ("Scan for Web Servers", "No Category"),
    ("Brute Force Login", "Malicious Activity"),
    ("Outbound Malware Callback", "Malware"),
    ("Authorized Scanner <internal> & co", "Authorized Activity"),
];

/// When the first seeded incident was created: 2024-05-02 08:00, or, with `seeded_until`,
/// so that the newest (23 minutes apart, and up to a second) was created then.
pub(super) fn seeded_from(opts: &SimOptions<SymantecMssSetup>) -> NaiveDateTime {
    match opts.seeded_until {
        Some(until) => {
            until.naive_utc()
                - TimeDelta::minutes(23 * opts.setup.incidents.saturating_sub(1) as i64)
                - TimeDelta::seconds(1)
        }
        None => NaiveDateTime::parse_from_str("2024-05-02 08:00:00", "%Y-%m-%d %H:%M:%S")
            .expect("valid base time"),
    }
}

pub(super) fn seeded_incidents(opts: &SimOptions<SymantecMssSetup>) -> Vec<Incident> {
    let mut rng = Rng::new(opts.seed ^ 0x5e5_5e5);
    let base = seeded_from(opts);
    (0..opts.setup.incidents)
        .map(|n| {
            let created = base
                + TimeDelta::minutes(23 * n as i64)
                + TimeDelta::milliseconds(rng.below(1000) as i64);
            let (classification, category) = CLASSIFICATIONS[n % CLASSIFICATIONS.len()];
            let source_ip = format!("203.0.113.{}", 1 + rng.below(250));
            let signatures = (0..1 + n % 3)
                .map(|k| {
                    [
                        source_ip.clone(),
                        [
                            "SQLi Attempt",
                            "Symantec AV Alert",
                            "HTTP Directory Traversal",
                        ][k]
                            .to_string(),
                        if k == 1 {
                            String::new()
                        } else {
                            format!("SIG-{}", 1000 + rng.below(9000))
                        },
                        rng.below(20).to_string(),
                        rng.below(3).to_string(),
                    ]
                })
                .collect();
            let comments = (0..n % 4)
                .map(|k| {
                    (
                        created + TimeDelta::minutes(5 * (k as i64 + 1)),
                        format!("Note {} on <{classification}> & follow-up", k + 1),
                        format!("analyst{}", k + 1),
                    )
                })
                .collect();
            let attachments = (0..n % 3)
                .map(|k| {
                    (
                        9000 + (n * 10 + k) as u64,
                        format!("evidence-{k}.pcap"),
                        created + TimeDelta::minutes(30),
                        "analyst1".to_string(),
                        "Capture".to_string(),
                    )
                })
                .collect();
            Incident {
                number: 7_781_200 + n as u64,
                created,
                visible_at: created,
                updated: created + TimeDelta::minutes(1),
                severity: SEVERITIES[n % 4].to_string(),
                category: category.to_string(),
                classification: classification.to_string(),
                description: format!("{classification} from {source_ip}"),
                assessment: format!("Blocked at WAF; review host logs for {source_ip}."),
                source_ip,
                country: {
                    let (code, name) = [
                        ("NL", "Netherlands"),
                        ("CA", "Canada"),
                        ("US", "United States"),
                    ][n % 3];
                    (code.to_string(), name.to_string())
                },
                dest_org: "Globex".to_string(),
                signatures,
                related: (0..n % 3).map(|k| 7_781_100 + (n * 7 + k) as u64).collect(),
                status: if n % 5 == 4 { "Closed" } else { "Open" }.to_string(),
                resolution: if n % 5 == 4 { "Resolved" } else { "Unresolved" }.to_string(),
                reference: String::new(),
                assigned_person: if n % 2 == 0 {
                    String::new()
                } else {
                    "John".to_string()
                },
                assigned_org: if n % 2 == 0 {
                    "Globex SOC".to_string()
                } else {
                    String::new()
                },
                comments,
                attachments,
            }
        })
        .collect()
}
