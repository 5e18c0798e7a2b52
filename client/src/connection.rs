//! One TCP connection to one broker, pipelined.
//!
//! Callers hand [`Connection::send`] an encoded request frame as a list of parts (size prefix and
//! header v1 first, record batches by reference after), written with correlation id 0; the
//! connection stamps the correlation id it assigns into bytes 8..12, registers the waiter in
//! [`pending::Pending`] and queues the parts to a writer task that coalesces queued frames into
//! few syscalls (large parts bypass its buffer, so produced batches are never copied). A reader
//! task reads size-prefixed response frames (bounded by [`RESPONSE_FRAME_BYTES_MAX`] before
//! allocating), matches each to its waiter by correlation id and hands over the frame after the
//! correlation id as `Bytes` (a slice of the read buffer: record data in fetch responses is never
//! copied again; large frames are read into recycled buffers, [`frame_pool`]). Any I/O failure
//! fails every waiter with [`ConnectionError`] and marks the connection closed; the
//! [`crate::cluster`] layer reconnects.
//!
//! **Invariant**: a waiter is registered before its frame is queued, so a response can never
//! arrive for an unknown id except after the waiter gave up (timeout), and is then dropped.

pub mod frame_pool;
pub mod pending;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::limits::{
    CONNECTION_QUEUE_REQUESTS_MAX, POOLED_FRAME_BYTES_MIN, RESPONSE_FRAME_BYTES_MAX,
};
use frame_pool::FramePool;
use pending::Pending;

/// What can go wrong on one connection.
#[derive(Debug, thiserror::Error, Clone)]
pub enum ConnectionError {
    /// The TCP connection could not be opened.
    #[error("cannot connect to {addr}: {reason} (is the broker running and reachable there?)")]
    Connect {
        /// The address tried.
        addr: String,
        /// The operating system's explanation.
        reason: String,
    },
    /// The connection failed or was closed while the request was outstanding.
    #[error("connection to {addr} lost: {reason}")]
    Lost {
        /// The broker's address.
        addr: String,
        /// What happened.
        reason: String,
    },
    /// No response arrived within the request timeout.
    #[error("request to {addr} timed out after {timeout_ms} ms (raise the request timeout or check the broker)")]
    Timeout {
        /// The broker's address.
        addr: String,
        /// The timeout that elapsed.
        timeout_ms: u64,
    },
    /// The broker sent a frame larger than the client accepts.
    #[error("broker {addr} sent a {bytes}-byte frame, above the {max}-byte limit")]
    FrameTooLarge {
        /// The broker's address.
        addr: String,
        /// The announced size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
}

type Waiter = oneshot::Sender<Result<Bytes, ConnectionError>>;

struct Shared {
    addr: String,
    pending: Mutex<Pending<Waiter>>,
    closed: AtomicBool,
    close_reason: Mutex<Option<String>>,
}

impl Shared {
    fn cancel(&self, id: i32) {
        if let Ok(mut p) = self.pending.lock() {
            p.cancel(id);
        }
    }

    fn fail_all(&self, reason: String) {
        self.closed.store(true, Ordering::Release);
        if let Ok(mut r) = self.close_reason.lock() {
            r.get_or_insert(reason.clone());
        }
        let waiters = match self.pending.lock() {
            Ok(mut p) => p.drain(),
            Err(_) => Vec::new(),
        };
        for w in waiters {
            let _ = w.send(Err(ConnectionError::Lost {
                addr: self.addr.clone(),
                reason: reason.clone(),
            }));
        }
    }

    fn lost(&self) -> ConnectionError {
        let reason = self
            .close_reason
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_else(|| "connection closed".to_string());
        ConnectionError::Lost {
            addr: self.addr.clone(),
            reason,
        }
    }
}

/// A pipelined connection to one broker. Cheap to share behind an `Arc`; dropping the last handle
/// closes the socket.
pub struct Connection {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Outgoing>,
    reader: JoinHandle<()>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.shared.addr)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
        self.shared.fail_all("connection dropped".to_string());
    }
}

impl Connection {
    /// Opens a connection to `addr` (`host:port`), giving up after `timeout`.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Connection, ConnectionError> {
        let connect_err = |reason: String| ConnectionError::Connect {
            addr: addr.to_string(),
            reason,
        };
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(connect_err(e.to_string())),
            Err(_) => return Err(connect_err(format!("no answer within {timeout:?}"))),
        };
        let _ = stream.set_nodelay(true);
        Ok(Self::from_stream(addr, stream))
    }

    /// Wraps an already connected stream (used by tests with an in-process fake broker).
    pub fn from_stream(addr: &str, stream: TcpStream) -> Connection {
        let (read, write) = stream.into_split();
        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            pending: Mutex::new(Pending::default()),
            closed: AtomicBool::new(false),
            close_reason: Mutex::new(None),
        });
        let (tx, rx) = mpsc::channel(CONNECTION_QUEUE_REQUESTS_MAX);
        tokio::spawn(write_loop(write, rx, shared.clone()));
        let reader = tokio::spawn(read_loop(read, shared.clone()));
        Connection { shared, tx, reader }
    }

    /// The broker's address.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// True once the connection failed; a new one must be opened.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Requests awaiting a response.
    pub fn in_flight(&self) -> usize {
        self.shared.pending.lock().map(|p| p.len()).unwrap_or(0)
    }

    /// Sends a request frame (`parts`, see the module doc) and waits up to `timeout` for its
    /// response (the bytes after the correlation id).
    pub async fn send(
        &self,
        timeout: Duration,
        parts: Vec<Bytes>,
    ) -> Result<Bytes, ConnectionError> {
        self.enqueue(parts).await?.wait(timeout).await
    }

    /// Queues a request frame for writing and returns its [`PendingResponse`] without waiting for
    /// the response. Frames are written in the order their `enqueue` calls completed, so a caller
    /// that enqueues from one task keeps its requests in order on the wire (the idempotent
    /// producer relies on this) while still pipelining them.
    pub async fn enqueue(&self, parts: Vec<Bytes>) -> Result<PendingResponse, ConnectionError> {
        if self.is_closed() {
            return Err(self.shared.lost());
        }
        let (waiter, response) = oneshot::channel();
        let id = match self.shared.pending.lock() {
            Ok(mut p) => p.register(waiter),
            Err(_) => return Err(self.shared.lost()),
        };
        // The connection may have failed between the check above and the registration: its
        // waiters were drained already, so this one would wait for its timeout.
        if self.is_closed() {
            self.cancel(id);
            return Err(self.shared.lost());
        }
        let frame = self.stamp(id, parts)?;
        if self.tx.send((frame, None)).await.is_err() {
            self.cancel(id);
            return Err(self.shared.lost());
        }
        Ok(PendingResponse {
            shared: self.shared.clone(),
            id,
            response,
        })
    }

    /// Sends a request the broker will not answer (produce with acks=0). Returns once it has been
    /// written to the socket (so a process may exit right after), in order with every other
    /// request.
    pub async fn send_no_response(&self, parts: Vec<Bytes>) -> Result<(), ConnectionError> {
        if self.is_closed() {
            return Err(self.shared.lost());
        }
        let id = match self.shared.pending.lock() {
            Ok(mut p) => p.next_id(),
            Err(_) => return Err(self.shared.lost()),
        };
        let frame = self.stamp(id, parts)?;
        let (written, done) = oneshot::channel();
        self.tx
            .send((frame, Some(written)))
            .await
            .map_err(|_| self.shared.lost())?;
        done.await.map_err(|_| self.shared.lost())
    }

    /// Writes the correlation id into the header (bytes 8..12 of the first part).
    fn stamp(&self, id: i32, mut parts: Vec<Bytes>) -> Result<Vec<Bytes>, ConnectionError> {
        let Some(first) = parts.first_mut().filter(|p| p.len() >= CORRELATION_ID_END) else {
            self.cancel(id);
            return Err(ConnectionError::Lost {
                addr: self.shared.addr.clone(),
                reason: "request frame shorter than a header".to_string(),
            });
        };
        let mut head = BytesMut::from(&first[..]);
        head[CORRELATION_ID_END - 4..CORRELATION_ID_END].copy_from_slice(&id.to_be_bytes());
        *first = head.freeze();
        Ok(parts)
    }

    fn cancel(&self, id: i32) {
        self.shared.cancel(id);
    }
}

/// A request written (or queued for writing) whose response has not been awaited yet.
pub struct PendingResponse {
    shared: Arc<Shared>,
    id: i32,
    response: oneshot::Receiver<Result<Bytes, ConnectionError>>,
}

impl std::fmt::Debug for PendingResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingResponse")
            .field("addr", &self.shared.addr)
            .field("id", &self.id)
            .finish()
    }
}

impl PendingResponse {
    /// Waits up to `timeout` for the response (the bytes after the correlation id).
    pub async fn wait(self, timeout: Duration) -> Result<Bytes, ConnectionError> {
        match tokio::time::timeout(timeout, self.response).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.shared.lost()),
            Err(_) => {
                self.shared.cancel(self.id);
                Err(ConnectionError::Timeout {
                    addr: self.shared.addr.clone(),
                    timeout_ms: timeout.as_millis() as u64,
                })
            }
        }
    }
}

/// A frame for the writer, and whom to tell once it is written (requests without a response).
type Outgoing = (Vec<Bytes>, Option<oneshot::Sender<()>>);

/// End of the correlation id in a request frame: size (4), api key (2), api version (2), id (4).
const CORRELATION_ID_END: usize = 12;

async fn write_parts(
    out: &mut BufWriter<OwnedWriteHalf>,
    parts: &[Bytes],
) -> Result<(), io::Error> {
    for part in parts {
        out.write_all(part).await?;
    }
    Ok(())
}

async fn write_loop(write: OwnedWriteHalf, mut rx: mpsc::Receiver<Outgoing>, shared: Arc<Shared>) {
    let mut out = BufWriter::with_capacity(64 * 1024, write);
    let mut written = Vec::new();
    while let Some((frame, notify)) = rx.recv().await {
        let mut result = write_parts(&mut out, &frame).await;
        written.extend(notify);
        // Coalesce whatever else is queued into the same flush.
        while result.is_ok() {
            match rx.try_recv() {
                Ok((more, notify)) => {
                    result = write_parts(&mut out, &more).await;
                    written.extend(notify);
                }
                Err(_) => break,
            }
        }
        if result.is_ok() {
            result = out.flush().await;
        }
        if result.is_ok() {
            for w in written.drain(..) {
                let _ = w.send(());
            }
        }
        if let Err(e) = result {
            tracing::debug!(addr = %shared.addr, error = %e, "write failed");
            shared.fail_all(format!("write failed: {e}"));
            return;
        }
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
    }
    let _ = out.shutdown().await;
}

async fn read_loop(mut read: OwnedReadHalf, shared: Arc<Shared>) {
    let reason = match read_frames(&mut read, &shared).await {
        Ok(()) => "closed by the broker".to_string(),
        Err(e) => e,
    };
    tracing::debug!(addr = %shared.addr, %reason, "connection closed");
    shared.fail_all(reason);
}

async fn read_frames(read: &mut OwnedReadHalf, shared: &Shared) -> Result<(), String> {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let pool = FramePool::default();
    loop {
        while buf.len() < 4 {
            if fill(read, &mut buf).await? == 0 {
                return if buf.is_empty() {
                    Ok(())
                } else {
                    Err("closed by the broker inside a frame".to_string())
                };
            }
        }
        let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if size < 4 || size as usize > RESPONSE_FRAME_BYTES_MAX {
            let e = ConnectionError::FrameTooLarge {
                addr: shared.addr.clone(),
                bytes: size.max(0) as usize,
                max: RESPONSE_FRAME_BYTES_MAX,
            };
            return Err(if size < 4 {
                format!("invalid frame size {size}")
            } else {
                e.to_string()
            });
        }
        let total = 4 + size as usize;
        let mut frame = if buf.len() < total && total >= POOLED_FRAME_BYTES_MIN {
            // A large frame not read yet: into a recycled buffer, exactly its own bytes.
            let mut frame = pool.take(total);
            frame.extend_from_slice(&buf);
            buf.clear();
            while frame.len() < total {
                let rest = total - frame.len();
                if fill(read, &mut (&mut frame).limit(rest)).await? == 0 {
                    return Err("closed by the broker inside a frame".to_string());
                }
            }
            pool.freeze(frame)
        } else {
            if buf.capacity() < total {
                buf.reserve(total - buf.len());
            }
            while buf.len() < total {
                if fill(read, &mut buf).await? == 0 {
                    return Err("closed by the broker inside a frame".to_string());
                }
            }
            buf.split_to(total).freeze()
        };
        frame.advance(4);
        let correlation_id = frame.get_i32();
        let waiter = shared
            .pending
            .lock()
            .map_err(|_| "poisoned".to_string())?
            .complete(correlation_id);
        match waiter {
            Some(w) => {
                let _ = w.send(Ok(frame));
            }
            None => tracing::debug!(correlation_id, "response for a request nobody awaits"),
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(64 * 1024);
        }
    }
}

async fn fill<B: BufMut>(read: &mut OwnedReadHalf, buf: &mut B) -> Result<usize, String> {
    match read.read_buf(buf).await {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(1),
        Err(e) => Err(format!("read failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use tokio::net::TcpListener;

    /// A fake broker that answers each request frame with its correlation id and the request body
    /// reversed, in reverse order of arrival for each pair of requests.
    async fn fake_broker() -> (String, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut held: Option<(i32, Vec<u8>)> = None;
            loop {
                let Ok(size) = s.read_i32().await else { return };
                let mut body = vec![0u8; size as usize];
                if s.read_exact(&mut body).await.is_err() {
                    return;
                }
                let id = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
                let mut payload = body[8..].to_vec();
                payload.reverse();
                if payload == b"drop" {
                    return;
                }
                if payload == b"gnis" {
                    continue; // "sing": no answer, as with acks=0
                }
                match held.take() {
                    None => held = Some((id, payload)),
                    Some(first) => {
                        for (id, p) in [(id, payload), first] {
                            let mut out = Vec::new();
                            out.extend_from_slice(&((p.len() + 4) as i32).to_be_bytes());
                            out.extend_from_slice(&id.to_be_bytes());
                            out.extend_from_slice(&p);
                            s.write_all(&out).await.unwrap();
                        }
                    }
                }
            }
        });
        (addr, task)
    }

    /// A frame whose "header" is 4 filler bytes then the correlation id, then `text`, split in
    /// two parts.
    fn body(text: &'static str) -> Vec<Bytes> {
        let mut head = BytesMut::new();
        head.put_i32((8 + text.len()) as i32);
        head.put_u32(0);
        head.put_i32(0);
        vec![head.freeze(), Bytes::from_static(text.as_bytes())]
    }

    #[tokio::test]
    async fn pipelined_responses_reach_their_senders_out_of_order() {
        let (addr, _task) = fake_broker().await;
        let conn = Arc::new(
            Connection::connect(&addr, Duration::from_secs(5))
                .await
                .unwrap(),
        );
        let t = Duration::from_secs(5);
        let (a, b) = tokio::join!(conn.send(t, body("abc")), conn.send(t, body("xyz")));
        assert_eq!(&a.unwrap()[..], b"cba");
        assert_eq!(&b.unwrap()[..], b"zyx");
        conn.send_no_response(body("sing")).await.unwrap();
        let (c, d) = tokio::join!(conn.send(t, body("12")), conn.send(t, body("34")));
        assert_eq!(&c.unwrap()[..], b"21");
        assert_eq!(&d.unwrap()[..], b"43");
        assert_eq!(conn.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_lost_connection_fails_every_waiter_and_later_sends() {
        let (addr, task) = fake_broker().await;
        let conn = Connection::connect(&addr, Duration::from_secs(5))
            .await
            .unwrap();
        let t = Duration::from_secs(5);
        let (a, b) = tokio::join!(conn.send(t, body("held")), conn.send(t, body("pord")));
        assert!(matches!(a, Err(ConnectionError::Lost { .. })), "{a:?}");
        assert!(matches!(b, Err(ConnectionError::Lost { .. })), "{b:?}");
        task.await.unwrap();
        assert!(conn.is_closed());
        let c = conn.send(t, body("x")).await;
        assert!(matches!(c, Err(ConnectionError::Lost { .. })), "{c:?}");
    }

    #[tokio::test]
    async fn a_silent_broker_times_out() {
        let (addr, _task) = fake_broker().await;
        let conn = Connection::connect(&addr, Duration::from_secs(5))
            .await
            .unwrap();
        // The fake holds a lone request until a second arrives.
        let r = conn.send(Duration::from_millis(50), body("alone")).await;
        assert!(matches!(r, Err(ConnectionError::Timeout { .. })), "{r:?}");
        assert_eq!(conn.in_flight(), 0);
    }

    #[tokio::test]
    async fn connecting_to_a_closed_port_is_a_typed_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let r = Connection::connect(&addr, Duration::from_secs(5)).await;
        assert!(matches!(r, Err(ConnectionError::Connect { .. })), "{r:?}");
    }

    #[tokio::test]
    async fn an_oversized_frame_closes_the_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let _ = s.read_i32().await;
            s.write_all(&i32::MAX.to_be_bytes()).await.unwrap();
            let _ = s.read_i32().await;
        });
        let conn = Connection::connect(&addr, Duration::from_secs(5))
            .await
            .unwrap();
        let r = conn.send(Duration::from_secs(5), body("x")).await;
        match r {
            Err(ConnectionError::Lost { reason, .. }) => {
                assert!(reason.contains("limit"), "{reason}")
            }
            other => panic!("expected Lost, got {other:?}"),
        }
    }
}
