//! The files under deploy/ that no binary here can run are checked by
//! reading them: the OpenTelemetry Collector config (no collector is
//! packaged for Debian 12) and the structure the alert rules promise
//! (promtool, in tests/tests/prometheus_alerts.rs, checks their syntax and
//! behaviour).
use std::path::Path;

use serde_yaml_ng::Value;

fn read(relative: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn names(v: &Value) -> Vec<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_collector_config_wires_memwatchs_otlp_into_prometheus_and_otlp() {
    let config = read("otel-collector.yaml");
    let pipeline = &config["service"]["pipelines"]["metrics"];
    for (section, kind) in [("receivers", "receivers"), ("processors", "processors"), ("exporters", "exporters")] {
        for name in names(&pipeline[section]) {
            assert!(config[kind].get(&name).is_some(), "pipeline {section} names {name}, which {kind} does not define");
        }
    }
    let grpc = config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].as_str().unwrap();
    let default = memwatch::config::observe::DEFAULT_OTLP_ENDPOINT;
    assert!(default.ends_with(grpc), "the receiver ({grpc}) is where memwatch pushes by default ({default})");
    assert_eq!(names(&pipeline["exporters"]), ["prometheus", "otlp"]);
    assert_eq!(
        config["exporters"]["prometheus"]["resource_to_telemetry_conversion"]["enabled"].as_bool(),
        Some(true),
        "resource attributes (host.name) become labels"
    );
    assert_eq!(
        names(&pipeline["processors"])[0],
        "memory_limiter",
        "the limiter goes first, as the collector's docs ask"
    );
}

#[test]
fn the_level_alerts_carry_their_level_and_the_warning_fires_within_a_minute() {
    let rules = read("prometheus/alerts.yml");
    let rules = rules["groups"][0]["rules"].as_sequence().unwrap();
    let alert = |name: &str| {
        rules.iter().find(|r| r["alert"].as_str() == Some(name)).unwrap_or_else(|| panic!("no alert {name}"))
    };
    for (name, level, state) in [
        ("MemwatchTargetWarning", "warning", 1),
        ("MemwatchTargetCritical", "critical", 2),
        ("MemwatchTargetEmergency", "emergency", 3),
    ] {
        let rule = alert(name);
        assert_eq!(rule["labels"]["level"].as_str(), Some(level), "{name}");
        assert_eq!(rule["expr"].as_str(), Some(format!("memwatch_target_state == {state}").as_str()), "{name}");
    }
    let wait = alert("MemwatchTargetWarning")["for"].as_str().unwrap().to_owned();
    let seconds: u64 = match wait.strip_suffix('s') {
        Some(s) => s.parse().unwrap(),
        None => wait.strip_suffix('m').unwrap().parse::<u64>().unwrap() * 60,
    };
    // memwatch applies its own hysteresis to levels: a longer wait only delays the word.
    assert!(seconds <= 60, "the warning alert waits {wait}: at most a minute");
    for name in ["MemwatchCacheMissRateHigh", "MemwatchLeakConfirmed", "MemwatchTimeToLimitUnderOneHour"] {
        alert(name);
    }
}

/// The pod spec of the DaemonSet and its one container.
fn daemonset() -> (Value, Value) {
    let set = read("kubernetes/daemonset.yaml");
    let pod = set["spec"]["template"]["spec"].clone();
    let container = pod["containers"][0].clone();
    (pod, container)
}

fn mount_of<'a>(container: &'a Value, path: &str) -> Option<&'a Value> {
    container["volumeMounts"].as_sequence()?.iter().find(|m| m["mountPath"].as_str() == Some(path))
}

fn volume<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    pod["volumes"].as_sequence()?.iter().find(|v| v["name"].as_str() == Some(name))
}

/// The volume mounted at `path`, which must exist and be writable or not as asked.
fn mounted<'a>(pod: &'a Value, container: &Value, path: &str, writable: bool) -> &'a Value {
    let mount = mount_of(container, path).unwrap_or_else(|| panic!("nothing mounted at {path}"));
    let read_only = mount["readOnly"].as_bool().unwrap_or(false);
    assert_eq!(!read_only, writable, "{path}: readOnly is {read_only}");
    let name = mount["name"].as_str().unwrap();
    volume(pod, name).unwrap_or_else(|| panic!("{path}: no volume named {name}"))
}

fn configmap_config() -> memwatch::config::Config {
    let text = read("kubernetes/configmap.yaml")["data"]["config.toml"].as_str().unwrap().to_owned();
    memwatch::config::Config::parse(&text).unwrap_or_else(|e| panic!("configmap.yaml: {e:?}"))
}

#[test]
fn the_daemonset_runs_the_configmaps_config_and_is_never_restarted_for_an_emergency() {
    let (pod, container) = daemonset();
    assert_eq!(pod["hostPID"].as_bool(), Some(true), "every process of the node");
    assert!(container.get("livenessProbe").is_none(), "/health is 503 in an emergency: never a liveness probe");
    let image = container["image"].as_str().unwrap();
    assert!(image.ends_with(&format!("memwatch:{}", env!("CARGO_PKG_VERSION"))), "{image}: this version's image");
    assert_eq!(pod["nodeSelector"]["kubernetes.io/arch"].as_str(), Some("amd64"), "x86-64 syscall hooks");

    // `--config` is the ConfigMap's key where the ConfigMap is mounted.
    let args = names(&container["args"]);
    let at = args.iter().position(|a| a == "--config").unwrap();
    let config_path = Path::new(&args[at + 1]);
    let map = read("kubernetes/configmap.yaml");
    let config_volume = mounted(&pod, &container, config_path.parent().unwrap().to_str().unwrap(), false);
    assert_eq!(config_volume["configMap"]["name"], map["metadata"]["name"]);
    assert_eq!(map["metadata"]["namespace"], read("kubernetes/daemonset.yaml")["metadata"]["namespace"]);
    let key = config_path.file_name().unwrap().to_str().unwrap();
    assert!(map["data"].get(key).is_some(), "the ConfigMap has no {key}");
    assert_eq!(config_volume["configMap"]["defaultMode"].as_u64(), Some(0o600), "a config only root writes");

    let config = configmap_config();
    let probe = names(&container["readinessProbe"]["exec"]["command"]);
    assert_eq!(probe[..2], ["/memwatch", "status"]);
    assert_eq!(Path::new(&probe[3]), config.api.socket, "the probe asks the configured socket");
    let port = &container["ports"][0];
    assert!(
        config.api.tcp_enabled && u64::from(config.api.tcp_listen.port()) == port["containerPort"].as_u64().unwrap()
    );
    assert!(!config.api.tcp_listen.ip().is_loopback(), "the pod's IP, not loopback");
    let node_agent = memwatch::config::Identity { unit: Some("kubelet.service"), ..Default::default() };
    let protecting = config.policy_for(&node_agent).map(|i| &config.policies[i]);
    assert!(protecting.is_some_and(|p| p.settings.protect), "the kubelet is never acted on");

    // The state file on the node, so a restarted pod restores the throttles.
    let state_dir = config.actions.state_file.parent().unwrap().to_str().unwrap().to_owned();
    assert!(mounted(&pod, &container, &state_dir, true).get("hostPath").is_some(), "{state_dir} is on the node");
    let run = config.api.socket.parent().unwrap().parent().unwrap().to_str().unwrap().to_owned();
    mounted(&pod, &container, &run, true);
    mounted(&pod, &container, "/sys/fs/cgroup", true);
    mounted(&pod, &container, "/sys/kernel/tracing", true);
    for path in ["/var/log/pods", "/var/log/containers", "/run/systemd/system"] {
        mounted(&pod, &container, path, false);
    }
    let bus = mounted(&pod, &container, "/run/dbus/system_bus_socket", true);
    assert_eq!(bus["hostPath"]["type"].as_str(), Some("Socket"), "units are throttled through systemd");

    let limit = container["resources"]["limits"]["memory"].as_str().unwrap();
    let mib = limit.strip_suffix("Mi").and_then(|n| n.parse::<u64>().ok());
    assert!(mib.is_some_and(|m| m >= 128), "{limit}: at least 128Mi over a 66 MiB start-up peak");
    let env = names_of(&container["env"]);
    let endpoint = env.iter().position(|n| n == "OTEL_EXPORTER_OTLP_ENDPOINT").expect("the OTLP endpoint");
    let node_ip = env.iter().position(|n| n == "NODE_IP").expect("NODE_IP");
    assert!(node_ip < endpoint, "$(NODE_IP) expands only if declared before");

    // Not privileged: the capabilities the systemd unit grants, no more.
    let security = &container["securityContext"];
    assert!(security.get("privileged").is_none_or(|p| p.as_bool() == Some(false)), "not privileged");
    assert_eq!(names(&security["capabilities"]["drop"]), ["ALL"]);
    let mut added: Vec<String> = names(&security["capabilities"]["add"]).iter().map(|c| format!("CAP_{c}")).collect();
    let unit =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/systemd/memwatch.service")).unwrap();
    let bounding =
        unit.lines().find_map(|l| l.strip_prefix("CapabilityBoundingSet=")).expect("the unit's capabilities");
    let mut granted: Vec<String> = bounding.split_whitespace().map(str::to_owned).collect();
    added.sort();
    granted.sort();
    assert_eq!(added, granted, "the pod adds what the unit grants");
    assert_eq!(security["seccompProfile"]["type"].as_str(), Some("Unconfined"), "bpf(2) without CAP_SYS_ADMIN");

    let namespace = read("kubernetes/namespace.yaml");
    assert_eq!(namespace["metadata"]["name"], map["metadata"]["namespace"]);
    assert_eq!(namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"].as_str(), Some("privileged"));
}

/// The `name` of each entry of a list.
fn names_of(list: &Value) -> Vec<String> {
    list.as_sequence().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn the_image_is_the_static_binary_alone_and_the_scrape_job_finds_the_pods() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let file = std::fs::read_to_string(root.join("deploy/container/Containerfile")).unwrap();
    let instructions: Vec<&str> = file.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).collect();
    let binary = "target/x86_64-unknown-linux-musl/release/memwatch";
    assert_eq!(
        instructions,
        [
            "FROM scratch",
            &format!("COPY {binary} /memwatch"),
            "ENTRYPOINT [\"/memwatch\"]",
            "CMD [\"run\", \"--config\", \"/etc/memwatch/config.toml\"]",
        ]
    );
    let ignore = std::fs::read_to_string(root.join(".containerignore")).unwrap();
    assert!(ignore.lines().any(|l| l == format!("!{binary}")), "the build context keeps the binary");

    let (_, container) = daemonset();
    let set = read("kubernetes/daemonset.yaml");
    let scrape = &read("kubernetes/prometheus-scrape.yaml")["scrape_configs"][0];
    assert_eq!(scrape["job_name"].as_str(), Some("memwatch"), "MemwatchDown watches job memwatch");
    assert_eq!(
        names(&scrape["kubernetes_sd_configs"][0]["namespaces"]["names"]),
        [set["metadata"]["namespace"].as_str().unwrap()]
    );
    let keep = |source: &str| {
        scrape["relabel_configs"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|r| names(&r["source_labels"]) == [source] && r["action"].as_str() == Some("keep"))
            .and_then(|r| r["regex"].as_str())
            .unwrap_or_else(|| panic!("no keep rule on {source}"))
            .to_owned()
    };
    let app = set["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"].as_str().unwrap();
    assert_eq!(keep("__meta_kubernetes_pod_label_app_kubernetes_io_name"), app, "the pods' label");
    assert_eq!(keep("__meta_kubernetes_pod_container_port_name"), container["ports"][0]["name"].as_str().unwrap());
}
