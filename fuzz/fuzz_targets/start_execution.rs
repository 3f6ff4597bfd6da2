#![no_main]
//! Fuzz target: see `courier_core::fuzzing::start_execution`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| courier_core::fuzzing::start_execution(data));
