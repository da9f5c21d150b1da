//! Cleanup passes with a step that may block (the kernel reclaiming, a
//! service answering, a command running) are applied off the monitoring
//! loop, by a few worker threads: the loop goes on reading and handling
//! emergencies meanwhile. A pass's steps run in order on one worker; the
//! outcomes come back together as one `PassDone` on a channel the loop
//! selects on.
//!
//! Bounded: the planner runs at most one pass per target, and at most
//! `WORKERS` run at once; the rest wait their turn in the queue.
use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::{executor::Signaller, steps::StepRunner};
use crate::{
    engine::planner::{Applied, Decision},
    model::incident::Outcome,
};

/// Passes applied at once: enough that one slow service does not hold up
/// the others, few enough to stay small.
const WORKERS: usize = 4;
/// How long the exit waits for passes under way (a step's own timeout is
/// at most 20 s; the exit does not wait for that).
pub const EXIT_WAIT: Duration = Duration::from_secs(3);

/// The steps of pass `pass` are done: their outcomes, in step order.
#[derive(Debug, Clone, PartialEq)]
pub struct PassDone {
    pub pass: u64,
    pub results: Vec<Applied>,
}

struct Job {
    pass: u64,
    decisions: Vec<Decision>,
    /// When the reading (or request) it was decided on was taken.
    started: Instant,
}

pub struct Passes<S> {
    runner: StepRunner<S>,
    queue: Option<mpsc::Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    done_tx: UnboundedSender<PassDone>,
    done_rx: Option<UnboundedReceiver<PassDone>>,
    /// Set at exit: queued passes are reported as not run.
    stopping: Arc<AtomicBool>,
}

impl<S: Signaller> Passes<S> {
    pub fn new(runner: StepRunner<S>) -> Self {
        let (done_tx, done_rx) = unbounded_channel();
        Self {
            runner,
            queue: None,
            workers: Vec::new(),
            done_tx,
            done_rx: Some(done_rx),
            stopping: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Where finished passes arrive; taken once, by the loop.
    pub fn take_done(&mut self) -> Option<UnboundedReceiver<PassDone>> {
        self.done_rx.take()
    }

    pub fn runner(&self) -> &StepRunner<S> {
        &self.runner
    }

    pub fn runner_mut(&mut self) -> &mut StepRunner<S> {
        &mut self.runner
    }

    /// Starts the workers now rather than at the first pass. The daemon
    /// does so at start-up: the first pass comes with the first crossing,
    /// where creating threads would cost the reaction milliseconds (tens
    /// on a small VM) and could fail for want of memory.
    pub fn start_workers(&mut self) {
        if self.queue.is_some() {
            return;
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..WORKERS {
            let worker = Worker {
                runner: self.runner.clone(),
                jobs: Arc::clone(&rx),
                done: self.done_tx.clone(),
                stopping: Arc::clone(&self.stopping),
            };
            match std::thread::Builder::new().name("memwatch-pass".into()).spawn(move || worker.run()) {
                Ok(handle) => self.workers.push(handle),
                Err(e) => tracing::error!("could not start a cleanup worker: {e}"),
            }
        }
        self.queue = Some(tx);
    }

    /// Queues pass `pass` (its `decisions`, in step order), starting the
    /// workers first if they are not running yet.
    pub fn start(&mut self, pass: u64, decisions: Vec<Decision>, started: Instant) {
        let job = Job { pass, decisions, started };
        self.start_workers();
        let Some(queue) = &self.queue else { return };
        if let Err(mpsc::SendError(job)) = queue.send(job) {
            // No worker could start: the pass is reported, not lost.
            let results = not_run(&job.decisions, Outcome::Failed, "no cleanup worker is running");
            let _ = self.done_tx.send(PassDone { pass: job.pass, results });
        }
    }

    /// Exit, first half: passes not started yet are reported as not run
    /// (their `PassDone` still comes), and no new pass starts.
    pub fn stop_queue(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.queue = None;
    }

    /// Exit, second half: the workers get a moment to finish what they are
    /// applying; one still stuck in a step is left to the process's exit.
    pub fn stop(&mut self) {
        self.stop_queue();
        let deadline = Instant::now() + EXIT_WAIT;
        for worker in std::mem::take(&mut self.workers) {
            while !worker.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if worker.is_finished() {
                let _ = worker.join();
            }
        }
        // A command still running outlives no memwatch.
        self.runner.running.kill_all();
    }
}

struct Worker<S> {
    runner: StepRunner<S>,
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
    done: UnboundedSender<PassDone>,
    stopping: Arc<AtomicBool>,
}

impl<S: Signaller> Worker<S> {
    fn run(mut self) {
        loop {
            // The lock is held only while waiting for the next job.
            let job = match self.jobs.lock() {
                Ok(jobs) => jobs.recv(),
                Err(_) => return,
            };
            let Ok(job) = job else { return };
            let results = if self.stopping.load(Ordering::SeqCst) {
                not_run(&job.decisions, Outcome::Skipped, "memwatch stopped before this pass ran")
            } else {
                // A pass always reports back, even one that hit a bug: the
                // planner waits for it before the episode may end.
                let apply = AssertUnwindSafe(|| job.decisions.iter().map(|d| self.apply(d, job.started)).collect());
                std::panic::catch_unwind(apply).unwrap_or_else(|_| {
                    tracing::error!(pass = job.pass, "a cleanup worker failed applying a pass");
                    not_run(&job.decisions, Outcome::Failed, "the cleanup worker failed applying this pass")
                })
            };
            if self.done.send(PassDone { pass: job.pass, results }).is_err() {
                return;
            }
        }
    }

    fn apply(&mut self, decision: &Decision, started: Instant) -> Applied {
        // Once `Passes::stop` has killed the commands under way, the rest
        // of a pass must not start more, nor signal after every episode
        // has been closed.
        if self.runner.running.is_closed() {
            return Applied::new(Outcome::Skipped, "memwatch stopped before this step ran");
        }
        let applied = self
            .runner
            .step(&decision.plan)
            .unwrap_or_else(|| Applied::new(Outcome::Failed, "not a cleanup step: not applied off the loop"));
        Applied { done_after_s: started.elapsed().as_secs_f64(), ..applied }
    }
}

fn not_run(decisions: &[Decision], outcome: Outcome, why: &str) -> Vec<Applied> {
    decisions.iter().map(|_| Applied::new(outcome, why)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{actions::sys::ActError, model::sample::ProcessId};

    #[derive(Clone)]
    struct Refuses;

    impl Signaller for Refuses {
        fn send(&mut self, id: ProcessId, _: rustix::process::Signal) -> Result<(), ActError> {
            Err(ActError::ProcessGone { id })
        }
    }

    fn passes() -> Passes<Refuses> {
        let runner = StepRunner {
            cgroupfs: Default::default(),
            procfs: Default::default(),
            signaller: Refuses,
            running: Default::default(),
        };
        Passes::new(runner)
    }

    #[test]
    fn workers_started_ahead_are_the_ones_the_first_pass_uses() {
        let mut passes = passes();
        passes.start_workers();
        assert_eq!(passes.workers.len(), WORKERS);
        passes.start_workers();
        passes.start(1, Vec::new(), Instant::now());
        assert_eq!(passes.workers.len(), WORKERS, "no thread is created at the first pass");
        let mut done = passes.take_done().unwrap();
        assert_eq!(done.blocking_recv(), Some(PassDone { pass: 1, results: Vec::new() }));
        passes.stop();
    }

    #[test]
    fn at_exit_the_rest_of_a_pass_under_way_is_not_started() {
        use crate::{
            engine::planner::{Measure, Plan, Why},
            model::{incident::ActionKind, target_key::TargetKey},
        };
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("second step ran");
        let exec = |command: String| Decision {
            t: 0.0,
            target: TargetKey::from("cgroup:/a.service"),
            action: ActionKind::Exec,
            why: Why::Critical,
            plan: Plan::Exec {
                argv: vec!["/bin/sh".into(), "-c".into(), command],
                env: Vec::new(),
                timeout_ms: 60_000,
                measure: Measure::default(),
            },
            pass: Some(1),
        };
        let mut passes = passes();
        let mut done = passes.take_done().unwrap();
        let steps = vec![exec("sleep 30".into()), exec(format!("touch '{}'", marker.display()))];
        passes.start(1, steps, Instant::now());
        std::thread::sleep(Duration::from_millis(200));
        // Waits EXIT_WAIT for the stuck first step, then kills it.
        passes.stop();
        let results = done.blocking_recv().unwrap().results;
        assert_eq!(results[1].outcome, Outcome::Skipped, "{results:?}");
        std::thread::sleep(Duration::from_millis(200));
        assert!(!marker.exists(), "a step started after memwatch stopped");
    }

    #[test]
    fn without_a_start_ahead_the_first_pass_starts_them() {
        let mut passes = passes();
        assert!(passes.workers.is_empty());
        passes.start(1, Vec::new(), Instant::now());
        assert_eq!(passes.workers.len(), WORKERS);
        assert_eq!(passes.take_done().unwrap().blocking_recv().map(|d| d.pass), Some(1));
        passes.stop();
    }
}
