#![no_main]
//! Fuzz target: see `courier_core::fuzzing::definition`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| courier_core::fuzzing::definition(data));
