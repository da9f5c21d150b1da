//! The daemons' own cost, measured the same way for each: memwatch (`run`,
//! dry run) beside earlyoom (`--dryrun`), nohang (`--monitor`) and
//! prometheus-process-exporter (matching every process, scraped once per
//! interval, since it reads /proc when scraped), with `processes` extra
//! processes alive on the host. RSS is VmRSS at the end of the window; CPU
//! is utime + stime over the window, as a share of one core.
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

fn quiet(command: &mut Command) -> &mut Command {
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

/// Runs `command` for `warm_up` + `window`, calling `tick` once per
/// `interval`, and measures it over `window`.
fn measure(
    name: &'static str,
    command: &mut Command,
    warm_up: Duration,
    window: Duration,
    interval: Duration,
    tick: &dyn Fn(),
) -> Footprint {
    let mut child = quiet(command).spawn().unwrap_or_else(|e| panic!("starting {name}: {e}"));
    let pid = child.id();
    let run_for = |span: Duration| {
        let end = Instant::now() + span;
        while Instant::now() < end {
            tick();
            std::thread::sleep(interval.min(end.saturating_duration_since(Instant::now())));
        }
    };
    run_for(warm_up);
    let before = cpu_ticks(pid);
    run_for(window);
    let cpu = (cpu_ticks(pid) - before) as f64 / ticks_per_second();
    let (rss_kib, hwm_kib) = memory_kib(pid);
    if let Ok(Some(status)) = child.try_wait() {
        panic!("{name} exited during the measurement: {status}");
    }
    let _ = child.kill();
    let _ = child.wait();
    Footprint { name, rss_kib, hwm_kib, cpu_percent: cpu / window.as_secs_f64() * 100.0 }
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

const PROCESS_EXPORTER_PORT: u16 = 39256;

fn process_exporter_config(dir: &Path) -> PathBuf {
    let config = dir.join("process-exporter.yml");
    std::fs::write(&config, "process_names:\n  - name: \"{{.Comm}}\"\n    cmdline:\n    - '.+'\n")
        .expect("writing the process-exporter config");
    config
}

/// One scrape of process-exporter's /metrics (what drives its reading).
fn scrape_process_exporter() {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", PROCESS_EXPORTER_PORT)) else { return };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let _ = stream.read_to_end(&mut Vec::new());
}

/// Every daemon, measured in turn.
pub fn measure_all(memwatch: &Path, warm_up: Duration, window: Duration, interval: Duration) -> Vec<Footprint> {
    let dir = std::env::temp_dir().join(format!("memwatch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating the bench's temporary directory");
    let none = &|| {};
    let memwatch_config = memwatch_config(&dir, interval);
    let exporter_config = process_exporter_config(&dir);
    let figures = vec![
        measure(
            "memwatch run",
            Command::new(memwatch).arg("run").arg("--config").arg(&memwatch_config).env("MEMWATCH_LOG", "warn"),
            warm_up,
            window,
            interval,
            none,
        ),
        measure(
            "earlyoom --dryrun",
            Command::new("earlyoom").args(["--dryrun", "-r", "3600"]),
            warm_up,
            window,
            interval,
            none,
        ),
        measure(
            "nohang --monitor",
            Command::new("nohang").args(["--monitor", "--config", "/etc/nohang/nohang.conf"]),
            warm_up,
            window,
            interval,
            none,
        ),
        measure(
            "prometheus-process-exporter",
            Command::new("prometheus-process-exporter")
                .arg("-config.path")
                .arg(&exporter_config)
                .arg(format!("-web.listen-address=127.0.0.1:{PROCESS_EXPORTER_PORT}")),
            warm_up,
            window,
            interval,
            &scrape_process_exporter,
        ),
    ];
    let _ = std::fs::remove_dir_all(&dir);
    figures
}
