//! Object format v1 (docs/encryption.md): a header naming the master key and carrying the
//! wrapped data key, then the plaintext in AES-256-GCM chunks (STREAM construction).

use std::fmt;
use std::io::{self, Read, Write};

use aes_gcm::{AeadInOut, Aes256Gcm};
use zeroize::Zeroizing;

use super::error::{DecryptError, EncryptionError};
use super::keys::{is_valid_key_id, KeyRing, MAX_KEY_ID_LEN};
use super::primitives::{self, KEY_LEN, NONCE_LEN, TAG_LEN, WRAPPED_LEN};

/// First four bytes of every encrypted object.
pub const MAGIC: [u8; 4] = *b"HYDE";
/// The format version this code writes and reads.
pub const VERSION: u8 = 1;
/// Plaintext bytes per chunk that Hydrant writes.
pub const DEFAULT_CHUNK_SIZE: u32 = 64 * 1024;
/// Largest chunk size a reader accepts (bounds its memory).
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;

const NONCE_PREFIX_LEN: usize = 8;
/// magic, version, chunk_size, key_id_len.
const FIXED_PREFIX_LEN: usize = 4 + 1 + 4 + 1;
/// nonce_prefix, wrap_nonce, wrapped_key: the header after the key id.
const FIXED_SUFFIX_LEN: usize = NONCE_PREFIX_LEN + NONCE_LEN + WRAPPED_LEN;

/// The per-object secrets; random except in test vectors.
struct ObjectSecrets {
    data_key: Zeroizing<[u8; KEY_LEN]>,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    wrap_nonce: [u8; NONCE_LEN],
}

impl ObjectSecrets {
    fn random() -> Result<ObjectSecrets, EncryptionError> {
        let data_key = primitives::random_key().map_err(EncryptionError::Random)?;
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        let mut wrap_nonce = [0u8; NONCE_LEN];
        primitives::fill_random(&mut nonce_prefix).map_err(EncryptionError::Random)?;
        primitives::fill_random(&mut wrap_nonce).map_err(EncryptionError::Random)?;
        Ok(ObjectSecrets { data_key, nonce_prefix, wrap_nonce })
    }
}

fn chunk_nonce(prefix: &[u8; NONCE_PREFIX_LEN], index: u32) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..NONCE_PREFIX_LEN].copy_from_slice(prefix);
    nonce[NONCE_PREFIX_LEN..].copy_from_slice(&index.to_be_bytes());
    nonce
}

/// Starts an encrypted object in `inner` with the default chunk size: the header is written
/// now, each chunk as soon as it is full, the final chunk by [`EncryptWriter::finish`].
pub fn encrypt_writer<W: Write>(
    ring: &KeyRing,
    inner: W,
) -> Result<EncryptWriter<W>, EncryptionError> {
    EncryptWriter::new(ring, inner)
}

/// Encrypts a whole plaintext in memory (default chunk size).
pub fn encrypt(ring: &KeyRing, plaintext: &[u8]) -> Result<Vec<u8>, EncryptionError> {
    let chunks = plaintext.len() / DEFAULT_CHUNK_SIZE as usize + 1;
    let capacity = 78 + MAX_KEY_ID_LEN + plaintext.len() + chunks * TAG_LEN;
    let mut writer = EncryptWriter::new(ring, Vec::with_capacity(capacity))?;
    writer.write_all(plaintext)?;
    writer.finish()
}

/// Streaming encryptor: a `Write` that encrypts into `inner`.
///
/// Memory is one chunk. Dropping it without [`finish`](EncryptWriter::finish) leaves an
/// object without its final chunk, which every reader rejects as truncated. After an error
/// from `inner` the writer is poisoned: every later call fails.
pub struct EncryptWriter<W: Write> {
    inner: W,
    cipher: Aes256Gcm,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    /// The header `H`, then one byte for the final flag.
    aad: Vec<u8>,
    chunk_size: usize,
    /// Plaintext of the chunk being filled (capacity: a chunk and its tag).
    buf: Vec<u8>,
    next_index: u64,
    plaintext_len: u64,
    key_id: String,
    poisoned: bool,
}

impl<W: Write> EncryptWriter<W> {
    /// Encrypts under the ring's active key with the default chunk size (64 KiB).
    pub fn new(ring: &KeyRing, inner: W) -> Result<EncryptWriter<W>, EncryptionError> {
        EncryptWriter::with_chunk_size(ring, inner, DEFAULT_CHUNK_SIZE)
    }

    /// Encrypts with another chunk size (1 to 16 MiB).
    pub fn with_chunk_size(
        ring: &KeyRing,
        inner: W,
        chunk_size: u32,
    ) -> Result<EncryptWriter<W>, EncryptionError> {
        EncryptWriter::with_secrets(ring, inner, chunk_size, ObjectSecrets::random()?)
    }

    /// Fixed secrets, for test vectors only.
    #[cfg(test)]
    pub(super) fn with_fixed_secrets(
        ring: &KeyRing,
        inner: W,
        chunk_size: u32,
        data_key: [u8; KEY_LEN],
        nonce_prefix: [u8; NONCE_PREFIX_LEN],
        wrap_nonce: [u8; NONCE_LEN],
    ) -> Result<EncryptWriter<W>, EncryptionError> {
        let secrets =
            ObjectSecrets { data_key: Zeroizing::new(data_key), nonce_prefix, wrap_nonce };
        EncryptWriter::with_secrets(ring, inner, chunk_size, secrets)
    }

    fn with_secrets(
        ring: &KeyRing,
        mut inner: W,
        chunk_size: u32,
        secrets: ObjectSecrets,
    ) -> Result<EncryptWriter<W>, EncryptionError> {
        if !(1..=MAX_CHUNK_SIZE).contains(&chunk_size) {
            return Err(EncryptionError::InvalidChunkSize(chunk_size));
        }
        let master = ring.active();
        let key_id = master.id();
        let mut header = Vec::with_capacity(FIXED_PREFIX_LEN + key_id.len() + FIXED_SUFFIX_LEN + 1);
        header.extend_from_slice(&MAGIC);
        header.push(VERSION);
        header.extend_from_slice(&chunk_size.to_be_bytes());
        header.push(key_id.len() as u8); // 1..=64: checked by MasterKey
        header.extend_from_slice(key_id.as_bytes());
        header.extend_from_slice(&secrets.nonce_prefix);
        // `W`, the wrap's AAD, is the header so far.
        let wrapped = primitives::wrap_key(master, &secrets.data_key, secrets.wrap_nonce, &header)
            .ok_or(EncryptionError::Aead)?;
        header.extend_from_slice(&secrets.wrap_nonce);
        header.extend_from_slice(&wrapped);
        inner.write_all(&header)?;
        header.push(0); // the final flag's place
        let chunk_size = chunk_size as usize;
        Ok(EncryptWriter {
            inner,
            cipher: primitives::cipher(&secrets.data_key),
            nonce_prefix: secrets.nonce_prefix,
            aad: header,
            chunk_size,
            buf: Vec::with_capacity(chunk_size + TAG_LEN),
            next_index: 0,
            plaintext_len: 0,
            key_id: key_id.to_owned(),
            poisoned: false,
        })
    }

    /// Id of the master key this object is encrypted under.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Plaintext bytes accepted so far.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Writes the buffered plaintext (possibly empty) as the final chunk, flushes `inner` and
    /// returns it.
    pub fn finish(mut self) -> Result<W, EncryptionError> {
        if self.poisoned {
            return Err(EncryptionError::Poisoned);
        }
        self.emit(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// Encrypts `buf` as chunk `next_index` and writes it.
    fn emit(&mut self, is_final: bool) -> Result<(), EncryptionError> {
        self.poisoned = true;
        // A non-final chunk needs room for the final one after it.
        let limit = if is_final { u32::MAX as u64 } else { u32::MAX as u64 - 1 };
        if self.next_index > limit {
            return Err(EncryptionError::TooManyChunks);
        }
        let nonce = chunk_nonce(&self.nonce_prefix, self.next_index as u32);
        *self.aad.last_mut().expect("aad ends with the flag") = u8::from(is_final);
        let tag = self
            .cipher
            .encrypt_inout_detached(
                &primitives::nonce(nonce),
                &self.aad,
                self.buf.as_mut_slice().into(),
            )
            .map_err(|_| EncryptionError::Aead)?;
        self.buf.extend_from_slice(&tag);
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        self.next_index += 1;
        self.poisoned = false;
        Ok(())
    }
}

impl<W: Write> Write for EncryptWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.poisoned {
            return Err(EncryptionError::Poisoned.into());
        }
        let mut rest = data;
        while !rest.is_empty() {
            let take = (self.chunk_size - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            // A full chunk is never the final one: the final chunk is always short.
            if self.buf.len() == self.chunk_size {
                self.emit(false)?;
            }
        }
        self.plaintext_len += data.len() as u64;
        Ok(data.len())
    }

    /// Flushes `inner` (the partly filled chunk stays buffered until it is full or finished).
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> fmt::Debug for EncryptWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptWriter")
            .field("key_id", &self.key_id)
            .field("chunk_size", &self.chunk_size)
            .field("chunks_written", &self.next_index)
            .field("plaintext_len", &self.plaintext_len)
            .finish_non_exhaustive()
    }
}

/// A parsed object header.
struct Header {
    /// `H`: the whole header.
    bytes: Vec<u8>,
    chunk_size: u32,
    key_id: String,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    wrap_nonce: [u8; NONCE_LEN],
    wrapped: [u8; WRAPPED_LEN],
}

impl Header {
    /// `W`: the header up to and including the nonce prefix.
    fn wrap_aad(&self) -> &[u8] {
        &self.bytes[..FIXED_PREFIX_LEN + self.key_id.len() + NONCE_PREFIX_LEN]
    }
}

/// Reads as many bytes as fit in `buf`, stopping early only at end of input.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Checks the first 10 bytes (`n` of them present) and returns (chunk size, key id length).
fn parse_fixed_prefix(prefix: &[u8], n: usize) -> Result<(u32, usize), DecryptError> {
    let magic_seen = n.min(MAGIC.len());
    if prefix[..magic_seen] != MAGIC[..magic_seen] {
        return Err(DecryptError::BadMagic { expected: "HYDE" });
    }
    if n < FIXED_PREFIX_LEN {
        return Err(DecryptError::TruncatedHeader);
    }
    if prefix[4] != VERSION {
        return Err(DecryptError::UnsupportedVersion(prefix[4]));
    }
    let chunk_size = u32::from_be_bytes(prefix[5..9].try_into().expect("4 bytes"));
    if !(1..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(DecryptError::MalformedHeader(format!(
            "chunk size {chunk_size} is out of range 1..={MAX_CHUNK_SIZE}"
        )));
    }
    let id_len = prefix[9] as usize;
    if !(1..=MAX_KEY_ID_LEN).contains(&id_len) {
        return Err(DecryptError::MalformedHeader(format!(
            "key id length {id_len} is out of range 1..={MAX_KEY_ID_LEN}"
        )));
    }
    Ok((chunk_size, id_len))
}

fn parse_key_id(bytes: &[u8]) -> Result<String, DecryptError> {
    match std::str::from_utf8(bytes) {
        Ok(id) if is_valid_key_id(id) => Ok(id.to_owned()),
        _ => Err(DecryptError::MalformedHeader(
            "the key id has characters outside A-Z a-z 0-9 . _ -".to_owned(),
        )),
    }
}

fn read_header(input: &mut impl Read) -> Result<Header, DecryptError> {
    let mut prefix = [0u8; FIXED_PREFIX_LEN];
    let n = read_full(input, &mut prefix).map_err(DecryptError::Read)?;
    let (chunk_size, id_len) = parse_fixed_prefix(&prefix, n)?;
    let mut bytes = vec![0u8; FIXED_PREFIX_LEN + id_len + FIXED_SUFFIX_LEN];
    bytes[..FIXED_PREFIX_LEN].copy_from_slice(&prefix);
    let rest = &mut bytes[FIXED_PREFIX_LEN..];
    if read_full(input, rest).map_err(DecryptError::Read)? < rest.len() {
        return Err(DecryptError::TruncatedHeader);
    }
    let key_id = parse_key_id(&bytes[FIXED_PREFIX_LEN..FIXED_PREFIX_LEN + id_len])?;
    let at = FIXED_PREFIX_LEN + id_len;
    let field = |from: usize, len: usize| &bytes[at + from..at + from + len];
    let nonce_prefix = field(0, NONCE_PREFIX_LEN).try_into().expect("8 bytes");
    let wrap_nonce = field(NONCE_PREFIX_LEN, NONCE_LEN).try_into().expect("12 bytes");
    let wrapped = field(NONCE_PREFIX_LEN + NONCE_LEN, WRAPPED_LEN).try_into().expect("48 bytes");
    Ok(Header { bytes, chunk_size, key_id, nonce_prefix, wrap_nonce, wrapped })
}

/// The id of the master key an object is encrypted under, read from the start of the object
/// (its first `10 + id length` bytes suffice; no key is needed).
pub fn header_key_id(bytes: &[u8]) -> Result<String, DecryptError> {
    let mut prefix = [0u8; FIXED_PREFIX_LEN];
    let n = bytes.len().min(FIXED_PREFIX_LEN);
    prefix[..n].copy_from_slice(&bytes[..n]);
    let (_, id_len) = parse_fixed_prefix(&prefix, n)?;
    let id = bytes
        .get(FIXED_PREFIX_LEN..FIXED_PREFIX_LEN + id_len)
        .ok_or(DecryptError::TruncatedHeader)?;
    parse_key_id(id)
}

/// Decrypts an object from `input` into `output`, chunk by chunk, and returns the number of
/// plaintext bytes written.
///
/// A chunk's plaintext is written only after that chunk passed authentication. A truncated
/// object or a bad later chunk is only found after earlier chunks were written: **on error,
/// discard the output.**
pub fn decrypt_stream(
    ring: &KeyRing,
    mut input: impl Read,
    mut output: impl Write,
) -> Result<u64, DecryptError> {
    let header = read_header(&mut input)?;
    let master = ring.get(&header.key_id).ok_or_else(|| DecryptError::UnknownKeyId {
        id: header.key_id.clone(),
        configured: ring.id_list(),
    })?;
    let data_key =
        primitives::unwrap_key(master, header.wrap_nonce, &header.wrapped, header.wrap_aad())
            .ok_or_else(|| DecryptError::KeyMismatch { id: header.key_id.clone() })?;
    let cipher = primitives::cipher(&data_key);
    drop(data_key);

    let full = header.chunk_size as usize + TAG_LEN;
    let mut aad = header.bytes;
    aad.push(0);
    let mut buf = vec![0u8; full];
    let mut index: u64 = 0;
    let mut written: u64 = 0;
    loop {
        let n = read_full(&mut input, &mut buf).map_err(DecryptError::Read)?;
        if n < TAG_LEN {
            return Err(DecryptError::Truncated { chunks: index });
        }
        let is_final = n < full;
        if index > u32::MAX as u64 {
            return Err(DecryptError::TooManyChunks);
        }
        *aad.last_mut().expect("aad ends with the flag") = u8::from(is_final);
        let (ciphertext, tag) = primitives::split_tag(&mut buf[..n]).expect("n >= TAG_LEN");
        cipher
            .decrypt_inout_detached(
                &primitives::nonce(chunk_nonce(&header.nonce_prefix, index as u32)),
                &aad,
                (&mut *ciphertext).into(),
                &tag,
            )
            .map_err(|_| DecryptError::TamperedChunk { index })?;
        output.write_all(ciphertext).map_err(DecryptError::Write)?;
        written += ciphertext.len() as u64;
        if is_final {
            output.flush().map_err(DecryptError::Write)?;
            return Ok(written);
        }
        index += 1;
    }
}

/// Decrypts a whole object in memory.
pub fn decrypt(ring: &KeyRing, object: &[u8]) -> Result<Vec<u8>, DecryptError> {
    let mut out = Vec::with_capacity(object.len());
    decrypt_stream(ring, object, &mut out)?;
    Ok(out)
}
