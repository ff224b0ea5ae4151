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
    /// The first message: the packed specs, as `(name, fd, length)` of the
    /// sealed memfds the worker inherited.
    Init { specs: Vec<(String, i32, usize)> },
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

/// Reads one frame on the host side.
pub(crate) async fn read_frame_async<T: for<'de> Deserialize<'de>>(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
) -> io::Result<T> {
    use tokio::io::AsyncReadExt;
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::other(format!("frame of {len} bytes exceeds {MAX_FRAME}")));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    serde_json::from_slice(&body).map_err(io::Error::other)
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
}
