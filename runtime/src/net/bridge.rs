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
//! - **Both** ([`Bridge::both`]): the two at once, never echoing. The in
//!   side's publisher leaves the out side's subscriber out
//!   ([`Publisher::exclude`]), so what it brings in is never sent back and
//!   never waits for the out side (two bridges forwarding to each other
//!   under back-pressure cannot hold each other up); the out side also
//!   skips anything that would still reach it from the in side's port
//!   ([`Subscriber::last_publisher`]). The in side drops frames whose
//!   origin is this process (its own out side's). So two hosts bridging a
//!   topic both ways forward each message exactly one hop and never
//!   ping-pong. Bridge a topic both ways with one `both` call, not with an
//!   `out` and an `inbound` bridge side by side: those do not know each
//!   other.
//!
//! [`Bridge`] carries a Rust type; [`DynBridge`] does the same for a type
//! known only at run time (a [`DynType`] read from a schema, as
//! `shmidl bridge` does), on the same local topic and with the same frames,
//! so the two interoperate. Both count traffic per remote publisher
//! ([`PeerStats`]).
//!
//! A full local queue (`WaitIfFull`) holds the in side back, and with it
//! the websocket connection: back-pressure reaches the sender, whose slow
//! receiver policy decides.

use std::{
    collections::HashMap,
    fmt,
    marker::PhantomData,
    sync::{
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
        Arc, Mutex, PoisonError,
    },
    thread::JoinHandle,
    time::Duration,
};

use thiserror::Error;

use super::ws::{
    origin_id, NetPublisher, NetPublisherBuilder, NetStartError, NetSubscriber,
    NetSubscriberBuilder, RawMessage, TypedNetPublisher,
};
use crate::{
    wire::{self, WireError},
    DynMessage, DynType, Node, PoolExhausted, Publisher, RecvError, SampleMut, ShmMessage,
    SlotView, Subscriber, TopicError, TopicRequest, UninitSample,
};

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

/// Traffic of one remote publisher into a bridge's in side.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// The publisher's `ws://` URL.
    pub endpoint: String,
    /// Its messages published to the local topic.
    pub messages: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Its messages dropped (see [`BridgeCounters::in_dropped`]).
    pub dropped: u64,
}

/// How a bridge moves its payload: a Rust type ([`Bridge`]) or a type known
/// at run time ([`DynBridge`]).
trait Carry: Send + Sync + 'static {
    type View: ?Sized + SlotView;
    type Net: Send + Sync + 'static;

    fn publisher(
        &self,
        node: &Node,
        topic: &str,
        request: TopicRequest,
    ) -> Result<Publisher<Self::View>, TopicError>;

    fn subscriber(
        &self,
        node: &Node,
        topic: &str,
        request: TopicRequest,
    ) -> Result<Subscriber<Self::View>, TopicError>;

    fn start(&self, builder: NetPublisherBuilder) -> Result<Self::Net, NetStartError>;

    /// Sends one local sample; its payload bytes.
    fn send(&self, net: &Self::Net, sample: &Self::View) -> Result<u64, String>;

    /// A slot of the topic's pool: waiting up to the pool's timeout, or
    /// (`wait` false) only if one is free now.
    fn loan(
        &self,
        publisher: &Publisher<Self::View>,
        wait: bool,
    ) -> Result<UninitSample<Self::View>, PoolExhausted>;

    /// Validates `bytes` and decodes them into `slot`.
    fn decode(
        &self,
        bytes: &[u8],
        slot: UninitSample<Self::View>,
    ) -> Result<SampleMut<Self::View>, WireError>;

    /// Decodes `bytes` into a fresh slot and publishes it, waiting for a
    /// slot or for room as the pool and the topic say.
    fn publish_in(
        &self,
        publisher: &mut Publisher<Self::View>,
        bytes: &[u8],
    ) -> Result<(), String> {
        let slot = self.loan(publisher, true).map_err(|e| e.to_string())?;
        let sample = self.decode(bytes, slot).map_err(|e| e.to_string())?;
        publish_all(publisher, sample)
    }

    /// The same if it needs no waiting; `None` (nothing done) otherwise.
    fn publish_now(
        &self,
        publisher: &mut Publisher<Self::View>,
        bytes: &[u8],
    ) -> Option<Result<(), String>> {
        if !publisher.queues_have_room() {
            return None;
        }
        let slot = self.loan(publisher, false).ok()?;
        Some(
            self.decode(bytes, slot)
                .map_err(|e| e.to_string())
                .and_then(|sample| publish_all(publisher, sample)),
        )
    }
}

struct Typed<T>(PhantomData<fn() -> T>);

impl<T: ShmMessage + Send + Sync + 'static> Carry for Typed<T> {
    type View = T;
    type Net = TypedNetPublisher<T>;

    fn publisher(
        &self,
        node: &Node,
        topic: &str,
        request: TopicRequest,
    ) -> Result<Publisher<T>, TopicError> {
        node.publisher::<T>(topic, request)
    }

    fn subscriber(
        &self,
        node: &Node,
        topic: &str,
        request: TopicRequest,
    ) -> Result<Subscriber<T>, TopicError> {
        node.subscriber::<T>(topic, request)
    }

    fn start(&self, builder: NetPublisherBuilder) -> Result<TypedNetPublisher<T>, NetStartError> {
        builder.start::<T>()
    }

    fn send(&self, net: &TypedNetPublisher<T>, sample: &T) -> Result<u64, String> {
        // Encoded straight from the slot into the frame.
        net.send(sample).map_err(|e| e.to_string())?;
        Ok(T::wire_size() as u64)
    }

    fn loan(&self, publisher: &Publisher<T>, wait: bool) -> Result<UninitSample<T>, PoolExhausted> {
        if wait {
            publisher.loan_uninit()
        } else {
            publisher.router().pool().try_loan_uninit()
        }
    }

    fn decode(&self, bytes: &[u8], slot: UninitSample<T>) -> Result<SampleMut<T>, WireError> {
        T::decode_into(bytes, slot)
    }
}

struct Dynamic(DynType);

impl Carry for Dynamic {
    type View = DynMessage;
    type Net = NetPublisher;

    fn publisher(
        &self,
        node: &Node,
        topic: &str,
        request: TopicRequest,
    ) -> Result<Publisher<DynMessage>, TopicError> {
        node.dyn_publisher(topic, &self.0, request)
    }

    fn subscriber(
        &self,
        node: &Node,
        topic: &str,
        request: TopicRequest,
    ) -> Result<Subscriber<DynMessage>, TopicError> {
        node.dyn_subscriber(topic, &self.0, request)
    }

    fn start(&self, builder: NetPublisherBuilder) -> Result<NetPublisher, NetStartError> {
        builder.start_raw(self.0.name(), self.0.fingerprint())
    }

    fn send(&self, net: &NetPublisher, sample: &DynMessage) -> Result<u64, String> {
        let bytes = wire::encode_dyn(&self.0, sample).map_err(|e| e.to_string())?;
        net.send(bytes).map_err(|e| e.to_string())?;
        Ok(bytes.len() as u64)
    }

    fn loan(
        &self,
        publisher: &Publisher<DynMessage>,
        wait: bool,
    ) -> Result<UninitSample<DynMessage>, PoolExhausted> {
        if wait {
            publisher.loan_uninit()
        } else {
            publisher.router().pool().try_loan_uninit()
        }
    }

    fn decode(
        &self,
        bytes: &[u8],
        slot: UninitSample<DynMessage>,
    ) -> Result<SampleMut<DynMessage>, WireError> {
        wire::decode_dyn_into(&self.0, bytes, slot)
    }
}

/// Runs `f`, which may block, from a callback on a runtime thread: on a
/// multi-thread runtime the thread's other tasks move to another thread
/// first (`block_in_place`), since a task this thread woke last would
/// otherwise wait behind `f`.
fn off_the_runtime<R>(f: impl FnOnce() -> R) -> R {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

/// Publishes `sample` to every local subscriber; an error if a pipe failed.
fn publish_all<V: ?Sized + SlotView>(
    publisher: &mut Publisher<V>,
    sample: crate::SampleMut<V>,
) -> Result<(), String> {
    match publisher.publish(sample).map_err(|e| e.to_string())? {
        0 => Ok(()),
        failed => Err(format!("{failed} local pipe(s) full")),
    }
}

/// The in side's local publisher, shared with the network subscriber's
/// callback and taken out (dropped) when the bridge stops, whatever the
/// runtime does with the callback afterwards.
type LocalIn<V> = Arc<Mutex<Option<Publisher<V>>>>;

/// The running parts of a bridge, whatever it carries.
struct Engine<C: Carry> {
    topic: String,
    counters: Arc<BridgeCounters>,
    peers: Arc<Mutex<HashMap<String, PeerStats>>>,
    stop: Arc<AtomicBool>,
    out: Option<(Arc<C::Net>, JoinHandle<()>)>,
    inbound: Option<NetSubscriber<RawMessage>>,
    local_in: Option<LocalIn<C::View>>,
}

impl<C: Carry> Engine<C> {
    fn start(
        carry: C,
        node: &Node,
        topic: &str,
        request: TopicRequest,
        out: Option<NetPublisherBuilder>,
        inbound: Option<NetSubscriberBuilder<RawMessage>>,
    ) -> Result<Engine<C>, BridgeError> {
        let carry = Arc::new(carry);
        let counters = Arc::new(BridgeCounters::default());
        let peers = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let in_port = Arc::new(AtomicU32::new(NO_PORT));
        let mut engine = Engine {
            topic: topic.to_owned(),
            counters: Arc::clone(&counters),
            peers: Arc::clone(&peers),
            stop: Arc::clone(&stop),
            out: None,
            inbound: None,
            local_in: None,
        };
        // The local side first: the out side's subscriber must exist before
        // the in side publishes anything, and the in side's publisher
        // leaves it out (a two-way bridge's in side then never sends its
        // messages back, nor waits for its own out side: two bridges
        // forwarding to each other cannot hold each other up).
        let mut local_in = match &inbound {
            Some(_) => {
                let publisher = carry.publisher(node, topic, request)?;
                in_port.store(publisher.port(), Ordering::Relaxed);
                Some(publisher)
            }
            None => None,
        };
        let mut excluded = false;
        if let Some(builder) = out {
            let subscriber = carry.subscriber(node, topic, request)?;
            if let Some(publisher) = &mut local_in {
                excluded = publisher.exclude(&subscriber);
            }
            let publisher = Arc::new(carry.start(builder)?);
            let thread = {
                let publisher = Arc::clone(&publisher);
                let counters = Arc::clone(&counters);
                let stop = Arc::clone(&stop);
                let in_port = Arc::clone(&in_port);
                let carry = Arc::clone(&carry);
                std::thread::Builder::new()
                    .name(format!("shmidl-bridge-out {topic}"))
                    .spawn(move || {
                        forward_out(&*carry, subscriber, &publisher, &counters, &stop, &in_port)
                    })
                    .map_err(BridgeError::Thread)?
            };
            engine.out = Some((publisher, thread));
        }
        if let (Some(builder), Some(publisher)) = (inbound, local_in) {
            let publisher: LocalIn<C::View> = Arc::new(Mutex::new(Some(publisher)));
            engine.local_in = Some(Arc::clone(&publisher));
            let own = origin_id();
            let subscriber = builder
                .on_message(move |d| {
                    if d.header.origin == own {
                        counters.in_skipped_own.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    // Inline when nothing has to wait (a free slot, room in
                    // every local queue); otherwise the wait (back-pressure:
                    // the module docs) happens off the runtime thread, so
                    // that this thread's other tasks, such as the writer of
                    // this process's own out side, keep running.
                    // (`block_in_place` on every message was measured to
                    // cost more than the whole bridge hop.)
                    let outcome = {
                        let mut publisher =
                            publisher.lock().unwrap_or_else(PoisonError::into_inner);
                        match publisher.as_mut() {
                            Some(p) => match carry.publish_now(p, d.bytes) {
                                Some(done) => done,
                                None => off_the_runtime(|| carry.publish_in(p, d.bytes)),
                            },
                            None => Err("the bridge is stopping".to_owned()),
                        }
                    };
                    let mut peers = peers.lock().unwrap_or_else(PoisonError::into_inner);
                    // The URL is copied once per publisher, not per message.
                    if !peers.contains_key(&d.endpoint.url) {
                        let endpoint = d.endpoint.url.clone();
                        peers.insert(
                            endpoint.clone(),
                            PeerStats {
                                endpoint,
                                ..PeerStats::default()
                            },
                        );
                    }
                    let Some(peer) = peers.get_mut(&d.endpoint.url) else {
                        return;
                    };
                    match outcome {
                        Ok(()) => {
                            counters.in_messages.fetch_add(1, Ordering::Relaxed);
                            counters
                                .in_bytes
                                .fetch_add(d.bytes.len() as u64, Ordering::Relaxed);
                            if excluded {
                                // Kept from the out side at the source.
                                counters.out_skipped_own.fetch_add(1, Ordering::Relaxed);
                            }
                            peer.messages += 1;
                            peer.bytes += d.bytes.len() as u64;
                        }
                        Err(why) => {
                            tracing::debug!(
                                "bridge dropped a message from {}: {why}",
                                d.endpoint.url
                            );
                            counters.in_dropped.fetch_add(1, Ordering::Relaxed);
                            peer.dropped += 1;
                        }
                    }
                })
                .start()?;
            engine.inbound = Some(subscriber);
        }
        Ok(engine)
    }

    fn peers(&self) -> Vec<PeerStats> {
        let peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<PeerStats> = peers.values().cloned().collect();
        all.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        all
    }
}

impl<C: Carry> Drop for Engine<C> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The in side first: nothing more is published locally, and its
        // publisher leaves the topic now, even if the runtime drops the
        // callback that shares it later.
        drop(self.inbound.take());
        if let Some(local_in) = self.local_in.take() {
            drop(
                local_in
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take(),
            );
        }
        if let Some((_, thread)) = self.out.take() {
            if thread.join().is_err() {
                tracing::error!(topic = %self.topic, "the bridge's out thread panicked");
            }
        }
    }
}

/// The out side: every local message not published by the in side goes to
/// the network.
fn forward_out<C: Carry>(
    carry: &C,
    mut subscriber: Subscriber<C::View>,
    publisher: &C::Net,
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
        match carry.send(publisher, &sample) {
            Ok(bytes) => {
                counters.out_messages.fetch_add(1, Ordering::Relaxed);
                counters.out_bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::debug!("bridge: sending to the network failed: {e}");
                counters.out_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// No publisher port: the out side forwards everything.
const NO_PORT: u32 = u32::MAX;

/// A running bridge of one topic of `T`; stops when dropped.
pub struct Bridge<T: ShmMessage + Send + Sync + 'static> {
    engine: Engine<Typed<T>>,
}

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
        let engine = Engine::start(Typed(PhantomData), node, topic, request, out, inbound)?;
        Ok(Bridge { engine })
    }

    /// The topic bridged.
    pub fn topic(&self) -> &str {
        &self.engine.topic
    }

    /// The counters now.
    pub fn stats(&self) -> BridgeStats {
        self.engine.counters.snapshot()
    }

    /// The in side's traffic per remote publisher, by URL.
    pub fn peers(&self) -> Vec<PeerStats> {
        self.engine.peers()
    }

    /// The out side's network publisher (its address, connections, stats).
    pub fn publisher(&self) -> Option<&TypedNetPublisher<T>> {
        self.engine.out.as_ref().map(|(p, _)| &**p)
    }

    /// The in side's network subscriber (its endpoints, stats).
    pub fn subscriber(&self) -> Option<&NetSubscriber<RawMessage>> {
        self.engine.inbound.as_ref()
    }

    /// Stops both sides and joins the out side's thread; dropping does the
    /// same.
    pub fn shutdown(self) {}
}

impl<T: ShmMessage + Send + Sync + 'static> fmt::Debug for Bridge<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bridge")
            .field("topic", &self.engine.topic)
            .field("stats", &self.engine.counters.snapshot())
            .finish_non_exhaustive()
    }
}

/// A bridge of a topic whose type is known only at run time (a
/// [`DynType`] read from a schema): what `shmidl bridge` runs. It behaves
/// as [`Bridge`] does, and interoperates with it and with typed programs:
/// the frames carry the type's fingerprint, the local topic is the typed
/// topic.
pub struct DynBridge {
    engine: Engine<Dynamic>,
}

impl DynBridge {
    /// Forwards the local `topic` of `ty` to the network (see
    /// [`Bridge::out`]).
    pub fn out(
        node: &Node,
        topic: &str,
        ty: &DynType,
        request: impl Into<TopicRequest>,
        net: NetPublisherBuilder,
    ) -> Result<DynBridge, BridgeError> {
        Self::start(node, topic, ty, request.into(), Some(net), None)
    }

    /// Publishes every message `net` receives (a subscriber of frames of
    /// `ty`'s fingerprint) to the local `topic` (see [`Bridge::inbound`]).
    pub fn inbound(
        node: &Node,
        topic: &str,
        ty: &DynType,
        request: impl Into<TopicRequest>,
        net: NetSubscriberBuilder<RawMessage>,
    ) -> Result<DynBridge, BridgeError> {
        Self::start(node, topic, ty, request.into(), None, Some(net))
    }

    /// Both directions at once, never echoing (see [`Bridge::both`]).
    pub fn both(
        node: &Node,
        topic: &str,
        ty: &DynType,
        request: impl Into<TopicRequest>,
        publisher: NetPublisherBuilder,
        subscriber: NetSubscriberBuilder<RawMessage>,
    ) -> Result<DynBridge, BridgeError> {
        Self::start(
            node,
            topic,
            ty,
            request.into(),
            Some(publisher),
            Some(subscriber),
        )
    }

    fn start(
        node: &Node,
        topic: &str,
        ty: &DynType,
        request: TopicRequest,
        out: Option<NetPublisherBuilder>,
        inbound: Option<NetSubscriberBuilder<RawMessage>>,
    ) -> Result<DynBridge, BridgeError> {
        let engine = Engine::start(Dynamic(ty.clone()), node, topic, request, out, inbound)?;
        Ok(DynBridge { engine })
    }

    /// The topic bridged.
    pub fn topic(&self) -> &str {
        &self.engine.topic
    }

    /// The counters now.
    pub fn stats(&self) -> BridgeStats {
        self.engine.counters.snapshot()
    }

    /// The in side's traffic per remote publisher, by URL.
    pub fn peers(&self) -> Vec<PeerStats> {
        self.engine.peers()
    }

    /// The out side's network publisher (its address, connections, stats).
    pub fn publisher(&self) -> Option<&NetPublisher> {
        self.engine.out.as_ref().map(|(p, _)| &**p)
    }

    /// The in side's network subscriber (its endpoints, stats).
    pub fn subscriber(&self) -> Option<&NetSubscriber<RawMessage>> {
        self.engine.inbound.as_ref()
    }

    /// Stops both sides and joins the out side's thread; dropping does the
    /// same.
    pub fn shutdown(self) {}
}

impl fmt::Debug for DynBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynBridge")
            .field("topic", &self.engine.topic)
            .field("stats", &self.engine.counters.snapshot())
            .finish_non_exhaustive()
    }
}
