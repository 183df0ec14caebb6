//! The web UI in a real browser: headless Chromium driven over WebDriver against
//! `watchfloor serve` on the FES simulator. Screenshots land in `target/screenshots/`.

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use watchfloor_simulators::{CovalenceManagedSecurityOptions, CovalenceManagedSecuritySimulator};
use webdriver::Browser;

const HOSTILE_TITLE: &str = "<img src=x onerror=alert(1)><script>alert(2)</script> Pwned login";
const HOSTILE_DETAILS: &str = "See [the runbook](javascript:alert(3)) and <img src=x onerror=alert(4)>.\n\n\
     ![track](javascript:alert(5)) **bold** <a href=\"javascript:alert(6)\">link</a>";

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots")
}

struct Setup {
    sim: CovalenceManagedSecuritySimulator,
    serve: Served,
    url: String,
    _dir: tempfile::TempDir,
}

/// The simulator with a hostile ARO, `serve` fetching and syncing it every 2 s, and users:
/// root (admin), dana (analyst of Acme) and sam (analyst of Globex), password "pw-long-enough".
async fn setup() -> Setup {
    let sim = CovalenceManagedSecuritySimulator::start(CovalenceManagedSecurityOptions::default())
        .await
        .unwrap();
    let mut fields = serde_json::Map::new();
    fields.insert("details".into(), Value::from(HOSTILE_DETAILS));
    fields.insert("details_markdown".into(), Value::from(HOSTILE_DETAILS));
    sim.add_aro_with(0, HOSTILE_TITLE, fields);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("watchfloor.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nurl = \"sqlite://wf.db\"\n[server]\nlisten = \"127.0.0.1:0\"\n\
             [[instances]]\nname = \"fes\"\nintegration = \"covalence-managed-security\"\n\
             fetch = true\nfetch_interval = \"2s\"\nfirst_fetch = \"2024-04-01T00:00:00Z\"\n\
             [instances.params]\nportal_url = \"{}\"\napi_key = \"{}\"\n\
             [[channels]]\nname = \"soc-hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/hook\"\n\
             secret = \"ui-canary-hook-secret\"\n",
            sim.portal_url, sim.api_key
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    for (name, role, orgs) in [
        ("root", "admin", vec![]),
        ("dana", "analyst", vec!["--org", "Acme"]),
        ("sam", "analyst", vec!["--org", "Globex"]),
    ] {
        create_user_with_password(dir.path(), cfg, name, role, &orgs, "pw-long-enough");
    }
    let serve = Served::start(dir.path(), &["--config", cfg, "serve"], None, Stdio::null());
    let url = format!("http://{}", serve.addr);
    let started = Instant::now();
    while !serve
        .call("GET", "/metrics", "", "")
        .contains("watchfloor_incidents_fetched_total")
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "nothing fetched"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Setup {
        sim,
        serve,
        url,
        _dir: dir,
    }
}

async fn log_in(b: &Browser, url: &str, name: &str) {
    b.goto(&format!("{url}/login")).await;
    let field = b.find("input[name=name]").await;
    b.type_into(&field, name).await;
    let password = b.find("input[name=password]").await;
    b.type_into(&password, "pw-long-enough").await;
    b.click(&b.find("form button[type=submit]").await).await;
    b.find("table.queue").await;
}

/// The texts of one column of the queue.
async fn column(b: &Browser, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for cell in b
        .find_all(&format!("table.queue tbody tr td:nth-child({n})"))
        .await
    {
        out.push(b.text(&cell).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_is_worked_in_the_browser() {
    if !can_run("the browser tests", browser_missing()) {
        return;
    }
    let s = setup().await;
    let b = Browser::start().await;
    let shots = screenshots();

    // A session is needed; the login form gives one.
    b.goto(&s.url).await;
    assert!(b.url().await.ends_with("/login"), "{}", b.url().await);
    log_in(&b, &s.url, "root").await;
    assert_eq!(b.dialog().await, None, "no script ran in the queue");
    let titles = column(&b, 4).await;
    assert!(titles.len() >= 5, "{titles:?}");
    assert_eq!(b.title().await, "Queue · watchfloor");
    assert!(
        titles
            .iter()
            .any(|t| t.contains("<img src=x onerror=alert(1)>")),
        "the hostile title shows as text: {titles:?}"
    );
    b.screenshot(&shots.join("queue.png")).await;
    // Regression (first hour: a 947-day-old alert showed "3h 55m left"): the seeded AROs
    // occurred in 2024 and were stored now, and their age says both clocks; the ARO made now
    // has one.
    let ages = column(&b, 9).await;
    let old: Vec<&String> = ages.iter().filter(|a| a.contains("d ")).collect();
    assert!(
        old.len() >= 5
            && old
                .iter()
                .all(|a| a.contains("\nstored ") && a.ends_with(" ago")),
        "{ages:?}"
    );
    assert!(ages.iter().any(|a| !a.contains("stored")), "{ages:?}");

    // Filter by organization: the URL keeps it.
    let org = b.find("form.filters input[name=organization]").await;
    b.type_into(&org, "Globex").await;
    b.click(&b.find("form.filters button[type=submit]").await)
        .await;
    b.wait_for_text("Clear").await;
    assert!(
        b.url().await.contains("organization=Globex"),
        "{}",
        b.url().await
    );
    let orgs = column(&b, 5).await;
    assert!(
        !orgs.is_empty() && orgs.iter().all(|o| o == "Globex"),
        "{orgs:?}"
    );

    // The hostile incident's page: its text shows, nothing runs, no unsafe link exists.
    b.goto(&format!("{}/?q=Pwned", s.url)).await;
    b.click(&b.find("table.queue tbody td.name a").await).await;
    b.find("div.incident").await;
    assert_eq!(b.dialog().await, None, "no script ran on the incident page");
    let heading = b.text(&b.find("h1").await).await;
    assert!(heading.contains("<script>alert(2)</script>"), "{heading}");
    assert!(
        b.find_all("img").await.is_empty(),
        "no image was made from provider text"
    );
    assert!(
        b.find_all("a[href^='javascript'], a[href^='JAVASCRIPT']")
            .await
            .is_empty(),
        "no javascript: link"
    );
    let details = b.text(&b.find("div.details").await).await;
    assert!(
        details.contains("the runbook") && details.contains("<img src=x onerror=alert(4)>"),
        "{details}"
    );
    assert_eq!(
        b.script("return typeof window.__pwned").await,
        Value::from("undefined")
    );
    let incident_url = b.url().await;
    let external_id = b.text(&b.find_all("aside dl dd").await[2]).await;

    // Assign it to me.
    b.click(&b.find("form.fields button[name=owner_me]").await)
        .await;
    b.wait_for_text("Saved.").await;
    let owner = b.find("form.fields input[name=owner]").await;
    assert_eq!(
        b.script("return document.querySelector('form.fields input[name=owner]').value")
            .await,
        "root"
    );
    let _ = owner;

    // A note sent to the provider.
    let note = b.find("form.note textarea").await;
    b.type_into(&note, "Called the site lead; <b>not</b> a drill")
        .await;
    b.click(&b.find("form.note input[name=mirror]").await).await;
    b.click(&b.find("form.note button").await).await;
    b.wait_for_text("Note added; it goes to the provider").await;

    // A command in the console, with its result as a table.
    let line = b.find("#command-line").await;
    b.type_into(&line, "!cov-mgsec-list-org").await;
    b.click(&b.find("form.console button").await).await;
    b.wait_for_text("Command ran.").await;
    let result = b.text(&b.find("div.result").await).await;
    assert!(
        result.contains("Acme") && result.contains("Globex"),
        "{result}"
    );
    assert!(!b.find_all("div.result table").await.is_empty(), "a table");
    b.script("window.scrollTo(0, 0)").await;
    b.screenshot(&shots.join("incident.png")).await;

    // Close it with a reason.
    b.goto(&format!("{incident_url}#close")).await;
    let reason = b.find("details#close select[name=reason]").await;
    b.click(&reason).await;
    b.click(&b.find("details#close option[value='False Positive']").await)
        .await;
    let notes = b.find("details#close textarea[name=notes]").await;
    b.type_into(&notes, "scanner noise").await;
    b.click(&b.find("details#close button").await).await;
    b.wait_for_text("Closed.").await;
    assert!(
        b.text(&b.find(".incident-head").await)
            .await
            .contains("closed")
    );

    // The provider side changes: the ARO is resolved and has the note (serve syncs after
    // each fetch).
    let started = Instant::now();
    loop {
        let aro = s
            .sim
            .aros()
            .into_iter()
            .find(|a| a["ID"] == external_id.as_str());
        let comments = s.sim.comments(&external_id);
        let noted = comments.iter().any(|c| {
            c["text"]
                .as_str()
                .unwrap_or_default()
                .contains("Called the site lead")
        });
        if aro.is_some_and(|a| a["resolution"] != "Unresolved") && noted {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the provider never saw the close and the note: {comments:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Bulk close two from the queue.
    b.goto(&s.url).await;
    let boxes = b.find_all("table.queue tbody input[type=checkbox]").await;
    b.click(&boxes[0]).await;
    b.click(&boxes[1]).await;
    b.click(&b.find("form.bulk button[value=close]").await)
        .await;
    b.wait_for_text("2 changed.").await;

    // Keyboard: j moves, a assigns to me: the row it is on, even with "every match" ticked.
    b.goto(&s.url).await;
    b.find("table.queue").await;
    b.click(&b.find("form.bulk input[name=all]").await).await;
    // (Keys typed into a form's field are the field's: focus leaves the box first.)
    b.click(&b.find("form.bulk span.hint").await).await;
    b.keys("j").await;
    b.keys("a").await;
    b.wait_for_text("1 changed.").await;

    // Every match of the queue's filters: one organization's open incidents set to Low, asked
    // once more (how many, and which) before anything changes.
    let low = format!("{}/?organization=Globex&severity=Low", s.url);
    b.goto(&low).await;
    let low_already = b.find_all("table.queue tbody tr").await.len();
    b.goto(&format!("{}/?organization=Globex", s.url)).await;
    let globex = b.find_all("table.queue tbody tr").await.len();
    assert!(globex > low_already);
    b.click(&b.find("form.bulk input[name=all]").await).await;
    b.click(&b.find("form.bulk select[name=severity]").await)
        .await;
    b.click(&b.find("form.bulk option[value=Low]").await).await;
    b.click(&b.find("form.bulk button[value=severity]").await)
        .await;
    b.wait_for_text(&format!("Set severity Low: {globex} incidents"))
        .await;
    assert_eq!(
        b.find_all("table.queue tbody tr").await.len(),
        globex.min(20)
    );
    b.screenshot(&shots.join("bulk-confirm.png")).await;
    b.click(&b.find("form.confirm button").await).await;
    // Those already Low are named as not changed, each through the rules of one.
    b.wait_for_text(&format!("{} changed.", globex - low_already))
        .await;
    b.goto(&low).await;
    assert_eq!(b.find_all("table.queue tbody tr").await.len(), globex);

    // The same note on every match, shown as text on the confirmation, then in each war room.
    b.goto(&format!("{}/?organization=Globex", s.url)).await;
    b.click(&b.find("form.bulk input[name=all]").await).await;
    let note = "Tracked in <b>#812</b>";
    b.type_into(&b.find("form.bulk input[name=note]").await, note)
        .await;
    b.click(&b.find("form.bulk button[value=note]").await).await;
    b.wait_for_text(&format!("Add the note to: {globex} incidents"))
        .await;
    b.wait_for_text(&format!("The note: {note}")).await;
    b.click(&b.find("form.confirm button").await).await;
    b.wait_for_text(&format!("{globex} noted.")).await;
    let first = b
        .find("table.queue tbody tr td a[href^='/incidents/']")
        .await;
    b.click(&first).await;
    b.wait_for_text(note).await;

    // The owner counts' "unassigned" is a filter too (regression: it was plain text, and the
    // owner box's empty value is no filter).
    b.goto(&s.url).await;
    let owners = column(&b, 8).await;
    assert!(owners.iter().any(|o| !o.is_empty()), "{owners:?}");
    let unassigned = owners.iter().filter(|o| o.is_empty()).count();
    b.click(&b.find("span.facet a[href*='owner%3A%22%22']").await)
        .await;
    b.find("span.facet a.on[href*='owner%3A%22%22']").await;
    assert_eq!(column(&b, 8).await, vec![String::new(); unassigned]);

    b.goto(&format!("{}/dashboard", s.url)).await;
    b.find("svg.chart").await;
    b.wait_for_text("covalence-managed-security").await;
    b.screenshot(&shots.join("dashboard.png")).await;

    // The Providers view: a month's figures per provider and organization, weekly trends.
    b.goto(&format!("{}/reports", s.url)).await;
    b.find("table.providers svg.spark rect").await;
    let text = b.body_text().await;
    assert!(
        text.contains("fes") && text.contains("Acme") && text.contains("Globex"),
        "{text}"
    );
    b.screenshot(&shots.join("providers.png")).await;
    // The customer report: a page of its own whose style its policy allows, and where the
    // hostile title is text and runs nothing.
    b.goto(&format!("{}/reports/customer?org=Acme", s.url))
        .await;
    b.wait_for_text("Security monitoring report: Acme").await;
    assert_eq!(b.dialog().await, None, "no script ran in the report");
    let border = b
        .script("return getComputedStyle(document.querySelector('.card')).borderTopStyle")
        .await;
    assert_eq!(border, "solid", "the inline style is allowed by its hash");
    let text = b.body_text().await;
    assert!(
        text.contains("<img src=x onerror=alert(1)>") && !text.contains("Globex"),
        "{text}"
    );
    b.screenshot(&shots.join("customer-report.png")).await;

    // An admin moves sam to another organization.
    b.goto(&format!("{}/users", s.url)).await;
    let orgs = b.find("input[form=access-sam]").await;
    b.script("document.querySelector('input[form=access-sam]').value = ''")
        .await;
    b.type_into(&orgs, "Acme").await;
    b.click(&b.find("button[form=access-sam]").await).await;
    b.wait_for_text("sam is now analyst of Acme.").await;

    b.goto(&format!("{}/instances", s.url)).await;
    b.wait_for_text("covalence-managed-security").await;
    assert!(
        !b.body_text().await.contains(&s.sim.api_key),
        "no secret on the page"
    );

    // The audit log shows the change just made, from the browser's address.
    b.goto(&format!("{}/audit", s.url)).await;
    b.wait_for_text("user changed").await;
    let audit = b.body_text().await;
    assert!(
        audit.contains("role analyst, organizations Acme") && audit.contains("127.0.0.1"),
        "{audit}"
    );
    b.screenshot(&shots.join("audit.png")).await;

    // Rules: a mistake is shown by line and nothing is saved; then a rule is saved, tested on
    // an incident, and acts on the next one made.
    b.goto(&format!("{}/rules", s.url)).await;
    b.wait_for_text("No rules yet.").await;
    let editor = b.find("form.editor textarea").await;
    b.type_into(
        &editor,
        "[[rules]]\nname = \"acme-to-dana\"\non = [\"created\"]\nwhen = \"organization:Acme\"\nactions = [{ action = \"assign\", to = \"dnaa\" }]\n",
    )
    .await;
    b.click(&b.find("form.editor button[type=submit]").await)
        .await;
    b.wait_for_text("Nothing was saved:").await;
    assert!(
        b.body_text()
            .await
            .contains("rule `acme-to-dana`, line 5, `to`: no user named `dnaa`")
    );
    b.script("document.querySelector('form.editor textarea').value = document.querySelector('form.editor textarea').value.replace('dnaa', 'dana')")
        .await;
    b.click(&b.find("form.editor button[type=submit]").await)
        .await;
    b.wait_for_text("Saved 1 rule.").await;
    let field = b.find("table.rules input[name=incident]").await;
    b.type_into(&field, "1").await;
    b.click(&b.find("table.rules td.actions button[type=submit]").await)
        .await;
    b.wait_for_text("It matches; it would:").await;
    assert!(b.body_text().await.contains("assign to dana"));
    b.screenshot(&shots.join("rules.png")).await;

    // Indicators: the list, an indicator held by several incidents with its page, and one of
    // those incidents with its indicators and the incidents related to it.
    b.goto(&format!("{}/indicators", s.url)).await;
    b.wait_for_text("First seen").await;
    let shared = b
        .script(
            "const r = [...document.querySelectorAll('table.grid tbody tr')]\
               .find(r => parseInt(r.children[2].innerText) >= 2);\
             return r ? r.querySelector('td.value a').getAttribute('href') : null",
        )
        .await;
    let shared = shared.as_str().expect("an indicator two incidents hold");
    b.goto(&format!("{}{shared}", s.url)).await;
    b.wait_for_text("Open in the queue").await;
    // Of its incidents, one that another incident of its organization is related to.
    let links = b
        .script(
            "return [...document.querySelectorAll(\"table.grid td a[href^='/incidents/']\")]\
               .map(a => a.getAttribute('href'))",
        )
        .await;
    let mut related = false;
    for link in links
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str())
    {
        b.goto(&format!("{}{link}", s.url)).await;
        b.wait_for_text("Log out").await;
        if !b.find_all("table.related tbody tr").await.is_empty() {
            related = true;
            break;
        }
    }
    assert!(related, "an incident with related incidents");
    assert!(
        !b.find_all("table.indicators tbody tr").await.is_empty()
            && !b.find_all("table.related tbody tr").await.is_empty(),
        "the incident lists its indicators and related incidents"
    );
    b.script("document.getElementById('indicators').scrollIntoView()")
        .await;
    b.screenshot(&shots.join("indicators.png")).await;

    // Notification channels on the Instances page: a test message to a receiver that is not
    // there is refused, said on the page, and the secret shows nowhere.
    b.goto(&format!("{}/instances", s.url)).await;
    b.wait_for_text("Send a test").await;
    b.click(
        &b.find("td.actions form[action='/channels/soc-hook/test'] button")
            .await,
    )
    .await;
    b.wait_for_text("channel soc-hook:").await;
    let page = b.body_text().await;
    assert!(
        page.contains("channel soc-hook: error sending request"),
        "{page}"
    );
    assert!(!page.contains("ui-canary-hook-secret"));
    b.screenshot(&shots.join("instances.png")).await;

    // Notifications: a rule sends each note on the hostile incident to the hook (which is not
    // there); the Notifications page, linked from the channels, lists it, its incident's
    // title as text.
    b.goto(&format!("{}/rules", s.url)).await;
    b.script(
        "document.querySelector('form.editor textarea').value += \
         '\\n[[rules]]\\nname = \"notes-to-hook\"\\non = [\"note\"]\\nwhen = \"Pwned\"\\n\
         actions = [{ action = \"notify\", channel = \"soc-hook\" }]\\n'",
    )
    .await;
    b.click(&b.find("form.editor button[type=submit]").await)
        .await;
    b.wait_for_text("Saved 2 rules.").await;
    b.goto(&format!("{}/?q=Pwned&status=all", s.url)).await;
    b.click(&b.find("table.queue tbody td.name a").await).await;
    b.type_into(&b.find("form.note textarea").await, "For the hook")
        .await;
    b.click(&b.find("form.note button").await).await;
    b.wait_for_text("Note added").await;
    b.goto(&format!("{}/instances", s.url)).await;
    b.click(&b.find("a[href='/notifications']").await).await;
    let started = Instant::now();
    while b.find_all("table.notifications tbody tr").await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the rule's notification never showed"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        b.goto(&format!("{}/notifications", s.url)).await;
    }
    let page = b.body_text().await;
    assert!(
        page.contains("notes-to-hook") && page.contains("<script>alert(2)</script>"),
        "{page}"
    );
    assert_eq!(
        b.dialog().await,
        None,
        "no script ran on the notifications page"
    );
    b.goto(&format!("{}/notifications?status=sent", s.url))
        .await;
    b.wait_for_text("No notifications.").await;
    b.goto(&format!("{}/notifications?status=pending,failed", s.url))
        .await;
    b.wait_for_text("not a notification status").await;
    b.goto(&format!("{}/notifications", s.url)).await;
    b.screenshot(&shots.join("notifications.png")).await;
    s.serve.stop();
}

/// An analyst of one organization sees none of another's incidents: not in the queue, not by
/// address, not on the dashboard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyst_sees_only_their_organization() {
    if !can_run("the browser tests", browser_missing()) {
        return;
    }
    let s = setup().await;
    let b = Browser::start().await;
    log_in(&b, &s.url, "dana").await;
    let orgs = column(&b, 5).await;
    assert!(
        !orgs.is_empty() && orgs.iter().all(|o| o == "Acme"),
        "{orgs:?}"
    );
    b.goto(&format!("{}/?status=all&organization=Globex", s.url))
        .await;
    assert!(column(&b, 5).await.is_empty());
    // A Globex incident, found as the admin would, is a 404 for dana.
    let admin_key = {
        let root = s.serve.call(
            "POST",
            "/api/v1/login",
            "",
            r#"{"name":"root","password":"pw-long-enough"}"#,
        );
        let body: Value = serde_json::from_str(root.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        body["token"].as_str().unwrap().to_string()
    };
    let all = s.serve.call(
        "GET",
        "/api/v1/incidents?organization=Globex",
        &admin_key,
        "",
    );
    let body: Value = serde_json::from_str(all.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let globex = body["data"][0]["id"].as_i64().unwrap();
    b.goto(&format!("{}/incidents/{globex}", s.url)).await;
    b.wait_for_text("404").await;
    // Regression (first hour): an error page lost the signed-in user's navigation (their
    // name, Log out); it keeps it, and says no more than "no incident".
    let page = b.body_text().await;
    assert!(
        page.contains("dana · analyst") && page.contains("Log out"),
        "{page}"
    );
    assert!(page.contains(&format!("no incident {globex}")), "{page}");
    // So does the page of an address nothing answers.
    b.goto(&format!("{}/nowhere", s.url)).await;
    b.wait_for_text("there is no page at /nowhere").await;
    assert!(b.body_text().await.contains("dana · analyst"));
    b.goto(&format!("{}/dashboard", s.url)).await;
    b.find("svg.chart").await;
    let text = b.body_text().await;
    assert!(text.contains("Acme") && !text.contains("Globex"), "{text}");
    // The Providers view and the customer report hold Acme alone; Globex's are refused.
    b.goto(&format!("{}/reports", s.url)).await;
    b.find("table.providers").await;
    let text = b.body_text().await;
    assert!(text.contains("Acme") && !text.contains("Globex"), "{text}");
    b.goto(&format!("{}/reports/customer", s.url)).await;
    b.wait_for_text("Security monitoring report: Acme").await;
    assert!(!b.body_text().await.contains("Globex"));
    b.goto(&format!("{}/reports?org=Globex", s.url)).await;
    b.wait_for_text("403").await;
    b.goto(&format!("{}/reports/customer?org=Globex", s.url))
        .await;
    b.wait_for_text("403").await;
    s.serve.stop();
}
