//! CAPACITY, counted: the read and write units DynamoDB reports consumed
//! (ReturnConsumedCapacity) for every call a store makes, summed for the
//! benchmarks and the write-unit budget tests. No I/O.

use std::sync::atomic::{AtomicU64, Ordering};

/// Capacity units consumed, summed over every call (table and indexes), for
/// benchmarks. Reads and writes are kept in hundredths of a unit.
#[derive(Debug, Default)]
pub struct CapacityMeter {
    read_centi_units: AtomicU64,
    write_centi_units: AtomicU64,
}

impl CapacityMeter {
    pub fn read_units(&self) -> f64 {
        self.read_centi_units.load(Ordering::Relaxed) as f64 / 100.0
    }
    pub fn write_units(&self) -> f64 {
        self.write_centi_units.load(Ordering::Relaxed) as f64 / 100.0
    }
    pub fn reset(&self) {
        self.read_centi_units.store(0, Ordering::Relaxed);
        self.write_centi_units.store(0, Ordering::Relaxed);
    }
    /// `capacity_units` is the call's total: the table and, with
    /// ReturnConsumedCapacity INDEXES, every index it wrote.
    pub fn record_read(&self, capacity: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>) {
        if let Some(units) = capacity.and_then(|c| c.capacity_units()) {
            self.read_centi_units
                .fetch_add((units * 100.0).round() as u64, Ordering::Relaxed);
        }
    }
    /// A write whose condition failed: DynamoDB bills it (at least one
    /// unit, more for a larger existing item) but reports no consumed
    /// capacity with the error, and DynamoDB Local none at all, so it is
    /// counted here at its minimum.
    pub fn record_failed_write(&self) {
        self.write_centi_units.fetch_add(100, Ordering::Relaxed);
    }
    pub fn record_write(&self, capacity: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>) {
        if let Some(units) = capacity.and_then(|c| c.capacity_units()) {
            self.write_centi_units
                .fetch_add((units * 100.0).round() as u64, Ordering::Relaxed);
        }
    }
}
