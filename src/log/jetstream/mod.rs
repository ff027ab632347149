//! The log on a NATS JetStream cluster (`core.type: jetstream`, issue 13): every node of a
//! Hydrant cluster opens every stream's log on the same JetStream streams.
//!
//! So far: the connection and its checks ([`connect`]).

pub mod connect;

pub use connect::{Nats, NatsAuth, NatsError, NatsOptions, NatsTls};
