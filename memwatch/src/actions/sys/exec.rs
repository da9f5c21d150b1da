//! The `exec` cleanup step: a command run with no shell, a minimal
//! environment plus what memwatch says about the target, stdin closed, its
//! output kept up to a bound, and its whole process group killed at the
//! timeout.
use std::{
    io::Read,
    os::unix::process::{CommandExt, ExitStatusExt},
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use rustix::process::{Pid, Signal, kill_process_group};

use super::ActError;

/// What of the command's output (stdout, then stderr) is kept in the record.
pub const KEPT_OUTPUT_BYTES: usize = 512;
/// The only inherited setting: commands find their tools in the usual places.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const POLL: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub status: ExitStatus,
    /// The output's first `KEPT_OUTPUT_BYTES`, lossily as text.
    pub output: String,
}

impl Finished {
    pub fn describe(&self) -> String {
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            _ => "ended".to_owned(),
        }
    }
}

/// Runs `argv` with `env`, waiting at most `timeout`.
pub fn run(argv: &[String], env: &[(String, String)], timeout: Duration) -> Result<Finished, ActError> {
    let what = argv.join(" ");
    let failed = |detail: String| ActError::Step { what: format!("exec {what}"), detail };
    let (program, args) = argv.split_first().ok_or_else(|| failed("empty command".to_owned()))?;
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", PATH)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so the timeout kills whatever it started too.
        .process_group(0)
        .spawn()
        .map_err(|e| failed(format!("could not start: {e}")))?;
    let output = collect_output(&mut child);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            Ok(None) => {
                kill_group(&child);
                let _ = child.wait();
                return Err(failed(format!("killed after its timeout of {} ms", timeout.as_millis())));
            }
            Err(e) => {
                kill_group(&child);
                let _ = child.wait();
                return Err(failed(format!("waiting for it: {e}")));
            }
        }
    };
    // Whatever it left running in its group goes with it.
    kill_group(&child);
    // A grandchild that left the group may hold the pipes open: the output
    // is not waited for beyond a moment.
    let output = output.recv_timeout(Duration::from_millis(200)).unwrap_or_default();
    Ok(Finished { status, output })
}

fn kill_group(child: &Child) {
    if let Some(pid) = Pid::from_raw(child.id() as i32) {
        let _ = kill_process_group(pid, Signal::KILL);
    }
}

/// Reads stdout and stderr on threads of their own (so neither fills its
/// pipe and stalls the command), keeping the first bytes of each.
fn collect_output(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let readers: Vec<_> = [
        child.stdout.take().map(|o| Box::new(o) as Box<dyn Read + Send>),
        child.stderr.take().map(|e| Box::new(e) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|pipe| std::thread::spawn(move || keep_start(pipe)))
    .collect();
    std::thread::spawn(move || {
        let parts: Vec<String> = readers.into_iter().filter_map(|r| r.join().ok()).collect();
        let mut text = parts.join("\n").trim().to_owned();
        if text.len() > KEPT_OUTPUT_BYTES {
            let mut end = KEPT_OUTPUT_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        let _ = tx.send(text);
    });
    rx
}

/// The first `KEPT_OUTPUT_BYTES` of `pipe`; the rest is read and dropped.
fn keep_start(mut pipe: Box<dyn Read + Send>) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = pipe.read(&mut buf) {
        let room = KEPT_OUTPUT_BYTES.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    String::from_utf8_lossy(&kept).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_command_gets_the_target_in_its_environment_and_nothing_else() {
        let env = vec![("MEMWATCH_TARGET".to_owned(), "cgroup:/a.service".to_owned())];
        let done = run(&argv(&["/usr/bin/env"]), &env, Duration::from_secs(5)).unwrap();
        assert!(done.status.success());
        let mut lines: Vec<&str> = done.output.lines().collect();
        lines.sort();
        assert_eq!(lines, vec!["MEMWATCH_TARGET=cgroup:/a.service", &format!("PATH={PATH}")]);
    }

    #[test]
    fn output_is_kept_up_to_its_bound_and_the_status_is_told() {
        let done =
            run(&argv(&["/bin/sh", "-c", "yes x | head -c 100000; exit 3"]), &[], Duration::from_secs(5)).unwrap();
        assert_eq!(done.status.code(), Some(3));
        assert_eq!(done.describe(), "exit status 3");
        assert!(done.output.len() <= KEPT_OUTPUT_BYTES && done.output.starts_with("x\nx"), "{:?}", done.output);
    }

    #[test]
    fn a_command_past_its_timeout_is_killed_with_what_it_started() {
        let marker = tempfile::NamedTempFile::new().unwrap();
        let script = format!("sleep 30 & echo $! > {}; wait", marker.path().display());
        let started = Instant::now();
        let err = run(&argv(&["/bin/sh", "-c", &script]), &[], Duration::from_millis(300)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        assert!(err.to_string().contains("killed after its timeout of 300 ms"), "{err}");
        let sleeper: i32 = std::fs::read_to_string(marker.path()).unwrap().trim().parse().unwrap();
        // The sleep was in the command's group: it is gone too (or a zombie
        // of an init that has not reaped it yet).
        std::thread::sleep(Duration::from_millis(100));
        let state = std::fs::read_to_string(format!("/proc/{sleeper}/stat")).unwrap_or_default();
        assert!(state.is_empty() || state.contains(") Z"), "sleep {sleeper} still runs: {state}");
    }

    #[test]
    fn a_command_that_cannot_start_says_so() {
        let err = run(&argv(&["/nonexistent/trim"]), &[], Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("exec /nonexistent/trim: could not start"), "{err}");
    }
}
