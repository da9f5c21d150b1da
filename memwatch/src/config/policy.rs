//! `[defaults]` and `[[policy]]`: how targets are chosen and judged.
use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;
use toml::{Table, Value};

use super::{
    units,
    walk::{Fields, Problems, expected},
};
use crate::engine::{LimitSpec, TargetSettings, Thresholds};

/// What a policy watches as one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Granularity {
    /// All processes of a cgroup (a systemd unit) together: RSS summed.
    #[default]
    Cgroup,
    /// Each matching process on its own.
    Process,
}

/// How a target is judged, and what may be done about it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicySettings {
    /// `None`: the target's cgroup limit, else host memory.
    pub limit: Option<LimitSpec>,
    pub engine: TargetSettings,
    /// Never act on this target (it is still watched and reported).
    pub protect: bool,
    /// Log what would be done instead of doing it.
    pub dry_run: bool,
    /// What is done at each level (`actions` sub-table).
    pub actions: super::ActionSettings,
}

/// Who a target is, as far as matching goes. `None` fields match nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Identity<'a> {
    pub unit: Option<&'a str>,
    pub cgroup: Option<&'a str>,
    /// The process name (comm).
    pub process: Option<&'a str>,
    /// The executable path.
    pub exe: Option<&'a str>,
    /// The id of the container it runs in.
    pub container: Option<&'a str>,
    /// The uid of the Kubernetes pod it runs in.
    pub pod_uid: Option<&'a str>,
}

/// A glob of `[policy.match]`. Most are plain names ("nginx.service"): those
/// are compared as strings, and only real globs are compiled (a compiled
/// glob costs a regex: tens of kilobytes and as many microseconds).
#[derive(Debug, Clone)]
pub enum GlobPattern {
    Exact(String),
    Glob(GlobMatcher),
}

impl GlobPattern {
    fn is_match(&self, value: &str) -> bool {
        match self {
            GlobPattern::Exact(name) => name == value,
            GlobPattern::Glob(glob) => glob.is_match(value),
        }
    }
}

/// The process-name regex of `[policy.match]`, with the plain cases
/// ("java": contains, "^java$": equals) kept as strings for the same reason.
#[derive(Debug, Clone)]
pub enum NamePattern {
    Contains(String),
    Exact(String),
    Regex(Regex),
}

impl NamePattern {
    fn is_match(&self, value: &str) -> bool {
        match self {
            NamePattern::Contains(part) => value.contains(part.as_str()),
            NamePattern::Exact(name) => name == value,
            NamePattern::Regex(regex) => regex.is_match(value),
        }
    }

    fn new(pattern: &str) -> Result<Self, regex::Error> {
        let plain = |s: &str| !s.is_empty() && regex::escape(s) == s;
        if let Some(name) = pattern.strip_prefix('^').and_then(|p| p.strip_suffix('$')).filter(|n| plain(n)) {
            return Ok(NamePattern::Exact(name.to_owned()));
        }
        if plain(pattern) {
            return Ok(NamePattern::Contains(pattern.to_owned()));
        }
        Regex::new(pattern).map(NamePattern::Regex)
    }
}

/// A policy's `[policy.match]`: every criterion given must match; a policy
/// with none matches everything.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    pub unit: Option<GlobPattern>,
    pub cgroup: Option<GlobPattern>,
    pub process: Option<NamePattern>,
    pub exe: Option<GlobPattern>,
    pub container: Option<GlobPattern>,
    pub pod_uid: Option<GlobPattern>,
}

impl Matcher {
    /// Whether any criterion is given: a matcher with none matches
    /// every process, and names no service.
    pub fn names_something(&self) -> bool {
        self.unit.is_some()
            || self.cgroup.is_some()
            || self.process.is_some()
            || self.exe.is_some()
            || self.container.is_some()
            || self.pod_uid.is_some()
    }

    pub fn matches(&self, id: &Identity<'_>) -> bool {
        fn check<M>(criterion: &Option<M>, value: Option<&str>, is_match: impl Fn(&M, &str) -> bool) -> bool {
            match criterion {
                None => true,
                Some(m) => value.is_some_and(|v| is_match(m, v)),
            }
        }
        check(&self.unit, id.unit, GlobPattern::is_match)
            && check(&self.cgroup, id.cgroup, GlobPattern::is_match)
            && check(&self.process, id.process, NamePattern::is_match)
            && check(&self.exe, id.exe, GlobPattern::is_match)
            && check(&self.container, id.container, GlobPattern::is_match)
            && check(&self.pod_uid, id.pod_uid, GlobPattern::is_match)
    }
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub matcher: Matcher,
    pub granularity: Granularity,
    pub settings: PolicySettings,
}

/// Reads the keys `[defaults]` and `[[policy]]` share into `base`'s copy:
/// a policy only overrides what it sets.
/// `may_signal`: whether this table may hold a `signal` cleanup step (a
/// policy whose match names the service; never `[defaults]`).
pub fn read_settings(
    fields: &mut Fields<'_>,
    base: &PolicySettings,
    may_signal: bool,
    problems: &mut Problems,
) -> PolicySettings {
    let mut settings = base.clone();
    if let Some(limit) = fields.read("limit", problems, read_limit) {
        settings.limit = Some(limit);
    }
    if let Some(table) = fields.table("thresholds", problems) {
        let mut t = Fields::new(table, fields.path_of("thresholds"));
        let thresholds = &mut settings.engine.thresholds;
        for (key, slot) in [
            ("warning", &mut thresholds.warning),
            ("critical", &mut thresholds.critical),
            ("emergency", &mut thresholds.emergency),
        ] {
            if let Some(v) = t.number(key, problems) {
                *slot = v;
            }
        }
        t.finish(problems);
    }
    if let Some(table) = fields.table("hysteresis", problems) {
        let mut h = Fields::new(table, fields.path_of("hysteresis"));
        if let Some(margin) = h.number("margin", problems) {
            if (0.0..1.0).contains(&margin) {
                settings.engine.hysteresis.margin = margin;
            } else {
                problems.push(&h.path_of("margin"), format!("{margin} must be at least 0 and below 1"));
            }
        }
        if let Some(samples) = h.unsigned("samples", problems) {
            match u32::try_from(samples) {
                Ok(s) if s >= 1 => settings.engine.hysteresis.samples = s,
                _ => problems.push(&h.path_of("samples"), format!("{samples} must be between 1 and {}", u32::MAX)),
            }
        }
        h.finish(problems);
    }
    if let Some(table) = fields.table("leak", problems) {
        let mut l = Fields::new(table, fields.path_of("leak"));
        if let Some(enabled) = l.bool("enabled", problems) {
            settings.engine.leak.enabled = enabled;
        }
        if let Some(rate) = l.number("min_rate_bytes_per_s", problems) {
            if rate.is_finite() && rate >= 0.0 {
                settings.engine.leak.min_rate_bytes_per_s = rate;
            } else {
                problems.push(&l.path_of("min_rate_bytes_per_s"), format!("{rate} must be a rate >= 0"));
            }
        }
        if let Some(secs) = l.read("confirm_window", problems, read_duration) {
            if secs > 0.0 {
                settings.engine.leak.confirm_secs = secs;
            } else {
                problems.push(&l.path_of("confirm_window"), "must be longer than 0 seconds");
            }
        }
        l.finish(problems);
    }
    if let Some(table) = fields.table("pressure", problems) {
        settings.engine.pressure =
            super::pressure::read_settings(table, fields.path_of("pressure"), &base.engine.pressure, problems);
    }
    if let Some(protect) = fields.bool("protect", problems) {
        settings.protect = protect;
    }
    if let Some(dry_run) = fields.bool("dry_run", problems) {
        settings.dry_run = dry_run;
    }
    if let Some(table) = fields.table("actions", problems) {
        settings.actions =
            super::actions::read_settings(table, fields.path_of("actions"), &base.actions, may_signal, problems);
    }
    settings
}

/// Thresholds must be fractions in (0, 1] and strictly increasing; checked
/// after merging, since a policy may set only one of them.
pub fn check_thresholds(path: &str, thresholds: &Thresholds, problems: &mut Problems) {
    let levels =
        [("warning", thresholds.warning), ("critical", thresholds.critical), ("emergency", thresholds.emergency)];
    for (name, value) in levels {
        if !(value > 0.0 && value <= 1.0) {
            problems.push(
                &format!("{path}.thresholds.{name}"),
                format!("{value} must be a fraction of the limit in (0, 1]"),
            );
        }
    }
    for pair in levels.windows(2) {
        let ((low_name, low), (high_name, high)) = (pair[0], pair[1]);
        if high <= low {
            problems.push(
                &format!("{path}.thresholds.{high_name}"),
                format!("{high} must be above {low_name} ({low}): thresholds must be strictly increasing"),
            );
        }
    }
}

fn read_limit(value: &Value) -> Result<LimitSpec, String> {
    match value {
        Value::Integer(i) if *i > 0 => Ok(LimitSpec::Bytes(*i as u64)),
        Value::Integer(i) => Err(format!("{i}: a limit must be more than 0 bytes")),
        Value::String(s) => match units::parse_percent(s) {
            Some(fraction) => fraction.map(LimitSpec::HostFraction),
            None => match units::parse_size(s)? {
                0 => Err(format!("{s:?}: a limit must be more than 0 bytes")),
                bytes => Ok(LimitSpec::Bytes(bytes)),
            },
        },
        other => Err(expected("bytes (an integer) or a string like \"512MiB\" or \"25%\"", other)),
    }
}

/// Seconds, finite and at most `units::MAX_DURATION_SECS` (every duration
/// becomes a `std::time::Duration` somewhere).
pub fn read_duration(value: &Value) -> Result<f64, String> {
    let secs = match value {
        Value::Integer(_) | Value::Float(_) => super::walk::number(value)?,
        Value::String(s) => units::parse_duration_secs(s)?,
        other => return Err(expected("seconds or a string like \"5m\"", other)),
    };
    units::at_most_max_duration(secs)
}

/// One `[[policy]]` entry; `index` is its position, for key paths.
pub fn read_policy(index: usize, value: &Value, defaults: &PolicySettings, problems: &mut Problems) -> Option<Policy> {
    let path = format!("policy[{index}]");
    let Some(table) = value.as_table() else {
        problems.push(&path, expected("a table", value));
        return None;
    };
    let mut fields = Fields::new(table, path.clone());
    let name = fields.string("name", problems).map(str::to_owned);
    if name.is_none() && table.get("name").is_none() {
        problems.push(&fields.path_of("name"), "missing: every policy needs a unique name");
    }
    if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        problems.push(&fields.path_of("name"), "must not be empty");
    }
    let matcher = fields.table("match", problems).map(|m| read_matcher(m, &fields.path_of("match"), problems));
    let granularity = fields.read("target", problems, |v| match v.as_str() {
        Some("cgroup") => Ok(Granularity::Cgroup),
        Some("process") => Ok(Granularity::Process),
        Some(other) => Err(format!("{other:?} is not a target kind (use \"cgroup\" or \"process\")")),
        None => Err(expected("\"cgroup\" or \"process\"", v)),
    });
    let names_something = matcher.as_ref().is_some_and(Matcher::names_something);
    let settings = read_settings(&mut fields, defaults, names_something, problems);
    check_thresholds(&path, &settings.engine.thresholds, problems);
    fields.finish(problems);
    Some(Policy {
        name: name?,
        matcher: matcher.unwrap_or_default(),
        granularity: granularity.unwrap_or_default(),
        settings,
    })
}

fn read_matcher(table: &Table, path: &str, problems: &mut Problems) -> Matcher {
    let mut fields = Fields::new(table, path);
    // `*` stays within one path component for cgroups and executables
    // ("/system.slice/*" is the slice's direct children); `**` crosses them.
    let glob = |fields: &mut Fields<'_>, key: &'static str, problems: &mut Problems| {
        let pattern = fields.string(key, problems)?;
        if !pattern.contains(['*', '?', '[', ']', '{', '}', '\\']) {
            return Some(GlobPattern::Exact(pattern.to_owned()));
        }
        match GlobBuilder::new(pattern).literal_separator(true).build() {
            Ok(glob) => Some(GlobPattern::Glob(glob.compile_matcher())),
            Err(e) => {
                problems.push(&fields.path_of(key), format!("invalid glob {pattern:?}: {}", e.kind()));
                None
            }
        }
    };
    let unit = glob(&mut fields, "unit", problems);
    let cgroup = glob(&mut fields, "cgroup", problems);
    let exe = glob(&mut fields, "exe", problems);
    let container = glob(&mut fields, "container", problems);
    let pod_uid = glob(&mut fields, "pod_uid", problems);
    let process = fields.string("process", problems).and_then(|pattern| match NamePattern::new(pattern) {
        Ok(regex) => Some(regex),
        Err(e) => {
            let detail = e.to_string().lines().last().unwrap_or_default().trim().to_owned();
            problems.push(&fields.path_of("process"), format!("invalid regex {pattern:?}: {detail}"));
            None
        }
    });
    fields.finish(problems);
    Matcher { unit, cgroup, process, exe, container, pod_uid }
}
