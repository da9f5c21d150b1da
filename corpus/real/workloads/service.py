"""A request loop as a CPython service runs it, under CPython's reference
counting and pymalloc: every --req-ms a "request" makes --garbage-kb of
short-lived objects; a bounded cache fills towards --cache-mb with time
constant --warm-min / 3; after --leak-after-min each request keeps
--leak-kb for good. With --batch-mb, a periodic job builds that much over
--batch-min minutes, frees it all, rests --rest-min and starts again,
keeping --retain-mb of each cycle (rising troughs: a leak under a job).

    python3 service.py --name KEY [--req-ms 100] [--garbage-kb 256] ...
"""
import argparse
import math
import sys
import time


def block(kb):
    # A bytearray is one malloc'd buffer of that size: RSS, not just heap.
    return bytearray(int(kb * 1024))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    for flag, default in [("--req-ms", 100), ("--garbage-kb", 256), ("--cache-mb", 0), ("--warm-min", 10),
                          ("--leak-kb", 0), ("--leak-after-min", 0), ("--batch-mb", 0), ("--batch-min", 10),
                          ("--rest-min", 2), ("--retain-mb", 0)]:
        p.add_argument(flag, type=float, default=default)
    o = p.parse_args()
    started = time.monotonic()
    cache, leaked, batch, retained = [], [], [], []
    cycle_started = started
    last_report = started
    while True:
        now = time.monotonic()
        minutes = (now - started) / 60
        garbage = [list(range(int(16 * 1024 / 36))) for _ in range(int(o.garbage_kb / 16))]
        del garbage
        wanted = o.cache_mb * 1024 * (1 - math.exp(-minutes / (o.warm_min / 3)))
        while o.cache_mb > 0 and (len(cache) + 1) * 64 <= wanted:
            cache.append(block(64))
        if o.leak_kb > 0 and minutes >= o.leak_after_min:
            leaked.append(block(o.leak_kb))
        if o.batch_mb > 0:
            in_cycle = (now - cycle_started) / 60
            if in_cycle < o.batch_min:
                while (len(batch) + 1) * 256 <= o.batch_mb * 1024 * in_cycle / o.batch_min:
                    batch.append(block(256))
            elif batch:
                if o.retain_mb > 0:
                    retained.append(block(o.retain_mb * 1024))
                batch.clear()
            elif in_cycle >= o.batch_min + o.rest_min:
                cycle_started = now
        if now - last_report >= 60:
            last_report = now
            print(f"{o.name}: cache {len(cache)}, leaked {len(leaked)}, batch {len(batch)}, cycles kept {len(retained)}",
                  file=sys.stderr)
        time.sleep(o.req_ms / 1000)


if __name__ == "__main__":
    main()
