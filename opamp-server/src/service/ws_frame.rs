//! Binary WebSocket frames written by the server itself, straight to the socket.
//!
//! tungstenite copies every frame into a per-connection output buffer and keeps that buffer's
//! capacity: after a fleet-wide push of a 2 KiB config, each idle connection would hold 2 KiB
//! more for good. A server frame is unmasked (RFC 6455 §5.1), so its header is a few bytes:
//! the task writes header and payload together, the payload being the shared, already encoded
//! message (a small frame is copied into one stack buffer, a large one written vectored).
//! tungstenite still reads, answers pings and closes.

use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;

/// Longest header of an unmasked frame: 2 bytes, then a 64-bit length.
const MAX_HEADER: usize = 10;

/// The header of one final, unmasked binary frame of `len` payload bytes (RFC 6455 §5.2).
pub(super) fn binary_frame_header(len: usize) -> ([u8; MAX_HEADER], usize) {
    const FIN_BINARY: u8 = 0x82;
    let mut header = [0u8; MAX_HEADER];
    header[0] = FIN_BINARY;
    let used = if len < 126 {
        header[1] = len as u8;
        2
    } else if let Ok(len) = u16::try_from(len) {
        header[1] = 126;
        header[2..4].copy_from_slice(&len.to_be_bytes());
        4
    } else {
        header[1] = 127;
        header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (header, used)
}

/// Frames up to this size (header included) are copied into one buffer and written with a
/// plain write, which costs the kernel less than a vectored one.
const SMALL_FRAME: usize = 256;

/// One frame on its way out: header and payload, and how much of them is written.
pub(super) struct FrameWrite<'a> {
    header: [u8; MAX_HEADER],
    header_len: usize,
    /// Header and payload together, for a small frame (`small_len > 0`).
    small: [u8; SMALL_FRAME],
    small_len: usize,
    payload: &'a [u8],
    written: usize,
}

impl<'a> FrameWrite<'a> {
    /// A final binary frame carrying `payload`.
    pub(super) fn new(payload: &'a [u8]) -> Self {
        let (header, header_len) = binary_frame_header(payload.len());
        let mut frame = Self {
            header,
            header_len,
            small: [0; SMALL_FRAME],
            small_len: 0,
            payload,
            written: 0,
        };
        let total = header_len + payload.len();
        if total <= SMALL_FRAME {
            frame.small[..header_len].copy_from_slice(&header[..header_len]);
            frame.small[header_len..total].copy_from_slice(payload);
            frame.small_len = total;
        }
        frame
    }

    /// Writes what is left of the frame; `Ready(Ok)` once all of it is out.
    pub(super) fn poll_write<S>(
        &mut self,
        stream: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>>
    where
        S: AsyncWrite + Unpin,
    {
        let total = self.header_len + self.payload.len();
        while self.written < total {
            let stream = Pin::new(&mut *stream);
            let polled = if self.small_len > 0 {
                stream.poll_write(cx, &self.small[self.written..self.small_len])
            } else if self.written < self.header_len {
                let slices = [
                    IoSlice::new(&self.header[self.written..self.header_len]),
                    IoSlice::new(self.payload),
                ];
                stream.poll_write_vectored(cx, &slices)
            } else {
                stream.poll_write(cx, &self.payload[self.written - self.header_len..])
            };
            match polled {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => self.written += n,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures_util::StreamExt;
    use std::future::poll_fn;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role;

    /// Frames of every header size, written through a pipe that takes a few bytes at a time,
    /// read back by tungstenite as a client.
    #[tokio::test]
    async fn tungstenite_reads_the_frames() {
        let sizes = [0usize, 1, 125, 126, 127, 254, 300, 65_535, 65_536, 200_000];
        let (mut server, client) = tokio::io::duplex(7);
        let reader = tokio::spawn(async move {
            let mut ws = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
            let mut got = Vec::new();
            for _ in 0..sizes.len() {
                match ws.next().await {
                    Some(Ok(Message::Binary(payload))) => got.push(payload),
                    other => panic!("unexpected {other:?}"),
                }
            }
            got
        });
        let payloads: Vec<Bytes> = sizes
            .iter()
            .map(|&n| (0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into())
            .collect();
        for payload in &payloads {
            let mut frame = FrameWrite::new(payload);
            poll_fn(|cx| frame.poll_write(&mut server, cx))
                .await
                .unwrap();
        }
        assert_eq!(reader.await.unwrap(), payloads);
    }

    #[test]
    fn header_lengths_follow_rfc_6455() {
        assert_eq!(
            binary_frame_header(125),
            ([0x82, 125, 0, 0, 0, 0, 0, 0, 0, 0], 2)
        );
        assert_eq!(binary_frame_header(126).1, 4);
        assert_eq!(&binary_frame_header(300).0[..4], &[0x82, 126, 0x01, 0x2C]);
        assert_eq!(binary_frame_header(65_536).1, 10);
        assert_eq!(
            &binary_frame_header(65_536).0[..10],
            &[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]
        );
    }

    /// A peer that stops reading: the write waits (pending), nothing is lost once it reads.
    #[tokio::test]
    async fn a_full_pipe_makes_the_write_wait() {
        let (mut server, mut client) = tokio::io::duplex(16);
        let payload = vec![7u8; 1000];
        let mut frame = FrameWrite::new(&payload);
        let pending =
            poll_fn(|cx| Poll::Ready(frame.poll_write(&mut server, cx).is_pending())).await;
        assert!(pending);
        let read = tokio::spawn(async move {
            let mut all = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut client, &mut all)
                .await
                .unwrap();
            all
        });
        poll_fn(|cx| frame.poll_write(&mut server, cx))
            .await
            .unwrap();
        drop(server);
        let all = read.await.unwrap();
        assert_eq!(all.len(), 4 + 1000);
        assert_eq!(&all[..4], &[0x82, 126, 0x03, 0xE8]);
        assert!(all[4..].iter().all(|&b| b == 7));
    }
}
