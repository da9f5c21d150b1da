//! The runtimes and servers people run, and what each does with the signals
//! a cleanup step may send. "Catches the signal" does not mean "treats it as
//! a request to free memory": SIGUSR1 opens Node's debugger, SIGHUP stops a
//! JVM, reloads nginx and PostgreSQL. A signal step is refused for a process
//! whose runtime uses that signal for something of its own.
//!
//! Sources (docs/actions.md has the table with links): the Node.js `process`
//! signal events; the HotSpot troubleshooting guide (signals used by the
//! JVM); Python's `signal` module; Ruby's `Signal` and `SignalException`;
//! Go's `os/signal`; Apache's "Stopping and Restarting"; nginx's
//! "Controlling nginx"; PostgreSQL's server start-up and shut-down chapter
//! and `pg_ctl reload`; the php-fpm manual; Redis' signal handling docs.
use rustix::process::Signal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    Node,
    Jvm,
    Python,
    Ruby,
    Go,
    Apache,
    Nginx,
    Postgres,
    PhpFpm,
    Redis,
}

/// What a runtime does on a signal, where that is not "free memory".
const RESERVED: &[(Runtime, Signal, &str)] = &[
    (Runtime::Node, Signal::USR1, "opens the V8 inspector (a debugger port any local user can attach to)"),
    (Runtime::Node, Signal::USR2, "is Node's diagnostic-report and heap-snapshot signal"),
    (Runtime::Jvm, Signal::HUP, "runs the shutdown hooks and exits the JVM"),
    (Runtime::Jvm, Signal::USR2, "is used by the JVM itself"),
    (Runtime::Ruby, Signal::HUP, "raises SignalException and exits, unless the program traps it"),
    (Runtime::Ruby, Signal::USR1, "raises SignalException and exits, unless the program traps it"),
    (Runtime::Ruby, Signal::USR2, "raises SignalException and exits, unless the program traps it"),
    (Runtime::Go, Signal::HUP, "exits a Go program unless it calls signal.Notify for it"),
    (Runtime::Apache, Signal::HUP, "restarts Apache httpd"),
    (Runtime::Apache, Signal::USR1, "gracefully restarts Apache httpd"),
    (Runtime::Nginx, Signal::HUP, "reloads nginx's configuration"),
    (Runtime::Nginx, Signal::USR1, "reopens nginx's log files"),
    (Runtime::Nginx, Signal::USR2, "starts an nginx binary upgrade"),
    (Runtime::Postgres, Signal::HUP, "reloads PostgreSQL's configuration"),
    (Runtime::Postgres, Signal::USR1, "is PostgreSQL's internal signalling between its processes"),
    (Runtime::Postgres, Signal::USR2, "is PostgreSQL's internal signalling between its processes"),
    (Runtime::PhpFpm, Signal::USR1, "reopens php-fpm's log files"),
    (Runtime::PhpFpm, Signal::USR2, "gracefully reloads php-fpm"),
    (Runtime::Redis, Signal::USR1, "is Redis' signal for ending a forked child"),
];

impl Runtime {
    pub const ALL: [Runtime; 10] = [
        Runtime::Node,
        Runtime::Jvm,
        Runtime::Python,
        Runtime::Ruby,
        Runtime::Go,
        Runtime::Apache,
        Runtime::Nginx,
        Runtime::Postgres,
        Runtime::PhpFpm,
        Runtime::Redis,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Runtime::Node => "node",
            Runtime::Jvm => "jvm",
            Runtime::Python => "python",
            Runtime::Ruby => "ruby",
            Runtime::Go => "go",
            Runtime::Apache => "apache",
            Runtime::Nginx => "nginx",
            Runtime::Postgres => "postgres",
            Runtime::PhpFpm => "php-fpm",
            Runtime::Redis => "redis",
        }
    }

    /// What this runtime does on `signal`, if it is something other than
    /// what a cleanup step means.
    pub fn reserved(self, signal: Signal) -> Option<&'static str> {
        RESERVED.iter().find(|(r, s, _)| *r == self && *s == signal).map(|(_, _, meaning)| *meaning)
    }

    /// The executable names a runtime goes by, for warning about policies
    /// whose match could cover it (check-config). Identity at run time comes
    /// from what the process is, not its name (`sources::runtime`).
    pub const fn names(self) -> &'static [&'static str] {
        match self {
            Runtime::Node => &["node", "nodejs"],
            Runtime::Jvm => &["java"],
            Runtime::Python => &["python", "python3"],
            Runtime::Ruby => &["ruby"],
            Runtime::Go => &[],
            Runtime::Apache => &["apache2", "httpd"],
            Runtime::Nginx => &["nginx"],
            Runtime::Postgres => &["postgres", "postmaster"],
            Runtime::PhpFpm => &["php-fpm"],
            Runtime::Redis => &["redis-server"],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signals_runtimes_keep_for_themselves_are_known() {
        assert!(Runtime::Node.reserved(Signal::USR1).unwrap().contains("inspector"));
        assert!(Runtime::Jvm.reserved(Signal::HUP).unwrap().contains("exits"));
        assert!(Runtime::Nginx.reserved(Signal::USR2).unwrap().contains("binary upgrade"));
        assert_eq!(Runtime::Python.reserved(Signal::USR1), None, "Python gives no signal a meaning of its own");
        assert_eq!(Runtime::Node.reserved(Signal::HUP), None);
    }
}
