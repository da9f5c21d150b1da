//! `memwatch check-config FILE`: validate without starting.
use crate::{
    cli::CheckConfigArgs,
    config::{Config, signal_warnings},
    engine::LimitSpec,
};

/// Prints "FILE: ok" and a summary; a bad file returns its `ConfigError`,
/// which `main` prints (every error) and maps to exit status 78.
pub fn run(args: CheckConfigArgs) -> anyhow::Result<()> {
    let config = Config::load_for_daemon(&args.file)?;
    println!("{}: ok", args.file.display());
    let d = &config.defaults;
    let t = d.engine.thresholds;
    println!(
        "defaults: limit {}, thresholds {}/{}/{}, hysteresis {} x{}, leak detection {}",
        describe_limit(d.limit),
        t.warning,
        t.critical,
        t.emergency,
        d.engine.hysteresis.margin,
        d.engine.hysteresis.samples,
        if d.engine.leak.enabled { "on" } else { "off" },
    );
    println!("{} polic{}", config.policies.len(), if config.policies.len() == 1 { "y" } else { "ies" });
    for (i, policy) in config.policies.iter().enumerate() {
        let mut flags = Vec::new();
        if policy.settings.protect {
            flags.push("protect");
        }
        if policy.settings.dry_run {
            flags.push("dry_run");
        }
        println!(
            "  policy[{i}] {:?}: per {:?}, limit {}{}",
            policy.name,
            policy.granularity,
            describe_limit(policy.settings.limit),
            if flags.is_empty() { String::new() } else { format!(", {}", flags.join(", ")) }
        );
        let steps: Vec<&str> = policy.settings.actions.cleanup.iter().map(|s| s.name()).collect();
        println!("    cleanup: {}", if steps.is_empty() { "none".to_owned() } else { steps.join(", ") });
    }
    for warning in signal_warnings(&config) {
        println!("warning: {warning}");
    }
    Ok(())
}

fn describe_limit(limit: Option<LimitSpec>) -> String {
    match limit {
        None => "cgroup limit, else host memory".to_owned(),
        Some(LimitSpec::Bytes(b)) => format!("{b} bytes"),
        Some(LimitSpec::HostFraction(f)) => format!("{}% of host memory", f * 100.0),
    }
}
