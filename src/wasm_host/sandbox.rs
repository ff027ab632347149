//! What a guest may use: WASI preview 1 with nothing behind it (no preopened directories, no
//! environment, no arguments, no network, stdin closed), stdout discarded, stderr kept
//! (its tail goes into trap messages), and a memory cap enforced by a `ResourceLimiter`.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::WasiCtxBuilder;

/// How much of the guest's stderr is kept (the last bytes written).
const STDERR_TAIL: usize = 4096;

/// The data of one store.
pub(crate) struct HostState {
    pub wasi: WasiP1Ctx,
    pub limiter: MemoryLimiter,
    pub stderr: CapturedOutput,
}

impl HostState {
    pub(crate) fn new(memory_limit: usize) -> Self {
        let stderr = CapturedOutput::default();
        let wasi = WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build_p1();
        HostState { wasi, limiter: MemoryLimiter::new(memory_limit), stderr }
    }
}

/// Caps the guest's linear memory and tables, and remembers whether the cap was hit so that
/// the trap that usually follows (an allocation failure aborts) is reported as a memory
/// error rather than a plain trap.
pub(crate) struct MemoryLimiter {
    max_memory: usize,
    pub(crate) exceeded: bool,
}

/// Most table elements a guest may have (function tables of real modules hold hundreds).
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl MemoryLimiter {
    fn new(max_memory: usize) -> Self {
        MemoryLimiter { max_memory, exceeded: false }
    }

    pub(crate) fn max_memory(&self) -> usize {
        self.max_memory
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Refuse rather than trap: `memory.grow` returns -1 and a guest that can cope with
        // allocation failure keeps running.
        if desired > self.max_memory {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }
}

/// A guest output stream that keeps only its last [`STDERR_TAIL`] bytes and never fails,
/// so a chatty guest can neither exhaust host memory nor trap on a full pipe.
#[derive(Clone, Default)]
pub(crate) struct CapturedOutput {
    buf: Arc<Mutex<Vec<u8>>>,
}

impl CapturedOutput {
    fn push(&self, bytes: &[u8]) {
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        let bytes = &bytes[bytes.len().saturating_sub(STDERR_TAIL)..];
        let keep = STDERR_TAIL - bytes.len();
        if buf.len() > keep {
            let cut = buf.len() - keep;
            buf.drain(..cut);
        }
        buf.extend_from_slice(bytes);
    }

    /// Empties the buffer (called before each invocation).
    pub(crate) fn clear(&self) {
        self.buf.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// What the guest wrote since the last `clear`, lossily decoded, trimmed.
    pub(crate) fn text(&self) -> String {
        let buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&buf).trim().to_string()
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_output_keeps_only_the_tail() {
        let out = CapturedOutput::default();
        out.push(&[b'a'; STDERR_TAIL]);
        out.push(b"end");
        let text = out.text();
        assert_eq!(text.len(), STDERR_TAIL);
        assert!(text.ends_with("aend"));
        out.push(&vec![b'b'; 3 * STDERR_TAIL]);
        assert_eq!(out.text(), "b".repeat(STDERR_TAIL));
        out.clear();
        assert_eq!(out.text(), "");
    }
}
