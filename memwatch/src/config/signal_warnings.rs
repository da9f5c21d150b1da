//! What `check-config` (and the daemon at start) warns about a policy's
//! `signal` step: the runtimes its match could cover that use that signal
//! for something else. At run time those processes are skipped and the
//! refusal recorded (`engine::planner`); the warning says so beforehand.
use super::{
    Config,
    cleanup::{CleanupStep, signal_name},
    policy::{Identity, Matcher},
};
use crate::model::runtime::Runtime;

pub fn signal_warnings(config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    for (index, policy) in config.policies.iter().enumerate() {
        for step in &policy.settings.actions.cleanup {
            let CleanupStep::Signal { signal } = step else { continue };
            let name = signal_name(*signal);
            let reserving: Vec<(Runtime, &str)> =
                Runtime::ALL.iter().filter_map(|r| Some((*r, r.reserved(*signal)?))).collect();
            let at = format!("policy[{index}] {:?}", policy.name);
            if policy.matcher.process.is_some() || policy.matcher.exe.is_some() {
                for (runtime, meaning) in &reserving {
                    if let Some(exe) = covered(&policy.matcher, *runtime) {
                        warnings.push(format!(
                            "{at}: its match could cover {exe} ({}), where {name} {meaning}: such processes are \
                             skipped and the refusal recorded; ask the service for its own cleanup signal or use \
                             an http step",
                            runtime.as_str()
                        ));
                    }
                }
            } else {
                let names: Vec<&str> = reserving.iter().map(|(r, _)| r.as_str()).collect();
                warnings.push(format!(
                    "{at}: {name} means something else to {}: processes of those in its targets are skipped \
                     and the refusal recorded",
                    names.join(", ")
                ));
            }
        }
    }
    warnings
}

/// The first executable of `runtime` the name criteria of `matcher` match
/// (unit and cgroup left aside: any service may run it).
fn covered(matcher: &Matcher, runtime: Runtime) -> Option<String> {
    let names = Matcher { unit: None, cgroup: None, ..matcher.clone() };
    runtime.names().iter().map(|n| format!("/usr/bin/{n}")).find(|exe| {
        let process = exe.rsplit('/').next();
        names.matches(&Identity { process, exe: Some(exe), ..Default::default() })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(policy: &str) -> Vec<String> {
        signal_warnings(&Config::parse(policy).unwrap())
    }

    #[test]
    fn a_signal_step_whose_match_could_cover_a_runtime_is_warned_about() {
        let w = warnings(
            "[[policy]]\nname = \"web\"\nmatch = { process = \"^node$\" }\n\
             [policy.actions]\ncleanup = [{ signal = \"SIGUSR1\" }]\n",
        );
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(
            w[0].starts_with("policy[0] \"web\": its match could cover /usr/bin/node (node), where SIGUSR1 opens"),
            "{}",
            w[0]
        );

        let w = warnings(
            "[[policy]]\nname = \"all-bin\"\nmatch = { exe = \"/usr/bin/*\" }\n\
             [policy.actions]\ncleanup = [{ signal = \"SIGHUP\" }]\n",
        );
        let covered: Vec<&str> = w.iter().filter_map(|l| l.split(" (").nth(1)?.split(')').next()).collect();
        for runtime in ["jvm", "ruby", "apache", "nginx", "postgres"] {
            assert!(covered.contains(&runtime), "{runtime} not in {w:#?}");
        }
    }

    #[test]
    fn a_match_that_names_no_runtime_is_not_warned_about_and_a_unit_match_gets_the_list() {
        let w = warnings(
            "[[policy]]\nname = \"api\"\nmatch = { process = \"^api-server$\" }\n\
             [policy.actions]\ncleanup = [{ signal = \"SIGUSR2\" }]\n",
        );
        assert!(w.is_empty(), "{w:#?}");
        let w = warnings(
            "[[policy]]\nname = \"api\"\nmatch = { unit = \"api.service\" }\n\
             [policy.actions]\ncleanup = [{ signal = \"SIGUSR2\" }]\n",
        );
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("SIGUSR2 means something else to node, jvm, ruby, nginx, postgres, php-fpm"), "{}", w[0]);
        assert!(warnings("[[policy]]\nname = \"x\"\nmatch = { process = \"node\" }\n").is_empty(), "no signal step");
    }
}
