#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tutti_fuzz_targets::bridge_core_warm(data));
