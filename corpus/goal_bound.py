#!/usr/bin/env python3
"""What a median delay under 10 minutes asks of any detector on the
synthetic corpus, counted from the distributions `cargo xtask corpus` draws
from (xtask/src/corpus.rs), not from any detector's output.

Generous on purpose: every linear, GC and accelerating leak that begins
after a flat stretch is taken as found the moment it begins. What is left
to find within 10 minutes must then come from the leaks present from the
history's start, which nothing before them can tell from a timed job's
first build. Usage: python3 corpus/goal_bound.py [draws]
"""
import math
import random
import statistics
import sys

LEAKS = 85
NEEDED = LEAKS // 2 + 1  # a median under 10 minutes: 43 of 85 within 10
SLOWEST_BUILD_MB_PER_H = 100 / 20 * 60  # the smallest job, built over 20 minutes


def log_uniform(rng, low, high):
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def draw(rng):
    # A leak under a timed job begins at its first return. One higher trough
    # is one kept allocation (a non-leak of the same corpus); the second
    # return, a whole cycle later, is the first evidence.
    cycles_under_10 = sum(rng.uniform(5, 20) + rng.uniform(2, 10) < 10 for _ in range(10))
    # A stepwise leak's first step is one kept allocation too; its second
    # comes two steps' spacing (1-10 minutes each) after it began.
    steps_under_10 = sum(2 * rng.uniform(1, 10) < 10 for _ in range(7))
    found_after_flat = 13 + 9 + 7 + cycles_under_10 + steps_under_10
    needed_from_start = max(0, NEEDED - found_after_flat)

    # Leaks from the start rising slower than any timed job builds.
    slower = sum(20 * 200 ** (i / 26) < SLOWEST_BUILD_MB_PER_H for i in range(0, 27, 2))
    slower += sum(log_uniform(rng, 150, 4096) < SLOWEST_BUILD_MB_PER_H for _ in range(9))
    slower += sum(log_uniform(rng, 100, 4096) / 8 < SLOWEST_BUILD_MB_PER_H for _ in range(8))

    # Timed jobs (20) whose first visible build runs from the history's start
    # for at least 9 minutes: a straight rise from a baseline, as a leak's.
    long_first_builds = 0
    for _ in range(20):
        build = rng.uniform(5, 20)
        period = build + rng.uniform(2, 10)
        offset = rng.uniform(0, period)
        long_first_builds += offset < build and build - offset >= 9
    return needed_from_start, slower, long_first_builds


def main():
    draws = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rng = random.Random(1)
    results = [draw(rng) for _ in range(draws)]
    needed, slower, builds = zip(*results)
    print(f"{draws} corpora drawn")
    print(f"leaks from the start to find within 10 minutes: mean {statistics.mean(needed):.1f}, "
          f"fewest {min(needed)}")
    print(f"linear, GC and accelerating leaks from the start (31) rising slower than any timed "
          f"job builds ({SLOWEST_BUILD_MB_PER_H:.0f} MB/h): mean {statistics.mean(slower):.1f}")
    print(f"timed jobs building from the start for 9+ minutes: mean {statistics.mean(builds):.2f}, "
          f"at least 2 in {sum(b >= 2 for b in builds) / draws:.0%} of corpora")


if __name__ == "__main__":
    main()
