//! The byte stream under tungstenite on a WebSocket connection: reads the socket in large
//! steps, hands tungstenite as much as it asks for.
//!
//! tungstenite reads into its own per-connection buffer, in steps no larger than
//! [`crate::ServerSettings::ws_read_buffer_size`]; a small buffer keeps idle connections small
//! but, read straight from the socket, would cost a system call per step (often two per
//! heartbeat). Here each socket read goes into a scratch buffer shared by the connections of a
//! worker thread; what tungstenite did not take waits in a per-connection stash, freed as
//! soon as it is taken, so an idle connection holds nothing.

use std::cell::RefCell;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most bytes taken from the socket in one read.
const SCRATCH_SIZE: usize = 16 * 1024;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_SIZE].into_boxed_slice());
}

/// A stream that reads ahead of its reader (see the module docs); writes pass through.
#[derive(Debug)]
pub(super) struct ReadAhead<S> {
    inner: S,
    /// Bytes read from the socket and not taken yet (`taken..`).
    stash: Vec<u8>,
    taken: usize,
}

impl<S> ReadAhead<S> {
    pub(super) fn new(inner: S) -> Self {
        Self {
            inner,
            stash: Vec::new(),
            taken: 0,
        }
    }

    /// Moves stashed bytes into `buf`; false if the stash is empty.
    fn take_stashed(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let waiting = &self.stash[self.taken..];
        if waiting.is_empty() {
            return false;
        }
        let n = waiting.len().min(buf.remaining());
        buf.put_slice(&waiting[..n]);
        self.taken += n;
        if self.taken == self.stash.len() {
            self.stash = Vec::new();
            self.taken = 0;
        }
        true
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 || this.take_stashed(buf) {
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= SCRATCH_SIZE {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        SCRATCH.with(|scratch| {
            let Ok(mut scratch) = scratch.try_borrow_mut() else {
                // Not reachable (nothing here reads another stream meanwhile); be correct anyway.
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            };
            let mut read = ReadBuf::new(&mut scratch[..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            let got = read.filled();
            let n = got.len().min(buf.remaining());
            buf.put_slice(&got[..n]);
            if n < got.len() {
                this.stash = got[n..].to_vec();
                this.taken = 0;
            }
            Poll::Ready(Ok(()))
        })
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadAhead<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Small reads get every byte in order; the stash is gone once drained.
    #[tokio::test]
    async fn small_reads_see_every_byte_and_the_stash_empties() {
        let (mut peer, ours) = tokio::io::duplex(64 * 1024);
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 253) as u8).collect();
        peer.write_all(&data).await.unwrap();
        drop(peer);
        let mut stream = ReadAhead::new(ours);
        let mut got = Vec::new();
        let mut step = [0u8; 7];
        loop {
            let n = stream.read(&mut step).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&step[..n]);
        }
        assert_eq!(got, data);
        assert_eq!(stream.stash.capacity(), 0);
    }

    /// A read as large as the scratch buffer goes straight to the socket.
    #[tokio::test]
    async fn large_reads_bypass_the_scratch_buffer() {
        let (mut peer, ours) = tokio::io::duplex(64 * 1024);
        let data = vec![5u8; 20_000];
        peer.write_all(&data).await.unwrap();
        drop(peer);
        let mut stream = ReadAhead::new(ours);
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, data);
        assert!(stream.stash.is_empty());
    }

    #[tokio::test]
    async fn writes_pass_through() {
        let (mut peer, ours) = tokio::io::duplex(1024);
        let mut stream = ReadAhead::new(ours);
        stream.write_all(b"to the agent").await.unwrap();
        stream.flush().await.unwrap();
        let mut got = [0u8; 12];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"to the agent");
    }
}
