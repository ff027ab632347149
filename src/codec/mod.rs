//! Turning a batch of records into an object's bytes: format (raw concatenation, later
//! Parquet), compression, and encryption. Each step is a small trait or type so the delivery
//! worker never matches on formats.

pub mod compression;
pub mod encryption;
pub mod parquet;

use std::io::{self, Write};
use std::sync::Arc;

pub use compression::{compression_for, CompressWriter, Compression, CompressionFormat};

/// A record the format could not take (it goes to the error output, the rest is delivered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// Firehose-style error code, e.g. `DataFormatConversion.MalformedData`.
    pub code: String,
    pub message: String,
}

/// Why [`ObjectEncoder::push`] failed.
#[derive(Debug)]
pub enum PushError {
    /// This record does not fit; the encoder is unchanged and takes further records.
    Rejected(RecordError),
    /// The encoder itself failed; the batch cannot be built.
    Io(io::Error),
}

impl From<io::Error> for PushError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Builds one object from records, streaming.
pub trait ObjectEncoder: Send {
    /// Adds one record (all of it or nothing).
    fn push(&mut self, record: &[u8]) -> Result<(), PushError>;
    /// The finished object body (before encryption).
    fn finish(self: Box<Self>) -> io::Result<Vec<u8>>;
}

/// Firehose's default format: the records' bytes concatenated, then compressed.
struct Concatenated(Box<dyn CompressWriter>);

impl ObjectEncoder for Concatenated {
    fn push(&mut self, record: &[u8]) -> Result<(), PushError> {
        Ok(self.0.write_all(record)?)
    }
    fn finish(self: Box<Self>) -> io::Result<Vec<u8>> {
        self.0.finish()
    }
}

/// JSON records converted to one Parquet file (`DataFormatConversionConfiguration`).
struct ParquetObject(parquet::ParquetEncoder);

impl ObjectEncoder for ParquetObject {
    fn push(&mut self, record: &[u8]) -> Result<(), PushError> {
        self.0
            .push(record)
            .map_err(|e| PushError::Rejected(RecordError { code: e.code, message: e.message }))
    }
    fn finish(self: Box<Self>) -> io::Result<Vec<u8>> {
        self.0.finish().map_err(io::Error::other)
    }
}

/// The object format: Firehose's raw concatenation, or Parquet.
#[derive(Clone)]
enum Format {
    Concatenated,
    Parquet {
        conversion: Arc<parquet::DataFormatConversionConfiguration>,
        columns: Arc<Vec<parquet::Column>>,
    },
}

/// How one stream's objects are encoded, built once from its configuration.
#[derive(Clone)]
pub struct ObjectCodec {
    format: Format,
    compression: Arc<dyn Compression>,
    extension: String,
    /// Client-side envelope encryption of the finished object.
    encryption: Option<Arc<encryption::KeyRing>>,
}

impl std::fmt::Debug for ObjectCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectCodec")
            .field("compression", &self.compression)
            .field("extension", &self.extension)
            .finish()
    }
}

impl ObjectCodec {
    /// Raw records with the given compression; `extension` is the final key extension
    /// (`FileExtension` or the compression's).
    pub fn concatenated(compression: Arc<dyn Compression>, extension: impl Into<String>) -> Self {
        Self {
            format: Format::Concatenated,
            compression,
            extension: extension.into(),
            encryption: None,
        }
    }

    /// JSON records converted to Parquet (compression happens inside the file). Checks that
    /// an encoder can be built, so a bad configuration fails at start, not per batch.
    pub fn parquet(
        conversion: parquet::DataFormatConversionConfiguration,
        columns: Vec<parquet::Column>,
        extension: impl Into<String>,
    ) -> Result<Self, parquet::ConversionConfigError> {
        parquet::ParquetEncoder::new(&conversion, &columns)?;
        Ok(Self {
            format: Format::Parquet {
                conversion: Arc::new(conversion),
                columns: Arc::new(columns),
            },
            compression: Arc::new(compression::Uncompressed),
            extension: extension.into(),
            encryption: None,
        })
    }

    /// Encrypts every finished object under the ring's active key (docs/encryption.md).
    pub fn with_encryption(mut self, ring: Arc<encryption::KeyRing>) -> Self {
        self.encryption = Some(ring);
        self
    }

    /// Starts a new object.
    pub fn encoder(&self) -> Box<dyn ObjectEncoder> {
        match &self.format {
            Format::Concatenated => Box::new(Concatenated(self.compression.writer())),
            Format::Parquet { conversion, columns } => Box::new(ParquetObject(
                parquet::ParquetEncoder::new(conversion, columns)
                    .expect("checked when the codec was built"),
            )),
        }
    }

    /// The last step on a finished body: encryption, when configured.
    pub fn seal(&self, body: bytes::Bytes) -> io::Result<bytes::Bytes> {
        match &self.encryption {
            None => Ok(body),
            Some(ring) => {
                encryption::encrypt(ring, &body).map(Into::into).map_err(io::Error::other)
            }
        }
    }

    pub fn extension(&self) -> &str {
        &self.extension
    }

    /// `Content-Encoding` stored with the object. None for encrypted objects: an HTTP client
    /// must not try to gunzip ciphertext.
    pub fn content_encoding(&self) -> Option<&'static str> {
        match self.encryption {
            Some(_) => None,
            None => self.compression.content_encoding(),
        }
    }
}
