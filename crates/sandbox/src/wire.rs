//! The messages between the host and a sandbox worker process, and their
//! framing on the pipe: a little-endian `u32` length, then that many bytes of
//! JSON.
//!
//! The host treats everything a worker sends as hostile (a worker runs model
//! code, and a QuickJS bug could hand that code the process): frames are
//! capped in size, and a malformed frame ends the worker, never the host.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use crate::{ExecuteEnv, Limits, ScriptError};

/// The largest frame either side accepts. Results and upstream responses are
/// capped far below this by their own limits; this only bounds a broken or
/// hostile peer.
pub(crate) const MAX_FRAME: usize = 256 * 1024 * 1024;

/// Host → worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    /// The first message: the packed specs, as `(name, global, fd, length)` of the
    /// sealed memfds the worker inherited.
    Init { specs: Vec<(String, crate::SpecGlobal, i32, usize)> },
    /// Run `search` code.
    Search {
        code: String,
        limits: Limits,
        /// Indexes (into the worker's spec list) this call may see, in the
        /// order they appear in `specs`.
        visible: Vec<usize>,
        /// Whether `spec` (the only API) is defined too.
        single: bool,
        /// Whether the `codemode` global (tools/types) exists.
        catalog: bool,
    },
    /// Run `execute` code.
    Execute { code: String, limits: Limits, env: ExecuteEnv },
    /// A host call started by the current `execute` finished.
    Completion { id: u64, ok: bool, json: String },
    /// The host's clock of the current `execute` is now held (a human is
    /// deciding): time the code waits idle for completions from now on is
    /// credited to its deadline.
    Hold,
    /// The host's clock is no longer held.
    Release,
    /// The answer to a synchronous host call of the current `search`.
    SyncReply { ok: bool, json: String },
    /// Try what the lockdown forbids and report what happened (tests).
    SelfTest,
}

/// Worker → host.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    /// Started, locked down and waiting for work.
    Ready,
    /// Start a host call (`client.method(...args)`); `args` is JSON text.
    HostCall { id: u64, client: String, method: String, args: String },
    /// A synchronous host call (`codemode.tools()`); answer with `SyncReply`.
    SyncCall { method: String, args: String },
    /// `progress(message, fraction?)` of the current `execute` (no answer).
    Progress { message: String, fraction: Option<f64> },
    /// The call ended.
    Done(WireOutcome),
}

/// What a call produced, as it crosses the pipe. The result stays JSON text
/// so that its depth is checked once, on the host, by the same code as
/// in-process.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireOutcome {
    pub result: Result<RawValue, ScriptError>,
    pub console: Vec<String>,
    pub console_dropped: usize,
    pub host_calls: u32,
    /// The worker asks to be replaced (it grew past its memory budget).
    pub retire: bool,
}

/// A result before the host parses it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum RawValue {
    Undefined,
    String(String),
    /// `JSON.stringify` of the value.
    Json(String),
}

/// Writes one frame.
pub(crate) fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(io::Error::other(format!("frame of {} bytes exceeds {MAX_FRAME}", body.len())));
    }
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf)?;
    w.flush()
}

/// Reads one frame (blocking).
pub(crate) fn read_frame<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> io::Result<T> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::other(format!("frame of {len} bytes exceeds {MAX_FRAME}")));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    serde_json::from_slice(&body).map_err(io::Error::other)
}

/// Reads frames on the host side. Unlike a plain `read_exact`, reading is
/// cancel-safe: when a read loses a `select!` to another branch, the bytes
/// it already took stay buffered for the next read, so the framing survives.
pub(crate) struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
}

impl<R: tokio::io::AsyncRead + Unpin> FrameReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        FrameReader { inner, buf: Vec::new() }
    }

    /// Reads the next frame. Cancel-safe.
    pub(crate) async fn read<T: for<'de> Deserialize<'de>>(&mut self) -> io::Result<T> {
        use tokio::io::AsyncReadExt;
        loop {
            let mut want = 4;
            if self.buf.len() >= 4 {
                let len = u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
                if len > MAX_FRAME {
                    return Err(io::Error::other(format!("frame of {len} bytes exceeds {MAX_FRAME}")));
                }
                if self.buf.len() >= 4 + len {
                    let msg = serde_json::from_slice(&self.buf[4..4 + len]).map_err(io::Error::other);
                    self.buf.drain(..4 + len);
                    return msg;
                }
                want = 4 + len;
            }
            self.buf.reserve((want - self.buf.len()).clamp(8 * 1024, 1024 * 1024));
            // `read_buf` is cancel-safe: if it loses a race, it read nothing.
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

/// Writes one frame on the host side.
pub(crate) async fn write_frame_async<T: Serialize>(
    w: &mut (impl tokio::io::AsyncWrite + Unpin),
    msg: &T,
) -> io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_lengths_are_refused() {
        let mut buf = Vec::new();
        write_frame(
            &mut buf,
            &FromWorker::HostCall { id: 7, client: "a".into(), method: "b".into(), args: "[]".into() },
        )
        .unwrap();
        let back: FromWorker = read_frame(&mut buf.as_slice()).unwrap();
        assert!(matches!(back, FromWorker::HostCall { id: 7, .. }));
        let huge = ((MAX_FRAME + 1) as u32).to_le_bytes();
        assert!(read_frame::<FromWorker>(&mut huge.as_slice()).is_err());
        let truncated = &buf[..buf.len() - 1];
        assert!(read_frame::<FromWorker>(&mut &truncated[..]).is_err());
    }

    #[tokio::test]
    async fn host_reads_survive_cancellation_mid_frame() {
        use tokio::io::AsyncWriteExt;
        let (mut tx, rx) = tokio::io::duplex(64);
        let mut reader = FrameReader::new(rx);
        let mut frame = Vec::new();
        let big = "x".repeat(100_000);
        write_frame(&mut frame, &FromWorker::HostCall { id: 1, client: "a".into(), method: "b".into(), args: big })
            .unwrap();
        write_frame(&mut frame, &FromWorker::Ready).unwrap();
        let writer = tokio::spawn(async move {
            for chunk in frame.chunks(1000) {
                tx.write_all(chunk).await.unwrap();
                tokio::task::yield_now().await;
            }
            tx
        });
        // Cancel the read over and over, as a busy `select!` would.
        let first = loop {
            let r = tokio::time::timeout(std::time::Duration::from_micros(50), reader.read::<FromWorker>()).await;
            if let Ok(r) = r {
                break r.unwrap();
            }
        };
        assert!(matches!(first, FromWorker::HostCall { id: 1, ref args, .. } if args.len() == 100_000));
        assert!(matches!(reader.read::<FromWorker>().await.unwrap(), FromWorker::Ready));
        drop(writer.await.unwrap());
        assert_eq!(reader.read::<FromWorker>().await.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        let len = ((MAX_FRAME + 1) as u32).to_le_bytes();
        let mut huge = FrameReader::new(&len[..]);
        assert!(huge.read::<FromWorker>().await.is_err());
    }
}
