//! The websocket transport: a [`NetPublisher`] serves one topic to any
//! number of subscribers (one-to-many); a [`NetSubscriber`] connects to
//! every publisher of its topics (many-to-one), found by discovery or
//! given as explicit endpoints.
//!
//! Every message is one binary websocket message: a 44-byte
//! [`FrameHeader`] (origin, fingerprint, sequence, timestamp, length) and
//! the message's wire encoding; `docs/wire-format.md` §3 gives the bytes.

use std::{fmt, io, net::SocketAddr, ops::Range, sync::OnceLock, time::Duration};

use thiserror::Error;
use tokio_tungstenite::tungstenite::{protocol::WebSocketConfig, Bytes};

use crate::{wire::WireError, ShmMessage};

mod frame;
mod outbox;
mod publisher;
pub(crate) mod reader;
mod runtime;
mod subscriber;

pub use self::{
    frame::{now_ns, FrameError, FrameHeader, FRAME_HEADER_LEN, FRAME_MAGIC, FRAME_VERSION},
    publisher::{
        ConnectionStats, NetPublisher, NetPublisherBuilder, PublisherStats, SendOutcome,
        SlowPolicy, TypedNetPublisher,
    },
    runtime::NetRuntime,
    subscriber::{
        CloseReason, Delivery, Endpoint, NetStream, NetSubscriber, NetSubscriberBuilder,
        SubscriberStats,
    },
};
use super::NetError;

/// The handshake header that carries a subscriber's token when a secret is
/// configured (`v1.<ms>.<nonce>.<tag>`, [`NetSecret::websocket_token`](super::NetSecret::websocket_token)).
pub const AUTH_HEADER: &str = "x-shmidl-auth";

/// Largest payload accepted unless configured: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 << 20;

/// This process's origin id: random, drawn once, the same for every
/// publisher of the process (the frame's `origin` field).
pub fn origin_id() -> u64 {
    static ORIGIN: OnceLock<u64> = OnceLock::new();
    *ORIGIN.get_or_init(super::random_sender_id)
}

/// Why a publisher or subscriber could not start.
#[derive(Debug, Error)]
pub enum NetStartError {
    /// The server socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// The library's own runtime could not be started.
    #[error("cannot start the network runtime: {0}")]
    Runtime(#[source] io::Error),
    /// Announcing or discovery failed.
    #[error(transparent)]
    Discovery(#[from] NetError),
    /// An endpoint is not a `ws://host:port/path` URL.
    #[error("not a ws:// endpoint: {0:?}")]
    Endpoint(String),
    /// No topic and no endpoint: nothing to connect to.
    #[error("a subscriber needs a topic or an endpoint")]
    NothingToConnect,
}

/// Why a message was not sent.
#[derive(Debug, Error)]
pub enum NetSendError {
    /// The value has no wire form (an atomic field).
    #[error("cannot encode the message: {0}")]
    Encode(#[from] WireError),
    /// The payload is longer than the publisher's maximum message size.
    #[error("payload of {len} bytes exceeds the maximum message size {max}")]
    TooLarge {
        /// The payload's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The publisher has stopped.
    #[error("the publisher has stopped")]
    Stopped,
}

/// What a subscriber decodes each payload into: any [`ShmMessage`] type
/// (decoded and validated by the wire codec), or [`RawMessage`] (the
/// bytes, undecoded).
pub trait NetMessage: Sized + Send + 'static {
    /// Decodes one frame's payload. `frame` is the whole frame, its header
    /// already checked; the payload is `frame[FRAME_HEADER_LEN..]`.
    ///
    /// # Errors
    ///
    /// The wire codec's, for a payload that is not a valid `Self`.
    fn decode_frame(frame: &Bytes) -> Result<Self, WireError>;

    /// Decodes the frame at `range` of `buffer` (what the subscriber read,
    /// many frames in one buffer), its header already checked. The default
    /// slices `buffer` and calls [`decode_frame`](NetMessage::decode_frame);
    /// this crate's impls skip the reference counts that costs.
    ///
    /// # Errors
    ///
    /// As `decode_frame`.
    #[doc(hidden)]
    fn decode_in(buffer: &Bytes, range: Range<usize>) -> Result<Self, WireError> {
        Self::decode_frame(&buffer.slice(range))
    }

    /// Whether a subscriber without a stream lends the message to its
    /// callbacks and decodes the next frame into it
    /// ([`decode_reusing`](NetMessage::decode_reusing)): [`RawMessage`]
    /// does (a window moved over the buffer); a typed message is decoded
    /// afresh on the stack each time.
    #[doc(hidden)]
    const LENT: bool = false;

    /// As [`decode_in`](NetMessage::decode_in), for a message only lent
    /// to the callbacks: `reuse` holds the one decoded from the previous
    /// frame of the same read (or nothing), and may be decoded into again.
    /// The default decodes afresh; [`RawMessage`] moves its window over the
    /// buffer it already shares (no reference count per message).
    ///
    /// # Errors
    ///
    /// As `decode_frame`.
    #[doc(hidden)]
    #[inline]
    fn decode_reusing<'r>(
        reuse: &'r mut Option<Self>,
        buffer: &Bytes,
        range: Range<usize>,
    ) -> Result<&'r Self, WireError> {
        Ok(reuse.insert(Self::decode_in(buffer, range)?))
    }
}

impl<T: ShmMessage + Send + 'static> NetMessage for T {
    fn decode_frame(frame: &Bytes) -> Result<T, WireError> {
        T::decode(frame.get(FRAME_HEADER_LEN..).unwrap_or_default())
    }

    #[inline]
    fn decode_in(buffer: &Bytes, range: Range<usize>) -> Result<T, WireError> {
        let payload = range.start.saturating_add(FRAME_HEADER_LEN)..range.end;
        T::decode(buffer.get(payload).unwrap_or_default())
    }
}

/// An undecoded payload (shares the received buffer; no copy). Equal
/// when the payload bytes are.
#[derive(Clone)]
pub struct RawMessage {
    /// The bytes read, which hold the frame.
    buffer: Bytes,
    /// Where its payload is in `buffer`.
    payload: Range<usize>,
}

impl RawMessage {
    /// The frame at `frame` of `buffer`, its header checked.
    fn new(buffer: Bytes, frame: Range<usize>) -> RawMessage {
        RawMessage {
            buffer,
            payload: frame.start.saturating_add(FRAME_HEADER_LEN)..frame.end,
        }
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.get(self.payload.clone()).unwrap_or_default()
    }
}

impl PartialEq for RawMessage {
    fn eq(&self, other: &RawMessage) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for RawMessage {}

impl fmt::Debug for RawMessage {
    /// The payload as an escaped byte string, like `Bytes`'s.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawMessage(b\"")?;
        for &b in self.as_bytes() {
            write!(f, "{}", std::ascii::escape_default(b))?;
        }
        f.write_str("\")")
    }
}

impl std::ops::Deref for RawMessage {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl NetMessage for RawMessage {
    const LENT: bool = true;

    fn decode_frame(frame: &Bytes) -> Result<RawMessage, WireError> {
        Ok(RawMessage::new(frame.clone(), 0..frame.len()))
    }

    #[inline]
    fn decode_in(buffer: &Bytes, range: Range<usize>) -> Result<RawMessage, WireError> {
        Ok(RawMessage::new(buffer.clone(), range))
    }

    #[inline]
    fn decode_reusing<'r>(
        reuse: &'r mut Option<RawMessage>,
        buffer: &Bytes,
        range: Range<usize>,
    ) -> Result<&'r RawMessage, WireError> {
        // The same buffer (which `reuse` keeps alive, so no other can have
        // its address): only the window moves.
        let payload = range.start.saturating_add(FRAME_HEADER_LEN)..range.end;
        let same = reuse.as_ref().is_some_and(|m| {
            m.buffer.as_ptr() == buffer.as_ptr() && m.buffer.len() == buffer.len()
        });
        let m = if same {
            reuse.get_or_insert_with(|| RawMessage::new(buffer.clone(), range))
        } else {
            reuse.insert(RawMessage::new(buffer.clone(), range))
        };
        m.payload = payload;
        Ok(m)
    }
}

/// The websocket library's limits for a peer that accepts payloads of up
/// to `max_payload` bytes: larger messages and frames are refused before
/// they are buffered.
fn ws_config(max_payload: usize) -> WebSocketConfig {
    let max = max_payload.saturating_add(FRAME_HEADER_LEN);
    WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// Defaults shared by both ends.
const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(2);
const DEFAULT_PONG_TIMEOUT: Duration = Duration::from_secs(6);

/// Resolves once `stop` holds `true` (or its sender is gone).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// What generated topic modules call to gain `net_publisher` and
/// `net_subscriber` (the names `NAME` and `Message` of the calling module).
/// With the runtime's `net` feature off it expands to nothing, so
/// generated code compiles either way.
#[doc(hidden)]
#[macro_export]
macro_rules! __net_topic_functions {
    () => {
        /// A websocket publisher of the topic on any free port of every
        /// interface, announced through discovery with `discovery` (on
        /// the current tokio runtime, or one of its own).
        ///
        /// # Errors
        ///
        /// When the port cannot be bound or discovery cannot start.
        pub fn net_publisher(
            discovery: $crate::net::DiscoveryConfig,
        ) -> ::core::result::Result<
            $crate::net::TypedNetPublisher<Message>,
            $crate::net::NetStartError,
        > {
            $crate::net::NetPublisher::builder(NAME)
                .announce(discovery)
                .start::<Message>()
        }

        /// A subscriber builder for the topic (typed, following it through
        /// discovery): add callbacks or a stream, then `start`.
        pub fn net_subscriber() -> $crate::net::ws::NetSubscriberBuilder<Message> {
            $crate::net::NetSubscriber::typed::<Message>().topic(NAME)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `frames` (header and payload each) one after another in one buffer,
    /// with the range of each.
    fn read_of(payloads: &[&[u8]]) -> (Bytes, Vec<Range<usize>>) {
        let (mut all, mut ranges) = (Vec::new(), Vec::new());
        for p in payloads {
            let start = all.len();
            all.extend_from_slice(&[0; FRAME_HEADER_LEN]);
            all.extend_from_slice(p);
            ranges.push(start..all.len());
        }
        (Bytes::from(all), ranges)
    }

    #[test]
    fn a_reused_raw_message_moves_over_its_buffer_and_starts_afresh_on_another() {
        let (first, ranges) = read_of(&[b"one", b"second"]);
        let mut reuse = None;
        let m = RawMessage::decode_reusing(&mut reuse, &first, ranges[0].clone()).unwrap();
        assert_eq!(m.as_bytes(), b"one");
        let kept = m.clone();
        let m = RawMessage::decode_reusing(&mut reuse, &first, ranges[1].clone()).unwrap();
        assert_eq!(m.as_bytes(), b"second");
        assert_eq!(kept.as_bytes(), b"one");
        // Another buffer (as a message put together from fragments).
        let (other, ranges) = read_of(&[b"third"]);
        let m = RawMessage::decode_reusing(&mut reuse, &other, ranges[0].clone()).unwrap();
        assert_eq!(m.as_bytes(), b"third");
        // Only `kept` refers to the first buffer now.
        drop(kept);
        assert!(first.is_unique());
    }

    #[test]
    fn raw_messages_are_equal_and_printed_by_their_payload() {
        let (a, ra) = read_of(&[b"xx", b"payload"]);
        let (b, rb) = read_of(&[b"payload"]);
        let ma = RawMessage::decode_in(&a, ra[1].clone()).unwrap();
        let mb = RawMessage::decode_in(&b, rb[0].clone()).unwrap();
        assert_eq!(ma, mb);
        assert_ne!(ma, RawMessage::decode_in(&a, ra[0].clone()).unwrap());
        assert_eq!(format!("{ma:?}"), format!("{mb:?}"));
        assert_eq!(format!("{ma:?}"), r#"RawMessage(b"payload")"#);
        let (c, rc) = read_of(&[b"\x00\"\n\xff"]);
        let mc = RawMessage::decode_in(&c, rc[0].clone()).unwrap();
        assert_eq!(format!("{mc:?}"), r#"RawMessage(b"\x00\"\n\xff")"#);
    }
}
