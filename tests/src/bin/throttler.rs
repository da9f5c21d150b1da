//! Lowers cgroups' limits through memwatch's throttle primitive, then hangs
//! until killed: a stand-in for a daemon that crashes mid-throttle, so the
//! VM tests can check that a successor restores what it left behind.
//!
//! Usage: throttler STATE_FILE LIMIT_BYTES CGROUP_DIR...
//! Prints "throttled" once every cgroup is lowered.
use memwatch::{
    actions::sys::throttle_state::Throttles,
    sources::cgroupfs::{Cgroup, DEFAULT_ROOT, Limit},
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [state, limit, dirs @ ..] = args.as_slice() else {
        panic!("usage: throttler STATE_FILE LIMIT_BYTES CGROUP_DIR...");
    };
    let limit = Limit::Bytes(limit.parse().expect("LIMIT_BYTES is a number"));
    let mut throttles = Throttles::load(state).unwrap_or_else(|e| panic!("{e}"));
    for dir in dirs {
        let cgroup = Cgroup::at(dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.strip_prefix(DEFAULT_ROOT).unwrap_or(dir);
        throttles.throttle(&cgroup, path, limit).unwrap_or_else(|e| panic!("throttling {dir}: {e}"));
    }
    println!("throttled");
    // Deliberately no restore: the test kills us here.
    loop {
        std::thread::park();
    }
}
