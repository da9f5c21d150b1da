//! The VM's serial console: streamed to the terminal and a log, and read
//! for the verdict lines /init prints.
use std::{
    fs,
    io::{BufRead as _, BufReader, BufWriter, Write as _},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use super::Lane;
use crate::shell;

/// What the console said.
#[derive(Debug, Default)]
pub struct Outcome {
    /// (test executable, exit status, seconds it ran).
    tests: Vec<(String, i32, f64)>,
    figures: Vec<String>,
    status: Option<i32>,
    booted_after: Option<Duration>,
}

pub fn boot(
    lane: &Lane,
    kernel: &Path,
    initrd: &Path,
    log: &Path,
    nonce: &str,
    timeout: Duration,
) -> anyhow::Result<Outcome> {
    let mut qemu = Command::new("qemu-system-x86_64");
    // No network card: nothing needs one, and it saves the firmware's PXE ROM.
    qemu.args([
        "-accel",
        lane.accel,
        "-m",
        &lane.memory_mib.to_string(),
        "-smp",
        &lane.cpus.to_string(),
        "-nographic",
        "-no-reboot",
        "-nic",
        "none",
    ])
    .arg("-kernel")
    .arg(kernel)
    .arg("-initrd")
    .arg(initrd)
    .args(["-append", lane.append])
    .stdin(Stdio::null())
    .stdout(Stdio::piped());
    eprintln!("+ {}", shell::describe(&qemu));
    let started = Instant::now();
    let mut child = qemu.spawn().context("starting qemu-system-x86_64")?;
    let lines = console_lines(&mut child)?;
    let mut log_file = BufWriter::new(fs::File::create(log).with_context(|| format!("creating {}", log.display()))?);

    let mut outcome = Outcome::default();
    let mut test_started = Instant::now();
    let deadline = started + timeout;
    loop {
        let line = match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                log_file.flush()?;
                bail!("the VM did not finish within {timeout:?}; killed it. Console log: {}", log.display());
            }
        };
        println!("[vm] {line}");
        writeln!(log_file, "{line}")?;
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("MEMWATCH-VM-START"), Some(n)) if n == nonce => {
                outcome.booted_after.get_or_insert(started.elapsed());
                test_started = Instant::now();
            }
            (Some("MEMWATCH-VM-TEST"), Some(n)) if n == nonce => {
                let name = words.next().unwrap_or_default().to_owned();
                let rc = words.next().and_then(|w| w.strip_prefix("exit=")?.parse().ok()).unwrap_or(-1);
                outcome.tests.push((name, rc, test_started.elapsed().as_secs_f64()));
            }
            (Some("MEMWATCH-VM-DONE"), Some(n)) if n == nonce => {
                outcome.status = words.next().and_then(|w| w.strip_prefix("status=")?.parse().ok());
            }
            // The test harness prints "test name ... " without a newline,
            // so a test's first figure shares that line.
            _ => {
                if let Some(at) = line.find("FIGURE ") {
                    outcome.figures.push(line[at + "FIGURE ".len()..].to_owned());
                }
            }
        }
    }
    log_file.flush()?;
    let exit = child.wait()?;
    if !exit.success() {
        eprintln!("qemu exited with {exit}");
    }
    Ok(outcome)
}

/// The serial console, line by line, from a reader thread (so the caller
/// can time out while the VM is silent).
fn console_lines(child: &mut Child) -> anyhow::Result<mpsc::Receiver<String>> {
    let stdout = child.stdout.take().context("qemu stdout")?;
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
            // The serial console ends lines with \r\n.
            let line = without_escapes(&String::from_utf8_lossy(&buf));
            if send.send(line).is_err() {
                return;
            }
            buf.clear();
        }
    });
    Ok(receive)
}

/// The line without terminal escape sequences (the firmware clears the
/// screen) and without the serial console's \r\n.
fn without_escapes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            // ESC [ parameters final-letter, or ESC plus one character.
            '\x1b' => {
                if chars.next() == Some('[') {
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
            }
            '\r' | '\n' => {}
            c => out.push(c),
        }
    }
    out
}

pub fn summarize(lane: &Lane, outcome: &Outcome, built: Duration, total: Duration, log: &Path) -> anyhow::Result<()> {
    println!("\n=== vm-test summary, lane {} (console log: {}) ===", lane.name, log.display());
    println!(
        "build + pack: {:.0} s; boot to first test: {:.1} s",
        built.as_secs_f64(),
        outcome.booted_after.map_or(f64::NAN, |d| d.as_secs_f64())
    );
    for (name, rc, secs) in &outcome.tests {
        println!(
            "{:<16} {} ({secs:.1} s)",
            name,
            if *rc == 0 { "ok".to_owned() } else { format!("FAILED (exit {rc})") }
        );
    }
    for figure in &outcome.figures {
        println!("  {figure}");
    }
    println!("total: {:.0} s", total.as_secs_f64());
    let failed: Vec<&str> = outcome.tests.iter().filter(|(_, rc, _)| *rc != 0).map(|(n, _, _)| n.as_str()).collect();
    match outcome.status {
        None => {
            bail!("the VM stopped without reporting a result (crash, panic or broken /init): see {}", log.display())
        }
        Some(_) if !failed.is_empty() => bail!("tests failed in the VM: {}", failed.join(", ")),
        Some(0) if outcome.tests.len() == lane.tests.len() => Ok(()),
        Some(status) => bail!(
            "the VM reported status {status} with {} of {} test executables run",
            outcome.tests.len(),
            lane.tests.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_line_ends_are_dropped() {
        assert_eq!(without_escapes("\x1bc\x1b[?7l\x1b[2JSeaBIOS (version 1.16)\r\n"), "SeaBIOS (version 1.16)");
        assert_eq!(without_escapes("plain\ttext"), "plain\ttext");
    }
}
