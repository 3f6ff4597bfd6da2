//! The wall clock, read at the edge (the binaries and the sweeper's loop)
//! and passed into everything else as a value. Reads the system clock; no
//! other I/O.

/// Now, to the millisecond.
pub fn now() -> courier_core::Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    courier_core::Timestamp::from_millis(millis)
}
