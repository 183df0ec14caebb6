//! The README's quick start, followed word for word in a fresh clone, ends with `watchfloor`
//! on `PATH`: the install command it prints is run as written (into a private root, so the
//! test touches nothing of the user's), then `watchfloor --help` is found through `PATH`.

use std::path::Path;
use std::process::Command;

#[test]
fn the_quick_start_installs_a_working_watchfloor() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let install = readme
        .lines()
        .find(|l| l.trim_start().starts_with("cargo install"))
        .expect("the README says how to install");
    let install = install.split('#').next().unwrap().trim();
    let words: Vec<&str> = install.split_whitespace().collect();
    assert_eq!(&words[..2], ["cargo", "install"], "{install}");

    let dir = tempfile::tempdir().unwrap();
    let clone = dir.path().join("watchfloor");
    let cloned = Command::new("git")
        .args(["clone", "--quiet"])
        .arg(&repo)
        .arg(&clone)
        .status()
        .expect("git runs");
    assert!(cloned.success(), "the repository can be cloned");
    let root = dir.path().join("root");
    let out = Command::new(words[0])
        .args(&words[1..])
        .current_dir(&clone)
        // A private install root; the build is kept between runs, beside the repo's own.
        .env("CARGO_INSTALL_ROOT", &root)
        .env("CARGO_TARGET_DIR", repo.join("target/readme-install"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`{install}` failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = format!(
        "{}:{}",
        root.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let help = Command::new("watchfloor")
        .arg("--help")
        .env("PATH", path)
        .output()
        .expect("watchfloor is on PATH");
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("Usage: watchfloor"), "{text}");
    assert!(text.contains("demo"), "{text}");
}
