//! The receiving side: connects to every publisher of its topics (found
//! by discovery, or given), reconnects, checks every frame, and hands
//! messages to callbacks and to an async stream.

use crate::net::{auth::unix_ms, random_nonce, NetSecret};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::AUTH_HEADER;
use std::{
    collections::HashMap,
    fmt,
    marker::PhantomData,
    ops::Range,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures_util::Stream;
use tokio::{net::TcpStream, sync::mpsc};
use tokio_tungstenite::tungstenite::Bytes;

use super::reader::{HandshakeIo, WsConn, WsEvent, WsReadError, WsReader};
use super::{
    frame::{opcode, FrameError, FrameHeader, FRAME_HEADER_LEN},
    ws_config, NetMessage, NetRuntime, NetStartError, RawMessage, DEFAULT_MAX_MESSAGE_SIZE,
};
use crate::{
    net::{Discovery, DiscoveryConfig, DiscoveryEvent, Role, TopicEntry},
    ShmMessage,
};

/// One publisher a subscriber connects to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// `ws://host:port/path`.
    pub url: String,
    /// The topic, when found by discovery.
    pub topic: Option<String>,
}

/// One message as a callback sees it.
#[derive(Debug)]
pub struct Delivery<'a, M> {
    /// Where it came from.
    pub endpoint: &'a Endpoint,
    /// Its frame header (origin, sequence, send time).
    pub header: FrameHeader,
    /// The payload bytes (the message's wire encoding).
    pub bytes: &'a [u8],
    /// The decoded message.
    pub message: &'a M,
}

/// Why a connection closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The publisher closed it (or it stopped).
    Closed,
    /// Too many bad frames (`max_bad_frames`).
    BadFrames,
    /// Nothing, not even a ping, arrived for the keep-alive timeout.
    Silent,
    /// A read or connect error.
    Error(String),
    /// The subscriber stopped.
    Stopped,
}

/// Counters of a subscriber.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscriberStats {
    /// Messages delivered. Added once per batch of frames read from a
    /// connection, not per message: right after a message callback returns,
    /// this count may not include it yet (it does once the batch ends,
    /// which is before the connection waits for more bytes).
    pub received: u64,
    /// Messages missed: gaps in the sequence numbers of a connection.
    pub missed: u64,
    /// Frames with a bad header or length (magic, version, flags, length).
    pub bad_frames: u64,
    /// Frames over the maximum message size (ours, or refused by the
    /// websocket layer, which closes the connection).
    pub oversized: u64,
    /// Frames of another type (fingerprint).
    pub wrong_fingerprint: u64,
    /// Payloads the wire codec refused.
    pub undecodable: u64,
    /// Text messages (never sent by a publisher).
    pub text_frames: u64,
    /// Connections opened.
    pub connections_opened: u64,
    /// Connections closed.
    pub connections_closed: u64,
    /// Connections closed for too many bad frames.
    pub closed_for_bad_frames: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
    /// Idle timeouts.
    pub idle_timeouts: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    missed: AtomicU64,
    bad_frames: AtomicU64,
    oversized: AtomicU64,
    wrong_fingerprint: AtomicU64,
    undecodable: AtomicU64,
    text_frames: AtomicU64,
    connections_opened: AtomicU64,
    connections_closed: AtomicU64,
    closed_for_bad_frames: AtomicU64,
    connect_failures: AtomicU64,
    idle_timeouts: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

type Inbox<M> = mpsc::Receiver<(Arc<Endpoint>, M)>;
type MessageCb<M> = Box<dyn Fn(&Delivery<'_, M>) + Send + Sync>;
type EndpointCb = Box<dyn Fn(&Endpoint) + Send + Sync>;
type CloseCb = Box<dyn Fn(&Endpoint, &CloseReason) + Send + Sync>;
type ErrorCb = Box<dyn Fn(&Endpoint, &str) + Send + Sync>;
type AnnounceCb = Box<dyn Fn(&TopicEntry) + Send + Sync>;
type IdleCb = Box<dyn Fn() + Send + Sync>;

struct Callbacks<M> {
    message: Vec<MessageCb<M>>,
    announcement: Vec<AnnounceCb>,
    opened: Vec<EndpointCb>,
    closed: Vec<CloseCb>,
    error: Vec<ErrorCb>,
    idle: Vec<IdleCb>,
}

/// What a connection task wants: is the endpoint still to be connected?
struct Wanted {
    wanted: bool,
    running: bool,
}

struct Shared<M> {
    topics: Vec<String>,
    fingerprint: Option<u64>,
    max_message_size: usize,
    max_bad_frames: u32,
    keepalive_timeout: Duration,
    reconnect_delay: Duration,
    idle_timeout: Option<Duration>,
    stop_on_idle: bool,
    callbacks: Callbacks<M>,
    stream: Option<mpsc::Sender<(Arc<Endpoint>, M)>>,
    endpoints: Mutex<HashMap<String, Wanted>>,
    counters: Counters,
    stopped: AtomicBool,
    stop: tokio::sync::watch::Sender<bool>,
    runtime: NetRuntime,
    /// With a secret: presented as a fresh token in every handshake.
    secret: Option<NetSecret>,
}

impl<M: NetMessage> Shared<M> {
    fn endpoints(&self) -> MutexGuard<'_, HashMap<String, Wanted>> {
        self.endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes sure a task connects to `url` (starts one if none runs).
    fn want(self: &Arc<Self>, url: String, topic: Option<String>) {
        let spawn = {
            let mut map = self.endpoints();
            let entry = map.entry(url.clone()).or_insert(Wanted {
                wanted: true,
                running: false,
            });
            entry.wanted = true;
            !std::mem::replace(&mut entry.running, true)
        };
        tracing::debug!(%url, running = !spawn, "following a publisher");
        if spawn && !self.stopped.load(Ordering::Relaxed) {
            let endpoint = Arc::new(Endpoint { url, topic });
            self.runtime
                .handle()
                .spawn(connection_task(Arc::clone(self), endpoint));
        }
    }

    fn unwant(&self, url: &str) {
        tracing::debug!(%url, "no longer following a publisher");
        if let Some(entry) = self.endpoints().get_mut(url) {
            entry.wanted = false;
        }
    }

    /// Called by a connection task that is about to retry: whether it
    /// should, or (atomically) give up and mark itself not running.
    fn keep_going(&self, url: &str) -> bool {
        let mut map = self.endpoints();
        let go = !self.stopped.load(Ordering::Relaxed) && map.get(url).is_some_and(|e| e.wanted);
        if !go {
            if let Some(e) = map.get_mut(url) {
                e.running = false;
            }
        }
        go
    }

    fn on_discovery(self: &Arc<Self>, event: &DiscoveryEvent) {
        let entry = match event {
            DiscoveryEvent::TopicAppeared(entry) => entry,
            DiscoveryEvent::TopicChanged { old, new } => {
                if let Some(url) = url_of(old) {
                    if Some(&url) != url_of(new).as_ref() {
                        self.unwant(&url);
                    }
                }
                new
            }
            DiscoveryEvent::TopicGone { entry, .. } => {
                if let Some(url) = url_of(entry) {
                    self.unwant(&url);
                }
                return;
            }
            _ => return,
        };
        if entry.topic.role != Role::Publisher
            || !entry.is_connectable()
            || !self.topics.contains(&entry.topic.name)
            || self
                .fingerprint
                .is_some_and(|fp| fp != entry.topic.fingerprint)
        {
            return;
        }
        for cb in &self.callbacks.announcement {
            cb(entry);
        }
        if let Some(url) = url_of(entry) {
            self.want(url, Some(entry.topic.name.clone()));
        }
    }

    fn close_cbs(&self, endpoint: &Endpoint, reason: &CloseReason) {
        bump(&self.counters.connections_closed);
        for cb in &self.callbacks.closed {
            cb(endpoint, reason);
        }
    }

    fn error_cbs(&self, endpoint: &Endpoint, what: &str) {
        for cb in &self.callbacks.error {
            cb(endpoint, what);
        }
    }
}

fn url_of(entry: &TopicEntry) -> Option<String> {
    entry.endpoint().map(|e| format!("ws://{e}"))
}

/// `host:port` of a `ws://host:port/path` URL.
fn authority(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("ws://")?;
    let end = rest.find('/').unwrap_or(rest.len());
    let auth = &rest[..end];
    (!auth.is_empty()).then_some(auth)
}

/// How long connecting (TCP and handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest wait between two attempts to reconnect.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

async fn connection_task<M: NetMessage>(shared: Arc<Shared<M>>, endpoint: Arc<Endpoint>) {
    let mut delay = shared.reconnect_delay;
    let mut stop = shared.stop.subscribe();
    loop {
        if !shared.keep_going(&endpoint.url) {
            return;
        }
        let started = Instant::now();
        match connect(&shared, &endpoint).await {
            Ok(ws) => {
                bump(&shared.counters.connections_opened);
                for cb in &shared.callbacks.opened {
                    cb(&endpoint);
                }
                tracing::debug!(url = %endpoint.url, "connected");
                let reason = read_loop(&shared, &endpoint, ws).await;
                tracing::debug!(url = %endpoint.url, ?reason, "connection closed");
                shared.close_cbs(&endpoint, &reason);
                if reason == CloseReason::Stopped {
                    shared.keep_going(&endpoint.url);
                    return;
                }
                if started.elapsed() > MAX_RECONNECT_DELAY {
                    delay = shared.reconnect_delay;
                }
            }
            Err(what) => {
                bump(&shared.counters.connect_failures);
                tracing::debug!(url = %endpoint.url, "connect failed: {what}");
                shared.error_cbs(&endpoint, &what);
            }
        }
        tokio::select! {
            () = super::stopped(&mut stop) => {}
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_RECONNECT_DELAY);
    }
}

async fn connect<M: NetMessage>(shared: &Shared<M>, endpoint: &Endpoint) -> Result<WsConn, String> {
    let auth = authority(&endpoint.url).ok_or_else(|| format!("bad url {}", endpoint.url))?;
    let attempt = async {
        let tcp = TcpStream::connect(auth).await.map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let mut request = endpoint
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| e.to_string())?;
        if let Some(secret) = &shared.secret {
            let token = secret.websocket_token(request.uri().path(), random_nonce(), unix_ms());
            let value = token.parse().map_err(|_| "token is not a header value")?;
            request.headers_mut().insert(AUTH_HEADER, value);
        }
        let (ws, _) = tokio_tungstenite::client_async_with_config(
            request,
            HandshakeIo { tcp, matched: 0 },
            Some(ws_config(shared.max_message_size)),
        )
        .await
        .map_err(|e| e.to_string())?;
        // Nothing past the response head was read: the frames that follow
        // are all still in the socket, for the read loop.
        let tcp = ws.into_inner().tcp;
        Ok(WsConn {
            tcp,
            reader: WsReader::new(shared.max_message_size.saturating_add(FRAME_HEADER_LEN)),
        })
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| "connect timed out".to_owned())?
}

async fn read_loop<M: NetMessage>(
    shared: &Shared<M>,
    endpoint: &Arc<Endpoint>,
    mut conn: WsConn,
) -> CloseReason {
    let mut stop = shared.stop.subscribe();
    // One future for the connection's life: a new one per read would
    // register and unregister a waiter (two lock round trips) each time.
    let stopped = super::stopped(&mut stop);
    tokio::pin!(stopped);
    let mut state = ReadState {
        bad: 0,
        next_sequence: None,
        frames: 0,
        received: Tally {
            counter: &shared.counters.received,
            n: 0,
        },
    };
    // One timer for the connection, re-armed only when it fires after
    // traffic: a timer per frame would cost more than the frame.
    let keepalive = tokio::time::sleep(shared.keepalive_timeout);
    tokio::pin!(keepalive);
    let mut frames_when_armed = 0u64;
    loop {
        // Every message already read (in a plain function, so that the hot
        // loop's state lives in registers, not in this future), then one
        // read for more.
        loop {
            match read_frames(shared, endpoint, &mut conn.reader, &mut state) {
                Next::Read => break,
                Next::Stream(message) => {
                    state.received.flush();
                    if let Some(tx) = &shared.stream {
                        // Back-pressure: a full stream slows this connection
                        // down.
                        let _ = tx.send((Arc::clone(endpoint), message)).await;
                    }
                }
                Next::Ping(payload) => {
                    if let Err(e) = conn.send_control(opcode::PONG, &payload).await {
                        let what = e.to_string();
                        shared.error_cbs(endpoint, &what);
                        return CloseReason::Error(what);
                    }
                }
                Next::Close(payload) => {
                    conn.close(&payload).await;
                    return CloseReason::Closed;
                }
                Next::Failed(what) => {
                    shared.error_cbs(endpoint, &what);
                    conn.close(&[]).await;
                    return CloseReason::Error(what);
                }
                Next::TooManyBad => {
                    bump(&shared.counters.closed_for_bad_frames);
                    conn.close(&[]).await;
                    return CloseReason::BadFrames;
                }
            }
        }
        state.received.flush();
        tokio::select! {
            biased;
            () = &mut stopped => {
                conn.close(&[]).await;
                return CloseReason::Stopped;
            }
            read = conn.reader.fill(&mut conn.tcp) => match read {
                Ok(0) => {
                    let what = "WebSocket protocol error: Connection reset without closing handshake";
                    shared.error_cbs(endpoint, what);
                    return CloseReason::Error(what.into());
                }
                Ok(_) => {}
                Err(e) => {
                    let what = e.to_string();
                    shared.error_cbs(endpoint, &what);
                    return CloseReason::Error(what);
                }
            },
            () = &mut keepalive => {
                if state.frames == frames_when_armed {
                    return CloseReason::Silent;
                }
                frames_when_armed = state.frames;
                keepalive
                    .as_mut()
                    .reset(tokio::time::Instant::now() + shared.keepalive_timeout);
            }
        }
    }
}

/// A connection's reading state between reads.
struct ReadState<'a> {
    /// Bad frames so far.
    bad: u32,
    /// The sequence number the next frame should carry.
    next_sequence: Option<u64>,
    /// Frames read (what the keep-alive watches).
    frames: u64,
    received: Tally<'a>,
}

/// What the read loop does after [`read_frames`].
enum Next<M> {
    /// Every whole frame read was handled: read more.
    Read,
    /// A message for the stream (then on with the frames).
    Stream(M),
    /// Answer a ping.
    Ping(Bytes),
    /// The publisher closed: answer with this payload.
    Close(Bytes),
    /// The connection cannot go on (a protocol error, a message too long).
    Failed(String),
    /// One bad frame more than `max_bad_frames`.
    TooManyBad,
}

/// Handles the frames already read, up to the first that needs the
/// socket or the stream (which the caller awaits).
fn read_frames<M: NetMessage>(
    shared: &Shared<M>,
    endpoint: &Arc<Endpoint>,
    reader: &mut WsReader,
    state: &mut ReadState<'_>,
) -> Next<M> {
    // The message lent to the callbacks for the previous frame, to decode
    // the next one into (dropped on return, before the buffer is read
    // into again).
    let mut reuse = None;
    loop {
        let event = match reader.next() {
            Ok(Some(event)) => event,
            Ok(None) => return Next::Read,
            Err(WsReadError::Protocol(rule)) => {
                return Next::Failed(format!("WebSocket protocol error: {rule}"));
            }
            Err(WsReadError::TooLong { size, max }) => {
                bump(&shared.counters.oversized);
                return Next::Failed(format!(
                    "Space limit exceeded: Message too long: {size} > {max}"
                ));
            }
        };
        state.frames += 1;
        let delivered = match event {
            WsEvent::Binary(range) => {
                deliver(shared, endpoint, &reader.data, range, state, &mut reuse)
            }
            WsEvent::Assembled(bytes) => {
                let all = 0..bytes.len();
                deliver(shared, endpoint, &bytes, all, state, &mut reuse)
            }
            WsEvent::Text => {
                bump(&shared.counters.text_frames);
                Err(())
            }
            WsEvent::Ping(payload) => return Next::Ping(payload),
            WsEvent::Pong => continue,
            WsEvent::Close(payload) => return Next::Close(payload),
        };
        match delivered {
            Ok(Some(message)) => return Next::Stream(message),
            Ok(None) => {}
            Err(()) => {
                state.bad += 1;
                if state.bad > shared.max_bad_frames {
                    return Next::TooManyBad;
                }
            }
        }
    }
}

/// Messages delivered and not yet added to their counter: added once per
/// read (and when dropped), not once per message.
struct Tally<'a> {
    counter: &'a AtomicU64,
    n: u64,
}

impl Tally<'_> {
    fn flush(&mut self) {
        if self.n > 0 {
            self.counter
                .fetch_add(std::mem::take(&mut self.n), Ordering::Relaxed);
        }
    }
}

impl Drop for Tally<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Checks the frame at `range` of `buffer` and calls the message
/// callbacks; returns the message when a stream is to get it too (`Err`:
/// a bad frame, counted). Without a stream a message that can be decoded
/// again in place ([`NetMessage::LENT`]) is only lent to the callbacks,
/// decoded into `reuse` ([`NetMessage::decode_reusing`]).
fn deliver<M: NetMessage>(
    shared: &Shared<M>,
    endpoint: &Arc<Endpoint>,
    buffer: &Bytes,
    range: Range<usize>,
    state: &mut ReadState<'_>,
    reuse: &mut Option<M>,
) -> Result<Option<M>, ()> {
    let c = &shared.counters;
    let bytes = buffer.get(range.clone()).unwrap_or_default();
    let header =
        match FrameHeader::parse_expecting(bytes, shared.max_message_size, shared.fingerprint) {
            Ok((header, _)) => header,
            Err(e) => {
                match e {
                    FrameError::TooLarge { .. } => bump(&c.oversized),
                    FrameError::Fingerprint { .. } => bump(&c.wrong_fingerprint),
                    _ => bump(&c.bad_frames),
                }
                tracing::debug!(url = %endpoint.url, "frame dropped: {e}");
                return Err(());
            }
        };
    let payload = bytes.get(super::FRAME_HEADER_LEN..).unwrap_or_default();
    let undecodable = |e: crate::wire::WireError| {
        bump(&c.undecodable);
        tracing::debug!(url = %endpoint.url, "payload dropped: {e}");
    };
    // A message decoded again in place for the next frame (a raw one) is
    // only lent; any other is decoded on the stack, as before, and moves
    // on to the stream if there is one.
    if M::LENT && shared.stream.is_none() {
        let message = M::decode_reusing(reuse, buffer, range).map_err(undecodable)?;
        delivered(shared, endpoint, header, payload, message, state);
        return Ok(None);
    }
    let message = M::decode_in(buffer, range).map_err(undecodable)?;
    delivered(shared, endpoint, header, payload, &message, state);
    Ok(shared.stream.as_ref().map(|_| message))
}

/// Counts a decoded message (and the sequence numbers it skipped) and
/// calls the message callbacks.
#[inline]
fn delivered<M: NetMessage>(
    shared: &Shared<M>,
    endpoint: &Arc<Endpoint>,
    header: FrameHeader,
    payload: &[u8],
    message: &M,
    state: &mut ReadState<'_>,
) {
    let c = &shared.counters;
    if let Some(expected) = state.next_sequence {
        if header.sequence > expected {
            c.missed
                .fetch_add(header.sequence - expected, Ordering::Relaxed);
        }
    }
    state.next_sequence = Some(header.sequence.wrapping_add(1));
    state.received.n += 1;
    if !shared.callbacks.message.is_empty() {
        let delivery = Delivery {
            endpoint,
            header,
            bytes: payload,
            message,
        };
        for cb in &shared.callbacks.message {
            cb(&delivery);
        }
    }
}

async fn idle_watch<M: NetMessage>(shared: Arc<Shared<M>>, idle: Duration) {
    let mut stop = shared.stop.subscribe();
    // Compares the message count between checks, so receiving costs no
    // clock read.
    let mut last_count = 0;
    let mut quiet_since = Instant::now();
    let mut fired = false;
    let tick = (idle / 4).max(Duration::from_millis(1));
    loop {
        tokio::select! {
            () = super::stopped(&mut stop) => return,
            () = tokio::time::sleep(tick) => {}
        }
        let count = shared.counters.received.load(Ordering::Relaxed);
        if count != last_count {
            last_count = count;
            quiet_since = Instant::now();
            fired = false;
        } else if !fired && quiet_since.elapsed() >= idle {
            fired = true;
            bump(&shared.counters.idle_timeouts);
            for cb in &shared.callbacks.idle {
                cb();
            }
            if shared.stop_on_idle {
                shared.stopped.store(true, Ordering::Relaxed);
                shared.stop.send_replace(true);
                return;
            }
        }
    }
}

/// Configures a [`NetSubscriber`]: topics or endpoints, callbacks, limits.
#[must_use]
pub struct NetSubscriberBuilder<M> {
    topics: Vec<String>,
    endpoints: Vec<String>,
    fingerprint: Option<u64>,
    discovery: Option<DiscoveryConfig>,
    secret: Option<NetSecret>,
    runtime: Option<NetRuntime>,
    max_message_size: usize,
    max_bad_frames: u32,
    keepalive_timeout: Duration,
    reconnect_delay: Duration,
    idle_timeout: Option<Duration>,
    stop_on_idle: bool,
    stream_capacity: Option<usize>,
    callbacks: Callbacks<M>,
    _type: PhantomData<fn() -> M>,
}

impl<M: NetMessage> NetSubscriberBuilder<M> {
    fn new(fingerprint: Option<u64>) -> Self {
        NetSubscriberBuilder {
            topics: Vec::new(),
            endpoints: Vec::new(),
            fingerprint,
            discovery: None,
            secret: None,
            runtime: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_bad_frames: 16,
            keepalive_timeout: Duration::from_secs(10),
            reconnect_delay: Duration::from_millis(50),
            idle_timeout: None,
            stop_on_idle: false,
            stream_capacity: None,
            callbacks: Callbacks {
                message: Vec::new(),
                announcement: Vec::new(),
                opened: Vec::new(),
                closed: Vec::new(),
                error: Vec::new(),
                idle: Vec::new(),
            },
            _type: PhantomData,
        }
    }

    /// Follows topic `name` through discovery: connects to every publisher
    /// that announces it (with the expected fingerprint).
    pub fn topic(mut self, name: &str) -> Self {
        self.topics.push(name.to_owned());
        self
    }

    /// Presents a token derived from `secret` in every handshake, as
    /// publishers with the same secret require. Without this call, the
    /// secret of the [`discovery`](Self::discovery) configuration, if any,
    /// is used.
    pub fn secret(mut self, secret: NetSecret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Connects to `url` (`ws://host:port/path`) without discovery, and
    /// reconnects to it until stopped.
    pub fn endpoint(mut self, url: &str) -> Self {
        self.endpoints.push(url.to_owned());
        self
    }

    /// The discovery configuration used for topics (default
    /// [`DiscoveryConfig::default`]).
    pub fn discovery(mut self, config: DiscoveryConfig) -> Self {
        self.discovery = Some(config);
        self
    }

    /// The runtime (default: the current one, else one of its own).
    pub fn runtime(mut self, runtime: NetRuntime) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Largest payload accepted (default 16 MiB); larger frames are refused
    /// by the websocket layer before they are buffered.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Bad frames (header, fingerprint, payload) a connection may send
    /// before it is closed (default 16).
    pub fn max_bad_frames(mut self, n: u32) -> Self {
        self.max_bad_frames = n;
        self
    }

    /// Closes (and reconnects) a connection on which nothing arrived, not
    /// even a ping, for `timeout` (default 10 s; publishers ping every 2 s).
    pub fn keepalive_timeout(mut self, timeout: Duration) -> Self {
        self.keepalive_timeout = timeout;
        self
    }

    /// Calls the idle callbacks when no message arrived for `timeout`; with
    /// `stop`, the subscriber then stops (its stream ends).
    pub fn idle_timeout(mut self, timeout: Duration, stop: bool) -> Self {
        self.idle_timeout = Some(timeout);
        self.stop_on_idle = stop;
        self
    }

    /// Keeps messages for [`NetSubscriber::stream`] too, up to `capacity`
    /// waiting (a full stream slows the connections down).
    pub fn with_stream(mut self, capacity: usize) -> Self {
        self.stream_capacity = Some(capacity.max(1));
        self
    }

    /// Calls `f` with every message (on a runtime thread; keep it short).
    pub fn on_message(mut self, f: impl Fn(&Delivery<'_, M>) + Send + Sync + 'static) -> Self {
        self.callbacks.message.push(Box::new(f));
        self
    }

    /// Calls `f` with every matching announcement of a publisher.
    pub fn on_announcement(mut self, f: impl Fn(&TopicEntry) + Send + Sync + 'static) -> Self {
        self.callbacks.announcement.push(Box::new(f));
        self
    }

    /// Calls `f` when a connection opens.
    pub fn on_connect(mut self, f: impl Fn(&Endpoint) + Send + Sync + 'static) -> Self {
        self.callbacks.opened.push(Box::new(f));
        self
    }

    /// Calls `f` when a connection closes.
    pub fn on_disconnect(
        mut self,
        f: impl Fn(&Endpoint, &CloseReason) + Send + Sync + 'static,
    ) -> Self {
        self.callbacks.closed.push(Box::new(f));
        self
    }

    /// Calls `f` with connection errors.
    pub fn on_error(mut self, f: impl Fn(&Endpoint, &str) + Send + Sync + 'static) -> Self {
        self.callbacks.error.push(Box::new(f));
        self
    }

    /// Calls `f` on an idle timeout.
    pub fn on_idle(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.callbacks.idle.push(Box::new(f));
        self
    }

    /// Starts: discovery (if there are topics), connections, the idle
    /// watch.
    ///
    /// # Errors
    ///
    /// [`NetStartError::NothingToConnect`], [`NetStartError::Endpoint`],
    /// [`NetStartError::Discovery`], [`NetStartError::Runtime`].
    pub fn start(self) -> Result<NetSubscriber<M>, NetStartError> {
        if self.topics.is_empty() && self.endpoints.is_empty() {
            return Err(NetStartError::NothingToConnect);
        }
        if let Some(bad) = self.endpoints.iter().find(|u| authority(u).is_none()) {
            return Err(NetStartError::Endpoint(bad.clone()));
        }
        let runtime = match self.runtime {
            Some(rt) => rt,
            None => NetRuntime::current_or_start()?,
        };
        let (tx, rx) = match self.stream_capacity {
            Some(n) => {
                let (tx, rx) = mpsc::channel(n);
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let shared = Arc::new(Shared {
            topics: self.topics,
            fingerprint: self.fingerprint,
            max_message_size: self.max_message_size,
            max_bad_frames: self.max_bad_frames,
            keepalive_timeout: self.keepalive_timeout,
            reconnect_delay: self.reconnect_delay,
            idle_timeout: self.idle_timeout,
            stop_on_idle: self.stop_on_idle,
            callbacks: self.callbacks,
            stream: tx,
            endpoints: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            stopped: AtomicBool::new(false),
            stop: tokio::sync::watch::channel(false).0,
            runtime: runtime.clone(),
            secret: self
                .secret
                .or_else(|| self.discovery.as_ref().and_then(|c| c.secret.clone())),
        });
        for url in self.endpoints {
            shared.want(url, None);
        }
        let discovery = if shared.topics.is_empty() {
            None
        } else {
            let mut builder = Discovery::builder(self.discovery.unwrap_or_default());
            if let Some(fp) = shared.fingerprint {
                for topic in &shared.topics {
                    builder = builder.watch(topic, fp);
                }
            }
            // A weak reference: the discovery thread must not keep the
            // subscriber alive.
            let weak = Arc::downgrade(&shared);
            builder = builder.on_event(move |event| {
                if let Some(shared) = weak.upgrade() {
                    shared.on_discovery(event);
                }
            });
            let discovery = builder.start()?;
            // Topics already known (none yet in practice: the thread just
            // started, but a watch may report at once).
            for entry in discovery.connectable_topics() {
                shared.on_discovery(&DiscoveryEvent::TopicAppeared(entry));
            }
            Some(discovery)
        };
        if let Some(idle) = shared.idle_timeout {
            runtime
                .handle()
                .spawn(idle_watch(Arc::clone(&shared), idle));
        }
        Ok(NetSubscriber {
            shared,
            discovery,
            stream: Mutex::new(rx),
        })
    }
}

/// Receives one or more topics from every publisher of them.
///
/// ```no_run
/// use shmidl::net::{DiscoveryConfig, NetSubscriber};
/// # #[derive(shmidl::ShmMessage, Clone, Copy, Debug)]
/// # #[repr(C)]
/// # #[shm(name = "demo.Tick")]
/// # struct Tick { n: u64 }
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let subscriber = NetSubscriber::typed::<Tick>()
///     .topic("demo/tick")
///     .discovery(DiscoveryConfig::default())
///     .on_message(|d| eprintln!("{} from {}", d.message.n, d.endpoint.url))
///     .start()?;
/// # drop(subscriber);
/// # Ok(())
/// # }
/// ```
pub struct NetSubscriber<M> {
    shared: Arc<Shared<M>>,
    discovery: Option<Discovery>,
    stream: Mutex<Option<Inbox<M>>>,
}

impl NetSubscriber<RawMessage> {
    /// A builder for an untyped subscriber of frames with `fingerprint`
    /// (`None`: any type; the payload is not decoded).
    pub fn raw(fingerprint: Option<u64>) -> NetSubscriberBuilder<RawMessage> {
        NetSubscriberBuilder::new(fingerprint)
    }
}

impl NetSubscriber<()> {
    /// A builder for a subscriber of `T` messages: frames must carry
    /// `T::FINGERPRINT` and payloads are decoded and validated.
    pub fn typed<T: ShmMessage + Send + 'static>() -> NetSubscriberBuilder<T> {
        NetSubscriberBuilder::new(Some(T::FINGERPRINT))
    }
}

impl<M: NetMessage> NetSubscriber<M> {
    /// The async stream of messages (only with
    /// [`with_stream`](NetSubscriberBuilder::with_stream); the first call
    /// takes it, later ones get `None`).
    pub fn stream(&self) -> Option<NetStream<M>> {
        self.stream
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .map(|rx| NetStream { rx })
    }

    /// Endpoints connected or being connected to.
    pub fn endpoints(&self) -> Vec<String> {
        let map = self.shared.endpoints();
        map.iter()
            .filter(|(_, w)| w.running)
            .map(|(u, _)| u.clone())
            .collect()
    }

    /// Connects to `url` as well.
    ///
    /// # Errors
    ///
    /// [`NetStartError::Endpoint`] for a URL that is not `ws://host:port/…`.
    pub fn connect(&self, url: &str) -> Result<(), NetStartError> {
        if authority(url).is_none() {
            return Err(NetStartError::Endpoint(url.to_owned()));
        }
        self.shared.want(url.to_owned(), None);
        Ok(())
    }

    /// The discovery listener, when following topics.
    pub fn discovery(&self) -> Option<&Discovery> {
        self.discovery.as_ref()
    }

    /// Whether it stopped (after an idle timeout with `stop`).
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Relaxed)
    }

    /// The counters. `received` lags the message callbacks by at most the
    /// batch of frames being delivered (see [`SubscriberStats::received`]).
    pub fn stats(&self) -> SubscriberStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SubscriberStats {
            received: get(&c.received),
            missed: get(&c.missed),
            bad_frames: get(&c.bad_frames),
            oversized: get(&c.oversized),
            wrong_fingerprint: get(&c.wrong_fingerprint),
            undecodable: get(&c.undecodable),
            text_frames: get(&c.text_frames),
            connections_opened: get(&c.connections_opened),
            connections_closed: get(&c.connections_closed),
            closed_for_bad_frames: get(&c.closed_for_bad_frames),
            connect_failures: get(&c.connect_failures),
            idle_timeouts: get(&c.idle_timeouts),
        }
    }

    /// Stops: closes every connection and the discovery listener.
    /// Dropping does the same.
    pub fn shutdown(self) {}
}

impl<M> Drop for NetSubscriber<M> {
    fn drop(&mut self) {
        self.discovery.take();
        self.shared.stopped.store(true, Ordering::Relaxed);
        self.shared.stop.send_replace(true);
    }
}

impl<M> fmt::Debug for NetSubscriber<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetSubscriber")
            .field("topics", &self.shared.topics)
            .finish_non_exhaustive()
    }
}

/// Messages of a [`NetSubscriber`] as an async stream of `(endpoint,
/// message)`; it ends when the subscriber stops.
pub struct NetStream<M> {
    rx: mpsc::Receiver<(Arc<Endpoint>, M)>,
}

impl<M> NetStream<M> {
    /// The next message; `None` once the subscriber has stopped.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped future loses no message.
    pub async fn recv(&mut self) -> Option<(Arc<Endpoint>, M)> {
        self.rx.recv().await
    }
}

impl<M> Stream for NetStream<M> {
    type Item = (Arc<Endpoint>, M);
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl<M> fmt::Debug for NetStream<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetStream").finish_non_exhaustive()
    }
}
