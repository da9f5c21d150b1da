#!/bin/bash
# The systemd lane's scenarios (`cargo xtask vm-systemd-test`): memwatch
# installed from its .deb and run by systemd as PID 1, the way Debian hosts
# run it. Each scenario prints MEMWATCH-VM-START/-TEST lines and its figures
# (FIGURE lines) for the host; a failed check ends that scenario. They run
# in order, each on what the one before left (installed, reloaded, ...).
set -u
NONCE=@NONCE@
LEAKER=/usr/local/bin/leaker
SCENARIO_CONFIG=/root/scenario.toml

# --- helpers ---
figure() { echo "FIGURE systemd: $1: $2"; }
check() {
    local what=$1
    shift
    if "$@"; then echo "ok: $what"; else echo "FAILED: $what"; exit 1; fi
}
# wait_for SECONDS COMMAND...: until COMMAND succeeds, checked every 0.2 s.
wait_for() {
    local until=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -lt "$until" ] || return 1
        sleep 0.2
    done
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
show() { systemctl show -p "$2" --value "$1"; }
is_active() { systemctl is-active --quiet memwatch; }
# journal_has SINCE_EPOCH TEXT: memwatch's journal (its own lines and
# systemd's about the unit) has TEXT since then.
journal_has() { journalctl -u memwatch --no-pager -o cat --since "@$1" | grep -q -- "$2"; }
high_is() { [ "$(show "$1" MemoryHigh)" = "$2" ]; }
restarts_above() { [ "$(show memwatch NRestarts)" -gt "$1" ]; }
settled() { [ "$(systemctl is-active memwatch)" != activating ]; }
# The file holds whole pages: the kernel rounds a limit down to one.
file_high_is() { [ "$(($(cat "$1") / 4096))" = "$(($2 / 4096))" ]; }
high_is_lowered() { local high; high=$(show "$1" MemoryHigh); [ -n "$high" ] && [ "$high" != infinity ]; }
state_names() { grep -q "\"systemd\": \"$1\"" /var/lib/memwatch/throttles.json 2>/dev/null; }
mib() { echo $(($1 / 1048576)); }
# A leaking transient service: 1 MiB per 30 ms up to 92 MiB, which is
# critical (60% of its policy's 128 MiB) but not emergency; frees on the Nth
# SIGUSR1 (0: never).
start_leaker() {
    systemd-run --quiet --unit="$1" -p MemoryMax=256M \
        "$LEAKER" --detached --step-mib 1 --step-ms 30 --max-mib 92 --free-on-signal "$2"
}

# --- scenarios ---
scenario_install() {
    local t0 status
    t0=$(now_ms)
    # apt-get returns once the package's start job has finished: for
    # Type=notify that is READY=1, sent after the first reading.
    if ! apt-get install -y --no-install-recommends /root/memwatch.deb >/tmp/apt.log 2>&1; then
        cat /tmp/apt.log
        exit 1
    fi
    figure "apt-get install -> active (ms)" $(($(now_ms) - t0))
    check "the unit is enabled on install" systemctl is-enabled --quiet memwatch
    check "active (running)" is_active
    check "Type=notify" [ "$(show memwatch Type)" = notify ]
    local start enter
    start=$(show memwatch ExecMainStartTimestampMonotonic)
    enter=$(show memwatch ActiveEnterTimestampMonotonic)
    figure "process start -> READY=1 (ms)" $(((enter - start) / 1000))
    status=$(systemctl status memwatch --no-pager | grep 'Status:')
    figure "systemctl status" "${status#"${status%%[![:space:]]*}"}"
    check "systemctl status shows the STATUS= line, probes loaded" grep -q 'Status: "watching .* mode ebpf' <<<"$status"
    check "the config is a conffile" grep -q '^ /etc/memwatch/config.toml ' <(dpkg-query -W -f='${Conffiles}\n' memwatch)
    check "logs reach the journal as memwatch's own entries" \
        grep -q '^ *SYSLOG_IDENTIFIER=memwatch$' <(journalctl -u memwatch -o verbose --no-pager)
    check "memwatch status answers on the socket" bash -c 'memwatch status >/tmp/status.txt'
    figure "memwatch status" "$(head -1 /tmp/status.txt)"
    dpkg -L memwatch >/root/package-files
}

scenario_reload() {
    local pid t
    pid=$(show memwatch MainPID)
    t=$(date +%s)
    cp /etc/memwatch/config.toml /root/packaged.toml
    printf '[daemon]\ninterval_secs = -1\n' >/etc/memwatch/config.toml
    check "systemctl reload with a broken config returns" systemctl reload memwatch
    check "the journal shows the rejection" wait_for 20 journal_has "$t" "config reload rejected"
    figure "rejection in the journal" "$(journalctl -u memwatch -o cat --no-pager --since "@$t" | grep -A1 'reload rejected' | tail -1)"
    check "still running" is_active
    check "the same process, on the old config" [ "$(show memwatch MainPID)" = "$pid" ]
    cp "$SCENARIO_CONFIG" /etc/memwatch/config.toml
    local t0
    t0=$(now_ms)
    check "systemctl reload with a good config returns" systemctl reload memwatch
    check "the journal shows it applied" wait_for 20 journal_has "$t" "config reloaded"
    figure "reload -> applied (ms)" $(($(now_ms) - t0))
    check "the same process" [ "$(show memwatch MainPID)" = "$pid" ]
    check "back to READY after RELOADING" wait_for 10 is_active
}

scenario_throttle_unit() {
    local unit=mw-leak1.service t t0 lowered file_high
    t=$(date +%s)
    check "the leaker's MemoryHigh starts unset" [ "$(show mw-leak1 MemoryHigh 2>/dev/null || echo infinity)" = infinity ]
    # Ignores 3 cleanup passes (so it is throttled), frees on the 4th.
    start_leaker mw-leak1 4
    t0=$(now_ms)
    check "MemoryHigh lowered through systemd" wait_for 90 high_is_lowered mw-leak1
    lowered=$(show mw-leak1 MemoryHigh)
    figure "leaker start -> MemoryHigh lowered (ms)" $(($(now_ms) - t0))
    figure "systemctl show -p MemoryHigh mw-leak1 (MiB)" "infinity -> $(mib "$lowered")"
    file_high=$(cat /sys/fs/cgroup/system.slice/$unit/memory.high)
    figure "memory.high (bytes, what systemd wrote / the property)" "$file_high / $lowered"
    check "systemd wrote the same value to memory.high" file_high_is /sys/fs/cgroup/system.slice/$unit/memory.high "$lowered"
    local dropins
    dropins=$(show mw-leak1 DropInPaths)
    figure "the unit's drop-ins" "$dropins"
    check "as a runtime drop-in under /run" bash -c "grep -ls MemoryHigh= $dropins | grep -q '^/run/'"
    check "the state file records the unit and the way" state_names $unit
    # Logged once systemd has answered, so just after the property changed.
    check "the journal entry carries its fields" wait_for 5 bash -c \
        "journalctl -u memwatch -o verbose --no-pager --since @$t | grep -q '^ *ACTION=throttle\$'"
    check "MemoryHigh back to infinity after recovery" wait_for 90 high_is mw-leak1 infinity
    figure "lowered -> restored (ms)" $(($(now_ms) - t0))
    check "memory.high too" [ "$(cat /sys/fs/cgroup/system.slice/$unit/memory.high)" = max ]
    # Written once systemd has answered the restore, so just after the property changed.
    check "the state file forgets it" wait_for 5 bash -c "! grep -qs $unit /var/lib/memwatch/throttles.json"
    systemctl stop mw-leak1
}

scenario_restore_on_crash_and_stop() {
    local t t0
    start_leaker mw-leak2 0 # a real leak: never frees
    check "MemoryHigh lowered" wait_for 90 high_is_lowered mw-leak2
    figure "lowered to (MiB)" "$(mib "$(show mw-leak2 MemoryHigh)")"
    local restarts
    restarts=$(show memwatch NRestarts)
    t=$(date +%s)
    t0=$(now_ms)
    systemctl kill -s SIGKILL memwatch
    check "Restart=on-failure brings it back" wait_for 30 restarts_above "$restarts"
    check "the successor restores through systemd" wait_for 30 journal_has "$t" "memory limit restored (start-up)"
    figure "SIGKILL -> restored by the successor (ms)" $(($(now_ms) - t0))
    check "active again" wait_for 30 is_active
    check "lowered again, the leak goes on" wait_for 90 high_is_lowered mw-leak2
    t0=$(now_ms)
    check "systemctl stop memwatch" systemctl stop memwatch
    figure "stop (ms)" $(($(now_ms) - t0))
    check "stopping restored MemoryHigh" high_is mw-leak2 infinity
    check "and memory.high" [ "$(cat /sys/fs/cgroup/system.slice/mw-leak2.service/memory.high)" = max ]
    systemctl stop mw-leak2
    systemctl start memwatch
    check "started again" is_active
}

scenario_watchdog() {
    local dropin=/run/systemd/system/memwatch.service.d t t0 restarts
    # Whatever happens here, the next scenarios get the packaged build back.
    trap 'rm -r '$dropin'; systemctl daemon-reload; systemctl restart memwatch' EXIT
    mkdir -p $dropin
    # The test build stalls its loop (the process lives on) 5 s after start.
    cat >$dropin/50-stall.conf <<'EOF'
[Service]
ExecStart=
ExecStart=/usr/local/lib/memwatch-fault/memwatch run --config /etc/memwatch/config.toml
Environment=MEMWATCH_FAULT_STALL_LOOP_AFTER_SECS=5
WatchdogSec=4s
EOF
    systemctl daemon-reload
    check "the stalling build starts" systemctl restart memwatch
    restarts=$(show memwatch NRestarts)
    t=$(date +%s)
    t0=$(now_ms)
    local pid
    pid=$(show memwatch MainPID)
    check "the loop stalls" wait_for 30 journal_has "$t" "the monitoring loop stalls now"
    check "while the process lives on: the API still answers" timeout 3 memwatch status >/dev/null
    check "systemd's watchdog fires" wait_for 60 journal_has "$t" "Watchdog timeout"
    check "on the stalled process" wait_for 5 journal_has "$t" "Killing process $pid"
    figure "active -> watchdog timeout (ms; stall at 5000, WatchdogSec=4s)" $(($(now_ms) - t0))
    check "and restarts it" wait_for 30 restarts_above "$restarts"
}

# A leaker of another user (nobody), in a cgroup of its own inside a unit
# delegated to that user: not a cgroup systemd owns, so memwatch writes its
# memory.high directly, a file that user owns. The scenario (root) makes the
# child cgroup and hands it over, as the user's own manager would, while
# the leaker waits its first 3 s so that all it allocates is charged there.
start_foreign_leaker() {
    local cg=/sys/fs/cgroup/system.slice/mw-foreign.service
    systemd-run --quiet --unit=mw-foreign -p User=nobody -p Delegate=yes -p MemoryMax=256M \
        /bin/sh -c "sleep 3; exec $LEAKER --detached --step-mib 1 --step-ms 30 --max-mib 92 --free-on-signal 0"
    mkdir $cg/payload
    local pid
    for pid in $(cat $cg/cgroup.procs); do echo "$pid" >$cg/payload/cgroup.procs; done
    echo +memory >$cg/cgroup.subtree_control
    chown -R nobody:nogroup $cg/payload
}
FOREIGN_HIGH=/sys/fs/cgroup/system.slice/mw-foreign.service/payload/memory.high
# SIGUSR1s the foreign leaker got (it says "signal N" on each) since $1.
foreign_signals() { journalctl -u mw-foreign -o cat --no-pager --since "@$1" | grep -c '^signal '; }
# What memwatch managed with both leakers running: each of the three, once
# seen, ends the wait early.
foreign_throttled() { grep -qx '[0-9][0-9]*' $FOREIGN_HIGH 2>/dev/null; }
all_acted() { high_is_lowered mw-leak3 && foreign_throttled && [ "$(foreign_signals "$T")" -gt 0 ]; }

# One run with both leakers: "<state> <mode> unit-throttled=<y|n>
# foreign-signalled=<n> foreign-throttled=<y|n>", and the first failure memwatch logged.
act_on_both() {
    local t mode unit_lowered=n foreign_lowered=n failure
    t=$(date +%s)
    T=$t
    systemctl restart memwatch 2>/dev/null
    wait_for 60 settled
    start_leaker mw-leak3 0
    start_foreign_leaker
    wait_for 40 all_acted
    mode=$(show memwatch StatusText | grep -o 'mode [a-z]*' | tr ' ' '=')
    high_is_lowered mw-leak3 && unit_lowered=y
    foreign_throttled && foreign_lowered=y
    RESULT="$(systemctl is-active memwatch) ${mode:-mode=none} unit-throttled=$unit_lowered foreign-signalled=$(foreign_signals "$t") foreign-throttled=$foreign_lowered"
    failure=$(journalctl -u memwatch -p warning -o cat --no-pager --since "@$t" |
        grep -E 'action failed|refused|denied|not permitted' | grep -v -e '^memwatch.service' -e '^policy\[' -e OTLP | head -1)
    FAILURE=${failure:-none}
    if ! all_acted; then
        echo "--- not all acted: mw-foreign and memwatch's view of it"
        systemctl status mw-foreign --no-pager 2>&1 | head -12
        ls -la /sys/fs/cgroup/system.slice/mw-foreign.service/ | head -30
        journalctl -u mw-foreign -o cat --no-pager | tail -5
        memwatch status 2>&1 | grep -i -e foreign -e leak
        journalctl -u memwatch -o cat --no-pager --since "@$t" | grep -i foreign | tail -5
    fi
    systemctl stop mw-leak3 mw-foreign
    systemctl reset-failed mw-leak3 mw-foreign 2>/dev/null
}

scenario_capabilities() {
    # Drop each capability the unit grants, one at a time, and see what
    # memwatch can no longer do, beside a run with all of them.
    local dropin=/run/systemd/system/memwatch.service.d caps cap
    trap 'rm -rf '$dropin'; systemctl daemon-reload; systemctl restart memwatch' EXIT
    caps=$(systemctl cat memwatch | grep -oP '^CapabilityBoundingSet=\K.*')
    figure "granted" "$caps"
    act_on_both
    figure "with all" "$RESULT; first failure: $FAILURE"
    check "with all: probes, a unit throttled through systemd, the foreign leaker signalled and throttled" \
        grep -q '^active mode=ebpf unit-throttled=y foreign-signalled=[1-9][0-9]* foreign-throttled=y$' <<<"$RESULT"
    mkdir -p $dropin
    : >/root/capabilities
    for cap in $caps; do
        printf '[Service]\nCapabilityBoundingSet=~%s\nAmbientCapabilities=~%s\n' "$cap" "$cap" >$dropin/60-drop.conf
        systemctl daemon-reload
        act_on_both
        figure "without $cap" "$RESULT; first failure: $FAILURE"
        echo "$cap $RESULT" >>/root/capabilities
    done
    # What each one is measured to be for (the unit's comments say the same).
    without() { grep "^$1 " /root/capabilities; }
    check "CAP_BPF: the probes" grep -vq mode=ebpf <(without CAP_BPF)
    check "CAP_PERFMON: the probes" grep -vq mode=ebpf <(without CAP_PERFMON)
    check "CAP_SYS_PTRACE: what another user's process runs is readable, so it may be signalled" \
        grep -q 'foreign-signalled=0 ' <(without CAP_SYS_PTRACE)
    check "CAP_KILL: signals to another user's process" grep -q 'foreign-signalled=0 ' <(without CAP_KILL)
    check "CAP_DAC_OVERRIDE: memory.high in a cgroup another user owns" grep -q 'foreign-throttled=n' <(without CAP_DAC_OVERRIDE)
}

# --- podman: a real container runtime, no registry ---
PODMAN_CONTAINER=mw-podman
# The container's cgroup (where podman's systemd cgroup manager put it).
container_cgroup() { cut -d: -f3 "/proc/$(podman inspect --format '{{.State.Pid}}' "$1")/cgroup"; }
# GET $1 from memwatch's TCP listener (the VM has no curl).
http_get() (
    exec 3<>/dev/tcp/127.0.0.1/9464 || exit 1
    printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$1" >&3
    cat <&3
)
# quietly COMMAND...: its output shown only if it fails.
quietly() { "$@" >/tmp/quietly.log 2>&1 || { cat /tmp/quietly.log; return 1; }; }
status_has() { memwatch status 2>/dev/null | grep -qF -- "$1"; }
# The row of the target a `memwatch status` table ($1) shows container $2 under.
row_of() { grep -B1 -F "container $2" <<<"$1" | head -1; }
row_has() { row_of "$(memwatch status)" "$1" | grep -qF -- "$2"; }
# The limit series of the target whose cgroup is $1.
# The limit series of target $1 (a target key: "cgroup:/...").
limit_series() { http_get /metrics | grep '^memwatch_target_memory_limit_bytes{' | grep -F "memwatch_target=\"$1\""; }

# The leaker in a container of its own, under podman's 256 MiB limit.
start_podman_leaker() {
    podman run -d --name $PODMAN_CONTAINER --memory 256m localhost/mw-leaker:test \
        /leaker --detached --step-mib 1 --step-ms 30 --max-mib 40
}

scenario_podman() {
    trap 'podman rm -f -t 0 $PODMAN_CONTAINER >/dev/null 2>&1' EXIT
    # The image: the leaker and the libraries it links, from a local tarball.
    local dir=/root/leaker-root lib id cgroup series
    mkdir -p $dir
    cp $LEAKER $dir/leaker
    for lib in $(ldd $LEAKER | grep -o '/[^ ]*'); do
        mkdir -p "$dir$(dirname "$lib")"
        cp -L "$lib" "$dir$lib"
    done
    tar -C $dir -cf /root/leaker-root.tar .
    check "podman import of a local root tarball" quietly podman import /root/leaker-root.tar localhost/mw-leaker:test
    check "podman run" quietly start_podman_leaker
    id=$(podman inspect --format '{{.Id}}' $PODMAN_CONTAINER)
    cgroup=$(container_cgroup $PODMAN_CONTAINER)
    figure "podman version" "$(podman version --format '{{.Client.Version}}')"
    figure "container cgroup" "$cgroup"
    check "memwatch status names the container by podman's id and name" \
        wait_for 30 status_has "container ${id:0:12} $PODMAN_CONTAINER (podman)"
    figure "memwatch status" "$(row_of "$(memwatch status)" "${id:0:12}")"
    check "its target is the container, against podman's 256 MiB" row_has "${id:0:12}" "256.0 MiB"
    # The target is the container's scope: podman puts its processes one
    # level down, in the scope's "container" child.
    series=$(limit_series "cgroup:${cgroup%/container}")
    figure "/metrics" "$series"
    check "/metrics gives the container's limit" grep -Eq ' 268435456(\.0+)?$' <<<"$series"
    check "/metrics labels it with podman's id" grep -qF "container_id=\"$id\"" <<<"$series"
    check "/metrics labels its name" grep -qF "container_name=\"$PODMAN_CONTAINER\"" <<<"$series"
    check "/metrics labels its runtime" grep -qF 'container_runtime="podman"' <<<"$series"
}

# memwatch's own image (deploy/container/Containerfile), built here with
# podman and run the way deploy/kubernetes/daemonset.yaml runs it, but not
# privileged: host pids, the capabilities the unit grants, the host's
# cgroup tree mounted into a cgroup namespace of its own (podman's default
# on v2, as an unprivileged pod's).
AGENT=mw-agent
agent_status() { podman exec $AGENT /memwatch status --socket /run/memwatch/memwatch.sock 2>/dev/null; }
agent_shows() { agent_status | grep -qF -- "$1"; }
agent_row_has() { row_of "$(agent_status)" "$1" | grep -qF -- "$2"; }
agent_logged() { podman logs $AGENT 2>&1 | grep -qF -- "$1"; }

scenario_image() {
    trap 'podman rm -f -t 5 $AGENT $PODMAN_CONTAINER >/dev/null 2>&1' EXIT
    check "podman build of deploy/container/Containerfile" \
        quietly podman build -f /root/image/deploy/container/Containerfile -t localhost/memwatch:test /root/image
    figure "image size (bytes)" "$(podman image inspect --format '{{.Size}}' localhost/memwatch:test)"
    check "the image runs the static binary" bash -c 'podman run --rm localhost/memwatch:test --version | grep -q memwatch'
    check "podman run" quietly start_podman_leaker
    local id
    id=$(podman inspect --format '{{.Id}}' $PODMAN_CONTAINER)
    mkdir -p /root/agent/config /root/agent/state
    printf '[daemon]\ninterval_secs = 1\nsummary_top = 0\n\n[defaults]\nprotect = true\n\n[otlp]\nenabled = false\n' \
        >/root/agent/config/config.toml
    chmod 0600 /root/agent/config/config.toml
    # seccomp=unconfined: what a pod gets unless it sets a seccompProfile
    # (podman's own default profile refuses bpf(2) without CAP_SYS_ADMIN).
    check "the image runs unprivileged, in its own cgroup namespace" quietly podman run -d --name $AGENT \
        --pid host --cgroupns private --read-only --memory 192m \
        --cap-drop all --cap-add BPF,PERFMON,SYS_PTRACE,KILL,DAC_OVERRIDE --security-opt seccomp=unconfined \
        -v /sys/fs/cgroup:/sys/fs/cgroup -v /sys/kernel/tracing:/sys/kernel/tracing \
        -v /root/agent/config:/etc/memwatch:ro -v /root/agent/state:/var/lib/memwatch \
        localhost/memwatch:test
    local pid
    pid=$(podman inspect --format '{{.State.Pid}}' $AGENT)
    figure "agent's cgroup, from the host" "$(cut -d: -f3 /proc/$pid/cgroup)"
    figure "agent's cgroup, from inside" "$(nsenter -t "$pid" -C cat "/proc/$pid/cgroup")"
    if ! wait_for 60 agent_shows "container ${id:0:12}"; then
        podman logs $AGENT 2>&1 | tail -20
        agent_status
    fi
    check "the agent sees the other container" agent_shows "container ${id:0:12}"
    figure "agent's status" "$(row_of "$(agent_status)" "${id:0:12}")"
    check "it found its namespace's root in the host's tree" agent_logged "cgroup paths are resolved from it"
    check "and reads the other container's limit through it" agent_row_has "${id:0:12}" "256.0 MiB"
    local head
    head=$(agent_status | head -1)
    figure "agent's status" "$head"
    check "its probes loaded on the capabilities alone" grep -q 'mode: ebpf' <<<"$head"
    local scope
    scope=/sys/fs/cgroup$(cut -d: -f3 /proc/$pid/cgroup)
    # The pod-like cgroup is charged for the heap, the BPF maps and each exec probe.
    sleep 10
    figure "agent's cgroup memory.current (MiB)" "$(mib "$(cat "$scope/memory.current")")"
    figure "agent's cgroup memory.peak (MiB)" "$(mib "$(cat "$scope/memory.peak" 2>/dev/null || echo 0)")"
    figure "agent's RSS (KiB)" "$(grep VmRSS /proc/$pid/status | tr -s ' ' | cut -d' ' -f2)"
}

scenario_purge() {
    check "apt-get purge" bash -c 'apt-get purge -y memwatch >/tmp/purge.log 2>&1'
    check "no memwatch process" bash -c '! pgrep -x memwatch'
    check "no unit" bash -c '! systemctl cat memwatch.service >/dev/null 2>&1'
    local path left=0
    while read -r path; do
        [ -f "$path" ] && { echo "left behind: $path"; left=1; }
    done </root/package-files
    check "every file the package installed is gone" [ $left = 0 ]
    check "its configuration is gone" [ ! -e /etc/memwatch ]
    check "its state directory is gone" [ ! -e /var/lib/memwatch ]
}

# --- the run ---
# The same policy for both kinds of leaker, but for what it matches.
policy() {
    cat <<EOF

[[policy]]
name = "$1"
match = $2
target = "cgroup"
limit = "128MiB"
protect = false
[policy.thresholds]
warning = 0.4
critical = 0.6
emergency = 0.8
[policy.hysteresis]
margin = 0.05
samples = 2
[policy.leak]
enabled = false
[policy.actions]
cooldown = "3s"
pass_wait = "0.5s"
cleanup = [{ signal = "SIGUSR1" }]
EOF
}
{
    # Nothing else in the VM is the scenarios' to touch.
    printf '[daemon]\ninterval_secs = 1\nsummary_top = 0\n\n[defaults]\nprotect = true\n'
    # /metrics on loopback, for the scenarios that read it.
    printf '\n[api]\ntcp_enabled = true\n'
    policy leaker '{ unit = "mw-leak*.service" }'
    policy foreign '{ cgroup = "/system.slice/mw-foreign.service/payload" }'
} >"$SCENARIO_CONFIG"

echo "memwatch-vm: kernel $(uname -r), systemd $(systemctl --version | head -1 | cut -d' ' -f2), $(grep MemTotal /proc/meminfo), PID 1 is $(cat /proc/1/comm)"
status=0
for scenario in @SCENARIOS@; do
    echo "MEMWATCH-VM-START $NONCE $scenario"
    (scenario_$scenario)
    rc=$?
    echo "MEMWATCH-VM-TEST $NONCE $scenario exit=$rc"
    if [ $rc -ne 0 ]; then
        status=1
        journalctl -u memwatch --no-pager -o short-monotonic | tail -40
    fi
done
echo "MEMWATCH-VM-DONE $NONCE status=$status"
systemctl poweroff --no-block
