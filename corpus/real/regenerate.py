#!/usr/bin/python3
"""Records the real-runtime corpus: Debian's node, java (OpenJDK 17) and
python3 running corpus/real/workloads/, all at once, watched by one
`memwatch record`; then writes each workload's RSS as a format-1 trace and
its label into tuning/ or test/ (alternating within each shape, so both
halves hold every shape).

    sudo /usr/bin/python3 corpus/real/regenerate.py --memwatch PATH [--minutes 45]
    sudo /usr/bin/python3 corpus/real/regenerate.py --memwatch PATH --node-case --minutes 25
    python3 corpus/real/regenerate.py --ceilings-only

--node-case records the issue's Node.js case alone, eight times side by
side (a cache warming for 10 minutes, then 14 KiB kept per 100 ms
request, about 500 MB/h, under a 1 GiB limit), into node_case/: how soon
that one case is reported, over several runs of it rather than one.

--ceilings-only records nothing: it rewrites the committed traces with
their heap_ceiling_bytes column, read from each workload's command line
as `memwatch record` keeps it (the traces recorded before memwatch read
heap ceilings lacked the column; the command lines were the same).

Rates are scaled to fit the recording in under an hour; the time axis never
is (a leak of 500 MB/h is recorded at 500 MB/h). Each label says how its
trace was made: the workload's own arguments are the ground truth.
"""
import argparse
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
WORK = HERE / "workloads"
MIB = 1 << 20
NODE = ["/usr/bin/node", str(WORK / "service.js")]
PYTHON = ["/usr/bin/python3", str(WORK / "service.py")]
REQ_PER_HOUR = 36000  # one request per 100 ms


def java(xmx_mib):
    return ["/usr/bin/java", f"-Xmx{xmx_mib}m", str(WORK / "Service.java")]


def leak_rate(leak_kb):
    return int(leak_kb * 1024 * REQ_PER_HOUR)


def workloads():
    """(shape, runtime command, arguments, limit in MiB, leak start in minutes or None, leak KiB per request)."""
    w = []
    # A service warming a cache for 10 minutes, then leaking (the Node case at 14 KiB: ~500 MB/h).
    for cmd, kb in [(NODE, 14), (NODE, 14), (NODE, 7), (NODE, 28), (java(700), 14), (java(700), 7),
                    (PYTHON, 14), (PYTHON, 5), (NODE, 3.5), (PYTHON, 28)]:
        w.append(("leak_after_warmup", cmd, ["--cache-mb", "60", "--warm-min", "10", "--leak-after-min", "10"],
                  1024, 10, kb))
    # Leaking from the start, 60 MB/h to 1 GB/h.
    for cmd, kb in [(PYTHON, 2), (PYTHON, 4), (NODE, 8), (NODE, 2), (java(700), 4), (java(700), 12),
                    (PYTHON, 10), (NODE, 20), (PYTHON, 1.7), (NODE, 5)]:
        w.append(("leak_from_start", cmd, [], 1024, 0, kb))
    # Bounded caches: fast and slow warm-ups (time constant a third of warm-min), none retained beyond.
    for cmd, mb, warm in [(NODE, 150, 6), (PYTHON, 200, 9), (NODE, 300, 30), (PYTHON, 120, 45), (NODE, 80, 15),
                          (PYTHON, 300, 20), (NODE, 200, 40), (PYTHON, 60, 5), (NODE, 250, 25), (PYTHON, 400, 60)]:
        w.append(("cache_warmup", cmd, ["--cache-mb", str(mb), "--warm-min", str(warm)], 1024, None, 0))
    # A JVM whose heap grows to an -Xmx of 90% of its limit and holds (live set 3/4 of -Xmx).
    for limit, warm in [(512, 10), (512, 20), (1024, 15), (384, 8), (512, 30),
                        (384, 12), (1024, 25), (512, 6), (384, 20), (512, 40)]:
        xmx = int(limit * 0.9)
        w.append(("jvm_heap_to_xmx", java(xmx), ["--cache-mb", str(int(xmx * 0.75)), "--warm-min", str(warm)],
                  limit, None, 0))
    # Periodic jobs that free all they build (cycles of 6-10 minutes).
    for mb, build, rest in [(300, 5, 2), (200, 7, 1), (400, 6, 3), (150, 8, 2), (250, 4, 2),
                            (350, 7, 2), (180, 5, 1), (300, 8, 1), (220, 6, 2), (120, 5, 3)]:
        w.append(("batch_periodic", PYTHON, ["--batch-mb", str(mb), "--batch-min", str(build), "--rest-min", str(rest)],
                  1024, None, 0))
    # The same jobs keeping 5% of the limit each cycle: troughs rising.
    for mb, build, rest in [(300, 5, 2), (200, 7, 1), (400, 6, 3), (150, 8, 2), (250, 4, 2),
                            (350, 7, 2), (180, 5, 1), (300, 8, 1), (220, 6, 2), (120, 5, 3)]:
        w.append(("batch_rising", PYTHON, ["--batch-mb", str(mb), "--batch-min", str(build), "--rest-min", str(rest),
                                           "--retain-mb", "51"], 1024, "cycle", 0))
    return w


def node_case_workloads():
    """The issue's Node case, eight times: the leak_after_warmup workload at 14 KiB."""
    return [("node_case", NODE, ["--cache-mb", "60", "--warm-min", "10", "--leak-after-min", "10"], 1024, 10, 14)
            for _ in range(8)]


def heap_ceiling(argv):
    """The heap ceiling the runtime was started with, in bytes: the -Xmx<N>m
    the JVM workloads here are started with. memwatch reads more forms (and
    skips options' values: memwatch/src/model/heap_ceiling.rs); none of
    them occurs in these command lines."""
    ceiling = None
    for word in argv[1:]:
        if not word.startswith("-"):
            break
        match = re.fullmatch(r"-Xmx(\d+)m", word)
        if match:
            ceiling = int(match.group(1)) * MIB
    return ceiling


def keyed(table):
    """(key, workload) in the order main() starts them."""
    seen = {}
    for workload in table:
        shape = workload[0]
        seen[shape] = seen.get(shape, 0) + 1
        yield f"{shape}-{seen[shape]:02d}", workload


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--memwatch", help="the memwatch binary to record with")
    p.add_argument("--ceilings-only", action="store_true",
                   help="add heap_ceiling_bytes to the committed traces; record nothing")
    p.add_argument("--node-case", action="store_true",
                   help="record the issue's Node case eight times into node_case/ instead")
    p.add_argument("--minutes", type=int, default=45)
    p.add_argument("--raw", default="/tmp/memwatch-real.jsonl", help="where the format-2 recording goes")
    o = p.parse_args()
    if o.ceilings_only:
        add_ceilings()
        return
    if not o.memwatch:
        p.error("--memwatch is required to record")
    logs = pathlib.Path(o.raw).with_suffix(".logs")
    logs.mkdir(exist_ok=True)
    running = []
    table = node_case_workloads() if o.node_case else workloads()
    for key, (shape, cmd, args, limit, leak_start, kb) in keyed(table):
        argv = cmd + ["--name", key] + args + (["--leak-kb", str(kb)] if kb else [])
        log = open(logs / f"{key}.log", "w")
        proc = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
        running.append((key, shape, argv, limit, leak_start, kb, proc, time.time()))
    try:
        subprocess.run([o.memwatch, "record", "--duration", str(o.minutes * 60), "--out", o.raw], check=True)
    finally:
        for *_, proc, _ in running:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    for key, *_, proc, _ in running:
        if proc.returncode not in (None, -signal.SIGKILL):
            print(f"{key} exited early ({proc.returncode}): see {logs / (key + '.log')}", file=sys.stderr)
    write_corpus(o.raw, running, halves=("node_case",) if o.node_case else ("tuning", "test"))


def add_ceilings():
    for key, (shape, cmd, args, *_rest) in keyed(workloads()):
        argv = cmd + ["--name", key] + args
        ceiling = heap_ceiling(argv)
        for half in ("tuning", "test"):
            path = HERE / half / f"{key}.csv"
            if not path.exists():
                continue
            lines = path.read_text().splitlines()
            if lines[0].endswith(",heap_ceiling_bytes"):
                continue
            out = [lines[0] + ",heap_ceiling_bytes"] + [f"{line},{ceiling or ''}" for line in lines[1:]]
            path.write_text("\n".join(out) + "\n")


def write_corpus(raw, running, halves):
    """Format-1 traces and labels from the format-2 recording, each shape's
    workloads alternating between the directories `halves`."""
    by_name = {}
    t0 = None
    series = {}
    with open(raw) as f:
        for line in f:
            record = json.loads(line)
            if "process" in record:
                info = record["process"]
                words = info["cmdline"].split(" ")
                if "--name" in words:
                    by_name[(info["pid"], info["start_time"])] = words[words.index("--name") + 1]
            elif "tick" in record:
                tick = record["tick"]
                t0 = tick["t"] if t0 is None else t0
                for pid, start_time, rss in tick["rss"]:
                    key = by_name.get((pid, start_time))
                    if key is not None:
                        series.setdefault(key, []).append((round(tick["t"] - t0), rss))
    counts = {}
    labels = {half: [] for half in halves}
    for key, shape, argv, limit, leak_start, kb, _, started in running:
        counts[shape] = counts.get(shape, 0) + 1
        half = halves[(counts[shape] - 1) % len(halves)]
        rows = series.get(key, [])
        if not rows:
            print(f"{key}: not in the recording", file=sys.stderr)
            continue
        out = HERE / half / f"{key}.csv"
        out.parent.mkdir(exist_ok=True)
        ceiling = heap_ceiling(argv)
        with open(out, "w") as f:
            f.write("timestamp_s,key,rss_bytes,limit_bytes,heap_ceiling_bytes\n")
            for t, rss in rows:
                f.write(f"{t},{key},{rss},{limit * MIB},{ceiling or ''}\n")
        leak = leak_start is not None
        if leak_start == "cycle":
            # Rising troughs show once the first cycle has kept its share.
            build, rest = (float(argv[argv.index(flag) + 1]) for flag in ("--batch-min", "--rest-min"))
            start_s = started - t0 + build * 60
            rate = int(51 * MIB * 60 / (build + rest))
        elif leak:
            start_s = started - t0 + leak_start * 60
            rate = leak_rate(kb)
        labels[half].append(f"{key}.csv,{key},{str(leak).lower()},{shape},"
                            f"{max(0, round(start_s)) if leak else ''},{rate if leak else ''}")
    for half, lines in labels.items():
        with open(HERE / half / "labels.csv", "w") as f:
            f.write("file,key,leak,shape,leak_start_s,rate_bytes_per_h\n")
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
