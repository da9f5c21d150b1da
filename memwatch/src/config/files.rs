//! The files a config names, checked before the daemon touches anything:
//! `memwatch check-config` and `memwatch run` make the same checks, so `run`
//! refuses exactly what `check-config` refuses (exit 78), before it binds a
//! socket or lowers a limit.
//!
//! Who may write them matters: the config decides which processes are
//! signalled and which cgroups throttled, and the token opens the control
//! endpoints. So they must be owned by root (or the user memwatch runs as)
//! and not writable by anyone else; the token not readable by anyone else.
use std::{
    fs::Metadata,
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::Path,
};

use super::{Config, walk::Problems};

/// Every problem with the files `config` (read from `config_path`) names,
/// each as "key.path: problem" (or "FILE: problem" for the config itself).
pub fn check(config: &Config, config_path: &Path) -> Vec<String> {
    let mut problems = Problems::default();
    let config_file = config_path.display().to_string();
    match std::fs::metadata(config_path) {
        Ok(meta) => {
            if let Some(problem) = not_private(&meta, 0o022, "writable") {
                problems.push(
                    &config_file,
                    format!("{problem}: whoever can write it decides which processes memwatch signals and throttles"),
                );
            }
        }
        Err(e) => problems.push(&config_file, e),
    }
    if config.api.tcp_enabled
        && let Some(token) = &config.api.token_file
        && let Err(problem) = read_token_file(token)
    {
        problems.push("api.token_file", problem);
    }
    if !config.api.socket.as_os_str().is_empty()
        && let Some(dir) = config.api.socket.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(meta) = std::fs::metadata(dir)
    {
        if !meta.is_dir() {
            problems.push("api.socket", format!("{} is not a directory", dir.display()));
        } else if meta.mode() & 0o022 != 0 && meta.mode() & 0o1000 == 0 {
            problems.push(
                "api.socket",
                format!(
                    "{} is writable by group or others (mode {:04o}): another user could replace the socket; \
                     put it in a directory only root can write (the default {})",
                    dir.display(),
                    meta.mode() & 0o7777,
                    super::observe::DEFAULT_SOCKET
                ),
            );
        }
    }
    for (key, path) in
        [("actions.incident_log", &config.actions.incident_log), ("actions.state_file", &config.actions.state_file)]
    {
        if path.is_dir() {
            problems.push(key, format!("{} is a directory, not a file", path.display()));
        } else if let Some(ancestor) = path.ancestors().skip(1).find(|a| a.exists())
            && !ancestor.is_dir()
        {
            problems.push(key, format!("{} is not a directory", ancestor.display()));
        }
    }
    problems.0
}

/// The token in `path`: one line, nothing else, in a file only its owner
/// (root or memwatch's user) can read or write.
pub fn read_token_file(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    if let Some(problem) = not_private(&meta, 0o077, "readable or writable") {
        return Err(format!("{shown}: {problem}: anyone who can read it can use the control endpoints"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    let token = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
    if token.trim().is_empty() {
        return Err(format!("{shown} is empty: it must hold the token on one line"));
    }
    if token.lines().count() > 1 {
        return Err(format!("{shown} has more than one line: no client could send that token"));
    }
    if token.chars().any(char::is_whitespace) {
        return Err(format!("{shown}: the token holds whitespace, which no Authorization header can carry"));
    }
    Ok(token.to_owned())
}

/// Why a file with `meta` is not private enough: owned by someone other
/// than root or memwatch's own user, or with any of `forbidden` mode bits.
fn not_private(meta: &Metadata, forbidden: u32, what: &str) -> Option<String> {
    let euid = rustix::process::geteuid().as_raw();
    let mode = meta.permissions().mode() & 0o7777;
    if meta.uid() != 0 && meta.uid() != euid {
        return Some(format!("owned by uid {} (mode {mode:04o}), not root or memwatch's own user", meta.uid()));
    }
    (mode & forbidden != 0).then(|| format!("{what} by group or others (mode {mode:04o})"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn file(dir: &Path, name: &str, text: &str, mode: u32) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_token_is_one_line_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_token_file(&file(dir.path(), "ok", "s3cret\n", 0o600)).unwrap(), "s3cret");
        let cases = [
            ("empty", "", 0o600, "is empty"),
            ("blank", "  \n", 0o600, "is empty"),
            ("two", "a\nb\n", 0o600, "more than one line"),
            ("spaced", "a b\n", 0o600, "whitespace"),
            ("group", "abc\n", 0o640, "mode 0640"),
            ("world", "abc\n", 0o644, "mode 0644"),
        ];
        for (name, text, mode, needle) in cases {
            let err = read_token_file(&file(dir.path(), name, text, mode)).unwrap_err();
            assert!(err.contains(needle), "{name}: {err}");
        }
        assert!(read_token_file(dir.path()).unwrap_err().contains("not a regular file"));
        assert!(read_token_file(&dir.path().join("missing")).unwrap_err().contains("No such file"));
    }

    #[test]
    fn a_world_writable_config_a_bad_token_and_directories_where_files_go_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let open_dir = dir.path().join("open");
        std::fs::create_dir(&open_dir).unwrap();
        std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let token = file(dir.path(), "token", "abc\n", 0o644);
        let text = format!(
            "[api]\nsocket = \"{open}/api.sock\"\ntcp_enabled = true\ntoken_file = \"{token}\"\n\
             [actions]\nincident_log = \"{dir}\"\nstate_file = \"{token}/state.json\"\n",
            open = open_dir.display(),
            token = token.display(),
            dir = dir.path().display()
        );
        let path = file(dir.path(), "memwatch.toml", &text, 0o666);
        let config = Config::parse(&text).unwrap();
        let problems = check(&config, &path);
        let starts = |prefix: &str| problems.iter().filter(|p| p.starts_with(prefix)).count();
        assert_eq!(starts(&format!("{}: ", path.display())), 1, "{problems:#?}");
        assert!(problems[0].contains("mode 0666"), "{problems:#?}");
        assert_eq!(starts("api.token_file: "), 1, "{problems:#?}");
        assert_eq!(starts("api.socket: "), 1, "{problems:#?}");
        assert_eq!(starts("actions.incident_log: "), 1, "{problems:#?}");
        assert_eq!(starts("actions.state_file: "), 1, "{problems:#?}");
        assert_eq!(problems.len(), 5, "{problems:#?}");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let fine = Config::parse("").unwrap();
        assert!(check(&fine, &path).is_empty(), "{:#?}", check(&fine, &path));
    }
}
