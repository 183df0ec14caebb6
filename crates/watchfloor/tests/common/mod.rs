//! Helpers the binary's tests share: running `watchfloor`, a config for a simulator, and
//! `watchfloor serve` as a child process with its API address.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use watchfloor_simulators::CovalenceManagedSecuritySimulator;

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn watchfloor(dir: &Path, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_watchfloor"))
        .args(args)
        .current_dir(dir)
        .env_remove("WATCHFLOOR_CONFIG")
        .env("WATCHFLOOR_LOG", "debug")
        .output()
        .expect("watchfloor runs");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Writes a config in `dir` with a database and one fetching FES instance for `sim`.
pub fn fes_fetch_config(
    dir: &Path,
    sim: &CovalenceManagedSecuritySimulator,
    settings: &str,
) -> PathBuf {
    let config = dir.join("watchfloor.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nurl = \"sqlite://wf.db\"\n[[instances]]\nname = \"fes\"\nintegration = \"covalence-managed-security\"\n\
             fetch = true\nfirst_fetch = \"2024-04-01T00:00:00Z\"\n{settings}[instances.params]\nportal_url = \"{}\"\napi_key = \"{}\"\n",
            sim.portal_url, sim.api_key
        ),
    )
    .unwrap();
    config
}

/// `watchfloor serve` with the API on, started with `args`; `log` is `WATCHFLOOR_LOG`.
pub struct Served {
    pub child: std::process::Child,
    pub addr: String,
    /// The rest of its standard output, after the line with the address.
    _stdout: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Served {
    pub fn start(dir: &Path, args: &[&str], log: Option<&str>, stderr: Stdio) -> Served {
        use std::io::BufRead;
        let mut command = Command::new(env!("CARGO_BIN_EXE_watchfloor"));
        if let Some(log) = log {
            command.env("WATCHFLOOR_LOG", log);
        }
        let mut child = command
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| {
                l.strip_prefix("API on http://")
                    .or_else(|| l.strip_prefix("API on https://"))
                    .map(str::to_string)
            })
            .expect("the API address");
        Served {
            child,
            addr,
            _stdout: lines,
        }
    }

    /// One HTTP/1.1 request, the whole answer (status line, headers and body) as text.
    pub fn call(&self, method: &str, path: &str, auth: &str, body: &str) -> String {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(&self.addr).unwrap();
        write!(
            conn,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        answer
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn stop(mut self) -> Option<i32> {
        sigterm(self.child.id());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if started.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                panic!("serve did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A test that fails before `stop` leaves no `serve` running behind it (one did, holding its
/// port and a core, until the machine was looked at).
impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Creates a user with a password given on standard input.
pub fn create_user_with_password(
    dir: &Path,
    cfg: &str,
    name: &str,
    role: &str,
    org: &[&str],
    password: &str,
) -> String {
    use std::io::Write;
    let mut create = Command::new(env!("CARGO_BIN_EXE_watchfloor"))
        .args(["--config", cfg, "users", "create", name, "--role", role])
        .args(org)
        .arg("--password-stdin")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = create.stdin.take().unwrap();
    writeln!(stdin, "{password}").unwrap();
    drop(stdin);
    let out = create.wait_with_output().unwrap();
    assert!(out.status.success(), "users create {name}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn sigterm(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

/// Whether tests must have every tool they use (CI: `WATCHFLOOR_TEST_TOOLS=require`), rather
/// than skip where one is missing.
pub fn tools_required() -> bool {
    std::env::var("WATCHFLOOR_TEST_TOOLS").is_ok_and(|v| v == "require")
}

/// Whether a test can run: yes when nothing is `missing`; else, in CI, it fails; elsewhere it
/// says in one line (past the test harness's capture) what to install, and is skipped.
pub fn can_run(test: &str, missing: Option<String>) -> bool {
    let Some(what) = missing else { return true };
    if tools_required() {
        panic!("{test}: missing {what}, which CI requires");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped {test}: missing {what}");
    false
}

/// What the browser tests lack, if anything: Debian's Chromium and its chromedriver.
pub fn browser_missing() -> Option<String> {
    let on_path = |program: &str| {
        Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    (!Path::new("/usr/bin/chromium").exists() || !on_path("chromedriver")).then(|| {
        "Chromium and chromedriver (Debian: apt-get install chromium chromium-driver)".to_string()
    })
}

/// The tests' Python (see [`python`]), or what is missing to make it.
pub fn python_or_missing() -> Result<PathBuf, String> {
    let usable = |p: &PathBuf| {
        Command::new(p)
            .args([
                "-c",
                "import demisto_client, aiosmtpd, openapi_spec_validator",
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let found = std::panic::catch_unwind(python).and_then(|p| {
        if usable(&p) {
            Ok(p)
        } else {
            Err(Box::new(format!(
                "{} cannot import demisto_client, aiosmtpd and openapi_spec_validator",
                p.display()
            )))
        }
    });
    found.map_err(|e| {
        let why = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        format!(
            "Python 3 with venv and PyPI access for demisto-py and aiosmtpd (Debian: apt-get install python3-venv): {why}"
        )
    })
}

/// The tests' Python, or `None` after [`can_run`] said why it is skipped.
pub fn python_for(test: &str) -> Option<PathBuf> {
    match python_or_missing() {
        Ok(p) => Some(p),
        Err(why) => {
            can_run(test, Some(why));
            None
        }
    }
}

/// The Python of the tests' virtual environment (demisto-py, aiosmtpd): `WATCHFLOOR_PYTHON` if
/// set, else `target/demisto-venv`, made or completed here from `xsoar/requirements.txt` when
/// one of them is missing (`.ci/run` makes it beforehand).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("WATCHFLOOR_PYTHON") {
        return p.into();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = root.join("target/demisto-venv");
    let python = venv.join("bin/python");
    let complete = || {
        Command::new(&python)
            .args([
                "-c",
                "import demisto_client, aiosmtpd, openapi_spec_validator",
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if complete() {
        return python;
    }
    if !python.exists() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .stderr(Stdio::null())
            .status()
            .expect("python3 runs: install Python 3.10 or later, or set WATCHFLOOR_PYTHON");
        assert!(
            made.success(),
            "cannot make a virtual environment at {venv:?}"
        );
    }
    let requirements = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/xsoar/requirements.txt");
    let installed = Command::new(&python)
        .args(["-m", "pip", "install", "-q", "-r"])
        .arg(&requirements)
        .status()
        .unwrap();
    assert!(
        installed.success(),
        "cannot install the test requirements from PyPI into {venv:?}"
    );
    python
}
