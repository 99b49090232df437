//! The websocket transport: a [`NetPublisher`] serves one topic to any
//! number of subscribers (one-to-many); a [`NetSubscriber`] connects to
//! every publisher of its topics (many-to-one), found by discovery or
//! given as explicit endpoints.
//!
//! Every message is one binary websocket message: a 44-byte
//! [`FrameHeader`] (origin, fingerprint, sequence, timestamp, length) and
//! the message's wire encoding; `docs/wire-format.md` §3 gives the bytes.

use std::{io, net::SocketAddr, ops::Range, sync::OnceLock, time::Duration};

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

/// An undecoded payload (shares the received buffer; no copy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMessage(Bytes);

impl RawMessage {
    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.get(FRAME_HEADER_LEN..).unwrap_or_default()
    }
}

impl std::ops::Deref for RawMessage {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl NetMessage for RawMessage {
    fn decode_frame(frame: &Bytes) -> Result<RawMessage, WireError> {
        Ok(RawMessage(frame.clone()))
    }

    #[inline]
    fn decode_in(buffer: &Bytes, range: Range<usize>) -> Result<RawMessage, WireError> {
        Ok(RawMessage(buffer.slice(range)))
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
