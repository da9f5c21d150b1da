//! `memwatch::fuzzing::http` on whatever libFuzzer makes up.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| memwatch::fuzzing::http(data));
