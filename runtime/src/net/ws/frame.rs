//! The websocket frame: a fixed 44-byte header, then the wire-encoded
//! message. Encoding and parsing are pure (no I/O).
//!
//! The byte layout is written down in `docs/wire-format.md`, section
//! "Websocket frames"; a test below builds the example frame of that page
//! and compares it with the page's hex dump.

use thiserror::Error;

/// The first four bytes of every frame: `SHMW`.
pub const FRAME_MAGIC: [u8; 4] = *b"SHMW";
/// The frame format version this crate writes and reads.
pub const FRAME_VERSION: u8 = 1;
/// Bytes before the payload.
pub const FRAME_HEADER_LEN: usize = 44;

/// The header of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// Flag bits; none is defined in version 1, so always 0.
    pub flags: u8,
    /// The sending process's random id (one per process), so that a bridge
    /// can recognise its own messages coming back.
    pub origin: u64,
    /// The payload type's fingerprint (`ShmSafe::FINGERPRINT`).
    pub fingerprint: u64,
    /// The sender's sequence number for this topic, from 0, one per message.
    pub sequence: u64,
    /// When the message was sent, in nanoseconds since the UNIX epoch.
    pub timestamp_ns: u64,
    /// The payload's length in bytes.
    pub payload_len: u32,
}

/// Why bytes are not an acceptable frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum FrameError {
    /// Fewer bytes than a header.
    #[error("frame of {len} bytes is shorter than the {FRAME_HEADER_LEN}-byte header")]
    Truncated {
        /// The bytes received.
        len: usize,
    },
    /// The first four bytes are not `SHMW`.
    #[error("not a shmidl frame (bad magic)")]
    Magic,
    /// Another format version.
    #[error("frame version {0} is not supported (this reader knows 1)")]
    Version(u8),
    /// A flag bit that version 1 does not define is set.
    #[error("reserved frame flags {0:#04x} are set")]
    Flags(u8),
    /// The payload length field disagrees with the frame's size.
    #[error("frame declares a {declared}-byte payload but carries {actual} bytes")]
    Length {
        /// The header's payload length.
        declared: u32,
        /// The bytes after the header.
        actual: usize,
    },
    /// The payload is longer than the receiver accepts.
    #[error("payload of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The payload's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The payload is of another type than expected.
    #[error("fingerprint {found:#018x} where {expected:#018x} is expected")]
    Fingerprint {
        /// The local type's fingerprint.
        expected: u64,
        /// The frame's.
        found: u64,
    },
}

#[inline]
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

impl FrameHeader {
    /// Writes the header into `out` (44 bytes).
    pub fn write(&self, out: &mut [u8; FRAME_HEADER_LEN]) {
        out[0..4].copy_from_slice(&FRAME_MAGIC);
        out[4] = FRAME_VERSION;
        out[5] = self.flags;
        out[6..8].copy_from_slice(&[0, 0]);
        out[8..16].copy_from_slice(&self.origin.to_le_bytes());
        out[16..24].copy_from_slice(&self.fingerprint.to_le_bytes());
        out[24..32].copy_from_slice(&self.sequence.to_le_bytes());
        out[32..40].copy_from_slice(&self.timestamp_ns.to_le_bytes());
        out[40..44].copy_from_slice(&self.payload_len.to_le_bytes());
    }

    /// The header followed by `payload`, in a new buffer (`payload_len` is
    /// taken from `payload`).
    ///
    /// # Errors
    ///
    /// [`FrameError::TooLarge`] for a payload of 4 GiB or more.
    pub fn encode(mut self, payload: &[u8]) -> Result<Vec<u8>, FrameError> {
        self.payload_len = u32::try_from(payload.len()).map_err(|_| FrameError::TooLarge {
            len: payload.len(),
            max: u32::MAX as usize,
        })?;
        let mut out = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
        let mut head = [0u8; FRAME_HEADER_LEN];
        self.write(&mut head);
        out.extend_from_slice(&head);
        out.extend_from_slice(payload);
        Ok(out)
    }

    /// Parses a whole frame: checks magic, version, flags, the reserved
    /// bytes, that the payload is exactly `payload_len` bytes and at most
    /// `max_payload`; returns the header and the payload. Never panics.
    ///
    /// # Errors
    ///
    /// The first rule the bytes break, as a [`FrameError`].
    #[inline]
    pub fn parse(frame: &[u8], max_payload: usize) -> Result<(FrameHeader, &[u8]), FrameError> {
        if frame.len() < FRAME_HEADER_LEN {
            return Err(FrameError::Truncated { len: frame.len() });
        }
        if frame[0..4] != FRAME_MAGIC {
            return Err(FrameError::Magic);
        }
        if frame[4] != FRAME_VERSION {
            return Err(FrameError::Version(frame[4]));
        }
        // Bytes 6..8 are reserved: zero in version 1, checked with the flags.
        if frame[5] != 0 || frame[6] != 0 || frame[7] != 0 {
            return Err(FrameError::Flags(frame[5] | frame[6] | frame[7]));
        }
        let mut len = [0u8; 4];
        len.copy_from_slice(&frame[40..44]);
        let payload_len = u32::from_le_bytes(len);
        let payload = &frame[FRAME_HEADER_LEN..];
        if payload.len() > max_payload {
            return Err(FrameError::TooLarge {
                len: payload.len(),
                max: max_payload,
            });
        }
        if payload_len as usize != payload.len() {
            return Err(FrameError::Length {
                declared: payload_len,
                actual: payload.len(),
            });
        }
        let header = FrameHeader {
            flags: frame[5],
            origin: u64_at(frame, 8),
            fingerprint: u64_at(frame, 16),
            sequence: u64_at(frame, 24),
            timestamp_ns: u64_at(frame, 32),
            payload_len,
        };
        Ok((header, payload))
    }

    /// [`parse`](FrameHeader::parse), then checks the fingerprint against
    /// `expected` (when `Some`).
    ///
    /// # Errors
    ///
    /// As `parse`, and [`FrameError::Fingerprint`].
    #[inline]
    pub fn parse_expecting(
        frame: &[u8],
        max_payload: usize,
        expected: Option<u64>,
    ) -> Result<(FrameHeader, &[u8]), FrameError> {
        let (header, payload) = Self::parse(frame, max_payload)?;
        match expected {
            Some(fp) if fp != header.fingerprint => Err(FrameError::Fingerprint {
                expected: fp,
                found: header.fingerprint,
            }),
            _ => Ok((header, payload)),
        }
    }
}

/// Most bytes the header of a websocket frame sent by a server takes
/// (RFC 6455 §5.2: two bytes, then a 64-bit extended length; no mask).
pub(crate) const WS_HEADER_MAX: usize = 10;

/// Writes the RFC 6455 header of one unfragmented (FIN), unmasked binary
/// websocket frame of `len` payload bytes, as a server sends it, into the
/// front of `out`; returns how many bytes it took (2, 4 or 10).
pub(crate) fn ws_binary_header(len: usize, out: &mut [u8; WS_HEADER_MAX]) -> usize {
    // FIN, no RSV bits, opcode 2 (binary).
    out[0] = 0x82;
    if len < 126 {
        // Checked just above: fits in 7 bits.
        out[1] = len as u8;
        2
    } else if let Ok(short) = u16::try_from(len) {
        out[1] = 126;
        out[2..4].copy_from_slice(&short.to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

/// The opcodes of RFC 6455 §5.2 that a client meets.
pub(crate) mod opcode {
    pub(crate) const CONTINUATION: u8 = 0x0;
    pub(crate) const TEXT: u8 = 0x1;
    pub(crate) const BINARY: u8 = 0x2;
    pub(crate) const CLOSE: u8 = 0x8;
    pub(crate) const PING: u8 = 0x9;
    pub(crate) const PONG: u8 = 0xa;
}

/// The header of one websocket frame a server sent (RFC 6455 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WsHead {
    /// The last frame of its message.
    pub(crate) fin: bool,
    /// One of [`opcode`]'s.
    pub(crate) opcode: u8,
    /// Bytes of the header (2, 4 or 10).
    pub(crate) header_len: usize,
    /// Bytes of payload that follow it.
    pub(crate) payload_len: u64,
}

/// Parses the websocket frame header at the start of `b`, as a client
/// accepts it: no reserved bit (no extension is ever negotiated), a known
/// opcode, not masked (a server never masks), control frames whole and of
/// at most 125 bytes. `Ok(None)`: `b` is too short to tell yet. Never
/// panics.
///
/// # Errors
///
/// Which rule the header breaks.
pub(crate) fn parse_ws_head(b: &[u8]) -> Result<Option<WsHead>, &'static str> {
    let (Some(&b0), Some(&b1)) = (b.first(), b.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err("reserved bits are set");
    }
    let code = b0 & 0x0f;
    if !matches!(
        code,
        opcode::CONTINUATION
            | opcode::TEXT
            | opcode::BINARY
            | opcode::CLOSE
            | opcode::PING
            | opcode::PONG
    ) {
        return Err("unknown opcode");
    }
    if b1 & 0x80 != 0 {
        return Err("a frame from the server is masked");
    }
    let fin = b0 & 0x80 != 0;
    let (header_len, payload_len) = match b1 & 0x7f {
        126 => match b.get(2..4) {
            Some(x) => (4, u64::from(u16::from_be_bytes([x[0], x[1]]))),
            None => return Ok(None),
        },
        127 => match b.get(2..10) {
            Some(x) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(x);
                (10, u64::from_be_bytes(a))
            }
            None => return Ok(None),
        },
        n => (2, u64::from(n)),
    };
    if code >= opcode::CLOSE && (!fin || payload_len > 125) {
        return Err("a control frame is fragmented or longer than 125 bytes");
    }
    Ok(Some(WsHead {
        fin,
        opcode: code,
        header_len,
        payload_len,
    }))
}

/// Appends one whole, masked control frame (`opcode::PONG` or
/// `opcode::CLOSE`) of at most 125 bytes, as a client sends it, masked with
/// `key` (RFC 6455 §5.3).
pub(crate) fn client_control_frame(code: u8, payload: &[u8], key: [u8; 4], out: &mut Vec<u8>) {
    let payload = payload.get(..125).unwrap_or(payload);
    out.push(0x80 | code);
    // At most 125: fits in the 7-bit length.
    out.push(0x80 | payload.len() as u8);
    out.extend_from_slice(&key);
    out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
}

/// Nanoseconds since the UNIX epoch now (0 if the clock is before 1970),
/// read through the TSC where the kernel trusts it (`net::clock`).
pub fn now_ns() -> u64 {
    super::super::clock::now_ns()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn example() -> (FrameHeader, Vec<u8>) {
        let header = FrameHeader {
            flags: 0,
            origin: 0x1122_3344_5566_7788,
            fingerprint: 0x02b4_5cb4_3104_7436,
            sequence: 5,
            timestamp_ns: 1_700_000_000_000_000_000,
            payload_len: 0,
        };
        (header, vec![0xde, 0xad, 0xbe, 0xef])
    }

    /// The hex dump of docs/wire-format.md, "Websocket frames", "Example".
    fn doc_hex() -> Vec<u8> {
        let doc = include_str!("../../../../docs/wire-format.md");
        let section = doc
            .split("## 3. Websocket frames")
            .nth(1)
            .and_then(|s| s.split("### Example").nth(1))
            .and_then(|s| s.split("```text").nth(1))
            .and_then(|s| s.split("```").next())
            .expect("the example dump in docs/wire-format.md");
        let mut out = Vec::new();
        for line in section.lines().filter(|l| l.starts_with("0x")) {
            // `0x00    53 48 ...    meaning`: the bytes sit in columns 8..50.
            let cols: String = line.chars().skip(8).take(42).collect();
            for byte in cols.split_whitespace() {
                out.push(u8::from_str_radix(byte, 16).expect("hex byte"));
            }
        }
        out
    }

    #[test]
    fn the_example_frame_is_the_one_the_docs_show() {
        let (header, payload) = example();
        let bytes = header.encode(&payload).unwrap();
        assert_eq!(bytes, doc_hex());
        let (parsed, body) = FrameHeader::parse(&bytes, 1024).unwrap();
        assert_eq!(parsed.payload_len, 4);
        assert_eq!((parsed.origin, parsed.sequence), (header.origin, 5));
        assert_eq!(body, &payload[..]);
    }

    #[test]
    fn each_rule_has_its_error() {
        let (header, payload) = example();
        let good = header.encode(&payload).unwrap();
        let parse = |b: &[u8]| FrameHeader::parse(b, 1024).map(|(h, _)| h);
        assert_eq!(parse(&good[..43]), Err(FrameError::Truncated { len: 43 }));
        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(parse(&b), Err(FrameError::Magic));
        let mut b = good.clone();
        b[4] = 2;
        assert_eq!(parse(&b), Err(FrameError::Version(2)));
        let mut b = good.clone();
        b[5] = 0x80;
        assert_eq!(parse(&b), Err(FrameError::Flags(0x80)));
        let mut b = good.clone();
        b[6] = 1;
        assert_eq!(parse(&b), Err(FrameError::Flags(1)));
        assert_eq!(
            parse(&good[..47]),
            Err(FrameError::Length {
                declared: 4,
                actual: 3
            })
        );
        assert_eq!(
            FrameHeader::parse(&good, 3).map(|(h, _)| h),
            Err(FrameError::TooLarge { len: 4, max: 3 })
        );
        assert_eq!(
            FrameHeader::parse_expecting(&good, 1024, Some(7)).map(|(h, _)| h),
            Err(FrameError::Fingerprint {
                expected: 7,
                found: header.fingerprint
            })
        );
    }

    #[test]
    fn the_websocket_header_is_the_one_tungstenite_writes() {
        use tokio_tungstenite::tungstenite::protocol::frame::{
            coding::{Data, OpCode},
            Frame,
        };
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let payload = vec![7u8; len];
            let mut theirs = Vec::new();
            Frame::message(payload.clone(), OpCode::Data(Data::Binary), true)
                .format(&mut theirs)
                .unwrap();
            let mut head = [0u8; WS_HEADER_MAX];
            let n = ws_binary_header(len, &mut head);
            let mut ours = head[..n].to_vec();
            ours.extend_from_slice(&payload);
            assert_eq!(ours, theirs, "payload of {len} bytes");
        }
    }

    #[test]
    fn websocket_headers_parse_as_tungstenite_writes_them_and_bad_ones_are_refused() {
        use tokio_tungstenite::tungstenite::protocol::frame::{
            coding::{Data, OpCode},
            Frame,
        };
        for len in [0, 1, 125, 126, 65_535, 65_536] {
            let mut bytes = Vec::new();
            Frame::message(vec![1u8; len], OpCode::Data(Data::Binary), len != 1)
                .format(&mut bytes)
                .unwrap();
            let head = parse_ws_head(&bytes).unwrap().unwrap();
            assert_eq!(head.opcode, opcode::BINARY);
            assert_eq!(head.fin, len != 1);
            assert_eq!(head.payload_len, len as u64);
            assert_eq!(head.header_len + len, bytes.len());
            // Every prefix of the header is "not yet".
            for cut in 0..head.header_len {
                assert_eq!(parse_ws_head(&bytes[..cut]), Ok(None));
            }
        }
        let mut ping = Vec::new();
        Frame::ping(vec![1, 2]).format(&mut ping).unwrap();
        assert_eq!(parse_ws_head(&ping).unwrap().unwrap().opcode, opcode::PING);
        assert!(parse_ws_head(&[0xc2, 0]).is_err(), "RSV1");
        assert!(parse_ws_head(&[0x83, 0]).is_err(), "opcode 3");
        assert!(parse_ws_head(&[0x82, 0x80, 0, 0, 0, 0]).is_err(), "masked");
        assert!(parse_ws_head(&[0x09, 0]).is_err(), "fragmented ping");
        assert!(parse_ws_head(&[0x89, 126, 0, 126]).is_err(), "long ping");
    }

    #[test]
    fn client_control_frames_are_masked_as_the_rfc_says() {
        let mut out = Vec::new();
        client_control_frame(opcode::PONG, b"Hello", [0x37, 0xfa, 0x21, 0x3d], &mut out);
        // RFC 6455 §5.7: a masked "Hello" (as a text frame there: 0x81).
        assert_eq!(
            out,
            [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
    }

    proptest! {
        #[test]
        fn accepted_frames_round_trip(
            origin: u64, fingerprint: u64, sequence: u64, timestamp_ns: u64,
            payload in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let header = FrameHeader { flags: 0, origin, fingerprint, sequence, timestamp_ns, payload_len: 0 };
            let bytes = header.encode(&payload).unwrap();
            let (parsed, body) = FrameHeader::parse_expecting(&bytes, 300, Some(fingerprint)).unwrap();
            prop_assert_eq!(parsed, FrameHeader { payload_len: payload.len() as u32, ..header });
            prop_assert_eq!(body, &payload[..]);
            prop_assert_eq!(parsed.encode(body).unwrap(), bytes);
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            crate::net::fuzzing::check_frame_input(&data);
        }

        #[test]
        fn bytes_behind_a_valid_header_never_panic(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            len in any::<u32>(),
        ) {
            let mut frame = example().0.encode(&[]).unwrap();
            frame[40..44].copy_from_slice(&len.to_le_bytes());
            frame.extend_from_slice(&data);
            crate::net::fuzzing::check_frame_input(&frame);
        }
    }
}
