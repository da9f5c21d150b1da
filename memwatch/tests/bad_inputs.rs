//! The bad-input suite: every case of tests/bad_inputs/cases.toml gets the
//! exit status (or HTTP status) it names, with the words it names in its
//! message, and never a panic. Configs go through `memwatch check-config`,
//! traces through `memwatch replay`, command lines as they are, requests
//! through the API's router as a local or a remote (TCP) client.
use std::{os::unix::fs::PermissionsExt as _, path::Path, process::Command, sync::Arc};

use axum::{body::Body, http};
use http_body_util::BodyExt as _;
use memwatch::{
    actions::Readiness,
    api::{
        Access, ApiState,
        auth::Token,
        control::{self, CleanupReport, ControlError, Controller, PendingCleanups},
        router,
    },
    exporters::{FrameCell, prometheus::PrometheusExporter},
    view::StatusStore,
};
use serde::Deserialize;
use tower::ServiceExt as _;

const MEMWATCH: &str = env!("CARGO_BIN_EXE_memwatch");
const CASES: &str = include_str!("bad_inputs/cases.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    kind: String,
    input: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    args_extra: Vec<String>,
    mode: Option<u32>,
    #[serde(default)]
    raw_latin1: bool,
    auth: Option<String>,
    access: Option<String>,
    exit: i32,
    words: Vec<String>,
}

#[derive(Deserialize)]
struct Cases {
    case: Vec<Case>,
}

fn write(path: &Path, case: &Case, tmp: &Path) {
    let input = case.input.as_deref().unwrap_or_default().replace("{tmp}", &tmp.display().to_string());
    let bytes: Vec<u8> = if case.raw_latin1 { input.chars().map(|c| c as u8).collect() } else { input.into_bytes() };
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(case.mode.unwrap_or(0o600))).unwrap();
}

/// (exit status, stderr) of the command a case stands for.
fn run(case: &Case, index: usize, tmp: &Path) -> (i32, String) {
    let file = tmp.join(format!("case-{index}"));
    let mut cmd = Command::new(MEMWATCH);
    match case.kind.as_str() {
        "config" => {
            write(&file, case, tmp);
            cmd.arg("check-config").arg(&file);
        }
        "trace" => {
            write(&file, case, tmp);
            cmd.args(["replay", "--host-memory", "16GiB", "--trace"]).arg(&file).args(&case.args_extra);
        }
        "cli" => {
            cmd.args(&case.args);
        }
        other => panic!("case {index}: unknown kind {other:?}"),
    }
    // The seed's variables must not leak in from the test's environment.
    for (seed, ours) in
        [("MEMORY_WARNING_THRESHOLD", "MEMWATCH_WARNING_THRESHOLD"), ("CACHE_TTL", "MEMWATCH_CACHE_TTL")]
    {
        cmd.env_remove(seed).env_remove(ours);
    }
    let out = cmd.output().expect("running memwatch");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Answers control requests as the daemon would for a host with no such
/// target or cache.
struct NoTargets;

impl Controller for NoTargets {
    fn cleanup(&mut self, target: Option<&str>) -> Result<CleanupReport, ControlError> {
        Err(ControlError::UnknownTarget(target.unwrap_or_default().to_owned()))
    }
    fn clear_cache(&mut self, name: &str) -> Result<u64, ControlError> {
        Err(memwatch::cache::UnknownCache(name.to_owned()).into())
    }
}

async fn request(case: &Case) -> (i32, String) {
    let (handle, mut requests) = control::channel();
    tokio::spawn(async move {
        let mut pending = PendingCleanups::default();
        while let Some(request) = requests.recv().await {
            pending.serve(request, &mut NoTargets, std::time::Instant::now());
        }
    });
    let state = ApiState {
        status: StatusStore::default(),
        control: handle,
        readiness: Readiness::new(),
        prometheus: Arc::new(PrometheusExporter::new(FrameCell::default())),
    };
    let access = match case.access.as_deref() {
        Some("remote") => Access::Remote(Token::new("s3cret")),
        _ => Access::Local,
    };
    let line = case.input.as_deref().expect("an http case has an input");
    let (method, path) = line.split_once(' ').expect("METHOD PATH");
    let mut builder = http::Request::builder().method(method).uri(path);
    if let Some(auth) = &case.auth {
        builder = builder.header(http::header::AUTHORIZATION, auth);
    }
    let response = router(state, access).oneshot(builder.body(Body::empty()).unwrap()).await.unwrap();
    let status = i32::from(response.status().as_u16());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn every_bad_input_gets_its_status_and_a_message_that_says_what_is_wrong() {
    let cases: Cases = toml::from_str(CASES).expect("cases.toml parses");
    assert!(cases.case.len() >= 100, "at least 100 cases, found {}", cases.case.len());
    let tmp = tempfile::tempdir().unwrap();
    let open = tmp.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut failures = Vec::new();
    for (index, case) in cases.case.iter().enumerate() {
        let (status, message) = if case.kind == "http" { request(case).await } else { run(case, index, tmp.path()) };
        let missing: Vec<&String> = case.words.iter().filter(|w| !message.contains(w.as_str())).collect();
        if status != case.exit || !missing.is_empty() || message.contains("panicked") {
            failures.push(format!(
                "case {index} ({} {:?}{:?}): got {status}, expected {}; missing {missing:?} in:\n{message}",
                case.kind, case.input, case.args, case.exit
            ));
        }
        assert!(message.lines().all(|l| l.len() < 2000), "case {index}: a line of {} bytes", message.len());
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.case.len(), failures.join("\n\n"));
}
