//! One client connection: reads request frames, hands each to the [`RequestHandler`] in order, and
//! writes the responses back in request order, many requests in flight at once (pipelining).
//!
//! Two halves run concurrently in the connection's task. The reader splits frames
//! ([`FrameDecoder`]) and awaits the handler for each frame in turn, so requests of one connection
//! take effect in the order sent (two produce requests to one partition append in order). A handler
//! may return a [`Reply::Deferred`] future for the part that waits (an `acks=all` sync, a fetch
//! long-poll); the reader then goes on with the next request while the writer awaits the deferred
//! replies one after another, so responses leave in request order. The queue between the halves is
//! bounded by `max_in_flight`, which is the back-pressure: a client that never reads its responses
//! stops being read.
//!
//! The writer gathers every response that is ready into one vectored write (header buffers and
//! record chunks by reference, never copied into one buffer). Record data a fetch left in a segment
//! file ([`OutChunk::File`]) goes from the page cache to the socket with `sendfile` after the bytes
//! before it ([`FileSink`], in `connection/send_file.rs`): no copy through the broker's memory.
//!
//! A connection ends on a clean close, a framing error (logged with its reason), a handler's
//! [`Reply::Close`], an idle timeout (no complete request for `idle` while nothing is in flight:
//! this also ends slow-loris peers that never finish a frame), a write error or a write that makes
//! no progress for `idle` (a peer that stopped reading), or shutdown, after which the replies
//! already queued are still written.

use std::future::Future;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::frame::FrameDecoder;
use super::limits::WRITE_SLICES_MAX;
use crate::log::FileRange;

mod file_parts;
mod send_file;

pub(crate) use file_parts::FileParts;
pub use send_file::FileSink;

/// One piece of a response frame.
#[derive(Debug, Clone)]
pub enum OutChunk {
    /// Bytes in memory (headers, small fields, record data read into memory).
    Bytes(Bytes),
    /// Stored batches sent straight from a segment file (`sendfile`).
    File(FileRange),
}

impl OutChunk {
    /// Bytes this chunk puts on the wire.
    pub fn len(&self) -> usize {
        match self {
            OutChunk::Bytes(b) => b.len(),
            OutChunk::File(r) => r.len,
        }
    }

    /// True when the chunk puts nothing on the wire.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One response frame as a list of chunks written back to back; the first chunk starts with the
/// 4-byte size prefix. Record data rides along by reference.
#[derive(Debug, Default, Clone)]
pub struct OutFrame {
    /// The frame's pieces, in order.
    pub chunks: Vec<OutChunk>,
}

impl OutFrame {
    /// A frame made of these bytes, in order.
    pub fn from_bytes(chunks: Vec<Bytes>) -> OutFrame {
        OutFrame {
            chunks: chunks.into_iter().map(OutChunk::Bytes).collect(),
        }
    }

    /// Total bytes of the frame, size prefix included.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(OutChunk::len).sum()
    }

    /// Whether the frame has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A future resolving to a deferred response (or to none).
pub type DeferredReply = Pin<Box<dyn Future<Output = Option<OutFrame>> + Send + 'static>>;

/// What a handler answers to one request frame.
pub enum Reply {
    /// Send nothing (`acks=0` produce).
    None,
    /// Send this frame.
    Ready(OutFrame),
    /// Send what this future resolves to, in this request's place in the order.
    Deferred(DeferredReply),
    /// Close the connection after the replies already queued; the reason is logged.
    Close(String),
}

/// The request side of the server, independent of the socket: one call per frame, in order.
pub trait RequestHandler: Send + Sync + 'static {
    /// Handles one request frame (without its size prefix) from `peer`.
    fn handle(&self, frame: Bytes, peer: SocketAddr) -> impl Future<Output = Reply> + Send;
}

/// Bounds of one connection, from the broker config.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// `socket.request.max.bytes`.
    pub frame_bytes_max: usize,
    /// Requests queued ahead of their responses.
    pub in_flight_max: usize,
    /// `connections.max.idle.ms`.
    pub idle: Duration,
}

/// Serves one accepted connection until it ends (see the module doc); never panics on input.
pub async fn serve_connection<H: RequestHandler>(
    stream: TcpStream,
    peer: SocketAddr,
    handler: &H,
    limits: ConnectionLimits,
    shutdown: &CancellationToken,
) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%peer, "set_nodelay: {err}");
    }
    let (read_half, write_half) = stream.into_split();
    let frames = FramedRead::new(read_half, FrameDecoder::new(limits.frame_bytes_max));
    let (queue, replies) = mpsc::channel(limits.in_flight_max.max(1));
    let in_flight = AtomicUsize::new(0);
    let writer_gone = CancellationToken::new();
    let read = read_loop(
        frames,
        peer,
        handler,
        limits.idle,
        shutdown,
        &writer_gone,
        queue,
        &in_flight,
    );
    let write = async {
        let result = write_loop(write_half, replies, &in_flight, limits.idle).await;
        writer_gone.cancel();
        if let Err(err) = result {
            tracing::debug!(%peer, "connection write failed: {err}");
        }
    };
    tokio::join!(read, write);
    tracing::debug!(%peer, "connection closed");
}

#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename the locals
async fn read_loop<H: RequestHandler>(
    mut frames: FramedRead<tokio::net::tcp::OwnedReadHalf, FrameDecoder>,
    peer: SocketAddr,
    handler: &H,
    idle: Duration,
    shutdown: &CancellationToken,
    writer_gone: &CancellationToken,
    queue: mpsc::Sender<Reply>,
    in_flight: &AtomicUsize,
) {
    loop {
        let next = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            () = writer_gone.cancelled() => break,
            next = tokio::time::timeout(idle, frames.next()) => next,
        };
        let frame = match next {
            Err(_elapsed) if in_flight.load(Ordering::Acquire) == 0 => {
                tracing::info!(%peer, idle_ms = idle.as_millis() as u64, "closing idle connection");
                break;
            }
            Err(_elapsed) => continue,
            Ok(None) => break,
            Ok(Some(Err(err))) => {
                tracing::warn!(%peer, "closing connection: {err}");
                break;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let reply = handler.handle(frame, peer).await;
        if let Reply::Close(reason) = reply {
            tracing::warn!(%peer, "closing connection: {reason}");
            break;
        }
        in_flight.fetch_add(1, Ordering::AcqRel);
        if queue.send(reply).await.is_err() {
            break;
        }
    }
}

async fn write_loop<W: FileSink>(
    mut out: W,
    mut replies: mpsc::Receiver<Reply>,
    in_flight: &AtomicUsize,
    stall: Duration,
) -> std::io::Result<()> {
    let mut pending: Vec<OutChunk> = Vec::new();
    let mut run: Vec<Bytes> = Vec::new();
    while let Some(first) = replies.recv().await {
        let mut next = Some(first);
        while let Some(reply) = next.take() {
            match reply {
                Reply::Ready(frame) => pending.extend(frame.chunks),
                Reply::Deferred(future) => {
                    // Earlier responses must not wait behind a long-poll.
                    write_all_chunks(&mut out, &mut pending, &mut run, stall).await?;
                    if let Some(frame) = future.await {
                        pending.extend(frame.chunks);
                    }
                }
                Reply::None | Reply::Close(_) => {}
            }
            in_flight.fetch_sub(1, Ordering::AcqRel);
            if pending.len() >= WRITE_SLICES_MAX {
                write_all_chunks(&mut out, &mut pending, &mut run, stall).await?;
            }
            next = replies.try_recv().ok();
        }
        write_all_chunks(&mut out, &mut pending, &mut run, stall).await?;
    }
    out.shutdown().await
}

/// Writes every chunk in order and empties `chunks`: runs of bytes with vectored writes (through
/// `run`, a reusable buffer), file ranges with `sendfile` once the bytes before them are out.
pub async fn write_all_chunks<W: FileSink>(
    out: &mut W,
    chunks: &mut Vec<OutChunk>,
    run: &mut Vec<Bytes>,
    stall: Duration,
) -> std::io::Result<()> {
    run.clear();
    for chunk in chunks.drain(..) {
        match chunk {
            OutChunk::Bytes(bytes) => run.push(bytes),
            OutChunk::File(range) => {
                write_all_vectored(out, run, stall).await?;
                send_file::send_file_all(out, &range, stall).await?;
            }
        }
    }
    write_all_vectored(out, run, stall).await
}

/// Writes every chunk, in order, with as few `writev` calls as the kernel allows; empties `chunks`.
/// A peer that accepts no byte for `stall` (it stopped reading) fails the write with `TimedOut`,
/// so a connection whose client never reads cannot pin its task and buffers forever.
pub async fn write_all_vectored<W: AsyncWrite + Unpin>(
    out: &mut W,
    chunks: &mut Vec<Bytes>,
    stall: Duration,
) -> std::io::Result<()> {
    let mut start = 0;
    while start < chunks.len() {
        if chunks[start].is_empty() {
            start += 1;
            continue;
        }
        let slices: Vec<IoSlice<'_>> = chunks[start..]
            .iter()
            .filter(|chunk| !chunk.is_empty())
            .take(WRITE_SLICES_MAX)
            .map(|chunk| IoSlice::new(chunk))
            .collect();
        let mut written = tokio::time::timeout(stall, out.write_vectored(&slices))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let chunk = &mut chunks[start];
            if chunk.len() <= written {
                written -= chunk.len();
                start += 1;
            } else {
                chunk.advance(written);
                written = 0;
            }
        }
    }
    chunks.clear();
    tokio::time::timeout(stall, out.flush())
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that accepts at most `step` bytes per call, to exercise partial vectored writes.
    struct Trickle {
        written: Vec<u8>,
        step: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.step);
            self.written.extend_from_slice(&buf[..n]);
            std::task::Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let mut budget = self.step;
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(budget);
                self.written.extend_from_slice(&buf[..take]);
                budget -= take;
                n += take;
                if budget == 0 {
                    break;
                }
            }
            std::task::Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(
            self: Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// A peer that never reads: every write stays pending.
    struct Stuck;

    impl AsyncWrite for Stuck {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            _buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::task::Poll::Pending
        }
        fn poll_flush(
            self: Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Pending
        }
        fn poll_shutdown(
            self: Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_peer_that_stops_reading_fails_the_write() {
        let mut chunks = vec![Bytes::from_static(b"response")];
        let err = write_all_vectored(&mut Stuck, &mut chunks, Duration::from_millis(20))
            .await
            .expect_err("stalled");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    }

    fn stored(
        bytes: &[u8],
    ) -> (
        tempfile::TempDir,
        std::sync::Arc<dyn crate::log::storage::Storage>,
    ) {
        use crate::log::storage::{Directory, FileDirectory};
        let dir = tempfile::tempdir().expect("tempdir");
        let file = FileDirectory::create(dir.path())
            .expect("dir")
            .open("segment", true)
            .expect("open");
        file.append(&[IoSlice::new(bytes)]).expect("append");
        (dir, file)
    }

    /// A connected pair of sockets: (the server's write half, the client's stream).
    async fn socket_pair() -> (tokio::net::tcp::OwnedWriteHalf, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (_read, write) = accepted.expect("accept").0.into_split();
        (write, client.expect("connect"))
    }

    #[tokio::test]
    async fn file_ranges_go_out_with_sendfile_between_the_bytes() {
        use tokio::io::AsyncReadExt;
        // 3 MiB: more than one socket buffer, so sendfile writes partially and waits for room.
        let data: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
        let (_dir, file) = stored(&data);
        let (mut out, mut client) = socket_pair().await;
        let mut chunks = vec![
            OutChunk::Bytes(Bytes::from_static(b"head")),
            OutChunk::File(FileRange {
                file: file.clone(),
                position: 10,
                len: data.len() - 20,
            }),
            OutChunk::Bytes(Bytes::from_static(b"mid")),
            OutChunk::File(FileRange {
                file,
                position: 0,
                len: 5,
            }),
        ];
        let mut expected = b"head".to_vec();
        expected.extend_from_slice(&data[10..data.len() - 10]);
        expected.extend_from_slice(b"mid");
        expected.extend_from_slice(&data[..5]);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.expect("read");
            got
        });
        write_all_chunks(
            &mut out,
            &mut chunks,
            &mut Vec::new(),
            Duration::from_secs(10),
        )
        .await
        .expect("write");
        assert!(chunks.is_empty());
        out.shutdown().await.expect("shutdown");
        drop(out);
        assert!(reader.await.expect("reader") == expected);
    }

    /// A segment truncated after the read was planned: the length prefix is already out, so the
    /// write must fail (and the connection close) rather than send fewer bytes than announced.
    #[tokio::test]
    async fn a_file_range_past_the_end_of_its_file_fails_the_write() {
        let (_dir, file) = stored(&[7u8; 1000]);
        let (mut out, _client) = socket_pair().await;
        let mut chunks = vec![OutChunk::File(FileRange {
            file,
            position: 500,
            len: 1000,
        })];
        let err = write_all_chunks(
            &mut out,
            &mut chunks,
            &mut Vec::new(),
            Duration::from_secs(5),
        )
        .await
        .expect_err("short file");
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn vectored_writes_survive_partial_writes() {
        for step in [1, 3, 7, 100] {
            let mut chunks: Vec<Bytes> = vec![
                Bytes::from_static(b"abc"),
                Bytes::new(),
                Bytes::from_static(b"defgh"),
                Bytes::from(vec![b'x'; 50]),
            ];
            let expected: Vec<u8> = chunks.iter().flat_map(|c| c.to_vec()).collect();
            let mut out = Trickle {
                written: Vec::new(),
                step,
            };
            write_all_vectored(&mut out, &mut chunks, Duration::from_secs(5))
                .await
                .expect("write");
            assert_eq!(out.written, expected, "step {step}");
            assert!(chunks.is_empty());
        }
    }
}
