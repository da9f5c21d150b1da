//! The daemon under hostile clients, bad files and signals, as a user meets
//! it: the release binary in procfs mode with its own socket and a TCP
//! listener on loopback.
use std::{
    io::Write as _,
    net::TcpStream,
    os::unix::{fs::PermissionsExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use memwatch_tests::{
    daemon::{self, Daemon, http, scenario_dir, wait_for_health, wait_until},
    figure, memwatch_binary,
};

/// A free loopback port (bound and released: the daemon takes it next).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn private_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A config with its socket, state and incidents in `dir`, TCP on `port`
/// with a token, and `extra` appended.
fn config(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let token = dir.join("token");
    private_file(&token, "s3cret\n");
    let rest = format!(
        r#"tcp_enabled = true
tcp_listen = "127.0.0.1:{port}"
token_file = "{token}"
header_timeout = "10s"
[otlp]
enabled = false
[defaults]
protect = true
{extra}
"#,
        token = token.display()
    );
    daemon::write_config(dir, &rest)
}

#[test]
fn idle_tcp_connections_under_a_64_descriptor_limit_neither_blind_the_monitor_nor_the_unix_socket() {
    let dir = scenario_dir("idle-flood");
    let port = free_port();
    let config = config(&dir, port, "");
    let mut command = Command::new(memwatch_binary());
    command.args(["run", "--config"]).arg(&config);
    // SAFETY: setrlimit between fork and exec touches only this process.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: 64, rlim_max: 64 };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let daemon = Daemon::start_command(command, &dir.join("daemon.log"));
    let socket = dir.join("memwatch.sock");
    wait_for_health(&socket);

    // 70 clients that each send the start of a request and then nothing.
    let mut idle = Vec::new();
    for _ in 0..70 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the kernel's backlog takes the connection");
        stream.write_all(b"GET /health HTTP/1.1\r\n").unwrap();
        idle.push(stream);
    }
    // Over several readings, the Unix socket keeps answering, fast.
    let mut slowest = Duration::ZERO;
    for _ in 0..8 {
        let started = Instant::now();
        let answer = http(&socket, "GET", "/health");
        slowest = slowest.max(started.elapsed());
        assert!(matches!(answer, Some((200, _))), "/health over the socket during the flood: {answer:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    figure(
        "hardening: 70 idle TCP connections, nofile 64",
        "slowest GET /health over the Unix socket (ms)",
        slowest.as_millis(),
    );
    assert!(slowest < Duration::from_secs(1), "/health took {slowest:?}");
    drop(idle);
    let log = daemon.log_text();
    assert!(!log.contains("reading failed"), "the monitoring loop failed a reading:\n{log}");
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(log.contains("lowered to"), "the connection cap was fitted to the descriptor limit:\n{log}");
    daemon.stop();
}

/// `memwatch status` against the daemon's socket.
fn status(socket: &Path) -> String {
    let out = Command::new(memwatch_binary()).args(["status", "--socket"]).arg(socket).output().unwrap();
    assert!(out.status.success(), "status failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn sighup_with_a_broken_config_keeps_the_old_one_and_with_a_fixed_one_applies_it() {
    let dir = scenario_dir("reload");
    let config = config(&dir, free_port(), "");
    let original = std::fs::read_to_string(&config).unwrap();
    let daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let socket = dir.join("memwatch.sock");
    wait_for_health(&socket);
    let hup = || {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(daemon.child.id() as i32, libc::SIGHUP) };
    };

    private_file(&config, &format!("{original}\n[cache]\nttl = inf\n"));
    hup();
    let rejected = wait_until(Duration::from_secs(10), || Some(status(&socket)).filter(|s| s.contains("REJECTED")));
    let rejected = rejected.unwrap_or_else(|| panic!("no rejection in status:\n{}", daemon.log_text()));
    assert!(rejected.contains("cache.ttl: inf is not a finite number"), "{rejected}");
    assert!(http(&socket, "GET", "/health").is_some(), "still serving on the old config");

    private_file(
        &config,
        &format!(
            "{original}\n[cache]\nttl = \"10m\"\n[[policy]]\nname = \"new\"\nmatch = {{ unit = \"x.service\" }}\n"
        ),
    );
    hup();
    let applied = wait_until(Duration::from_secs(10), || Some(status(&socket)).filter(|s| s.contains("applied")));
    let applied = applied.unwrap_or_else(|| panic!("no applied reload in status:\n{}", daemon.log_text()));
    assert!(!applied.contains("REJECTED"), "{applied}");
    let metrics = http(&socket, "GET", "/metrics").unwrap().1;
    assert!(metrics.contains("memwatch_config_reloads_total{memwatch_result=\"applied\"} 1"), "{metrics}");
    assert!(metrics.contains("memwatch_config_reloads_total{memwatch_result=\"rejected\"} 1"), "{metrics}");
    let log = daemon.log_text();
    assert!(log.contains("config reload rejected") && log.contains("config reloaded"), "{log}");
    daemon.stop();
}

#[test]
fn a_token_file_others_can_read_stops_run_with_exit_78_before_it_binds_anything() {
    let dir = scenario_dir("bad-token");
    let config = config(&dir, free_port(), "");
    std::fs::set_permissions(dir.join("token"), std::fs::Permissions::from_mode(0o644)).unwrap();
    for command in ["check-config", "run"] {
        let mut cmd = Command::new(memwatch_binary());
        match command {
            "run" => cmd.args(["run", "--config"]).arg(&config),
            _ => cmd.arg("check-config").arg(&config),
        };
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{command}: {stderr}");
        assert!(stderr.contains("api.token_file:") && stderr.contains("mode 0644"), "{command}: {stderr}");
    }
    assert!(!dir.join("memwatch.sock").exists(), "run bound its socket before refusing");
}

#[test]
fn check_config_piped_into_head_ends_quietly() {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} check-config {}/../config.toml | head -c 1",
            memwatch_binary().display(),
            env!("CARGO_MANIFEST_DIR")
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.stdout.len(), 1);
}
