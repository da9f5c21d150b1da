//! Debian's prometheus-process-exporter, configured to match every process.
//! It reads /proc when it is scraped, so a scraper that asks once per
//! interval is what makes it watch the host the way memwatch does.
use std::{
    path::Path,
    process::{Child, Command},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

const PORT: u16 = 39256;

/// The exporter's command line, with its config written under `dir`.
pub fn command(dir: &Path) -> Command {
    let config = dir.join("process-exporter.yml");
    std::fs::write(&config, "process_names:\n  - name: \"{{.Comm}}\"\n    cmdline:\n    - '.+'\n")
        .expect("writing the process-exporter config");
    let mut command = Command::new("prometheus-process-exporter");
    command.arg("-config.path").arg(config).arg(format!("-web.listen-address=127.0.0.1:{PORT}"));
    command
}

/// One scrape of /metrics (what drives its reading of /proc).
pub fn scrape() {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", PORT)) else { return };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let _ = stream.read_to_end(&mut Vec::new());
}

/// The exporter running with a thread scraping it once per `interval`;
/// stopped and reaped on drop.
pub struct Scraped {
    child: Child,
    stop: Arc<AtomicBool>,
    scraper: Option<JoinHandle<()>>,
}

impl Scraped {
    pub fn start(dir: &Path, interval: Duration) -> Self {
        let child = super::footprint::quiet(&mut command(dir))
            .spawn()
            .unwrap_or_else(|e| panic!("starting prometheus-process-exporter: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let scraper = std::thread::spawn(move || {
            // The first scrape only once it listens, so each round's
            // workload runs beside a scrape, not beside its start-up.
            std::thread::sleep(Duration::from_millis(500));
            while !stopped.load(Ordering::Relaxed) {
                scrape();
                let mut slept = Duration::ZERO;
                while slept < interval && !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    slept += Duration::from_millis(100);
                }
            }
        });
        Self { child, stop, scraper: Some(scraper) }
    }
}

impl Drop for Scraped {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(scraper) = self.scraper.take() {
            let _ = scraper.join();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
