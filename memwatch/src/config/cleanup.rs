//! `cleanup`: the ordered steps of a critical-level cleanup pass.
//!
//! ```toml
//! cleanup = [
//!   { reclaim = true },                                          # memory.reclaim (cgroup targets)
//!   { http = "http://127.0.0.1:3000/health/gc", timeout = "5s" }, # the service's own endpoint
//!   { http = { socket = "/run/app/api.sock", path = "/gc" } },   # ... over a Unix socket
//!   { exec = ["/usr/local/bin/app-trim", "--now"], timeout = "10s" },
//!   { signal = "SIGUSR2" },                                      # only where a policy names the service
//! ]
//! ```
//!
//! Nothing is signalled unless a policy asks for it: `[defaults]` may not
//! hold a `signal` step, nor may a policy whose `match` names nothing.
use std::{net::IpAddr, path::PathBuf};

use axum::http::Uri;
use rustix::process::Signal;
use toml::Value;

use super::{
    policy::read_duration,
    walk::{Fields, Problems, expected},
};

/// How long an `http` or `exec` step may take by default.
pub const DEFAULT_STEP_TIMEOUT_SECS: f64 = 5.0;
/// The longest a step may be given: a pass must finish well inside the
/// API's 30 s answer to `POST /health/gc`.
const MAX_STEP_TIMEOUT_SECS: f64 = 20.0;

/// Signals a service may reasonably be asked to clean up on. Not TERM/KILL
/// (those are the emergency's), nor anything whose default action dumps core.
pub const CLEANUP_SIGNALS: &[(&str, Signal)] =
    &[("SIGUSR1", Signal::USR1), ("SIGUSR2", Signal::USR2), ("SIGHUP", Signal::HUP)];

pub fn signal_name(signal: Signal) -> &'static str {
    CLEANUP_SIGNALS.iter().find(|(_, s)| *s == signal).map_or("signal", |(n, _)| n)
}

/// Where an `http` step posts: loopback only, so a config can never make
/// memwatch reach out over the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpEndpoint {
    /// A loopback address, port and path ("http://127.0.0.1:3000/health/gc").
    Loopback { host: String, port: u16, path: String },
    /// A Unix socket and the path to post to on it.
    Unix { socket: PathBuf, path: String },
}

impl std::fmt::Display for HttpEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpEndpoint::Loopback { host, port, path } => write!(f, "http://{host}:{port}{path}"),
            HttpEndpoint::Unix { socket, path } => write!(f, "unix:{}:{path}", socket.display()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CleanupStep {
    /// Ask the kernel to reclaim the usage above the warning level from the
    /// target's cgroup (v2 `memory.reclaim`). Cgroup targets only.
    Reclaim,
    /// POST to the service's own cleanup endpoint.
    Http { endpoint: HttpEndpoint, timeout_secs: f64 },
    /// Run a command (no shell), the target in its environment.
    Exec { argv: Vec<String>, timeout_secs: f64 },
    /// Send a signal to the processes the policy matched.
    Signal { signal: Signal },
}

impl CleanupStep {
    pub const fn name(&self) -> &'static str {
        match self {
            CleanupStep::Reclaim => "reclaim",
            CleanupStep::Http { .. } => "http",
            CleanupStep::Exec { .. } => "exec",
            CleanupStep::Signal { .. } => "signal",
        }
    }
}

/// The default pass: reclaim, which needs no cooperation from the service
/// (and does nothing for process targets, whose cgroup may hold others).
pub fn default_steps() -> Vec<CleanupStep> {
    vec![CleanupStep::Reclaim]
}

/// `cleanup` at `path`. `may_signal` is false for `[defaults]` and for a
/// policy whose match names nothing: they may not send signals.
pub fn read_steps(value: &Value, path: &str, may_signal: bool, problems: &mut Problems) -> Option<Vec<CleanupStep>> {
    let Some(entries) = value.as_array() else {
        problems.push(path, expected("an array of steps like [{ reclaim = true }, { signal = \"SIGUSR2\" }]", value));
        return None;
    };
    let mut steps = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let step_path = format!("{path}[{index}]");
        let Some(table) = entry.as_table() else {
            problems.push(&step_path, expected("a table such as { reclaim = true }", entry));
            continue;
        };
        let mut fields = Fields::new(table, step_path.clone());
        let kinds = ["reclaim", "http", "exec", "signal"].into_iter().filter(|k| table.contains_key(*k)).count();
        if kinds != 1 {
            problems.push(&step_path, "must hold exactly one of reclaim, http, exec, signal");
            fields.raw("reclaim");
            fields.raw("http");
            fields.raw("exec");
            fields.raw("signal");
            fields.raw("timeout");
            continue;
        }
        let timeout = |fields: &mut Fields<'_>, problems: &mut Problems| {
            let secs = fields.read("timeout", problems, read_duration).unwrap_or(DEFAULT_STEP_TIMEOUT_SECS);
            if secs > 0.0 && secs <= MAX_STEP_TIMEOUT_SECS {
                Some(secs)
            } else {
                problems.push(
                    &fields.path_of("timeout"),
                    format!("{secs} must be more than 0 and at most {MAX_STEP_TIMEOUT_SECS} seconds"),
                );
                None
            }
        };
        let step = if let Some(on) = fields.bool("reclaim", problems) {
            if !on {
                problems.push(&fields.path_of("reclaim"), "leave the step out rather than set it to false");
            }
            on.then_some(CleanupStep::Reclaim)
        } else if let Some(http) = fields.read("http", problems, read_endpoint) {
            timeout(&mut fields, problems).map(|timeout_secs| CleanupStep::Http { endpoint: http, timeout_secs })
        } else if let Some(argv) = fields.read("exec", problems, read_argv) {
            timeout(&mut fields, problems).map(|timeout_secs| CleanupStep::Exec { argv, timeout_secs })
        } else if let Some(signal) = fields.read("signal", problems, read_signal) {
            if may_signal {
                Some(CleanupStep::Signal { signal })
            } else {
                problems.push(
                    &fields.path_of("signal"),
                    "signals are sent only by a policy whose match names the service (unit, cgroup, process, \
                     exe, container or pod_uid): [defaults] and a policy that matches everything send none",
                );
                None
            }
        } else {
            None
        };
        fields.finish(problems);
        steps.extend(step);
    }
    Some(steps)
}

fn read_signal(value: &Value) -> Result<Signal, String> {
    let Some(name) = value.as_str() else { return Err(expected("a signal name such as \"SIGUSR2\"", value)) };
    let full = if name.starts_with("SIG") { name.to_owned() } else { format!("SIG{name}") };
    CLEANUP_SIGNALS.iter().find(|(n, _)| *n == full).map(|(_, s)| *s).ok_or_else(|| {
        let known: Vec<&str> = CLEANUP_SIGNALS.iter().map(|(n, _)| *n).collect();
        format!("{name:?} is not a cleanup signal (use one of {})", known.join(", "))
    })
}

fn read_argv(value: &Value) -> Result<Vec<String>, String> {
    let Some(items) = value.as_array() else {
        return Err(expected("a command as an array of strings, [\"/usr/bin/app-trim\", \"--now\"]", value));
    };
    let argv: Vec<String> = items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
    if argv.len() != items.len() {
        return Err("every argument must be a string".to_owned());
    }
    match argv.first() {
        None => Err("the command is empty".to_owned()),
        Some(program) if !program.starts_with('/') => {
            Err(format!("{program:?} must be an absolute path: the command runs with no shell and no PATH search"))
        }
        Some(_) if argv.iter().any(|a| a.contains('\0')) => Err("an argument holds a NUL byte".to_owned()),
        Some(_) => Ok(argv),
    }
}

fn read_endpoint(value: &Value) -> Result<HttpEndpoint, String> {
    match value {
        Value::String(url) => loopback_url(url),
        Value::Table(table) => {
            let socket = table.get("socket").and_then(Value::as_str).ok_or("needs `socket`, the Unix socket's path")?;
            let path = table.get("path").and_then(Value::as_str).unwrap_or("/");
            if let Some(extra) = table.keys().find(|k| !matches!(k.as_str(), "socket" | "path")) {
                return Err(format!("unknown key {extra:?} (known: socket, path)"));
            }
            if !socket.starts_with('/') {
                return Err(format!("socket {socket:?} must be an absolute path"));
            }
            if !path.starts_with('/') || path.contains(['\r', '\n', ' ']) {
                return Err(format!("path {path:?} must start with / and hold no space or line break"));
            }
            Ok(HttpEndpoint::Unix { socket: PathBuf::from(socket), path: path.to_owned() })
        }
        other => Err(expected("a loopback URL or { socket = \"...\", path = \"...\" }", other)),
    }
}

/// An http:// URL to a loopback address (127.0.0.0/8, ::1, localhost).
fn loopback_url(url: &str) -> Result<HttpEndpoint, String> {
    let uri: Uri = url.parse().map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("{url:?} must be an http:// URL (a loopback service needs no TLS)"));
    }
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(format!(
            "{url:?}: only loopback hosts (127.0.0.1, ::1, localhost): memwatch never calls out over the network"
        ));
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    Ok(HttpEndpoint::Loopback { host: host.to_owned(), port: uri.port_u16().unwrap_or(80), path })
}

#[cfg(test)]
#[path = "cleanup_tests.rs"]
mod tests;
