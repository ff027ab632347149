//! Warehouse COPY destination: Firehose's `RedshiftDestinationConfiguration`.
//!
//! The delivery layer stages each batch as an object in S3 (the intermediate
//! `S3Configuration`), then hands one of the loaders here a request naming that object:
//!
//! - [`PostgresLoader`] streams the staged object itself into PostgreSQL with
//!   `COPY ... FROM STDIN`, translating the Redshift `CopyOptions` it understands
//!   ([`PgCopyOptions`]) and rejecting the rows the database refuses one by one.
//! - [`RedshiftLoader`] writes a Redshift manifest next to the staged object and runs
//!   `COPY ... FROM '<manifest>' CREDENTIALS ... MANIFEST <CopyOptions>` verbatim.
//!
//! Both record every load in `hydrant_load_checkpoints` in the same transaction as the COPY,
//! keyed by the request's deterministic `load_id`, so a batch is loaded exactly once across
//! crashes and retries. `docs/destinations/warehouse.md` is the operator's guide.

mod config;
mod copy_options;
mod manifest;
mod request_builder;
mod retry;
mod service;
pub mod tls;

pub use config::{
    CopyCommand, FieldErrors, Ident, TableName, Target, WarehouseSettings, DEFAULT_RETRY_SECONDS,
};
pub use copy_options::{parse_pg_copy_options, PgCopyOptions, PgFormat};
pub use manifest::{
    failure_manifest_json, manifest_json, redshift_copy_sql, redshift_load_statements,
    CredentialsClause, FailedLoad, RedshiftStatements,
};
pub use request_builder::{
    decompress, postgres_copy_sql, record_spans, Column, LoadRequest, CHECKPOINT_TABLE,
};
pub use retry::{classify, CONNECTION_FAILED, DATA_LOAD_FAILED};
pub use service::{PostgresLoader, RedshiftLoadRequest, RedshiftLoader, MAX_BAD_ROWS};
