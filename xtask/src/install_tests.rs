use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use super::*;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A staged install with `/bin/true` standing for the built daemon.
fn staged() -> (tempfile::TempDir, Layout) {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout { root: dir.path().to_path_buf(), prefix: PathBuf::from("/usr/local") };
    install_files(&layout, Path::new("/bin/true")).unwrap();
    (dir, layout)
}

#[test]
fn install_places_each_file_with_its_mode_and_never_overwrites_the_config() {
    let (dir, layout) = staged();
    let root = dir.path();
    assert_eq!(mode(&root.join("usr/local/bin/memwatch")), 0o755);
    assert_eq!(mode(&root.join("etc/systemd/system/memwatch.service")), 0o644);
    assert_eq!(mode(&root.join("etc/memwatch/config.toml")), 0o644);
    assert_eq!(mode(&root.join("var/lib/memwatch")), 0o750);
    let unit = fs::read_to_string(root.join("etc/systemd/system/memwatch.service")).unwrap();
    assert!(unit.contains("\nExecStart=/usr/local/bin/memwatch run --config /etc/memwatch/config.toml\n"), "{unit}");
    assert!(!unit.contains("/usr/bin/memwatch"), "every mention of the binary follows the prefix");

    fs::write(root.join("etc/memwatch/config.toml"), "# the operator's own\n").unwrap();
    install_files(&layout, Path::new("/bin/true")).unwrap();
    assert_eq!(fs::read_to_string(root.join("etc/memwatch/config.toml")).unwrap(), "# the operator's own\n");

    remove_files(&layout).unwrap();
    assert!(!root.join("usr/local/bin/memwatch").exists());
    assert!(!root.join("etc/systemd/system/memwatch.service").exists());
    assert!(!root.join("var/lib/memwatch").exists(), "an empty state directory goes");
    assert_eq!(fs::read_to_string(root.join("etc/memwatch/config.toml")).unwrap(), "# the operator's own\n");
}

#[test]
fn uninstall_keeps_a_state_directory_that_holds_records() {
    let (dir, layout) = staged();
    fs::write(dir.path().join("var/lib/memwatch/incidents.jsonl"), "{}\n").unwrap();
    remove_files(&layout).unwrap();
    assert!(dir.path().join("var/lib/memwatch/incidents.jsonl").exists());
}

#[test]
fn the_shipped_unit_names_the_packaged_binary() {
    let shipped = fs::read_to_string(shell::workspace_root().join(UNIT_SOURCE)).unwrap();
    assert_eq!(unit_for(&shipped, Path::new("/usr/bin/memwatch")).unwrap(), shipped);
    assert!(unit_for("[Service]\nExecStart=/opt/x\n", Path::new("/usr/bin/memwatch")).is_err());
}

/// systemd-analyze, or a reason to skip (a failure under CI=true).
fn systemd_analyze() -> Option<&'static str> {
    if shell::which("systemd-analyze").is_some() {
        return Some("systemd-analyze");
    }
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "systemd-analyze missing (Debian package systemd)");
    eprintln!("SKIPPED: systemd-analyze not installed (Debian package systemd)");
    None
}

/// A staged install that systemd-analyze can load: the host's own units
/// (sysinit.target and the rest) and the commands ExecReload= names.
fn verifiable() -> (tempfile::TempDir, Layout) {
    let (dir, layout) = staged();
    let root = dir.path();
    fs::create_dir_all(root.join("usr/lib/systemd")).unwrap();
    let copied =
        Command::new("cp").args(["-a", "/lib/systemd/system"]).arg(root.join("usr/lib/systemd/")).status().unwrap();
    assert!(copied.success());
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::copy("/bin/kill", root.join("usr/bin/kill")).unwrap();
    std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
    (dir, layout)
}

#[test]
fn systemd_analyze_verifies_the_installed_unit() {
    let Some(analyze) = systemd_analyze() else { return };
    let (dir, _layout) = verifiable();
    let out = Command::new(analyze)
        .arg(format!("--root={}", dir.path().display()))
        .args(["verify", "/etc/systemd/system/memwatch.service"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    assert!(!stderr.contains("memwatch.service"), "a warning about the unit: {stderr}");
}

/// The exposure score the README quotes: a unit loosened later fails here.
const README_EXPOSURE: f64 = 3.3;

#[test]
fn the_units_exposure_score_is_the_one_the_readme_quotes() {
    let Some(analyze) = systemd_analyze() else { return };
    let (dir, _layout) = verifiable();
    let out = Command::new(analyze)
        .arg(format!("--root={}", dir.path().display()))
        .args(["security", "--offline=yes", "--no-pager", UNIT_NAME])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let score: f64 = stdout
        .lines()
        .find_map(|l| l.split("Overall exposure level for memwatch.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {stdout}"));
    assert!(score <= README_EXPOSURE, "exposure {score} > {README_EXPOSURE}: tighten the unit or update the README");
    let readme = fs::read_to_string(shell::workspace_root().join("README.md")).unwrap();
    assert!(readme.contains(&format!("exposure level {README_EXPOSURE}")), "README must quote {README_EXPOSURE}");
}
