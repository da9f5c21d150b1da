//! `memwatch status`: one table, from the view.
use std::fmt::Write as _;

use crate::{
    bytes::{human_bytes, human_change},
    model::target_key::TargetKind,
    view::{StatusView, TargetView},
};

pub fn growth(t: &TargetView) -> String {
    format!("{}/s", human_change(t.growth_bytes_per_s.round() as i64))
}

pub fn leak(t: &TargetView) -> String {
    match &t.leak {
        None => "-".into(),
        Some(l) => {
            let eta = l.time_to_limit_s.map_or_else(|| "no limit in sight".to_owned(), |s| format!("limit in {s:.0}s"));
            format!("{}/s ({:.0}%, {eta})", human_change(l.slope_bytes_per_s.round() as i64), l.confidence * 100.0)
        }
    }
}

pub fn render(view: &StatusView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "host: {} / {} used ({:.1}%)   mode: {}   worst level: {}",
        human_bytes(view.host.used),
        human_bytes(view.host.total),
        view.host.usage_ratio * 100.0,
        if view.mode.is_empty() { "-" } else { &view.mode },
        view.worst_level().as_str(),
    );
    if !view.monitoring {
        let _ = writeln!(out, "(no reading yet: the daemon has just started)");
    }
    if let Some(reload) = &view.config_reload {
        let ago = view.generated_at_unix_s.saturating_sub(reload.at_unix_s);
        if reload.applied {
            let _ = write!(out, "config: reloaded {ago} s ago, applied");
            if !reload.restart_needed.is_empty() {
                let _ = write!(out, " (needs a restart: {})", reload.restart_needed.join(", "));
            }
            let _ = writeln!(out);
        } else {
            let _ = writeln!(
                out,
                "config: reload {ago} s ago REJECTED, still running on the previous config ({} error(s)):",
                reload.errors.len()
            );
            for error in &reload.errors {
                let _ = writeln!(out, "  {error}");
            }
        }
    }
    let _ = writeln!(
        out,
        "{:<32} {:<9} {:>10} {:>10} {:>6} {:>13} {:<28} LAST ACTION",
        "TARGET", "LEVEL", "USAGE", "LIMIT", "USE%", "GROWTH", "LEAK"
    );
    for t in &view.targets {
        let action = t.last_action.as_ref().map_or_else(
            || "-".to_owned(),
            |a| format!("{} {} ({} freed)", a.action, a.result, human_bytes(a.freed_bytes)),
        );
        let _ = writeln!(
            out,
            "{:<32} {:<9} {:>10} {:>10} {:>5.1}% {:>13} {:<28} {}",
            truncate(&t.name, 32),
            t.level.as_str(),
            human_bytes(t.usage_bytes),
            human_bytes(t.limit_bytes),
            t.usage_ratio() * 100.0,
            growth(t),
            leak(t),
            action,
        );
        if let Some(c) = &t.container {
            let _ = writeln!(out, "  {}", container(c));
        }
        if let Some(line) = cgroup_memory(t) {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// "cgroup charged 1.2 GiB, working set 900.0 MiB; pressure 12.5% some,
/// 2.0% full over 10 s": where the usage column came from, for a target
/// judged on its cgroup's figures, and its cgroup's pressure (v2).
pub fn cgroup_memory(t: &TargetView) -> Option<String> {
    let charged = t
        .charged_bytes
        .map(|charged| format!("charged {}, working set {}", human_bytes(charged), human_bytes(t.usage_bytes)));
    let pressure =
        t.pressure.map(|p| format!("pressure {:.1}% some, {:.1}% full over 10 s", p.some_avg10, p.full_avg10));
    match (charged, pressure) {
        (None, None) => None,
        (Some(charged), None) => Some(format!("cgroup {charged}")),
        (None, Some(pressure)) => Some(format!("cgroup {pressure}")),
        (Some(charged), Some(pressure)) => Some(format!("cgroup {charged}; {pressure}")),
    }
}

/// A target's name where a column is narrow (`memwatch top`): a
/// container's runtime and short id say more than the start of its long
/// cgroup path.
pub fn short_name(t: &TargetView) -> String {
    // Only a target that is the container itself: process targets inside
    // one keep their own names.
    match t.container.as_ref().filter(|_| t.kind == TargetKind::Cgroup.as_str()) {
        Some(c) => match &c.name {
            Some(name) => name.clone(),
            None => format!("{} {}", c.runtime.as_deref().unwrap_or("container"), c.short_id()),
        },
        None => t.name.clone(),
    }
}

/// "container 4e5f6a7b8c9d (containerd), pod <uid> (Burstable)".
/// With names where known: "container 4e5f6a7b8c9d api (containerd), pod
/// <uid> shop/checkout-7d9f8 (Burstable)".
pub fn container(c: &crate::view::ContainerView) -> String {
    let mut text = format!("container {}", c.short_id());
    if let Some(name) = &c.name {
        let _ = write!(text, " {name}");
    }
    if let Some(runtime) = &c.runtime {
        let _ = write!(text, " ({runtime})");
    }
    if let Some(uid) = &c.pod_uid {
        let _ = write!(text, ", pod {uid}");
        match (&c.namespace, &c.pod_name) {
            (Some(namespace), Some(pod)) => {
                let _ = write!(text, " {namespace}/{pod}");
            }
            (None, Some(pod)) => {
                let _ = write!(text, " {pod}");
            }
            _ => {}
        }
        if let Some(qos) = &c.qos_class {
            let _ = write!(text, " ({qos})");
        }
    }
    text
}

pub fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_owned()
    } else {
        let kept: String = s.chars().take(width.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{ActionView, LeakView, Level};

    #[test]
    fn the_table_shows_level_usage_growth_leak_and_last_action() {
        let view = StatusView {
            mode: "ebpf".into(),
            monitoring: true,
            host: crate::view::HostView { used: 3 << 30, total: 4 << 30, usage_ratio: 0.75, ..Default::default() },
            targets: vec![TargetView {
                name: "api.service".into(),
                kind: "unit".into(),
                usage_bytes: 900 << 20,
                charged_bytes: None,
                pressure: None,
                limit_bytes: 1 << 30,
                level: Level::Warning,
                growth_bytes_per_s: 2048.0,
                leak: Some(LeakView { slope_bytes_per_s: 2048.0, confidence: 0.9, time_to_limit_s: Some(600.0) }),
                last_action: Some(ActionView {
                    action: "reclaim".into(),
                    result: "ok".into(),
                    at_unix_s: 1,
                    freed_bytes: 1 << 20,
                }),
                processes: 2,
                history: vec![],
                container: None,
            }],
            ..Default::default()
        };
        let text = render(&view);
        assert!(text.contains("3.0 GiB / 4.0 GiB used (75.0%)"), "{text}");
        let row = text.lines().find(|l| l.starts_with("api.service")).unwrap();
        for part in [
            "warning",
            "900.0 MiB",
            "1.0 GiB",
            "87.9%",
            "+2.0 KiB/s",
            "90%",
            "limit in 600s",
            "reclaim ok (1.0 MiB freed)",
        ] {
            assert!(row.contains(part), "{part:?} missing from {row:?}");
        }
    }

    #[test]
    fn a_container_target_shows_its_container_and_pod_under_its_row() {
        let id = "4e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091";
        let path = format!("/kubepods/besteffort/pod8f1c0e3a-1b2c-4d5e-9f60-7a8b9c0d1e2f/{id}");
        let container = crate::model::container::Container::of_cgroup(&path).unwrap();
        let view = StatusView {
            targets: vec![TargetView {
                name: format!("cgroup:{path}"),
                kind: "cgroup".into(),
                usage_bytes: 1,
                charged_bytes: None,
                pressure: None,
                limit_bytes: 2,
                level: Level::Normal,
                growth_bytes_per_s: 0.0,
                leak: None,
                last_action: None,
                processes: 1,
                history: vec![],
                container: Some((&container).into()),
            }],
            ..Default::default()
        };
        let text = render(&view);
        assert!(
            text.contains("\n  container 4e5f6a7b8c9d, pod 8f1c0e3a-1b2c-4d5e-9f60-7a8b9c0d1e2f (BestEffort)\n"),
            "{text}"
        );
        assert_eq!(short_name(&view.targets[0]), "container 4e5f6a7b8c9d", "no runtime in a cgroupfs path");
    }

    #[test]
    fn a_target_judged_on_its_cgroup_says_so_under_its_row_with_its_pressure() {
        let mut view = StatusView {
            targets: vec![TargetView {
                name: "cgroup:/system.slice/api.service".into(),
                kind: "cgroup".into(),
                usage_bytes: 900 << 20,
                charged_bytes: Some(1200 << 20),
                pressure: Some(crate::model::working_set::Pressure {
                    some_avg10: 12.5,
                    full_avg10: 2.0,
                    ..Default::default()
                }),
                limit_bytes: 2 << 30,
                level: Level::Normal,
                growth_bytes_per_s: 0.0,
                leak: None,
                last_action: None,
                processes: 1,
                history: vec![],
                container: None,
            }],
            ..Default::default()
        };
        let line = "\n  cgroup charged 1.2 GiB, working set 900.0 MiB; pressure 12.5% some, 2.0% full over 10 s\n";
        assert!(render(&view).contains(line), "{}", render(&view));
        view.targets[0].pressure = None;
        assert!(render(&view).contains("\n  cgroup charged 1.2 GiB, working set 900.0 MiB\n"), "{}", render(&view));
        view.targets[0].charged_bytes = None;
        assert!(!render(&view).contains("  cgroup"), "no line for a target judged on RSS: {}", render(&view));
        view.targets[0].pressure = Some(crate::model::working_set::Pressure { some_avg10: 3.0, ..Default::default() });
        assert!(render(&view).contains("\n  cgroup pressure 3.0% some, 0.0% full over 10 s\n"), "{}", render(&view));
    }
}
