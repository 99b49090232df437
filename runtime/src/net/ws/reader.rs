//! The client side of the websocket protocol after the handshake (RFC 6455
//! §5): the socket read into one buffer, frames checked and put together,
//! messages handed up as ranges of that buffer; pongs and the close sent
//! whole. tungstenite does the handshake ([`HandshakeIo`] stops its reads
//! at the end of the response head, so every frame is read here).

use std::{
    ops::Range,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_tungstenite::tungstenite::Bytes;

use super::frame::{client_control_frame, opcode, parse_ws_head};

/// The socket during the client handshake. Its reads end at the end of
/// the HTTP response head (the blank line), so the websocket library
/// buffers nothing past it: a publisher may send frames right after its
/// response, and the read loop reads them from the socket itself.
pub(super) struct HandshakeIo {
    pub(super) tcp: TcpStream,
    /// Bytes of `\r\n\r\n` seen last.
    pub(super) matched: usize,
}

impl AsyncRead for HandshakeIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        const END: &[u8; 4] = b"\r\n\r\n";
        let this = self.get_mut();
        let mut peeked = [0u8; 512];
        loop {
            if this.matched == END.len() {
                // The head is complete: the end of what the handshake reads.
                return Poll::Ready(Ok(()));
            }
            let limit = buf.remaining().min(peeked.len());
            let mut peek = ReadBuf::new(&mut peeked[..limit]);
            match this.tcp.poll_peek(cx, &mut peek) {
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
            // Up to and including the head's end, if it is in sight.
            let mut matched = this.matched;
            let mut take = peek.filled().len();
            for (i, &b) in peek.filled().iter().enumerate() {
                matched = next_match(matched, b, END);
                if matched == END.len() {
                    take = i + 1;
                    break;
                }
            }
            if take == 0 {
                // The peer closed: end of stream.
                return Poll::Ready(Ok(()));
            }
            match this.tcp.try_read(&mut peeked[..take]) {
                Ok(n) => {
                    let read = peeked.get(..n).unwrap_or_default();
                    for &b in read {
                        this.matched = next_match(this.matched, b, END);
                    }
                    buf.put_slice(read);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// How many bytes of `pattern` are matched after `b`, with `matched`
/// matched before (for `\r\n\r\n`, where a mismatch restarts at `\r`).
pub(super) fn next_match(matched: usize, b: u8, pattern: &[u8; 4]) -> usize {
    if pattern.get(matched) == Some(&b) {
        matched + 1
    } else {
        usize::from(b == pattern[0])
    }
}

impl AsyncWrite for HandshakeIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// Bytes asked of the socket in one read (more when a frame needs more).
pub(super) const READ_CHUNK: usize = 64 << 10;

/// A websocket connection after the handshake: the socket, read by
/// [`WsReader`], written only for pongs and the close.
pub(super) struct WsConn {
    pub(super) tcp: TcpStream,
    pub(super) reader: WsReader,
}

/// One message or control frame, as [`WsReader::next`] gives them.
pub(super) enum WsEvent {
    /// A whole binary message: these bytes of the reader's buffer.
    Binary(Range<usize>),
    /// A whole binary message that came in fragments.
    Assembled(Bytes),
    /// A whole text message (never sent by a publisher).
    Text,
    /// A ping, with its payload for the pong.
    Ping(Bytes),
    Pong,
    /// A close, with its payload (status code and reason).
    Close(Bytes),
}

/// Why a connection's bytes cannot be read on.
pub(super) enum WsReadError {
    /// Against RFC 6455 (the rule).
    Protocol(&'static str),
    /// A message over the limit, refused before it is buffered.
    TooLong { size: u64, max: usize },
}

/// The receiving side of the websocket protocol (RFC 6455 §5), as a client:
/// frame headers checked by [`parse_ws_head`], sizes checked before a
/// byte of the payload is kept, fragmented messages put together, control
/// frames handed up. Messages share the buffer they were read into (no
/// copy, no allocation per message).
pub(super) struct WsReader {
    /// What was read: `data[pos..]` is not consumed yet.
    pub(super) data: Bytes,
    pos: usize,
    /// Bytes the frame at `pos` needs in all (to size the next read).
    need: usize,
    /// A fragmented message being put together: its opcode and bytes.
    partial: Option<(u8, Vec<u8>)>,
    /// The largest message accepted (header and payload).
    max_message: usize,
    /// The buffer a read waits to fill (which holds the bytes not consumed
    /// yet: `data` is empty meanwhile).
    filling: Option<Vec<u8>>,
    /// Bytes the last read brought.
    last_read: usize,
}

impl WsReader {
    pub(super) fn new(max_message: usize) -> WsReader {
        WsReader {
            data: Bytes::new(),
            pos: 0,
            need: 0,
            partial: None,
            max_message,
            filling: None,
            last_read: 0,
        }
    }

    /// The next message or control frame among the bytes read; `None`
    /// when more are needed.
    pub(super) fn next(&mut self) -> Result<Option<WsEvent>, WsReadError> {
        loop {
            let rest = self.data.get(self.pos..).unwrap_or_default();
            let Some(head) = parse_ws_head(rest).map_err(WsReadError::Protocol)? else {
                self.need = 14;
                return Ok(None);
            };
            let so_far = match (&self.partial, head.opcode) {
                (Some((_, bytes)), opcode::CONTINUATION) => bytes.len() as u64,
                _ => 0,
            };
            let size = so_far.saturating_add(head.payload_len);
            if size > self.max_message as u64 {
                return Err(WsReadError::TooLong {
                    size,
                    max: self.max_message,
                });
            }
            // At most `max_message`: fits.
            let total = head.header_len + head.payload_len as usize;
            if rest.len() < total {
                self.need = total;
                return Ok(None);
            }
            let (start, end) = (self.pos + head.header_len, self.pos + total);
            self.pos = end;
            let payload = || self.data.slice(start..end);
            let event = match head.opcode {
                opcode::TEXT | opcode::BINARY if self.partial.is_some() => {
                    return Err(WsReadError::Protocol(
                        "a new message before the end of a fragmented one",
                    ));
                }
                opcode::TEXT | opcode::BINARY if !head.fin => {
                    self.partial = Some((head.opcode, payload().to_vec()));
                    continue;
                }
                opcode::TEXT => WsEvent::Text,
                opcode::BINARY => WsEvent::Binary(start..end),
                opcode::CONTINUATION => {
                    let Some((code, bytes)) = self.partial.as_mut() else {
                        return Err(WsReadError::Protocol("a continuation of no message"));
                    };
                    bytes.extend_from_slice(&self.data[start..end]);
                    if !head.fin {
                        continue;
                    }
                    let code = *code;
                    let bytes = self.partial.take().map(|(_, b)| b).unwrap_or_default();
                    if code == opcode::TEXT {
                        WsEvent::Text
                    } else {
                        WsEvent::Assembled(Bytes::from(bytes))
                    }
                }
                opcode::PING => WsEvent::Ping(payload()),
                opcode::PONG => WsEvent::Pong,
                // `parse_ws_head` lets no other opcode through.
                _ => WsEvent::Close(payload()),
            };
            return Ok(Some(event));
        }
    }

    /// The buffer the next read goes into, starting with the bytes not
    /// consumed yet (an incomplete frame): the current one when no message
    /// handed out still holds it (no allocation), else a new one, sized
    /// after the last read (so that messages kept for long hold little
    /// memory when traffic is light).
    pub(super) fn prepare(&mut self) -> Vec<u8> {
        let mut data = std::mem::take(&mut self.data);
        drop(data.split_to(self.pos.min(data.len())));
        self.pos = 0;
        // Room for a chunk more, or for the rest of the frame begun.
        let room = READ_CHUNK.max(self.need.saturating_sub(data.len()));
        if data.is_unique() {
            // Ours alone again: the same allocation, the rest moved to its
            // front.
            let mut buf = Vec::from(data);
            buf.reserve(room);
            return buf;
        }
        let room = room.min(self.need.max(self.last_read.saturating_mul(2)).max(4096));
        let mut buf = Vec::with_capacity(data.len() + room);
        buf.extend_from_slice(&data);
        buf
    }

    /// Reads once from `tcp`; returns how many bytes came (0: the peer
    /// closed).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the bytes not consumed yet stay in `filling` until the
    /// read completes (and are read only then: they hold no whole frame).
    pub(super) async fn fill(&mut self, tcp: &mut TcpStream) -> std::io::Result<usize> {
        if self.filling.is_none() {
            self.filling = Some(self.prepare());
        }
        let filling = &mut self.filling;
        let n = std::future::poll_fn(|cx| {
            let Some(buf) = filling.as_mut() else {
                // Never: set just above, taken only below.
                return Poll::Ready(Ok(0));
            };
            let mut read = ReadBuf::uninit(buf.spare_capacity_mut());
            match Pin::new(&mut *tcp).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => {
                    let n = read.filled().len();
                    let len = buf.len() + n;
                    debug_assert!(len <= buf.capacity());
                    // SAFETY: `ReadBuf` documents that "the filled portion
                    // of the buffer is always initialized", and `poll_read`
                    // filled `n` bytes of the spare capacity, right after
                    // the `buf.len()` bytes already there; so the first
                    // `len` bytes are initialised, and `len` is at most the
                    // capacity (a ReadBuf never fills past the slice it
                    // wraps).
                    unsafe { buf.set_len(len) };
                    Poll::Ready(Ok(n))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await?;
        self.last_read = n;
        self.data = Bytes::from(self.filling.take().unwrap_or_default());
        self.pos = 0;
        Ok(n)
    }
}

impl WsConn {
    /// Sends a control frame (a pong, a close) whole.
    pub(super) async fn send_control(&self, code: u8, payload: &[u8]) -> std::io::Result<()> {
        let key = crate::net::random_sender_id().to_le_bytes();
        let mut frame = Vec::with_capacity(6 + payload.len());
        client_control_frame(code, payload, [key[0], key[1], key[2], key[3]], &mut frame);
        let mut rest = &frame[..];
        while !rest.is_empty() {
            match self.tcp.try_write(rest) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => rest = rest.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.tcp.writable().await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends a close (best effort: the connection ends either way).
    pub(super) async fn close(&self, payload: &[u8]) {
        let close = self.send_control(opcode::CLOSE, payload.get(..2).unwrap_or_default());
        let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
    }
}

/// Feeds `bytes`, as if a server sent them, through a reader that accepts
/// messages up to `max` bytes, until it needs more, refuses them or has
/// given 10,000 events; returns the events. Panics if a message's range
/// is outside the buffer. For the fuzz harness
/// (`net::fuzzing::check_ws_stream_input`).
pub(crate) fn read_events(bytes: &[u8], max: usize) -> usize {
    let mut reader = WsReader::new(max);
    reader.data = Bytes::copy_from_slice(bytes);
    let mut events = 0;
    while events < 10_000 {
        match reader.next() {
            Ok(Some(WsEvent::Binary(range))) => {
                assert!(
                    reader.data.get(range).is_some(),
                    "a message outside the buffer"
                );
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
        events += 1;
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame as a server sends it (unmasked).
    fn frame(fin: bool, code: u8, payload: &[u8]) -> Vec<u8> {
        let mut head = [0u8; super::super::frame::WS_HEADER_MAX];
        let n = super::super::frame::ws_binary_header(payload.len(), &mut head);
        head[0] = if fin { 0x80 | code } else { code };
        let mut out = head[..n].to_vec();
        out.extend_from_slice(payload);
        out
    }

    fn reader(bytes: Vec<u8>, max: usize) -> WsReader {
        let mut r = WsReader::new(max);
        r.data = Bytes::from(bytes);
        r
    }

    #[test]
    fn many_frames_in_one_buffer_come_out_in_order_and_a_partial_one_waits() {
        let mut bytes = frame(true, opcode::BINARY, &[1; 10]);
        bytes.extend(frame(true, opcode::PING, &[7]));
        bytes.extend(frame(false, opcode::BINARY, &[2; 3]));
        bytes.extend(frame(true, opcode::CONTINUATION, &[3; 4]));
        let whole = frame(true, opcode::BINARY, &[4; 300]);
        bytes.extend(&whole[..100]);
        let mut r = reader(bytes, 1000);
        let Ok(Some(WsEvent::Binary(range))) = r.next() else {
            panic!("a binary message")
        };
        assert_eq!(&r.data[range], &[1; 10]);
        assert!(matches!(r.next(), Ok(Some(WsEvent::Ping(p))) if p[..] == [7]));
        let Ok(Some(WsEvent::Assembled(m))) = r.next() else {
            panic!("the fragments, put together")
        };
        assert_eq!(m[..], [2, 2, 2, 3, 3, 3, 3]);
        assert!(matches!(r.next(), Ok(None)));
        // It needs the whole frame: header and 300 bytes.
        assert_eq!(r.need, whole.len());
    }

    proptest::proptest! {
        #[test]
        fn the_fuzz_harness_takes_any_bytes_and_valid_frames(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            lens in proptest::collection::vec(0usize..300, 0..6),
        ) {
            crate::net::fuzzing::check_ws_stream_input(&data);
            let mut framed = Vec::new();
            for len in lens {
                framed.extend(frame(true, opcode::BINARY, &data[..len.min(data.len())]));
            }
            framed.extend_from_slice(&data);
            crate::net::fuzzing::check_ws_stream_input(&framed);
        }

        #[test]
        fn any_bytes_from_a_server_end_in_events_a_wait_or_an_error_never_a_panic(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            cut in 0usize..400,
        ) {
            // As they came: then with a valid binary header in front.
            let mut framed = frame(false, opcode::BINARY, &data[..cut.min(data.len())]);
            framed.extend_from_slice(&data);
            for bytes in [data.clone(), framed] {
                let mut r = reader(bytes, 300);
                for _ in 0..500 {
                    match r.next() {
                        Ok(Some(WsEvent::Binary(range))) => {
                            proptest::prop_assert!(r.data.get(range).is_some());
                        }
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
    }

    #[test]
    fn oversized_and_out_of_order_frames_are_refused_before_their_payload() {
        // Only the header of a 70,000-byte frame: refused already.
        let head = frame(true, opcode::BINARY, &[0; 70_000])[..10].to_vec();
        assert!(matches!(
            reader(head, 1000).next(),
            Err(WsReadError::TooLong { size: 70_000, .. })
        ));
        // Fragments adding up to more than the limit.
        let mut bytes = frame(false, opcode::BINARY, &[0; 600]);
        bytes.extend(frame(true, opcode::CONTINUATION, &[0; 600]));
        assert!(matches!(
            reader(bytes, 1000).next(),
            Err(WsReadError::TooLong { size: 1200, .. })
        ));
        let lone = frame(true, opcode::CONTINUATION, &[1]);
        assert!(matches!(
            reader(lone, 1000).next(),
            Err(WsReadError::Protocol(_))
        ));
        let mut nested = frame(false, opcode::BINARY, &[1]);
        nested.extend(frame(true, opcode::BINARY, &[1]));
        assert!(matches!(
            reader(nested, 1000).next(),
            Err(WsReadError::Protocol(_))
        ));
    }
}
