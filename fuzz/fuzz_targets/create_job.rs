#![no_main]
//! Fuzz target: see `courier_core::fuzzing::create_job`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| courier_core::fuzzing::create_job(data));
