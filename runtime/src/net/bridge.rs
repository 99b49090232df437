//! Bridges between a shared-memory topic and the network, the seed's
//! "route it to everyone else on your system".
//!
//! - **Out** ([`Bridge::out`]): a thread receives every message of a local
//!   topic and sends it through a [`TypedNetPublisher`]; the wire codec
//!   encodes straight from the pool slot into the outgoing frame, so the
//!   message is copied once, into the socket's buffer.
//! - **In** ([`Bridge::inbound`]): every frame a [`NetSubscriber`] receives
//!   is decoded (validated) straight into a slot of the local topic's pool
//!   and published to every local subscriber, zero-copy from there on.
//! - **Both** ([`Bridge::both`]): the two at once, never echoing. The out
//!   side skips what the in side published (it knows its publisher port:
//!   [`Subscriber::last_publisher`]), and the in side drops frames whose
//!   origin is this process (its own out side's). So two hosts bridging a
//!   topic both ways forward each message exactly one hop and never
//!   ping-pong. Bridge a topic both ways with one `both` call, not with an
//!   `out` and an `inbound` bridge side by side: those do not know each
//!   other.
//!
//! A full local queue (`WaitIfFull`) holds the in side back, and with it
//! the websocket connection: back-pressure reaches the sender, whose slow
//! receiver policy decides.

use std::{
    fmt,
    sync::{
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
        Arc, Mutex, PoisonError,
    },
    thread::JoinHandle,
    time::Duration,
};

use thiserror::Error;

use super::ws::{
    origin_id, NetPublisherBuilder, NetStartError, NetSubscriber, NetSubscriberBuilder, RawMessage,
    TypedNetPublisher,
};
use crate::{Node, Publisher, RecvError, ShmMessage, Subscriber, TopicError, TopicRequest};

/// How often the out side's thread looks at its stop flag while the topic
/// is quiet.
const POLL: Duration = Duration::from_millis(50);

/// Why a bridge could not start.
#[derive(Debug, Error)]
pub enum BridgeError {
    /// The local topic could not be opened.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// The network side could not start.
    #[error(transparent)]
    Net(#[from] NetStartError),
    /// The out side's thread could not be started.
    #[error("cannot start the bridge thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Counters of a bridge, updated as it runs.
#[derive(Debug, Default)]
pub struct BridgeCounters {
    /// Local messages sent to the network.
    pub out_messages: AtomicU64,
    /// Their payload bytes.
    pub out_bytes: AtomicU64,
    /// Local messages the network side could not take (stopped publisher,
    /// type without a wire form).
    pub out_failed: AtomicU64,
    /// Messages the out side did not send because the in side had
    /// published them (the echo a two-way bridge avoids).
    pub out_skipped_own: AtomicU64,
    /// Remote messages published to the local topic.
    pub in_messages: AtomicU64,
    /// Their payload bytes.
    pub in_bytes: AtomicU64,
    /// Remote messages dropped: undecodable payloads, no free pool slot in
    /// time, or local pipes that failed (`SoftFailIfFull`, a `WaitIfFull`
    /// timeout).
    pub in_dropped: AtomicU64,
    /// Frames of this process's own out side that came back, dropped.
    pub in_skipped_own: AtomicU64,
}

/// A snapshot of [`BridgeCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BridgeStats {
    /// See [`BridgeCounters::out_messages`].
    pub out_messages: u64,
    /// See [`BridgeCounters::out_bytes`].
    pub out_bytes: u64,
    /// See [`BridgeCounters::out_failed`].
    pub out_failed: u64,
    /// See [`BridgeCounters::out_skipped_own`].
    pub out_skipped_own: u64,
    /// See [`BridgeCounters::in_messages`].
    pub in_messages: u64,
    /// See [`BridgeCounters::in_bytes`].
    pub in_bytes: u64,
    /// See [`BridgeCounters::in_dropped`].
    pub in_dropped: u64,
    /// See [`BridgeCounters::in_skipped_own`].
    pub in_skipped_own: u64,
}

impl BridgeCounters {
    fn snapshot(&self) -> BridgeStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BridgeStats {
            out_messages: get(&self.out_messages),
            out_bytes: get(&self.out_bytes),
            out_failed: get(&self.out_failed),
            out_skipped_own: get(&self.out_skipped_own),
            in_messages: get(&self.in_messages),
            in_bytes: get(&self.in_bytes),
            in_dropped: get(&self.in_dropped),
            in_skipped_own: get(&self.in_skipped_own),
        }
    }
}

/// A running bridge of one topic of `T`; stops when dropped.
pub struct Bridge<T: ShmMessage> {
    topic: String,
    counters: Arc<BridgeCounters>,
    stop: Arc<AtomicBool>,
    out: Option<(Arc<TypedNetPublisher<T>>, JoinHandle<()>)>,
    inbound: Option<NetSubscriber<RawMessage>>,
}

/// No publisher port: the out side forwards everything.
const NO_PORT: u32 = u32::MAX;

impl<T: ShmMessage + Send + Sync + 'static> Bridge<T> {
    /// Forwards the local `topic` of `node` to the network: every message
    /// goes out through the publisher `net` describes (its topic, address,
    /// policies, announcement), encoded straight from the pool slot into
    /// the frame.
    pub fn out(
        node: &Node,
        topic: &str,
        request: impl Into<TopicRequest>,
        net: NetPublisherBuilder,
    ) -> Result<Bridge<T>, BridgeError> {
        Self::start(node, topic, request.into(), Some(net), None)
    }

    /// Publishes every message `net` receives (a subscriber of frames of
    /// `T`'s fingerprint: `NetSubscriber::raw(Some(T::FINGERPRINT))` with
    /// its topic or endpoints) to the local `topic` of `node`, decoded
    /// straight into a pool slot.
    pub fn inbound(
        node: &Node,
        topic: &str,
        request: impl Into<TopicRequest>,
        net: NetSubscriberBuilder<RawMessage>,
    ) -> Result<Bridge<T>, BridgeError> {
        Self::start(node, topic, request.into(), None, Some(net))
    }

    /// Both directions at once, never echoing (see the module docs).
    pub fn both(
        node: &Node,
        topic: &str,
        request: impl Into<TopicRequest>,
        publisher: NetPublisherBuilder,
        subscriber: NetSubscriberBuilder<RawMessage>,
    ) -> Result<Bridge<T>, BridgeError> {
        Self::start(
            node,
            topic,
            request.into(),
            Some(publisher),
            Some(subscriber),
        )
    }

    fn start(
        node: &Node,
        topic: &str,
        request: TopicRequest,
        out: Option<NetPublisherBuilder>,
        inbound: Option<NetSubscriberBuilder<RawMessage>>,
    ) -> Result<Bridge<T>, BridgeError> {
        let counters = Arc::new(BridgeCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let in_port = Arc::new(AtomicU32::new(NO_PORT));
        let mut bridge = Bridge {
            topic: topic.to_owned(),
            counters: Arc::clone(&counters),
            stop: Arc::clone(&stop),
            out: None,
            inbound: None,
        };
        // The local side first: the out side's subscriber must exist before
        // the in side publishes anything, and both must know the in side's
        // publisher port.
        let local_in = match &inbound {
            Some(_) => {
                let publisher = node.publisher::<T>(topic, request)?;
                in_port.store(publisher.port(), Ordering::Relaxed);
                Some(publisher)
            }
            None => None,
        };
        if let Some(builder) = out {
            let subscriber = node.subscriber::<T>(topic, request)?;
            let publisher = Arc::new(builder.start::<T>()?);
            let thread = {
                let publisher = Arc::clone(&publisher);
                let counters = Arc::clone(&counters);
                let stop = Arc::clone(&stop);
                let in_port = Arc::clone(&in_port);
                std::thread::Builder::new()
                    .name(format!("shmidl-bridge-out {topic}"))
                    .spawn(move || forward_out(subscriber, &publisher, &counters, &stop, &in_port))
                    .map_err(BridgeError::Thread)?
            };
            bridge.out = Some((publisher, thread));
        }
        if let (Some(builder), Some(publisher)) = (inbound, local_in) {
            let publisher = Mutex::new(publisher);
            let counters = Arc::clone(&counters);
            let own = origin_id();
            let subscriber = builder
                .on_message(move |d| {
                    if d.header.origin == own {
                        counters.in_skipped_own.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    let mut publisher = publisher.lock().unwrap_or_else(PoisonError::into_inner);
                    match publish_in(&mut publisher, d.bytes) {
                        Ok(()) => {
                            counters.in_messages.fetch_add(1, Ordering::Relaxed);
                            counters
                                .in_bytes
                                .fetch_add(d.bytes.len() as u64, Ordering::Relaxed);
                        }
                        Err(why) => {
                            tracing::debug!(
                                "bridge dropped a message from {}: {why}",
                                d.endpoint.url
                            );
                            counters.in_dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
                .start()?;
            bridge.inbound = Some(subscriber);
        }
        Ok(bridge)
    }

    /// The topic bridged.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The counters now.
    pub fn stats(&self) -> BridgeStats {
        self.counters.snapshot()
    }

    /// The out side's network publisher (its address, connections, stats).
    pub fn publisher(&self) -> Option<&TypedNetPublisher<T>> {
        self.out.as_ref().map(|(p, _)| &**p)
    }

    /// The in side's network subscriber (its endpoints, stats).
    pub fn subscriber(&self) -> Option<&NetSubscriber<RawMessage>> {
        self.inbound.as_ref()
    }

    /// Stops both sides and joins the out side's thread; dropping does the
    /// same.
    pub fn shutdown(self) {}
}

impl<T: ShmMessage> Drop for Bridge<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The in side first: nothing more is published locally.
        drop(self.inbound.take());
        if let Some((_, thread)) = self.out.take() {
            if thread.join().is_err() {
                tracing::error!(topic = %self.topic, "the bridge's out thread panicked");
            }
        }
    }
}

impl<T: ShmMessage> fmt::Debug for Bridge<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bridge")
            .field("topic", &self.topic)
            .field("stats", &self.counters.snapshot())
            .finish_non_exhaustive()
    }
}

/// The out side: every local message not published by the in side goes to
/// the network.
fn forward_out<T: ShmMessage>(
    mut subscriber: Subscriber<T>,
    publisher: &TypedNetPublisher<T>,
    counters: &BridgeCounters,
    stop: &AtomicBool,
    in_port: &AtomicU32,
) {
    while !stop.load(Ordering::Relaxed) {
        let sample = match subscriber.recv_timeout(POLL) {
            Ok(s) => s,
            Err(RecvError::Timeout) => continue,
            Err(e) => {
                tracing::warn!("bridge: receiving from the local topic failed: {e}");
                std::thread::sleep(POLL);
                continue;
            }
        };
        if subscriber.last_publisher() == Some(in_port.load(Ordering::Relaxed)) {
            counters.out_skipped_own.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match publisher.send(&sample) {
            Ok(_) => {
                counters.out_messages.fetch_add(1, Ordering::Relaxed);
                counters
                    .out_bytes
                    .fetch_add(T::wire_size() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::debug!("bridge: sending to the network failed: {e}");
                counters.out_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Decodes `bytes` into a fresh slot of the local topic and publishes it.
fn publish_in<T: ShmMessage>(publisher: &mut Publisher<T>, bytes: &[u8]) -> Result<(), String> {
    let slot = publisher.loan_uninit().map_err(|e| e.to_string())?;
    let sample = T::decode_into(bytes, slot).map_err(|e| e.to_string())?;
    match publisher.publish(sample).map_err(|e| e.to_string())? {
        0 => Ok(()),
        failed => Err(format!("{failed} local pipe(s) full")),
    }
}
