//! Helpers shared by the destination integration tests.
#![allow(dead_code)] // each test file uses a part

pub mod bulk_stub;
pub mod receiver;
