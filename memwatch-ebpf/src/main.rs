//! memwatch's kernel programs. Built for `bpfel-unknown-none` by
//! memwatch/build.rs (aya-build); on the host this file is an empty stub so
//! `cargo check --workspace` still works.
#![cfg_attr(target_arch = "bpf", no_std, no_main)]
// Atomic adds on map values (see probes/state.rs); the eBPF build is nightly anyway.
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]
#![cfg_attr(target_arch = "bpf", expect(internal_features, reason = "atomic_xadd intrinsic"))]

#[cfg(target_arch = "bpf")]
mod probes;

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any program that could reach this, so it is never run.
    loop {}
}

#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!("memwatch-ebpf holds kernel programs; memwatch loads them. Run `memwatch` instead.");
    std::process::exit(2);
}

// bpf-linker requires a license section; GPL-compatible to use GPL-only helpers.
#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
