//! A private PostgreSQL cluster for tests: `initdb` into a temporary directory, the server on
//! a free loopback port, stopped and removed when the test process ends. It never touches a
//! system service.
//!
//! Tests that need PostgreSQL call [`fresh_database`]. Where PostgreSQL is not installed they
//! say so and skip, unless `WATCHFLOOR_TEST_POSTGRES=require` (as CI sets), which makes its
//! absence a failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::Connection;

/// A running cluster. Its server lives as long as the test process: a shell holds it and
/// stops it (and removes its directory) when the process's end closes the shell's input.
pub struct TestCluster {
    pub port: u16,
    _keeper: Mutex<Child>,
}

static CLUSTER: OnceLock<Result<TestCluster, String>> = OnceLock::new();
static NEXT_DATABASE: AtomicUsize = AtomicUsize::new(0);

/// Where the PostgreSQL server programs are: `$WATCHFLOOR_PG_BIN`, or Debian's newest.
fn bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("WATCHFLOOR_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("postgres").is_file())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command run as the `postgres` user when this process is root (PostgreSQL refuses root).
fn as_server_user(program: &Path, root: bool) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Removes the directories of clusters whose test process is gone (killed before its cluster's
/// keeper could clean up, e.g. by a timeout that signalled the whole process group).
fn remove_orphans() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix("watchfloor-pg-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn start() -> Result<TestCluster, String> {
    remove_orphans();
    let bin = bin_dir().ok_or(
        "PostgreSQL is not installed (Debian: apt-get install postgresql); set WATCHFLOOR_PG_BIN to its bin directory",
    )?;
    let root = is_root();
    let dir = std::env::temp_dir().join(format!(
        "watchfloor-pg-{}-{}",
        std::process::id(),
        free_port()?
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if root {
        let status = Command::new("chown")
            .arg("postgres")
            .arg(&dir)
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!(
                "cannot give {} to the postgres user",
                dir.display()
            ));
        }
    }
    let data = dir.join("data");
    let out = as_server_user(&bin.join("initdb"), root)
        .arg("-D")
        .arg(&data)
        .args([
            "-A",
            "trust",
            "-U",
            "watchfloor",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = free_port()?;
    let mut extra = String::new();
    for setting in settings().split_whitespace() {
        let plain = setting.split_once('=').is_some_and(|(k, v)| {
            !k.is_empty()
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        });
        if !plain {
            return Err(format!(
                "WATCHFLOOR_PG_SETTINGS: `{setting}` is not a name=value setting (letters, digits, `_` in the name; `.`, `-`, `_` too in the value)"
            ));
        }
        extra.push_str(&format!(" -c {setting}"));
    }
    // The shell starts the server, then waits for its input to close, which happens when this
    // process ends however it ends; then it stops the server and removes the directory.
    let script = format!(
        "\"$0\" -D \"$1/data\" -p {port} -k \"$1\" -c listen_addresses=127.0.0.1 -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
         -c shared_buffers=32MB{extra} > \"$1/server.log\" 2>&1 & pid=$!; read x; kill -INT $pid; wait $pid; rm -rf \"$1\""
    );
    let mut keeper = as_server_user(Path::new("/bin/sh"), root)
        .arg("-c")
        .arg(script)
        .arg(bin.join("postgres"))
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start postgres: {e}"))?;
    let started = Instant::now();
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            let _ = keeper.stdin.take().map(|mut s| s.write_all(b"\n"));
            return Err(format!("postgres did not start in 30s: {log}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(TestCluster {
        port,
        _keeper: Mutex::new(keeper),
    })
}

static SETTINGS: OnceLock<String> = OnceLock::new();

/// Server settings beyond the tests' own, as `name=value` words: `$WATCHFLOOR_PG_SETTINGS`,
/// else what [`set_default_settings`] gave, else none.
fn settings() -> String {
    std::env::var("WATCHFLOOR_PG_SETTINGS")
        .ok()
        .or_else(|| SETTINGS.get().cloned())
        .unwrap_or_default()
}

/// Gives the cluster settings where `$WATCHFLOOR_PG_SETTINGS` gives none (a benchmark sizes
/// the buffers of a server that has the machine to itself; the tests keep 32 MB). Called
/// before the cluster starts; returns the settings the cluster runs with.
pub fn set_default_settings(given: &str) -> String {
    let _ = SETTINGS.set(given.to_string());
    settings()
}

/// The process's cluster, started on first use, or why there is none.
pub fn cluster() -> Result<&'static TestCluster, String> {
    CLUSTER.get_or_init(start).as_ref().map_err(Clone::clone)
}

/// Whether PostgreSQL tests must run (CI), rather than skip where it is missing.
pub fn required() -> bool {
    std::env::var("WATCHFLOOR_TEST_POSTGRES").is_ok_and(|v| v == "require")
}

impl TestCluster {
    /// The URL of a database on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://watchfloor@127.0.0.1:{}/{database}", self.port)
    }

    /// Makes a new empty database and returns its URL.
    pub async fn create_database(&self) -> String {
        let name = format!(
            "wf_{}_{}",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, Ordering::SeqCst)
        );
        let started = Instant::now();
        loop {
            // The server accepts connections a moment before it accepts logins.
            match sqlx::PgConnection::connect(&self.url("postgres")).await {
                Ok(mut conn) => {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                        .execute(&mut conn)
                        .await
                        .expect("create a test database");
                    return self.url(&name);
                }
                Err(e) if started.elapsed() > Duration::from_secs(30) => {
                    panic!("cannot connect to the test cluster: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

/// A new empty database on the test cluster, or `None` (after saying why) where PostgreSQL is
/// missing and not required.
pub async fn fresh_database() -> Option<String> {
    match cluster() {
        Ok(c) => Some(c.create_database().await),
        Err(why) if required() => panic!("PostgreSQL is required for this test: {why}"),
        Err(why) => {
            eprintln!("skipped: {why}");
            None
        }
    }
}
