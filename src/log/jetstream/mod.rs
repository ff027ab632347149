//! The log on a NATS JetStream cluster (`core.type: jetstream`, issue 13): every node of a
//! Hydrant cluster opens every stream's log on the same JetStream streams, so any node accepts
//! any put. The design is `docs/cluster.md`'s; in short:
//!
//! - [`JetStreamStore`] keeps a registry of logs (a key-value bucket) and gives each shard a
//!   JetStream stream of its own: its own Raft group and leader, and its stream sequence is the
//!   shard position (`store.rs`, `names.rs`);
//! - appends publish every record of a call at once, each with a message id that retries
//!   reuse, so a retried publish is stored once; an election or a lost connection is retried
//!   until the append's deadline, a full stream is `AppendError::Full` (`append.rs`,
//!   `errors.rs`);
//! - a reader follows its shard with an ordered consumer into a bounded queue; a seal is a
//!   message at the reader's position, published only if nothing is there yet, and the first
//!   one stored wins for every proposer (`reader.rs`, `message.rs`);
//! - consumers' progress is a key-value record per shard and consumer, written with
//!   compare-and-set; what every consumer has passed is purged (`lease.rs`);
//! - records encrypted at rest name their epoch, whose data key is in a bucket (`at_rest.rs`).
//!
//! Not yet: leases that move between nodes (one node is granted every shard), the shared
//! control plane, and the server's use of it ([`connect`] is ready for it).

mod append;
mod at_rest;
pub mod connect;
mod errors;
mod lease;
mod message;
mod names;
mod reader;
mod store;
mod stream_log;

pub use connect::{Nats, NatsAuth, NatsError, NatsOptions, NatsTls};
pub use store::{JetStreamOptions, JetStreamStore};
pub use stream_log::JetStreamLog;
