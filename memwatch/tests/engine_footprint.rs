//! What a target costs the engine once its history is full: the figure
//! behind `daemon.max_targets` (config.toml, README: 2000 targets at about
//! 6 KiB each; this fails above 10 KiB). Counted by a global allocator of this test's own, so it
//! is the bytes the engine holds, whatever the allocator or the machine.
use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicIsize, Ordering},
};

use memwatch::{
    engine::{Engine, EngineOptions, EventKind, Reading, TargetSettings},
    model::target_key::TargetKey,
};

/// Bytes allocated and not yet freed, by anything in this test binary.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: every call is passed on to the system allocator unchanged; the
// counter only watches.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's layout, as GlobalAlloc requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as for `dealloc`, and `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const TARGETS: usize = 500;
/// Longer than the four hours of minute points, so every ring is full.
const MINUTES: u64 = 300;
const MIB: f64 = (1 << 20) as f64;

/// Usage that keeps each part of a target's state busy: every third
/// target leaks (a verdict, its trend), the others saw up and down like a
/// collected heap, all at their own sizes and paces.
fn usage(target: usize, t: f64) -> u64 {
    let base = 100.0 * MIB + target as f64 * MIB;
    let leak = if target.is_multiple_of(3) { t * (5.0 + target as f64 % 7.0) * 1024.0 } else { 0.0 };
    let sawtooth = (t % (120.0 + target as f64 % 240.0)) * 2048.0;
    (base + leak + sawtooth) as u64
}

#[test]
fn a_target_with_a_full_history_costs_the_engine_under_10_kib() {
    let keys: Vec<TargetKey> =
        (0..TARGETS).map(|i| TargetKey::from(format!("cgroup:/system.slice/service-{i:04}.service"))).collect();
    let settings = TargetSettings::default();
    let mut events = Vec::with_capacity(4 * TARGETS);
    let mut leaking = vec![false; TARGETS];
    let before = LIVE.load(Ordering::Relaxed);
    let mut engine = Engine::new(EngineOptions::default());
    // Twice a minute, so each minute point is a minimum of two readings.
    for half_minute in 0..2 * MINUTES {
        let t = half_minute as f64 * 30.0;
        for (i, key) in keys.iter().enumerate() {
            let reading =
                Reading { t, key, usage_bytes: usage(i, t), limit_bytes: 64 << 30, pressure: None, heap_ceiling: None };
            engine.observe(&reading, &settings, &mut events);
        }
        for event in events.drain(..) {
            let target = keys.iter().position(|key| *key == event.key).expect("one of ours");
            match event.kind {
                EventKind::LeakDetected(_) => leaking[target] = true,
                EventKind::LeakEnded { .. } => leaking[target] = false,
                _ => {}
            }
        }
    }
    let per_target = (LIVE.load(Ordering::Relaxed) - before) as f64 / TARGETS as f64;
    let leaking = leaking.iter().filter(|&&leak| leak).count();
    println!("engine: {per_target:.0} bytes per target with a full history ({TARGETS} targets, {leaking} leaking)");
    assert!(leaking >= TARGETS / 4, "the leaking third must hold verdicts for the figure to count them: {leaking}");
    assert_eq!(engine.target_count(), TARGETS);
    assert!(per_target > 300.0 * 16.0, "300 points of 16 bytes at least: {per_target:.0} bytes counted");
    assert!(per_target < 10.0 * 1024.0, "{per_target:.0} bytes per target");
}
