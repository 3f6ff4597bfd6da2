//! Replays every input in fuzz/regressions/<target>/ (crashes `make fuzz`
//! found, kept once fixed, and hand-picked edge cases) through the same
//! entry points the fuzz targets call, so that a fixed crash stays fixed.

use courier_core::fuzzing;
use std::path::Path;

fn replay(target: &str, entry: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let mut count = 0;
    for file in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let bytes = std::fs::read(file.path()).unwrap_or_default();
        entry(&bytes);
        count += 1;
    }
    count
}

#[test]
fn every_kept_fuzz_input_is_handled_without_a_panic() {
    let total = replay("definition", fuzzing::definition)
        + replay("start_execution", fuzzing::start_execution)
        + replay("create_job", fuzzing::create_job)
        + replay("device_message", fuzzing::device_message)
        + replay("cbor_response", fuzzing::cbor_response)
        + replay("typed_value", fuzzing::typed_value);
    assert!(total > 0, "fuzz/regressions holds inputs");
}
