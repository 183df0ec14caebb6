//! E-mail notifications against a real SMTP server (aiosmtpd, from PyPI, started here on
//! loopback): plain SMTP, and STARTTLS with authentication against a private CA; the
//! headers, body, link and escaping of what arrives; `channels test` and its exit code; and
//! `watchfloor serve` sending what a rule asked for, with the password in no output.

mod common;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const PASSWORD: &str = "canary-smtp-password-51c9";

/// aiosmtpd on two free ports, writing what it receives into a folder.
struct Smtp {
    child: Child,
    dir: PathBuf,
    plain: u16,
    tls: u16,
    ca: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Smtp {
    fn start(dir: &Path) -> Smtp {
        let ca = watchfloor_simulators::tls::SimCa::new("smtp").unwrap();
        let (chain, key) = ca.server_pem();
        let (cert_file, key_file, ca_file) = (
            dir.join("smtp-cert.pem"),
            dir.join("smtp-key.pem"),
            dir.join("smtp-ca.pem"),
        );
        std::fs::write(&cert_file, chain).unwrap();
        std::fs::write(&key_file, key).unwrap();
        std::fs::write(&ca_file, &ca.ca_pem).unwrap();
        let mail = dir.join("mail");
        std::fs::create_dir_all(&mail).unwrap();
        let (plain, tls) = (free_port(), free_port());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/notify/smtp_server.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(&mail)
            .arg(plain.to_string())
            .arg(tls.to_string())
            .arg(&cert_file)
            .arg(&key_file)
            .args(["watchfloor", PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python runs the SMTP server");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        Smtp {
            child,
            dir: mail,
            plain,
            tls,
            ca: ca_file,
        }
    }

    /// The files it wrote whose names end with `suffix`, in order, once there are `n`.
    fn wait_for(&self, suffix: &str, n: usize) -> Vec<String> {
        let started = Instant::now();
        loop {
            let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == suffix))
                .collect();
            names.sort();
            if names.len() >= n {
                return names
                    .iter()
                    .map(|p| std::fs::read_to_string(p).unwrap())
                    .collect();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{n} .{suffix} files did not arrive; got {}",
                names.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(dir: &Path, smtp: &Smtp, password: &str) -> PathBuf {
    std::fs::write(dir.join("smtp-password"), password).unwrap();
    let path = dir.join("watchfloor.toml");
    std::fs::write(
        &path,
        format!(
            r#"[storage]
url = "sqlite://wf.db"

[server]
public_url = "https://soc.example/"

[[channels]]
name = "plain"
kind = "email"
smtp = "smtp://127.0.0.1:{}"
from = "watchfloor@soc.example"
to = ["oncall@soc.example"]

[[channels]]
name = "secure"
kind = "email"
smtp = "smtp://127.0.0.1:{}"
ca_file = "{}"
username = "watchfloor"
password = {{ file = "smtp-password" }}
from = "watchfloor@soc.example"
to = ["lead@soc.example", "oncall@soc.example"]
"#,
            smtp.plain,
            smtp.tls,
            smtp.ca.display()
        ),
    )
    .unwrap();
    path
}

/// A header's value in a raw message (unfolded).
fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

#[test]
fn channels_test_sends_over_plain_smtp_and_starttls_with_authentication() {
    let dir = tempfile::tempdir().unwrap();
    if python_for("the e-mail tests (aiosmtpd)").is_none() {
        return;
    }
    let smtp = Smtp::start(dir.path());
    let cfg = config(dir.path(), &smtp, PASSWORD);
    let cfg = cfg.to_str().unwrap();

    let out = watchfloor(dir.path(), &["--config", cfg, "channels", "test", "plain"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = watchfloor(dir.path(), &["--config", cfg, "channels", "test", "secure"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mail = smtp.wait_for("eml", 2);
    assert_eq!(
        smtp.wait_for("auth", 1),
        ["watchfloor"],
        "logged in over TLS"
    );
    for m in &mail {
        assert!(
            header(m, "Subject").is_some_and(|s| s.contains("test message")),
            "{m}"
        );
        assert!(
            header(m, "Message-ID").is_some_and(|s| s.starts_with("<test-")),
            "{m}"
        );
        assert_eq!(header(m, "From"), Some("watchfloor@soc.example"));
    }
    assert!(header(&mail[1], "To").is_some_and(|t| t.contains("lead@soc.example")));

    // A wrong password: exit 1 with the server's refusal, and the password in no output.
    config(dir.path(), &smtp, "not-the-password");
    let out = watchfloor(dir.path(), &["--config", cfg, "channels", "test", "secure"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("channel secure"), "{}", out.stderr);
    assert!(out.stderr.to_lowercase().contains("auth"), "{}", out.stderr);
    // A channel that does not exist is named.
    let out = watchfloor(dir.path(), &["--config", cfg, "channels", "test", "nope"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("no channel `nope`"), "{}", out.stderr);

    let out = watchfloor(
        dir.path(),
        &["--config", cfg, "channels", "list", "--output", "json"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(list[1]["name"], "secure");
    assert_eq!(list[1]["kind"], "email");
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains(PASSWORD) && !text.contains("not-the-password"));
    }
}

/// `serve` sends what a rule asked for: the message names the incident, its severity,
/// organization and SLA state, links to it, and carries provider text as text.
#[test]
fn serve_mails_what_a_rule_notifies_with_provider_text_escaped() {
    let dir = tempfile::tempdir().unwrap();
    if python_for("the e-mail tests (aiosmtpd)").is_none() {
        return;
    }
    let smtp = Smtp::start(dir.path());
    let cfg = config(dir.path(), &smtp, PASSWORD);
    let cfg = cfg.to_str().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rules]]\nname = \"page\"\non = [\"created\"]\nwhen = 'severity:critical'\n\
         actions = [{ action = \"notify\", channel = \"plain\" }, { action = \"notify\", channel = \"secure\" }]\n",
    )
    .unwrap();
    let out = watchfloor(
        dir.path(),
        &["--config", cfg, "rules", "import", rules.to_str().unwrap()],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = watchfloor(
        dir.path(),
        &[
            "--config",
            cfg,
            "incidents",
            "create",
            "--name",
            "<script>alert(1)</script> *bold* & co",
            "--severity",
            "critical",
            "--org",
            "Acme <Corp>",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let served = Served::start(
        dir.path(),
        &["--config", cfg, "serve", "--listen", "127.0.0.1:0"],
        Some("info"),
        Stdio::piped(),
    );
    let mail = smtp.wait_for("eml", 2);
    let mut served = served;
    sigterm(served.child.id());
    let _ = served.child.wait();
    let mut log = String::new();
    use std::io::Read;
    served
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(!log.contains(PASSWORD), "{log}");

    for m in &mail {
        let subject = header(m, "Subject").unwrap();
        assert!(
            subject.contains("Critical") && subject.contains("incident 1"),
            "{subject}"
        );
        assert!(header(m, "Message-ID").is_some_and(|s| s.ends_with("@watchfloor>")));
        // The HTML part escapes; the plain part carries the text as it is.
        let decoded = quoted_printable_decode(m);
        let (plain, html) = decoded
            .split_once("Content-Type: text/html")
            .expect("an HTML part");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("*bold* &amp; co"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("Acme &lt;Corp&gt;"), "{html}");
        assert!(html.contains("https://soc.example/incidents/1"), "{html}");
        assert!(plain.contains("Organization: Acme <Corp>"), "{plain}");
        assert!(plain.contains("Severity: Critical"), "{plain}");
        assert!(plain.contains("SLA: ok"), "{plain}");
        assert!(
            plain.contains("Open: https://soc.example/incidents/1"),
            "{plain}"
        );
    }
    let out = watchfloor(
        dir.path(),
        &["--config", cfg, "notifications", "list", "--output", "json"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|n| n["status"] == "sent")
    );
    let _ = std::io::stdout().flush();
}

/// The message with its quoted-printable soft breaks and escapes undone, for searching.
fn quoted_printable_decode(m: &str) -> String {
    let joined = m.replace("=\r\n", "").replace("=\n", "");
    let mut out = Vec::new();
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A delivery that failed for good is a line of `instances health`, which then exits 1.
#[test]
fn instances_health_names_a_channel_whose_delivery_failed_for_good() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    use watchfloor_core::channel::{ChannelConfig, ChannelKind};
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/wf.db", dir.path().display());
    let clock = Arc::new(AtomicI64::new(
        chrono::Utc::now().timestamp_nanos_opt().unwrap(),
    ));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Arc::new(watchfloor_storage::SqlStore::open(&db).await.unwrap());
        let channel = ChannelConfig {
            name: "hook".into(),
            kind: ChannelKind::Webhook,
            smtp: None,
            ca_file: None,
            username: None,
            password: None,
            from: None,
            to: Vec::new(),
            // Nothing listens on port 1.
            url: Some("http://127.0.0.1:1/hook".into()),
            secret: None,
            max_per_hour: 30,
            give_up_after: Duration::from_secs(60),
        };
        let at = clock.clone();
        let service =
            watchfloor_service::Service::new(store, watchfloor_core::SlaPolicy::default())
                .with_channels(vec![channel], None)
                .with_clock(Arc::new(move || {
                    chrono::DateTime::from_timestamp_nanos(at.load(Ordering::SeqCst))
                }));
        let admin = watchfloor_service::Caller::local("root");
        service
            .import_rules(
                &admin,
                "[[rules]]\nname = \"tell\"\non = [\"created\"]\nactions = [{ action = \"notify\", channel = \"hook\" }]\n",
                true,
            )
            .await
            .unwrap();
        service
            .create(
                &admin,
                watchfloor_storage::ManualIncident {
                    name: "unreachable".into(),
                    severity: watchfloor_core::Severity::High,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        while service.run_rules(100).await.unwrap() > 0 {}
        for _ in 0..4 {
            service.deliver_notifications().await.unwrap();
            clock.fetch_add(Duration::from_secs(300).as_nanos() as i64, Ordering::SeqCst);
        }
    });
    let out = watchfloor(dir.path(), &["--db", &db, "instances", "health"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("channel hook: 1 delivery failed for good in the last day"),
        "{}",
        out.stdout
    );
}

/// `[[reports]]` with two `serve` processes on one database: the report of the day just
/// ended is mailed exactly once, its HTML part the customer report of its organization alone
/// with provider text escaped, its incidents attached as CSV.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_report_is_mailed_once_by_two_serve_processes() {
    let dir = tempfile::tempdir().unwrap();
    if python_for("the e-mail tests (aiosmtpd)").is_none() {
        return;
    }
    let smtp = Smtp::start(dir.path());
    let cfg = config(dir.path(), &smtp, PASSWORD);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[[reports]]\norg = \"Acme\"\nevery = \"day\"\nchannel = \"plain\"\n");
    std::fs::write(&cfg, text).unwrap();
    let cfg = cfg.to_str().unwrap();
    let db = match watchfloor_storage::test_cluster::fresh_database().await {
        Some(pg) => pg,
        None => format!("sqlite://{}/wf.db", dir.path().display()),
    };
    for (name, org) in [
        ("<script>alert(1)</script> Beacon", "Acme"),
        ("Beacon again", "Acme"),
        ("Payroll exfil", "Globex"),
    ] {
        let out = watchfloor(
            dir.path(),
            &[
                "--config",
                cfg,
                "--db",
                &db,
                "incidents",
                "create",
                "--name",
                name,
                "--severity",
                "high",
                "--org",
                org,
            ],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    // They were first seen yesterday (the day whose report is due today).
    let yesterday = (chrono::Utc::now() - chrono::TimeDelta::days(1)).timestamp_micros();
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db).await.unwrap();
    sqlx::query("UPDATE incidents SET created = $1, occurred = $1")
        .bind(yesterday)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let serve = || {
        Served::start(
            dir.path(),
            &[
                "--config",
                cfg,
                "--db",
                &db,
                "serve",
                "--listen",
                "127.0.0.1:0",
            ],
            None,
            Stdio::null(),
        )
    };
    let (first, second) = (serve(), serve());
    let mail = smtp.wait_for("eml", 1);
    // Both keep running a while longer: nothing else arrives.
    std::thread::sleep(Duration::from_secs(4));
    for mut s in [first, second] {
        sigterm(s.child.id());
        let _ = s.child.wait();
    }
    let all = smtp.wait_for("eml", 1);
    assert_eq!(all.len(), 1, "one report, once");
    let m = &mail[0];
    let period = (chrono::Utc::now() - chrono::TimeDelta::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let subject = header(m, "Subject").unwrap();
    assert_eq!(subject, format!("watchfloor report: Acme, {period}"));
    let decoded = quoted_printable_decode(m);
    assert!(
        decoded.contains("Security monitoring report: Acme"),
        "{decoded}"
    );
    assert!(
        decoded.contains("&lt;script&gt;alert(1)&lt;/script&gt; Beacon"),
        "{decoded}"
    );
    assert!(!decoded.contains("Payroll"), "{decoded}");
    let html = decoded
        .split_once("Content-Type: text/html")
        .and_then(|(_, rest)| rest.split_once("Content-Disposition: attachment"))
        .map(|(html, _)| html)
        .expect("an HTML part, then the attachment");
    assert!(!html.contains("<script>"), "{html}");
    assert!(decoded.contains("Incidents first seen: 2"), "{decoded}");
    assert!(
        decoded.contains(&format!("filename=\"incidents-{period}.csv\"")),
        "{decoded}"
    );
}
