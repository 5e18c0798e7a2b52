//! Sending a range of a segment file to the socket with `sendfile(2)`: the kernel moves the bytes
//! from the page cache to the socket, so record data a fetch returns is never copied through the
//! broker's memory (a pread plus a write copied every byte twice: 63% of the consume path).
//!
//! [`FileSink`] is the writer side's one extra capability; the connection's TCP write half
//! implements it with readiness from tokio, and tests implement it by copying.

use std::fs::File;
use std::future::poll_fn;
use std::io;
use std::os::fd::AsRawFd;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncWrite, Interest};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

use crate::log::FileRange;

/// A writer that can also send a file's bytes.
pub trait FileSink: AsyncWrite + Unpin {
    /// Sends up to `len` bytes of `file` from `position`; `Ready(Ok(0))` means the file ends
    /// before `position` (it was truncated).
    fn poll_send_file(
        &mut self,
        cx: &mut Context<'_>,
        file: &File,
        position: u64,
        len: usize,
    ) -> Poll<io::Result<usize>>;
}

impl FileSink for OwnedWriteHalf {
    fn poll_send_file(
        &mut self,
        cx: &mut Context<'_>,
        file: &File,
        position: u64,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        let stream: &TcpStream = self.as_ref();
        let mut offset = libc::off_t::try_from(position)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file position too large"))?;
        loop {
            std::task::ready!(stream.poll_write_ready(cx))?;
            let sent = stream.try_io(Interest::WRITABLE, || {
                // SAFETY: both descriptors are open for the duration of the call (the socket is
                // borrowed from `stream`, the file from `file`) and `offset` is a valid, exclusive
                // pointer to an off_t that sendfile advances.
                let n = unsafe {
                    libc::sendfile(stream.as_raw_fd(), file.as_raw_fd(), &mut offset, len)
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match sent {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// Sends all of `range`. A peer that accepts no byte for `stall` fails with `TimedOut`; a file
/// shorter than the range (truncated after the read was planned: the response's length prefix is
/// already out) fails with `UnexpectedEof`, and the connection closes, as Kafka's does.
pub(crate) async fn send_file_all<W: FileSink>(
    out: &mut W,
    range: &FileRange,
    stall: Duration,
) -> io::Result<()> {
    let file = range
        .file
        .as_file()
        .ok_or_else(|| io::Error::other("file range over storage without a file"))?;
    let mut sent = 0usize;
    while sent < range.len {
        let position = range.position + sent as u64;
        let n = tokio::time::timeout(
            stall,
            poll_fn(|cx| out.poll_send_file(cx, file, position, range.len - sent)),
        )
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "segment file shorter than the fetch response announced",
            ));
        }
        sent += n;
    }
    Ok(())
}
