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
//! - each (shard, consumer) has a lease: a key-value record naming its owner and holding the
//!   consumer's progress, every write a compare-and-set fenced by owner and epoch, so a node
//!   that lost the lease cannot move the progress (`lease.rs`); what every consumer has passed
//!   is purged;
//! - each node renews what it holds and takes leases as the Kinesis Client Library does
//!   (expiry by a counter that stood still on the taker's own clock, a fair share per live
//!   node, at most one steal per round), and grants what it wins (`node.rs`, `take.rs`);
//! - records encrypted at rest name their epoch, whose data key is in a bucket (`at_rest.rs`).
//!
//! The stream definitions a cluster shares are the control plane's (`control/shared.rs`).

mod append;
mod at_rest;
mod bucket;
pub mod connect;
mod errors;
mod follow;
mod lease;
mod message;
mod names;
mod node;
mod node_loops;
mod reader;
mod store;
mod stream_log;
mod take;
mod topology;

pub use bucket::open_bucket;
pub use connect::{Nats, NatsAuth, NatsError, NatsOptions, NatsTls};
pub use errors::{is_already_created, is_wrong_last_revision};
pub use follow::follow_keys;
pub use names::{key_name, key_token};
pub use node::LeaseTiming;
pub use store::{JetStreamOptions, JetStreamStore};
pub use stream_log::JetStreamLog;
