//! Seeded data of the FES simulator: a provider, organizations with contacts and escalation
//! lists, and AROs; and adding AROs later.

use super::*;

pub const ORG_NAMES: [&str; 10] = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Capsule Corp",
    "Hooli",
    "Stark Industries",
    "Wayne Enterprises",
    "Cyberdyne",
    "Tyrell",
];
pub(super) const TITLES: [&str; 8] = [
    "Malware detected",
    "Vulnerable Software Detected",
    "Suspicious PowerShell execution",
    "Brute force login attempts",
    "Impossible travel sign-in",
    "Outdated TLS configuration",
    "New administrator account created",
    "Suspicious login | <img src=x onerror=alert(1)> `whoami`",
];
pub(super) const TYPES: [&str; 3] = ["Action", "Recommendation", "Observation"];
pub(super) const FIRST_NAMES: [&str; 6] = ["Dana", "Sam", "Alex", "Jordan", "Riley", "Morgan"];
pub(super) const LAST_NAMES: [&str; 6] =
    ["Scully", "Tremblay", "Nguyen", "Okafor", "Schmidt", "Ito"];
pub(super) const LOCALES: [&str; 3] = ["en-CA", "fr-CA", "en-US"];
pub(super) const JOB_TITLES: [&str; 3] = ["SOC Lead", "IT Manager", "CISO"];
pub(super) const POLICIES: [&str; 3] = ["Off", "Notify", "Isolate"];

impl FesState {
    pub(super) fn seeded(opts: &SimOptions<CovalenceManagedSecuritySetup>) -> Self {
        let mut rng = Rng::new(opts.seed);
        let provider = json!({"ID": rng.uuid(), "name": "Simulated MSSP"});
        let provider_id = provider["ID"].as_str().unwrap_or_default().to_string();
        let mut orgs = Vec::new();
        let mut escalation_lists = Vec::new();
        let created = "2023-01-15 09:00:00";
        for i in 0..opts.setup.orgs {
            let name = match i / ORG_NAMES.len() {
                0 => ORG_NAMES[i].to_string(),
                n => format!("{} {}", ORG_NAMES[i % ORG_NAMES.len()], n + 1),
            };
            let slug: String = name
                .to_lowercase()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect();
            let id = rng.uuid();
            let email = format!("soc@{slug}.example");
            let person = |rng: &mut Rng, n: usize| {
                let first = FIRST_NAMES[(i + n) % FIRST_NAMES.len()];
                let last = LAST_NAMES[(i * 2 + n) % LAST_NAMES.len()];
                let phone = format!("+1-555-{:04}", rng.below(10_000));
                (
                    first,
                    last,
                    format!(
                        "{}.{}@{slug}.example",
                        first.to_lowercase(),
                        last.to_lowercase()
                    ),
                    phone,
                )
            };
            // Every third organization has only a billing contact: no key contacts to list.
            let contact_types: &[&str] = if i % 3 == 2 {
                &["Billing"]
            } else {
                &[
                    "Administrative",
                    "Billing",
                    "Technical - Primary",
                    "Technical - Secondary",
                ]
            };
            let mut contacts = Vec::new();
            for (n, kind) in contact_types.iter().enumerate() {
                let (first, last, mail, phone) = person(&mut rng, n);
                let as_user = *kind == "Technical - Primary";
                contacts.push(json!({
                    "id": rng.uuid(),
                    "type": kind,
                    "contact_info": if as_user { Value::Null } else {
                        json!({"email": mail, "first_name": first, "last_name": last, "phone_number": phone})
                    },
                    "user": if as_user {
                        json!({"ID": rng.uuid(), "avatar_file_url": null, "email": mail, "first_name": first,
                               "last_name": last, "phone_number": phone})
                    } else { Value::Null },
                    "organization_id": id,
                    "provider_id": provider_id,
                    "created_time": created,
                    "last_updated_time": created,
                }));
            }
            let mut escalation = Vec::new();
            for n in 0..(2 + i % 2) {
                let (first, last, mail, phone) = person(&mut rng, n + 4);
                escalation.push(json!({
                    "id": rng.uuid(), "priority": n + 1, "first_name": first, "last_name": last,
                    "job_title": JOB_TITLES[n % 3], "phone_number": phone,
                    "secondary_phone": null, "email": mail, "notes": if n == 0 { "Call first, any hour" } else { "" },
                    "user_id": null, "avatar_file_url": null,
                }));
            }
            escalation_lists.push(json!({
                "id": rng.uuid(), "organization_id": id, "created_time": created,
                "last_updated_time": created, "escalation_contacts": escalation,
            }));
            orgs.push(json!({
                "ID": id,
                "id": id,
                "name": name,
                "client_id": format!("2022-{:04}-{}", 1000 + i, &slug[..slug.len().min(3)].to_uppercase()),
                "email": email,
                "email_aro_details": i % 2 == 1,
                "active_response_profile": {
                    "response_policy": POLICIES[i % 3],
                    "options": if i % 3 == 2 { json!({"exclusions": ["SRV-DC01"]}) } else { Value::Null },
                },
                "contacts": contacts,
                "profile": {"default_locale": LOCALES[i % LOCALES.len()], "industry": "Manufacturing"},
                "status": "active",
                "service_tier": "Complete",
            }));
        }
        let mut state = FesState {
            api_key: opts.setup.api_key.clone(),
            provider,
            orgs,
            aros: Vec::new(),
            by_id: Default::default(),
            comments: Vec::new(),
            escalation_lists,
            rng,
            next_serial: 1,
            next_task: 3800,
            transitions: Vec::new(),
            late_arrival: TimeDelta::from_std(opts.late_arrival).unwrap_or(TimeDelta::zero()),
        };
        let total = opts.setup.orgs * opts.setup.aros_per_org;
        // The newest is at most 19 minutes past its place in the spacing.
        let span =
            TimeDelta::minutes(opts.setup.minutes_apart * total.saturating_sub(1) as i64 + 19);
        let base = match opts.seeded_until {
            Some(until) => until.naive_utc() - span,
            None => NaiveDateTime::parse_from_str("2024-05-01 08:00:00", TIME_FORMAT)
                .expect("valid base time"),
        };
        for n in 0..total {
            let org = n % opts.setup.orgs.max(1);
            let minutes = opts.setup.minutes_apart * n as i64 + state.rng.below(20) as i64;
            let title = TITLES[(n * 5 + org) % TITLES.len()];
            let created = base + TimeDelta::minutes(minutes);
            state.new_aro(org, title, created);
            // About a third of the seeded AROs are already handled.
            if n % 3 == 2 {
                let last = state.aros.len() - 1;
                let resolution = if n % 2 == 0 { "Resolved" } else { "Dismissed" };
                state.aros[last]["resolution"] = json!(resolution);
                state.aros[last]["status"] = json!("Closed");
            }
        }
        state
    }

    pub(super) fn new_aro(
        &mut self,
        org_index: usize,
        title: &str,
        created: NaiveDateTime,
    ) -> Value {
        let org = &self.orgs[org_index.min(self.orgs.len().saturating_sub(1))];
        let organization = json!({"ID": org["ID"], "email": org["email"], "name": org["name"]});
        let serial = self.next_serial;
        self.next_serial += 1;
        let host = format!("WS-{:04}", self.rng.below(10_000));
        let user = *self.rng.pick(&["jdoe", "asmith", "bwayne", "lskywalker"]);
        let severity = *self.rng.pick(&FIELD_EFFECT_SEVERITIES);
        let kind = *self.rng.pick(&TYPES);
        let id = self.rng.uuid();
        let details = format!("{title} on {host} (user: {user}).");
        let time = ts(created);
        let aro = json!({
            "ID": id,
            "alert_key": null,
            "analyst_notes": null,
            "count": 1 + self.rng.below(5),
            "creation_time": time,
            "details": details,
            "details_markdown": details,
            "display_url": format!("https://portal.example/aro/{serial}"),
            "external_bug_id": null,
            "last_updated_time": time,
            "notes": null,
            "organization": organization,
            "references": [],
            "resolution": "Unresolved",
            "serial_id": serial.to_string(),
            "severity": severity,
            "status": "Open",
            "steps": [
                {"ID": self.rng.uuid(), "completed": false, "label": format!("Investigate activity on {host}."), "last_updated_time": time},
                {"ID": self.rng.uuid(), "completed": false, "label": format!("Reset the password of {user}."), "last_updated_time": time},
            ],
            "template_id": null,
            "title": title,
            "triage_id": null,
            "type": kind,
            // Not part of the portal's ARO: where broker actions find the host and user, and
            // when the portal starts showing the ARO.
            "data": {"host": host, "user": format!("{user}@{}", org["email"].as_str().unwrap_or("").trim_start_matches("soc@")),
                     "visible_at": ts(created + self.late_arrival)},
        });
        self.by_id.insert(id.clone(), self.aros.len());
        self.aros.push(aro.clone());
        aro
    }

    /// Replaces fields of a stored ARO (found by its id); returns it as stored.
    pub(super) fn override_aro(&mut self, aro: &Value, fields: Map<String, Value>) -> Value {
        let Some(stored) = aro["ID"].as_str().and_then(|id| self.aro_mut(id)) else {
            return aro.clone();
        };
        for (k, v) in fields {
            stored[k] = v;
        }
        stored.clone()
    }

    pub(super) fn aro_mut(&mut self, id: &str) -> Option<&mut Value> {
        let at = *self.by_id.get(id)?;
        self.aros.get_mut(at)
    }

    pub(super) fn org(&self, id: &str) -> Option<&Value> {
        self.orgs.iter().find(|o| o["ID"] == id)
    }
}
