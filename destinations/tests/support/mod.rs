//! Helpers shared by the destination integration tests.

pub mod bulk_stub;
