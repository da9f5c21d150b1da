use rustix::process::Signal;

use super::*;
use crate::config::Config;

fn policy_with(match_: &str, cleanup: &str) -> String {
    format!("[[policy]]\nname = \"api\"\n{match_}\n[policy.actions]\ncleanup = {cleanup}\n")
}

#[test]
fn every_step_kind_reads_in_order() {
    let config = Config::parse(&policy_with(
        "match = { unit = \"api.service\" }",
        r#"[
            { reclaim = true },
            { http = "http://127.0.0.1:3000/health/gc?full=1", timeout = "2s" },
            { http = { socket = "/run/api/api.sock", path = "/gc" } },
            { exec = ["/usr/local/bin/api-trim", "--now"], timeout = "1s" },
            { signal = "USR2" },
        ]"#,
    ))
    .unwrap();
    assert_eq!(
        config.policies[0].settings.actions.cleanup,
        [
            CleanupStep::Reclaim,
            CleanupStep::Http {
                endpoint: HttpEndpoint::Loopback {
                    host: "127.0.0.1".into(),
                    port: 3000,
                    path: "/health/gc?full=1".into()
                },
                timeout_secs: 2.0
            },
            CleanupStep::Http {
                endpoint: HttpEndpoint::Unix { socket: "/run/api/api.sock".into(), path: "/gc".into() },
                timeout_secs: DEFAULT_STEP_TIMEOUT_SECS
            },
            CleanupStep::Exec { argv: vec!["/usr/local/bin/api-trim".into(), "--now".into()], timeout_secs: 1.0 },
            CleanupStep::Signal { signal: Signal::USR2 },
        ]
    );
}

#[test]
fn an_empty_list_means_no_cleanup_step() {
    let config = Config::parse("[defaults.actions]\ncleanup = []\n").unwrap();
    assert!(config.defaults.actions.cleanup.is_empty());
}

/// The one error `toml` gives, with its key path.
fn error_of(toml: &str) -> String {
    let errors = Config::parse(toml).expect_err(toml).0;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors[0].clone()
}

#[test]
fn signals_are_refused_where_no_policy_names_the_service() {
    let e = error_of("[defaults.actions]\ncleanup = [{ signal = \"SIGUSR1\" }]\n");
    assert!(e.starts_with("defaults.actions.cleanup[0].signal: signals are sent only by a policy"), "{e}");
    let e = error_of(&policy_with("", "[{ reclaim = true }, { signal = \"SIGUSR1\" }]"));
    assert!(e.starts_with("policy[0].actions.cleanup[1].signal: signals are sent only by a policy"), "{e}");
}

#[test]
fn bad_steps_name_their_field() {
    let named = "match = { unit = \"api.service\" }";
    let cases = [
        ("[{ signal = \"SIGKILL\" }]", "cleanup[0].signal", "not a cleanup signal"),
        ("[{ signal = \"SIGTERM\" }]", "cleanup[0].signal", "not a cleanup signal"),
        ("[{ http = \"http://10.0.0.5/gc\" }]", "cleanup[0].http", "only loopback hosts"),
        ("[{ http = \"https://127.0.0.1/gc\" }]", "cleanup[0].http", "must be an http:// URL"),
        ("[{ http = { path = \"/gc\" } }]", "cleanup[0].http", "needs `socket`"),
        ("[{ http = { socket = \"/s\", port = 1 } }]", "cleanup[0].http", "unknown key \"port\""),
        ("[{ exec = [\"trim\"] }]", "cleanup[0].exec", "must be an absolute path"),
        ("[{ exec = [] }]", "cleanup[0].exec", "the command is empty"),
        ("[{ exec = [\"/bin/x\", 1] }]", "cleanup[0].exec", "every argument must be a string"),
        ("[{ exec = [\"/bin/x\"], timeout = \"30s\" }]", "cleanup[0].timeout", "at most 20 seconds"),
        ("[{ reclaim = true, signal = \"USR1\" }]", "cleanup[0]", "exactly one of"),
        ("[{ reclaim = false }]", "cleanup[0].reclaim", "leave the step out"),
        ("[{ reclaim = true, timeout = \"1s\" }]", "cleanup[0].timeout", "unknown key"),
        ("[\"reclaim\"]", "cleanup[0]", "a table such as"),
        ("\"reclaim\"", "cleanup", "an array of steps"),
    ];
    for (cleanup, path, needle) in cases {
        let e = error_of(&policy_with(named, cleanup));
        assert!(e.starts_with(&format!("policy[0].actions.{path}: ")), "{cleanup}: {e}");
        assert!(e.contains(needle), "{cleanup}: {e}");
    }
}

#[test]
fn the_old_single_signal_key_points_to_the_steps() {
    let e = error_of("[defaults.actions]\ncleanup_signal = \"SIGUSR1\"\n");
    assert!(e.starts_with("defaults.actions.cleanup_signal: replaced by `cleanup`"), "{e}");
}
