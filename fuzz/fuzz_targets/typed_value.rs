#![no_main]
//! Fuzz target: see `courier_core::fuzzing::typed_value`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| courier_core::fuzzing::typed_value(data));
