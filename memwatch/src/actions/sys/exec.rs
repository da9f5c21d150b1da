//! The `exec` cleanup step: a command run with no shell, a minimal
//! environment plus what memwatch says about the target, stdin closed, its
//! output kept up to a bound, and its whole process group killed at the
//! timeout (and at memwatch's exit). No thread is started for it: the
//! worker that runs the step reads the pipes itself, so a command whose
//! descendants keep them open costs nothing once it is over.
use std::{
    io::Read,
    os::{
        fd::AsRawFd,
        unix::process::{CommandExt, ExitStatusExt},
    },
    process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rustix::process::{Pid, Signal, kill_process_group};

use super::ActError;

/// What of the command's output (stdout, then stderr) is kept in the record.
pub const KEPT_OUTPUT_BYTES: usize = 512;
/// The only inherited setting: commands find their tools in the usual places.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const POLL_MS: i32 = 10;
/// How long the output is read after the command ended (its descendants may hold the pipes).
const OUTPUT_GRACE: Duration = Duration::from_millis(200);

/// The process groups of the commands running now, not yet reaped (so
/// their group ids cannot have been reused): killed at exit, after which no
/// command starts. Shared by the executor's workers.
#[derive(Debug, Clone, Default)]
pub struct Running(Arc<Mutex<Groups>>);

#[derive(Debug, Default)]
struct Groups {
    pids: Vec<u32>,
    closed: bool,
}

impl Running {
    /// memwatch is exiting: every command still running is killed with its
    /// group, and none starts from now on.
    pub fn kill_all(&self) {
        let mut groups = self.lock();
        groups.closed = true;
        for pid in &groups.pids {
            kill_group(*pid);
        }
    }

    /// Whether `kill_all` has run: memwatch is stopping.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Lists `pid`'s group, unless memwatch is stopping (it is then killed).
    fn admit(&self, pid: u32) -> bool {
        let mut groups = self.lock();
        if groups.closed {
            kill_group(pid);
            return false;
        }
        groups.pids.push(pid);
        true
    }

    fn remove(&self, pid: u32) {
        self.lock().pids.retain(|p| *p != pid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Groups> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

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

/// Runs `argv` with `env`, waiting at most `timeout`; listed in `running`
/// while it runs.
pub fn run(
    argv: &[String],
    env: &[(String, String)],
    timeout: Duration,
    running: &Running,
) -> Result<Finished, ActError> {
    let what = argv.join(" ");
    let failed = |detail: String| ActError::Step { what: format!("exec {what}"), detail };
    let (program, args) = argv.split_first().ok_or_else(|| failed("empty command".to_owned()))?;
    if running.is_closed() {
        return Err(failed("not run: memwatch is stopping".to_owned()));
    }
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
    // Spawned while memwatch began stopping: killed before it does anything
    // (kill_all may have run between the check below and the spawn).
    if !running.admit(child.id()) {
        let _ = child.wait();
        return Err(failed("not run: memwatch is stopping".to_owned()));
    }
    let mut output = Output::new(child.stdout.take(), child.stderr.take());
    let deadline = Instant::now() + timeout;
    let ended = loop {
        output.read_for(POLL_MS);
        match has_ended(&child) {
            Ok(true) => break Ok(()),
            Ok(false) if Instant::now() < deadline => {}
            Ok(false) => break Err(failed(format!("killed after its timeout of {} ms", timeout.as_millis()))),
            Err(e) => break Err(failed(format!("waiting for it: {e}"))),
        }
    };
    // The child is not reaped yet, so its group id is still its own: what
    // it left running in its group goes with it. Then it is reaped.
    kill_group(child.id());
    running.remove(child.id());
    let status = child.wait().map_err(|e| failed(format!("reaping it: {e}")))?;
    ended?;
    let grace = Instant::now() + OUTPUT_GRACE;
    while !output.is_closed() && Instant::now() < grace {
        output.read_for(POLL_MS);
    }
    Ok(Finished { status, output: output.text() })
}

/// Whether the child has ended, leaving it unreaped (WNOWAIT).
fn has_ended(child: &Child) -> std::io::Result<bool> {
    // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: waitid on our own child's pid, writing only into `info`.
    if unsafe { libc::waitid(libc::P_PID, child.id(), &mut info, flags) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: waitid filled `info`; si_pid is 0 when nothing has changed.
    Ok(unsafe { info.si_pid() } != 0)
}

fn kill_group(pid: u32) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process_group(pid, Signal::KILL);
    }
}

/// The command's stdout and stderr, read as they come without blocking;
/// the first `KEPT_OUTPUT_BYTES` of each kept, the rest read and dropped.
struct Output {
    pipes: Vec<(Box<dyn ReadFd>, Vec<u8>, bool)>,
}

trait ReadFd: Read + AsRawFd + Send {}
impl ReadFd for ChildStdout {}
impl ReadFd for ChildStderr {}
#[cfg(test)]
impl ReadFd for std::fs::File {}

impl Output {
    fn new(stdout: Option<ChildStdout>, stderr: Option<ChildStderr>) -> Self {
        let mut pipes: Vec<(Box<dyn ReadFd>, Vec<u8>, bool)> = Vec::new();
        if let Some(out) = stdout {
            pipes.push((Box::new(out), Vec::new(), false));
        }
        if let Some(err) = stderr {
            pipes.push((Box::new(err), Vec::new(), false));
        }
        for (pipe, _, _) in &pipes {
            set_nonblocking(pipe.as_raw_fd());
        }
        Self { pipes }
    }

    fn is_closed(&self) -> bool {
        self.pipes.iter().all(|(_, _, closed)| *closed)
    }

    /// Waits for output and reads what there is, `ms` in all: a command
    /// writing faster than it is read must not keep the caller from its
    /// deadline (stderr may then go unread for this call: the output is
    /// for people, the deadline is not).
    fn read_for(&mut self, ms: i32) {
        let until = Instant::now() + Duration::from_millis(ms.unsigned_abs().into());
        let mut fds: Vec<libc::pollfd> = self
            .pipes
            .iter()
            .filter(|(_, _, closed)| !closed)
            .map(|(pipe, _, _)| libc::pollfd { fd: pipe.as_raw_fd(), events: libc::POLLIN, revents: 0 })
            .collect();
        if fds.is_empty() {
            std::thread::sleep(Duration::from_millis(ms as u64));
            return;
        }
        // SAFETY: `fds` is a valid array of pollfd for its length.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        let mut buf = [0u8; 4096];
        for (pipe, kept, closed) in self.pipes.iter_mut().filter(|(_, _, closed)| !closed) {
            while Instant::now() < until {
                match pipe.read(&mut buf) {
                    Ok(0) => {
                        *closed = true;
                        break;
                    }
                    Ok(n) => {
                        let room = KEPT_OUTPUT_BYTES.saturating_sub(kept.len());
                        kept.extend_from_slice(&buf[..n.min(room)]);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        *closed = true;
                        break;
                    }
                }
            }
        }
    }

    fn text(&self) -> String {
        let parts: Vec<String> =
            self.pipes.iter().map(|(_, kept, _)| String::from_utf8_lossy(kept).trim().to_owned()).collect();
        let mut text = parts.into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join("\n");
        if text.len() > KEPT_OUTPUT_BYTES {
            let mut end = KEPT_OUTPUT_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        text
    }
}

fn set_nonblocking(fd: i32) {
    // SAFETY: fcntl on a pipe fd we own; only the status flags change.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
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
        let done = run(&argv(&["/usr/bin/env"]), &env, Duration::from_secs(5), &Running::default()).unwrap();
        assert!(done.status.success());
        let mut lines: Vec<&str> = done.output.lines().collect();
        lines.sort();
        assert_eq!(lines, vec!["MEMWATCH_TARGET=cgroup:/a.service", &format!("PATH={PATH}")]);
    }

    #[test]
    fn output_is_kept_up_to_its_bound_and_the_status_is_told() {
        let done = run(
            &argv(&["/bin/sh", "-c", "yes x | head -c 100000; exit 3"]),
            &[],
            Duration::from_secs(5),
            &Running::default(),
        )
        .unwrap();
        assert_eq!(done.status.code(), Some(3));
        assert_eq!(done.describe(), "exit status 3");
        assert!(done.output.len() <= KEPT_OUTPUT_BYTES && done.output.starts_with("x\nx"), "{:?}", done.output);
    }

    #[test]
    fn a_command_past_its_timeout_is_killed_with_what_it_started() {
        let marker = tempfile::NamedTempFile::new().unwrap();
        let script = format!("sleep 30 & echo $! > {}; wait", marker.path().display());
        let started = Instant::now();
        let err =
            run(&argv(&["/bin/sh", "-c", &script]), &[], Duration::from_millis(300), &Running::default()).unwrap_err();
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
    fn a_descendant_that_keeps_the_pipes_open_does_not_hold_the_step() {
        let started = Instant::now();
        // setsid takes the sleep out of the command's group; it keeps stdout.
        let done = run(
            &argv(&["/bin/sh", "-c", "setsid sleep 5 & echo left"]),
            &[],
            Duration::from_secs(5),
            &Running::default(),
        )
        .unwrap();
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert_eq!(done.output, "left");
    }

    #[test]
    fn output_that_never_runs_dry_is_read_for_its_time_only() {
        // /dev/zero is always readable and never ends: a command writing
        // faster than it is read, at its worst.
        let endless = std::fs::File::open("/dev/zero").unwrap();
        let mut output = Output { pipes: vec![(Box::new(endless), Vec::new(), false)] };
        let (done, returned) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            output.read_for(POLL_MS);
            let _ = done.send(output.pipes[0].1.len());
        });
        let kept = returned.recv_timeout(Duration::from_secs(5)).expect("read_for returned");
        assert_eq!(kept, KEPT_OUTPUT_BYTES);
    }

    #[test]
    fn once_memwatch_is_stopping_no_command_starts() {
        let running = Running::default();
        running.kill_all();
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let script = format!("touch {}", marker.display());
        let err = run(&argv(&["/bin/sh", "-c", &script]), &[], Duration::from_secs(5), &running).unwrap_err();
        assert!(err.to_string().contains("memwatch is stopping"), "{err}");
        assert!(!marker.exists());
        // Spawned in the gap between the check and kill_all: killed at once.
        let child = Command::new("/bin/sleep").arg("30").process_group(0).spawn().unwrap();
        assert!(!running.admit(child.id()));
        let mut child = child;
        let status = child.wait().unwrap();
        assert!(!status.success(), "killed, not run for 30 s: {status:?}");
    }

    #[test]
    fn a_command_that_cannot_start_says_so() {
        let err = run(&argv(&["/nonexistent/trim"]), &[], Duration::from_secs(1), &Running::default()).unwrap_err();
        assert!(err.to_string().contains("exec /nonexistent/trim: could not start"), "{err}");
    }
}
