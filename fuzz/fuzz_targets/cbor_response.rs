#![no_main]
//! Fuzz target: see `courier_core::fuzzing::cbor_response`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| courier_core::fuzzing::cbor_response(data));
