//! Notifications against receivers started here on port 0, with a clock the test moves (no
//! sleeps): webhook, Slack and Teams payloads and the webhook's signature; an outage that
//! ends; a storm throttled into digests; escalation of an unassigned critical incident; and
//! secrets that show nowhere.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use watchfloor_core::channel::{ChannelConfig, ChannelKind, SecretSource};
use watchfloor_core::{Change, Edit, Secret, Severity, SlaPolicy};
use watchfloor_service::{Caller, Service};
use watchfloor_storage::prelude::*;
use watchfloor_storage::{Actor, ManualIncident, NotificationFilter, Role, SqlStore};

/// What a receiver got: its headers and JSON body, in order.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    failing: Arc<AtomicBool>,
    /// Turned true as the first message arrives, if set: a stop that lands mid-send.
    stop_at_first: Arc<Mutex<Option<tokio::sync::watch::Sender<bool>>>>,
    url: String,
}

impl Receiver {
    async fn start() -> Receiver {
        let mut r = Receiver::default();
        let (got, failing, stop) = (r.got.clone(), r.failing.clone(), r.stop_at_first.clone());
        let app = axum::Router::new().route(
            "/hook/{token}",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (got, failing, stop) = (got.clone(), failing.clone(), stop.clone());
                async move {
                    if let Some(stop) = stop.lock().unwrap().take() {
                        let _ = stop.send(true);
                    }
                    if failing.load(Ordering::SeqCst) {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    got.lock().unwrap().push((headers, body));
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        r.url = format!(
            "http://{}/hook/T0KEN-IN-PATH",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        r
    }

    fn bodies(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }
}

/// A clock the test moves.
#[derive(Clone)]
struct Clock(Arc<AtomicI64>);

impl Clock {
    fn start() -> Clock {
        Clock(Arc::new(AtomicI64::new(
            Utc::now().timestamp_nanos_opt().unwrap(),
        )))
    }
    fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_nanos() as i64, Ordering::SeqCst);
    }
    /// Moves on to the next noon (UTC), so that a test that moves by the hour does not cross
    /// a day or a month by the time of day it runs at.
    fn to_next_noon(&self) {
        let now = self.reader()();
        let noon = now.date_naive().and_hms_opt(12, 0, 0).unwrap().and_utc();
        let next = if noon > now {
            noon
        } else {
            noon + chrono::TimeDelta::days(1)
        };
        self.advance((next - now).to_std().unwrap());
    }
    fn reader(&self) -> Arc<dyn Fn() -> DateTime<Utc> + Send + Sync> {
        let at = self.0.clone();
        Arc::new(move || DateTime::from_timestamp_nanos(at.load(Ordering::SeqCst)))
    }
}

const CANARY: &str = "canary-hook-secret-8f3a";

fn channel(name: &str, kind: ChannelKind, url: &str, max_per_hour: u32) -> ChannelConfig {
    ChannelConfig {
        name: name.into(),
        kind,
        smtp: None,
        ca_file: None,
        username: None,
        password: None,
        from: None,
        to: Vec::new(),
        url: Some(url.into()),
        secret: (kind == ChannelKind::Webhook).then(|| SecretSource::Inline(Secret::new(CANARY))),
        max_per_hour,
        give_up_after: Duration::from_secs(24 * 3600),
    }
}

struct Setup {
    service: Service,
    store: Arc<SqlStore>,
    clock: Clock,
    admin: Caller,
    _dir: tempfile::TempDir,
}

async fn setup(channels: Vec<ChannelConfig>, rules: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqlStore::open(&format!("sqlite://{}/wf.db", dir.path().display()))
            .await
            .unwrap(),
    );
    store
        .create_user(&Actor::default(), "alice", Role::Analyst, &[], "hash")
        .await
        .unwrap();
    let clock = Clock::start();
    let service = Service::new(store.clone(), SlaPolicy::default())
        .with_channels(channels, Some("https://soc.example".into()))
        .with_clock(clock.reader());
    let admin = Caller::local("root");
    service.import_rules(&admin, rules, true).await.unwrap();
    Setup {
        service,
        store,
        clock,
        admin,
        _dir: dir,
    }
}

impl Setup {
    async fn create(&self, name: &str, severity: Severity) -> i64 {
        self.service
            .create(
                &self.admin,
                ManualIncident {
                    name: name.into(),
                    severity,
                    organization: Some("Acme".into()),
                    ..ManualIncident::default()
                },
            )
            .await
            .unwrap()
            .id
    }

    /// Runs the rules until no event is left, then a delivery pass; messages sent.
    async fn settle(&self) -> usize {
        while self.service.run_rules(500).await.unwrap() > 0 {}
        self.service.deliver_notifications().await.unwrap()
    }
}

fn notify_rule(channel: &str) -> String {
    format!(
        "[[rules]]\nname = \"tell\"\non = [\"created\"]\nwhen = 'severity:critical'\nactions = [{{ action = \"notify\", channel = \"{channel}\" }}]\n"
    )
}

/// Every incident named in the receiver's messages, with how many times each.
fn named(bodies: &[Value]) -> std::collections::BTreeMap<i64, usize> {
    let mut out = std::collections::BTreeMap::new();
    for b in bodies {
        for i in b["incidents"].as_array().into_iter().flatten() {
            *out.entry(i["id"].as_i64().unwrap()).or_default() += 1;
        }
    }
    out
}

/// A webhook carries the documented body, a stable delivery id, and a valid HMAC signature
/// over its timestamp and body; Slack and Teams get their payloads, provider text as text.
#[tokio::test]
async fn each_kind_posts_its_payload_and_the_webhook_is_signed() {
    let hook = Receiver::start().await;
    let slack = Receiver::start().await;
    let teams = Receiver::start().await;
    let rules = format!(
        "{}\n[[rules]]\nname = \"chat\"\non = [\"created\"]\nwhen = 'severity:critical'\nactions = [{{ action = \"notify\", channel = \"slack\" }}, {{ action = \"notify\", channel = \"teams\" }}]\n",
        notify_rule("hook")
    );
    let s = setup(
        vec![
            channel("hook", ChannelKind::Webhook, &hook.url, 30),
            channel("slack", ChannelKind::Slack, &slack.url, 30),
            channel("teams", ChannelKind::Teams, &teams.url, 30),
        ],
        &rules,
    )
    .await;
    let id = s
        .create("<script>alert(1)</script> *bold*", Severity::Critical)
        .await;
    s.create("quiet", Severity::Low).await;
    assert_eq!(s.settle().await, 3);

    let got = hook.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let (headers, body) = &got[0];
    assert_eq!(body["kind"], "incident");
    assert_eq!(body["incidents"][0]["id"], id);
    assert_eq!(
        body["incidents"][0]["name"],
        "<script>alert(1)</script> *bold*"
    );
    assert_eq!(body["incidents"][0]["severity"], "Critical");
    assert_eq!(body["incidents"][0]["organization"], "Acme");
    assert_eq!(body["incidents"][0]["sla"], "ok");
    assert_eq!(body["incidents"][0]["rule"], "tell");
    assert_eq!(
        body["incidents"][0]["link"],
        format!("https://soc.example/incidents/{id}")
    );
    let delivery = headers["x-watchfloor-delivery"].to_str().unwrap();
    assert_eq!(body["delivery"], delivery);
    let timestamp: i64 = headers["x-watchfloor-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let raw = serde_json::to_vec(body).unwrap();
    assert_eq!(
        headers["x-watchfloor-signature"].to_str().unwrap(),
        watchfloor_notify::signature(CANARY, timestamp, &raw),
        "the signature is HMAC-SHA256 of `timestamp.body`"
    );
    assert_ne!(
        headers["x-watchfloor-signature"].to_str().unwrap(),
        watchfloor_notify::signature("another secret", timestamp, &raw)
    );

    let slack = slack.bodies();
    assert_eq!(slack.len(), 1);
    let text = slack[0].to_string();
    assert!(slack[0]["blocks"].is_array() && slack[0]["text"].is_string());
    assert!(
        !text.contains("<script>") && !text.contains("*bold*"),
        "{text}"
    );
    assert!(text.contains(&format!("<https://soc.example/incidents/{id}|open>")));
    let teams = teams.bodies();
    assert_eq!(teams.len(), 1);
    assert_eq!(teams[0]["type"], "message");
    let card = &teams[0]["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    let text = card.to_string();
    assert!(
        !text.contains("<script>") && !text.contains(" *bold*"),
        "{text}"
    );

    let listed = s
        .service
        .notifications(&s.admin, NotificationFilter::default())
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    assert!(
        listed
            .iter()
            .all(|n| n.status == "sent" && n.incident_id == id)
    );
}

/// The receiver fails for a while, then recovers: each notification arrives exactly once,
/// after retries spaced by the backoff; the channel's state shows the error meanwhile.
#[tokio::test]
async fn an_outage_delays_notifications_and_loses_none() {
    let hook = Receiver::start().await;
    let s = setup(
        vec![channel("hook", ChannelKind::Webhook, &hook.url, 30)],
        &notify_rule("hook"),
    )
    .await;
    hook.failing.store(true, Ordering::SeqCst);
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(s.create(&format!("critical {n}"), Severity::Critical).await);
    }
    assert_eq!(s.settle().await, 0);
    for _ in 0..6 {
        s.clock.advance(Duration::from_secs(90));
        assert_eq!(s.service.deliver_notifications().await.unwrap(), 0);
    }
    let state = s.service.channel_views(&s.admin).await.unwrap();
    assert_eq!(state[0].stats.waiting, 5);
    assert!(
        state[0]
            .stats
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("503")),
        "{state:?}"
    );
    hook.failing.store(false, Ordering::SeqCst);
    let mut sent = 0;
    for _ in 0..20 {
        s.clock.advance(Duration::from_secs(300));
        sent += s.service.deliver_notifications().await.unwrap();
    }
    assert_eq!(sent, 5);
    let named = named(&hook.bodies());
    assert_eq!(named.keys().copied().collect::<Vec<_>>(), ids);
    assert!(named.values().all(|n| *n == 1), "{named:?}");
    let state = s.service.channel_views(&s.admin).await.unwrap();
    assert_eq!(state[0].stats.waiting, 0);
}

/// A delivery that keeps failing past `give_up_after` fails for good: an entry on its
/// incident, a failed line in the channel's state.
/// A stop that lands while a message is being sent: that one is recorded as sent, no other
/// is tried, and those the pass had claimed are due again at once (not after their claim).
#[tokio::test]
async fn a_stop_mid_pass_records_the_message_sent_and_leaves_the_rest_due() {
    let hook = Receiver::start().await;
    let s = setup(
        vec![channel("hook", ChannelKind::Webhook, &hook.url, 1000)],
        &notify_rule("hook"),
    )
    .await;
    for n in 0..3 {
        s.create(&format!("critical {n}"), Severity::Critical).await;
    }
    while s.service.run_rules(500).await.unwrap() > 0 {}
    let (stop, stopping) = tokio::sync::watch::channel(false);
    *hook.stop_at_first.lock().unwrap() = Some(stop);
    let sent = s
        .service
        .deliver_notifications_until(&stopping)
        .await
        .unwrap();
    assert_eq!((sent, hook.bodies().len()), (1, 1));
    let state = s.service.channel_views(&s.admin).await.unwrap();
    assert_eq!(state[0].stats.waiting, 2, "{state:?}");
    // The clock has not moved: the two are due now.
    assert_eq!(s.service.deliver_notifications().await.unwrap(), 2);
    let named = named(&hook.bodies());
    assert_eq!(named.len(), 3);
    assert!(named.values().all(|n| *n == 1), "{named:?}");
}

#[tokio::test]
async fn a_delivery_that_fails_for_good_is_said_on_the_incident() {
    let hook = Receiver::start().await;
    let mut c = channel("hook", ChannelKind::Webhook, &hook.url, 30);
    c.give_up_after = Duration::from_secs(600);
    let s = setup(vec![c], &notify_rule("hook")).await;
    hook.failing.store(true, Ordering::SeqCst);
    let id = s.create("critical", Severity::Critical).await;
    s.settle().await;
    for _ in 0..10 {
        s.clock.advance(Duration::from_secs(300));
        s.service.deliver_notifications().await.unwrap();
    }
    let failed = s
        .service
        .notifications(
            &s.admin,
            NotificationFilter {
                status: Some("failed".into()),
                ..NotificationFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    let entries = s.store.entries(id).await.unwrap();
    assert!(
        entries.iter().any(|e| e.kind == "notification"
            && e.body["text"].as_str().unwrap().contains("failed for good")),
        "{entries:?}"
    );
    let state = s.service.channel_views(&s.admin).await.unwrap();
    assert_eq!(state[0].stats.failed_last_day, 1);
    hook.failing.store(false, Ordering::SeqCst);
    s.clock.advance(Duration::from_secs(3600));
    assert_eq!(
        s.service.deliver_notifications().await.unwrap(),
        0,
        "not sent after giving up"
    );
}

/// 300 critical incidents in a minute on a channel of 30 an hour: at most 30 messages in the
/// hour (one each while they fit, then a digest), and one digest of the rest once the window
/// allows; every incident named exactly once across them.
#[tokio::test]
async fn a_storm_is_throttled_into_digests_naming_every_incident_once() {
    let hook = Receiver::start().await;
    let s = setup(
        vec![channel("hook", ChannelKind::Webhook, &hook.url, 30)],
        &notify_rule("hook"),
    )
    .await;
    let mut ids = Vec::new();
    for n in 0..300 {
        ids.push(s.create(&format!("storm {n}"), Severity::Critical).await);
        if n % 20 == 19 {
            // Deliveries run while the storm goes on, every few seconds.
            s.clock.advance(Duration::from_secs(4));
            s.settle().await;
        }
    }
    for _ in 0..10 {
        s.clock.advance(Duration::from_secs(60));
        s.settle().await;
    }
    let in_the_hour = hook.bodies();
    assert!(in_the_hour.len() <= 30, "{} messages", in_the_hour.len());
    assert!(in_the_hour.iter().any(|b| b["kind"] == "digest"));
    s.clock.advance(Duration::from_secs(3600));
    s.settle().await;
    let all = hook.bodies();
    assert_eq!(all.len(), in_the_hour.len() + 1, "the rest in one digest");
    assert_eq!(all.last().unwrap()["kind"], "digest");
    let named = named(&all);
    assert_eq!(named.keys().copied().collect::<Vec<_>>(), ids);
    assert!(named.values().all(|n| *n == 1));
}

/// Escalation as docs/rules/escalate-unassigned.toml says it: an unassigned critical incident
/// notifies at 15 minutes and again at breach; once assigned, nothing more.
#[tokio::test]
async fn an_unassigned_critical_incident_escalates_until_someone_takes_it() {
    let hook = Receiver::start().await;
    let rules = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/rules/escalate-unassigned.toml"),
    )
    .unwrap();
    let s = setup(
        vec![
            channel("oncall", ChannelKind::Webhook, &hook.url, 30),
            channel("oncall-lead", ChannelKind::Webhook, &hook.url, 30),
        ],
        &rules,
    )
    .await;
    let tick = async |minutes: u64| {
        s.clock.advance(Duration::from_secs(60 * minutes));
        s.service.fire_schedules().await.unwrap();
        s.service.fire_sla_triggers().await.unwrap();
        s.settle().await;
        hook.bodies().len()
    };
    let id = s
        .create("ransomware on a domain controller", Severity::Critical)
        .await;
    let quiet = s.create("low noise", Severity::Low).await;
    assert_eq!(tick(5).await, 0, "not yet 15 minutes");
    assert_eq!(tick(11).await, 1, "at 15 minutes");
    assert_eq!(tick(10).await, 1, "once per incident, not each tick");
    assert_eq!(tick(40).await, 2, "again at breach");
    s.service
        .change(
            &s.admin,
            id,
            None,
            &Change::Update(Edit {
                owner: Some(Some("alice".into())),
                ..Edit::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(tick(60).await, 2, "assigned: no more");
    let named = named(&hook.bodies());
    assert!(!named.contains_key(&quiet));
    let kinds: Vec<String> = hook
        .bodies()
        .iter()
        .map(|b| b["incidents"][0]["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["schedule", "sla-breached"]);
}

/// The webhook secret is a canary: it shows in no channel view, no error, no debug output.
#[tokio::test]
async fn secrets_show_nowhere() {
    let hook = Receiver::start().await;
    let s = setup(
        vec![channel("hook", ChannelKind::Webhook, &hook.url, 30)],
        &notify_rule("hook"),
    )
    .await;
    hook.failing.store(true, Ordering::SeqCst);
    s.create("critical", Severity::Critical).await;
    s.settle().await;
    let views = serde_json::to_string(&s.service.channel_views(&s.admin).await.unwrap()).unwrap();
    let error = s
        .service
        .test_channel(&s.admin, "hook")
        .await
        .unwrap_err()
        .to_string();
    let debug = format!("{:?}", s.service.channels());
    for shown in [&views, &error, &debug] {
        assert!(!shown.contains(CANARY), "{shown}");
        assert!(!shown.contains("T0KEN-IN-PATH"), "{shown}");
    }
    assert!(error.contains("503"), "{error}");
    // Only users who see every organization read channels.
    let scoped = Caller {
        name: "gina".into(),
        role: Role::Analyst,
        scope: watchfloor_storage::Scope::Orgs(vec!["Globex".into()]),
        address: None,
    };
    assert!(s.service.channel_views(&scoped).await.is_err());
    let theirs = s
        .service
        .notifications(&scoped, NotificationFilter::default())
        .await
        .unwrap();
    assert!(
        theirs.is_empty(),
        "another organization's notifications stay hidden"
    );
    let _ = TimeDelta::zero();
}

/// A `[[reports]]` schedule: once a period is over, its report goes out once (one service finds it due; a second one on the same store sends nothing),
/// with that organization's figures alone; a receiver that fails gets it again later under
/// the same delivery id.
#[tokio::test]
async fn a_scheduled_report_goes_out_once_per_period_with_its_organization_alone() {
    let hook = Receiver::start().await;
    let s = setup(
        vec![channel("acme-hook", ChannelKind::Webhook, &hook.url, 30)],
        "",
    )
    .await;
    let schedule = vec![watchfloor_core::report::ReportSchedule {
        org: "Acme".into(),
        every: watchfloor_core::report::Every::Day,
        channel: "acme-hook".into(),
    }];
    let service = s.service.clone().with_reports(schedule.clone());
    for (name, org) in [
        ("Beacon <b>1</b>", "Acme"),
        ("Beacon 2", "Acme"),
        ("Payroll", "Globex"),
    ] {
        service
            .create(
                &s.admin,
                ManualIncident {
                    name: name.into(),
                    severity: Severity::High,
                    organization: Some(org.into()),
                    ..ManualIncident::default()
                },
            )
            .await
            .unwrap();
    }
    // Tomorrow: today's report is due; the receiver is down at first.
    s.clock.advance(Duration::from_secs(24 * 3600));
    hook.failing.store(true, Ordering::SeqCst);
    assert_eq!(service.deliver_notifications().await.unwrap(), 0);
    let sends = service.report_sends(&s.admin).await.unwrap();
    assert_eq!(sends.len(), 1);
    assert_eq!(
        (sends[0].status.as_str(), sends[0].attempts),
        ("pending", 1)
    );
    assert!(sends[0].last_error.is_some());
    // Another process on the same store finds it queued and claimed: nothing to send.
    let other = Service::new(s.store.clone(), SlaPolicy::default())
        .with_channels(
            vec![channel("acme-hook", ChannelKind::Webhook, &hook.url, 30)],
            None,
        )
        .with_reports(schedule)
        .with_clock(s.clock.reader());
    hook.failing.store(false, Ordering::SeqCst);
    assert_eq!(other.deliver_notifications().await.unwrap(), 0);
    assert!(hook.bodies().is_empty());
    // After its backoff it goes, once.
    s.clock.advance(Duration::from_secs(5 * 60));
    assert_eq!(service.deliver_notifications().await.unwrap(), 1);
    assert_eq!(other.deliver_notifications().await.unwrap(), 0);
    assert_eq!(service.deliver_notifications().await.unwrap(), 0);
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let body = &bodies[0];
    assert_eq!(body["kind"], "report");
    assert_eq!(body["organization"], "Acme");
    assert_eq!(body["delivery"], sends[0].id);
    assert_eq!(body["figures"]["all"]["incidents"], 2);
    assert!(!body.to_string().contains("Globex"), "{body}");
    let sends = service.report_sends(&s.admin).await.unwrap();
    assert_eq!((sends[0].status.as_str(), sends[0].attempts), ("sent", 2));
    // Only a caller who sees every organization reads them.
    let alice = Caller {
        name: "alice".into(),
        role: Role::Analyst,
        scope: watchfloor_storage::Scope::Orgs(vec!["Acme".into()]),
        address: None,
    };
    assert!(service.report_sends(&alice).await.is_err());
}

/// A webhook receiver, and a service that sends Acme's report to it every `every`, its clock
/// at noon.
async fn acme_reports(every: watchfloor_core::report::Every) -> (Receiver, Setup, Service) {
    let hook = Receiver::start().await;
    let s = setup(
        vec![channel("acme-hook", ChannelKind::Webhook, &hook.url, 30)],
        "",
    )
    .await;
    // Regression: run between 23:00 and midnight (UTC), the hour these tests move on crossed
    // into the next day, whose report then fell due.
    s.clock.to_next_noon();
    let service = s
        .service
        .clone()
        .with_reports(vec![watchfloor_core::report::ReportSchedule {
            org: "Acme".into(),
            every,
            channel: "acme-hook".into(),
        }]);
    (hook, s, service)
}

/// A day's report missed while no process ran (four days down) goes out late, once each, for
/// every day after the last one sent; a new daily schedule sends only yesterday's.
/// Regression: a day's report was due during the next day only, so those days were never sent.
#[tokio::test]
async fn days_reports_missed_while_down_go_out_late_once_each() {
    let (hook, s, service) = acme_reports(watchfloor_core::report::Every::Day).await;
    let day = |back: i64| {
        (s.clock.reader()().date_naive() - chrono::TimeDelta::days(back))
            .format("%Y-%m-%d")
            .to_string()
    };
    let mut expected = vec![day(1)];
    assert_eq!(
        service.deliver_notifications().await.unwrap(),
        1,
        "only yesterday's"
    );
    s.clock.advance(Duration::from_secs(4 * 24 * 3600));
    expected.extend([day(4), day(3), day(2), day(1)]);
    assert_eq!(service.deliver_notifications().await.unwrap(), 4);
    s.clock.advance(Duration::from_secs(3600));
    assert_eq!(service.deliver_notifications().await.unwrap(), 0);
    let mut periods: Vec<String> = hook
        .bodies()
        .iter()
        .map(|b| b["period"].as_str().unwrap().to_string())
        .collect();
    periods.sort();
    expected.sort();
    assert_eq!(periods, expected);
}

/// Regression: a month's report was due only on the month's first day, so a process that was
/// down that day never sent it. It stays due all the next month and goes out once, late.
#[tokio::test]
async fn a_months_report_missed_on_its_first_day_goes_out_late_once() {
    use chrono::Datelike;
    let (hook, s, service) = acme_reports(watchfloor_core::report::Every::Month).await;
    // Past the first day, whatever day the test runs on.
    let now = s.clock.reader()();
    if now.day() == 1 {
        s.clock.advance(Duration::from_secs(24 * 3600));
    }
    let now = s.clock.reader()();
    let month = now
        .date_naive()
        .with_day(1)
        .unwrap()
        .checked_sub_months(chrono::Months::new(1))
        .unwrap()
        .format("%Y-%m")
        .to_string();
    assert_eq!(service.deliver_notifications().await.unwrap(), 1);
    s.clock.advance(Duration::from_secs(3600));
    assert_eq!(service.deliver_notifications().await.unwrap(), 0);
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(
        (bodies[0]["kind"].as_str(), bodies[0]["period"].as_str()),
        (Some("report"), Some(month.as_str()))
    );
}
