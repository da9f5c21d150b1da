//! The real `memwatch run` for the VM scenarios, and the leaking workload
//! it is pointed at, both with timeouts so a scenario that goes wrong fails
//! with a reason instead of hanging the VM.
use std::{
    fs,
    io::{BufRead as _, BufReader, Write as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc::{Receiver, RecvTimeoutError, channel},
    time::{Duration, Instant},
};

/// Polls `check` every 50 ms until it returns `Some`, or `timeout` passes.
pub fn wait_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A scratch directory for one scenario (config, state file, incidents, log).
pub fn scenario_dir(name: &str) -> ScenarioDir {
    let path = std::env::temp_dir().join(format!("memwatch-daemon-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&path);
    fs::create_dir_all(&path).expect("creating the scenario directory");
    ScenarioDir { path }
}

/// A scenario's directory, removed when the scenario passes and kept (its
/// path printed) when it fails, so the daemon's log can still be read: a
/// test run must not leave a directory behind for every scenario it ran.
pub struct ScenarioDir {
    path: PathBuf,
}

impl std::ops::Deref for ScenarioDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for ScenarioDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScenarioDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept the failed scenario's files in {}", self.path.display());
        } else if let Err(e) = fs::remove_dir_all(&self.path) {
            eprintln!("could not remove {}: {e}", self.path.display());
        }
    }
}

/// Writes a scenario's config to `dir`/memwatch.toml (mode 0600, as the
/// daemon wants its config) and returns its path: readings every 0.5 s from
/// /proc, no summary lines, the state file, incident log and API socket in
/// `dir`, then `rest`. `[api]` comes last, so `rest` may go on with its keys.
pub fn write_config(dir: &Path, rest: &str) -> PathBuf {
    write_config_every(dir, 0.5, rest)
}

/// `write_config` with readings `interval_secs` apart.
pub fn write_config_every(dir: &Path, interval_secs: f64, rest: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join("memwatch.toml");
    let text = format!(
        r#"[daemon]
interval_secs = {interval_secs}
mode = "procfs"
summary_top = 0
[actions]
state_file = "{dir}/throttles.json"
incident_log = "{dir}/incidents.jsonl"
[api]
socket = "{dir}/memwatch.sock"
{rest}
"#,
        dir = dir.display()
    );
    fs::write(&path, text).expect("writing the config");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod 0600 the config");
    path
}

/// The decisions a daemon logged in `log`, each as the JSON line `memwatch
/// replay --actions` prints.
pub fn logged_decisions(log: &Path) -> Vec<String> {
    const MARK: &str = "memwatch::decision: ";
    let text = fs::read_to_string(log).unwrap_or_default();
    text.lines().filter_map(|l| Some(l[l.find(MARK)? + MARK.len()..].trim_end().to_owned())).collect()
}

pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `memwatch run --config CONFIG` with its log in `log` (appended,
    /// so a restarted daemon's lines follow its predecessor's), and waits for
    /// its banner.
    pub fn start(config: &Path, log: &Path) -> Self {
        Self::start_with(config, log, &[])
    }

    /// `start` with more arguments for `memwatch run` (`--record FILE`).
    pub fn start_with(config: &Path, log: &Path, args: &[&std::ffi::OsStr]) -> Self {
        let mut command = Command::new(crate::memwatch_binary());
        command.args(["run", "--config"]).arg(config).args(args);
        Self::start_command(command, log)
    }

    /// Starts `command` (a `memwatch run ...` the caller prepared, with limits
    /// of its own, say) with its log in `log`, and waits for its banner.
    pub fn start_command(mut command: Command, log: &Path) -> Self {
        let file = fs::OpenOptions::new().create(true).append(true).open(log).expect("opening the daemon log");
        // A restarted daemon appends to its predecessor's log: only its own banner counts.
        let before = file.metadata().map_or(0, |m| m.len() as usize);
        let child = command
            .env("MEMWATCH_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file)
            .spawn()
            .expect("starting memwatch run");
        let mut daemon = Self { child, log: log.to_path_buf() };
        let started = wait_until(Duration::from_secs(30), || {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("memwatch run exited at start-up ({status}):\n{}", daemon.log_text());
            }
            daemon.log_text().get(before..).is_some_and(|own| own.contains("memwatch started")).then_some(())
        });
        assert!(started.is_some(), "no banner from memwatch run in 30 s:\n{}", daemon.log_text());
        daemon
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no chance to restore anything.
    pub fn crash(mut self) {
        self.child.kill().expect("SIGKILL to memwatch");
        self.child.wait().expect("reaping memwatch");
    }

    /// SIGTERM, as systemd stops it; asserts a clean exit.
    pub fn stop(mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = wait_until(Duration::from_secs(20), || self.child.try_wait().ok().flatten())
            .unwrap_or_else(|| panic!("memwatch did not stop on SIGTERM:\n{}", self.log_text()));
        assert!(status.success(), "memwatch exited with {status}:\n{}", self.log_text());
    }
}

impl Drop for Daemon {
    /// A scenario that fails half-way must not leave its daemon running,
    /// watching (and acting on) the host after the test.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `leaker` helper, its stdout lines read on a thread.
pub struct Leaker {
    pub child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
}

impl Leaker {
    /// Starts the leaker inside the cgroup `cgroup_dir`: it moves itself
    /// there before exec, so memwatch never sees it anywhere else (it reads a
    /// process's cgroup once, when it first sees the process).
    pub fn spawn_in(cgroup_dir: &Path, binary: &str, args: &[&str]) -> Self {
        use std::os::unix::process::CommandExt as _;
        let procs = std::ffi::CString::new(cgroup_dir.join("cgroup.procs").into_os_string().into_encoded_bytes())
            .expect("a path without NUL");
        let mut command = Command::new(binary);
        // SAFETY: between fork and exec only async-signal-safe calls are made
        // (open, write, close) on memory prepared before the fork.
        unsafe {
            command.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // "0" is the writing process itself.
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                if written != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command.args(args);
        Self::from_command(command)
    }

    /// Starts the leaker where the caller runs (no cgroup of its own).
    pub fn spawn(binary: &str, args: &[&str]) -> Self {
        let mut command = Command::new(binary);
        command.args(args);
        Self::from_command(command)
    }

    fn from_command(mut command: Command) -> Self {
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawning leaker");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut leaker = Self { child, lines, seen: Vec::new() };
        leaker.expect("ready", Duration::from_secs(10));
        leaker
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn start(&mut self) {
        let stdin = self.child.stdin.as_mut().expect("piped stdin");
        stdin.write_all(b"go\n").and_then(|()| stdin.flush()).expect("starting leaker");
    }

    /// Lines printed so far (without waiting).
    pub fn drain(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// Waits for `line`; panics after `timeout`.
    pub fn expect(&mut self, line: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        if self.drain().iter().any(|l| l == line) {
            return;
        }
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(l) if l == line => {
                    self.seen.push(l);
                    return;
                }
                Ok(l) => self.seen.push(l),
                Err(RecvTimeoutError::Timeout) => panic!("leaker: no {line:?} within {timeout:?}; saw {:?}", self.seen),
                Err(RecvTimeoutError::Disconnected) => panic!("leaker exited before {line:?}; saw {:?}", self.seen),
            }
        }
    }

    /// Waits for the leaker to end on its own (killed by the daemon).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        wait_until(timeout, || self.child.try_wait().ok().flatten())
    }

    /// Closes stdin (the leaker stops) and returns every line it printed.
    pub fn finish(mut self) -> Vec<String> {
        drop(self.child.stdin.take());
        let status = wait_until(Duration::from_secs(20), || self.child.try_wait().ok().flatten());
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(line);
        }
        self.seen
    }
}

/// Waits for the API to answer on `socket`: the banner `Daemon::start` waits
/// for is logged before the API is listening.
pub fn wait_for_health(socket: &Path) {
    let up = wait_until(Duration::from_secs(20), || http(socket, "GET", "/health").map(|_| ()));
    assert!(up.is_some(), "the API never answered on {}", socket.display());
}

/// One HTTP/1.1 request over the daemon's Unix socket, as `curl
/// --unix-socket` sends it: (status code, body), or None when the daemon
/// does not answer. Blocking and dependency-free, for the scenarios' polls.
pub fn http(socket: &Path, method: &str, path: &str) -> Option<(u16, String)> {
    use std::io::Read as _;
    let mut stream = std::os::unix::net::UnixStream::connect(socket).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let request =
        format!("{method} {path} HTTP/1.1\r\nHost: memwatch\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    // The API answers with a Content-Length, never chunked (axum's Json).
    Some((code, body.to_owned()))
}
