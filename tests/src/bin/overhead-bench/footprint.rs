//! The daemons' own cost, measured the same way for each: memwatch (`run`,
//! dry run) beside earlyoom (`--dryrun`), nohang (`--monitor`) and
//! prometheus-process-exporter (matching every process, scraped once per
//! interval, since it reads /proc when scraped), with `processes` extra
//! processes alive on the host, or through a churn of short-lived ones.
//! RSS is VmRSS at the end of the window; CPU is utime + stime over the
//! window, as a share of one core.
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// One daemon's figures.
pub struct Footprint {
    pub name: &'static str,
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub cpu_percent: f64,
}

/// Children that only sleep, killed on drop.
pub struct Sleepers(Vec<Child>);

impl Sleepers {
    pub fn spawn(count: usize) -> Self {
        Self((0..count).map(|_| quiet(Command::new("sleep").arg("3600")).spawn().expect("spawning sleep")).collect())
    }
}

impl Drop for Sleepers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn quiet(command: &mut Command) -> &mut Command {
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null())
}

/// `(VmRSS, VmHWM)` in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised comm; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

/// One daemon as the bench starts it: `tick` is called once per interval
/// (what a scraper would do).
struct Daemon {
    name: &'static str,
    command: Command,
    tick: fn(),
}

/// Every daemon measured, with its files under `dir`.
fn daemons(memwatch: &Path, dir: &Path, interval: Duration) -> Vec<Daemon> {
    let mut memwatch_command = Command::new(memwatch);
    memwatch_command.arg("run").arg("--config").arg(memwatch_config(dir, interval)).env("MEMWATCH_LOG", "warn");
    let mut earlyoom = Command::new("earlyoom");
    earlyoom.args(["--dryrun", "-r", "3600"]);
    let mut nohang = Command::new("nohang");
    nohang.args(["--monitor", "--config", "/etc/nohang/nohang.conf"]);
    let nothing = || {};
    vec![
        Daemon { name: "memwatch run", command: memwatch_command, tick: nothing },
        Daemon { name: "earlyoom --dryrun", command: earlyoom, tick: nothing },
        Daemon { name: "nohang --monitor", command: nohang, tick: nothing },
        Daemon {
            name: "prometheus-process-exporter",
            command: super::process_exporter::command(dir),
            tick: super::process_exporter::scrape,
        },
    ]
}

/// A started daemon, killed on drop.
struct Running {
    name: &'static str,
    child: Child,
    tick: fn(),
    interval: Duration,
}

impl Running {
    fn start(mut daemon: Daemon, interval: Duration) -> Self {
        let name = daemon.name;
        let child = quiet(&mut daemon.command).spawn().unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Self { name, child, tick: daemon.tick, interval }
    }

    /// Lets it run for `span`, ticking once per interval.
    fn run_for(&self, span: Duration) {
        let end = Instant::now() + span;
        while Instant::now() < end {
            (self.tick)();
            std::thread::sleep(self.interval.min(end.saturating_duration_since(Instant::now())));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics if it has exited: a figure of a dead daemon means nothing.
    fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited during the measurement: {status}", self.name);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `daemon` for `warm_up` + `window` and measures it over `window`.
fn measure(daemon: Daemon, warm_up: Duration, window: Duration, interval: Duration) -> Footprint {
    let mut running = Running::start(daemon, interval);
    running.run_for(warm_up);
    let before = cpu_ticks(running.pid());
    running.run_for(window);
    let cpu = (cpu_ticks(running.pid()) - before) as f64 / ticks_per_second();
    let (rss_kib, hwm_kib) = memory_kib(running.pid());
    running.assert_alive();
    Footprint { name: running.name, rss_kib, hwm_kib, cpu_percent: cpu / window.as_secs_f64() * 100.0 }
}

/// One daemon's figures through a churn of short-lived processes.
pub struct ChurnFootprint {
    pub name: &'static str,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub hwm_kib: u64,
    pub cpu_percent: f64,
    pub seconds: f64,
}

/// Runs `daemon` for `warm_up`, then starts `processes` short-lived ones
/// one after another, then lets it run two more intervals (so its readings
/// see them gone). CPU is over the churn and those two intervals.
fn measure_churn(daemon: Daemon, warm_up: Duration, processes: usize, interval: Duration) -> ChurnFootprint {
    let mut running = Running::start(daemon, interval);
    running.run_for(warm_up);
    let (rss_before_kib, _) = memory_kib(running.pid());
    let cpu_before = cpu_ticks(running.pid());
    let start = Instant::now();
    let mut last_tick = start;
    for i in 0..processes {
        let status = quiet(&mut Command::new("/bin/true")).status().expect("starting /bin/true");
        assert!(status.success(), "/bin/true failed: {status}");
        if i % 64 == 0 && last_tick.elapsed() >= interval {
            (running.tick)();
            last_tick = Instant::now();
        }
    }
    running.run_for(interval * 2);
    let seconds = start.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(running.pid()) - cpu_before) as f64 / ticks_per_second();
    let (rss_after_kib, hwm_kib) = memory_kib(running.pid());
    running.assert_alive();
    ChurnFootprint {
        name: running.name,
        rss_before_kib,
        rss_after_kib,
        hwm_kib,
        cpu_percent: cpu / seconds * 100.0,
        seconds,
    }
}

/// memwatch's config for the measurement: the default but for a dry run and
/// files under `dir`.
fn memwatch_config(dir: &Path, interval: Duration) -> PathBuf {
    let config = dir.join("memwatch.toml");
    let text = format!(
        "[daemon]\ninterval_secs = {}\n[actions]\ndry_run = true\nstate_file = \"{d}/throttles.json\"\n\
         incident_log = \"{d}/incidents.jsonl\"\n[api]\nsocket = \"{d}/memwatch.sock\"\n",
        interval.as_secs_f64(),
        d = dir.display()
    );
    std::fs::write(&config, text).expect("writing the memwatch config");
    config
}

/// A directory for the daemons' files, removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("memwatch-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the bench's temporary directory");
        Self(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every daemon, measured in turn over a steady window.
pub fn measure_all(memwatch: &Path, warm_up: Duration, window: Duration, interval: Duration) -> Vec<Footprint> {
    let dir = ScratchDir::new();
    daemons(memwatch, &dir.0, interval).into_iter().map(|d| measure(d, warm_up, window, interval)).collect()
}

/// Every daemon, measured in turn through a churn of `processes`.
pub fn measure_churn_all(
    memwatch: &Path,
    warm_up: Duration,
    processes: usize,
    interval: Duration,
) -> Vec<ChurnFootprint> {
    let dir = ScratchDir::new();
    daemons(memwatch, &dir.0, interval).into_iter().map(|d| measure_churn(d, warm_up, processes, interval)).collect()
}
