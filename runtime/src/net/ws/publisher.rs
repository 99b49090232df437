//! The sending side: a websocket server for one topic; the frames sent
//! wait in the publisher's outbox (`outbox.rs`), at most a queue's worth
//! per connection under its slow-receiver policy, and go out in batches.
//! No write waits without limit: one that a subscriber's socket does not
//! take within the pong timeout (a close: `CLOSE_GRACE`) ends the
//! connection.

use crate::net::{auth::unix_ms, NetSecret, NonceGuard, DEFAULT_WINDOW_MS};

use super::AUTH_HEADER;
use std::{
    fmt,
    marker::PhantomData,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    time::{Duration, Instant},
};

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tokio_tungstenite::tungstenite::{
    handshake::server::{ErrorResponse, Request, Response},
    http::StatusCode,
    Bytes, Message,
};

use super::outbox::{Client, Completion, DoneCallback, Frames, Outbox};
use super::{
    frame::{now_ns, ws_binary_header, FrameHeader, FRAME_HEADER_LEN, WS_HEADER_MAX},
    origin_id, ws_config, NetRuntime, NetSendError, NetStartError, DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_PING_INTERVAL, DEFAULT_PONG_TIMEOUT,
};
use crate::{
    net::{AnnouncedTopic, Announcer, DiscoveryConfig, Role},
    wire, ShmMessage,
};

/// What a publisher does when a connection's queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowPolicy {
    /// The sender waits up to this long for room; then the oldest message
    /// queued for that connection is dropped to make room (counted as
    /// `dropped_timeout`), so a connection that stopped reading holds at
    /// most its queue's worth.
    Wait(Duration),
    /// The oldest queued message is dropped (`dropped_oldest`).
    DropOldest,
    /// The connection is closed (`disconnected_slow`).
    Disconnect,
}

/// What happened to one message sent with [`NetPublisher::send_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendOutcome {
    /// Connections it was queued for.
    pub connections: usize,
    /// Connections it was written (and flushed) to.
    pub written: usize,
}

/// One connection of a publisher ([`NetPublisher::connection_stats`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionStats {
    /// The subscriber's address.
    pub peer: SocketAddr,
    /// Frames written to it.
    pub written: u64,
    /// Messages dropped for it: its queue was full under
    /// [`SlowPolicy::Wait`] (after the wait) or [`SlowPolicy::DropOldest`].
    pub dropped: u64,
    /// Frames queued for it now.
    pub queued: usize,
}

/// Counters of a publisher.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublisherStats {
    /// Messages sent (calls to `send` that succeeded).
    pub sent: u64,
    /// Frames written to connections.
    pub written: u64,
    /// Write batches (one flush each).
    pub batches: u64,
    /// Connections open now.
    pub connections: usize,
    /// Connections accepted since the start.
    pub accepted: u64,
    /// Upgrade requests refused (wrong path, bad handshake).
    pub refused: u64,
    /// Upgrade requests refused for a missing, wrong, stale or replayed
    /// token (with a secret; also counted in `refused`).
    pub unauthorized: u64,
    /// Messages dropped for a connection after waiting ([`SlowPolicy::Wait`]).
    pub dropped_timeout: u64,
    /// Queued messages dropped to make room ([`SlowPolicy::DropOldest`]).
    pub dropped_oldest: u64,
    /// Connections closed because their queue was full ([`SlowPolicy::Disconnect`]).
    pub disconnected_slow: u64,
    /// Connections closed because no pong came in time, or because a write
    /// to them waited that long (the subscriber stopped reading).
    pub ping_timeouts: u64,
    /// Connections ended by a write or read error.
    pub io_errors: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    written: AtomicU64,
    batches: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    unauthorized: AtomicU64,
    dropped_timeout: AtomicU64,
    dropped_oldest: AtomicU64,
    disconnected_slow: AtomicU64,
    ping_timeouts: AtomicU64,
    io_errors: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

struct Shared {
    topic: String,
    fingerprint: u64,
    origin: u64,
    capacity: usize,
    policy: SlowPolicy,
    max_message_size: usize,
    batch: usize,
    ping_interval: Duration,
    pong_timeout: Duration,
    /// The frames sent and not yet taken by every connection, and the
    /// connections and their places in them (its lock also serialises
    /// sends, so each connection gets messages in sequence order).
    outbox: Outbox,
    counters: Counters,
    /// Set when stopping (what `send` checks: cheaper than `stop`'s lock).
    stopping: AtomicBool,
    stop: watch::Sender<bool>,
    /// With a secret: the key, and the nonces of tokens already used.
    auth: Option<(NetSecret, Mutex<NonceGuard>)>,
}

impl Shared {
    /// Applies the slow-receiver policy to every connection whose queue
    /// is full, before a frame is appended; returns the guard (released
    /// while waiting) and whether it waited. Writers to wake (of
    /// connections closed as slow) are added to `wake`, completions let go
    /// of to `released`.
    fn make_room<'a>(
        &'a self,
        mut frames: MutexGuard<'a, Frames>,
        wake: &mut Vec<Arc<Client>>,
        released: &mut Vec<Arc<Completion>>,
    ) -> (MutexGuard<'a, Frames>, bool) {
        let mut waited = false;
        let capacity = self.capacity;
        // Under `Wait`: when this send's wait for each connection ends (one
        // timeout per full queue, however often others fill it again).
        let mut deadlines: Vec<(u64, Instant)> = Vec::new();
        while let Some(slot) = frames.full(capacity) {
            let Some(client) = frames.client(slot).map(Arc::clone) else {
                break;
            };
            match self.policy {
                SlowPolicy::DropOldest => {
                    if frames.drop_oldest(slot, released) {
                        bump(&self.counters.dropped_oldest);
                        bump(&client.dropped);
                    }
                }
                SlowPolicy::Disconnect => {
                    bump(&self.counters.disconnected_slow);
                    tracing::debug!(topic = %self.topic, peer = %client.peer, "closing a slow connection");
                    if let Some(client) = frames.close(slot, released) {
                        wake.push(client);
                    }
                }
                SlowPolicy::Wait(timeout) => {
                    let deadline = match deadlines.iter().find(|(id, _)| *id == client.id) {
                        Some((_, deadline)) => *deadline,
                        None => {
                            let deadline = Instant::now() + timeout;
                            deadlines.push((client.id, deadline));
                            deadline
                        }
                    };
                    waited = true;
                    let (guard, room) = self
                        .outbox
                        .wait_for_room(frames, &client, capacity, deadline);
                    frames = guard;
                    if !room && frames.drop_oldest(slot, released) {
                        bump(&self.counters.dropped_timeout);
                        bump(&client.dropped);
                        // Room now, which other senders waiting on this
                        // queue (with later deadlines) are owed.
                        self.outbox.space.notify_all();
                    }
                }
            }
        }
        (frames, waited)
    }
}

/// Configures a [`NetPublisher`].
#[must_use]
pub struct NetPublisherBuilder {
    topic: String,
    bind: SocketAddr,
    path: Option<String>,
    capacity: usize,
    policy: SlowPolicy,
    max_message_size: usize,
    batch: usize,
    ping_interval: Duration,
    pong_timeout: Duration,
    announce: Option<DiscoveryConfig>,
    runtime: Option<NetRuntime>,
    secret: Option<NetSecret>,
}

impl NetPublisherBuilder {
    /// Admits only subscribers that present a token derived from `secret`
    /// in their handshake (`docs/security.md`); others are refused (HTTP
    /// 401) and counted (`unauthorized`). Without this call, the secret of
    /// the [`announce`](Self::announce) configuration, if any, is used.
    pub fn secret(mut self, secret: NetSecret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// The address and port to listen on (default `0.0.0.0:0`: every
    /// interface, any free port; [`NetPublisher::local_addr`] tells which).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// The websocket path (default `/<topic>`). Upgrade requests for any
    /// other path are refused with 404.
    pub fn path(mut self, path: &str) -> Self {
        self.path = Some(path.to_owned());
        self
    }

    /// Frames each connection may have queued (default 1,024).
    pub fn queue_capacity(mut self, frames: usize) -> Self {
        self.capacity = frames.max(1);
        self
    }

    /// What to do with a connection whose queue is full (default
    /// `Wait(1 s)`).
    pub fn slow_policy(mut self, policy: SlowPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Largest payload `send` accepts (default 16 MiB).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Most frames written between two flushes (default 256).
    pub fn batch(mut self, frames: usize) -> Self {
        self.batch = frames.max(1);
        self
    }

    /// Ping every `interval`; close a connection that has not answered a
    /// ping within `timeout` (defaults 2 s and 6 s).
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.ping_interval = interval.max(Duration::from_millis(1));
        self.pong_timeout = timeout;
        self
    }

    /// Announces the topic through discovery with this configuration,
    /// with the real port and the path.
    pub fn announce(mut self, config: DiscoveryConfig) -> Self {
        self.announce = Some(config);
        self
    }

    /// The runtime to run on (default: the current one if called inside a
    /// tokio runtime, else one of its own with 2 worker threads).
    pub fn runtime(mut self, runtime: NetRuntime) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Starts an untyped publisher whose frames carry `fingerprint`
    /// (announced with `type_name`).
    ///
    /// # Errors
    ///
    /// [`NetStartError::Bind`] when the address cannot be bound,
    /// [`NetStartError::Runtime`]/[`NetStartError::Discovery`].
    pub fn start_raw(
        self,
        type_name: &str,
        fingerprint: u64,
    ) -> Result<NetPublisher, NetStartError> {
        let runtime = match self.runtime {
            Some(rt) => rt,
            None => NetRuntime::current_or_start()?,
        };
        let bind = self.bind;
        let std_listener = std::net::TcpListener::bind(bind)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| NetStartError::Bind { addr: bind, source })?;
        let local_addr = std_listener
            .local_addr()
            .map_err(|source| NetStartError::Bind { addr: bind, source })?;
        let listener = {
            let _guard = runtime.handle().enter();
            TcpListener::from_std(std_listener)
                .map_err(|source| NetStartError::Bind { addr: bind, source })?
        };
        let path = self.path.unwrap_or_else(|| format!("/{}", self.topic));
        let secret = self
            .secret
            .or_else(|| self.announce.as_ref().and_then(|c| c.secret.clone()));
        let announcer = match self.announce {
            Some(config) => {
                let topic = AnnouncedTopic {
                    name: self.topic.clone(),
                    type_name: type_name.to_owned(),
                    fingerprint,
                    role: Role::Publisher,
                    ws_port: local_addr.port(),
                    ws_path: path.clone(),
                };
                Some(Announcer::start(config, vec![topic])?)
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            topic: self.topic,
            fingerprint,
            origin: origin_id(),
            capacity: self.capacity,
            policy: self.policy,
            max_message_size: self.max_message_size,
            batch: self.batch,
            ping_interval: self.ping_interval,
            pong_timeout: self.pong_timeout,
            outbox: Outbox::new(),
            counters: Counters::default(),
            stopping: AtomicBool::new(false),
            stop: watch::channel(false).0,
            auth: secret.map(|s| (s, Mutex::new(NonceGuard::new(DEFAULT_WINDOW_MS)))),
        });
        runtime
            .handle()
            .spawn(accept_loop(Arc::clone(&shared), listener, path.clone()));
        tracing::debug!(topic = %shared.topic, %local_addr, %path, "websocket publisher started");
        Ok(NetPublisher {
            shared,
            local_addr,
            path,
            announcer,
            runtime,
        })
    }

    /// Starts a publisher of `T` messages.
    ///
    /// # Errors
    ///
    /// As [`start_raw`](NetPublisherBuilder::start_raw).
    pub fn start<T: ShmMessage>(self) -> Result<TypedNetPublisher<T>, NetStartError> {
        Ok(TypedNetPublisher {
            inner: self.start_raw(T::TYPE_NAME, T::FINGERPRINT)?,
            _type: PhantomData,
        })
    }
}

/// Serves one topic over websockets to every subscriber that connects.
///
/// ```no_run
/// use shmidl::net::{DiscoveryConfig, NetPublisher, SlowPolicy};
/// # #[derive(shmidl::ShmMessage, Clone, Copy)]
/// # #[repr(C)]
/// # #[shm(name = "demo.Tick")]
/// # struct Tick { n: u64 }
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let publisher = NetPublisher::builder("demo/tick")
///     .slow_policy(SlowPolicy::DropOldest)
///     .announce(DiscoveryConfig::default())
///     .start::<Tick>()?;
/// publisher.send(&Tick { n: 1 })?;
/// # Ok(())
/// # }
/// ```
pub struct NetPublisher {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    path: String,
    announcer: Option<Announcer>,
    runtime: NetRuntime,
}

impl NetPublisher {
    /// A builder for topic `topic`.
    pub fn builder(topic: &str) -> NetPublisherBuilder {
        NetPublisherBuilder {
            topic: topic.to_owned(),
            bind: SocketAddr::from(([0, 0, 0, 0], 0)),
            path: None,
            capacity: 1024,
            policy: SlowPolicy::Wait(Duration::from_secs(1)),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            batch: 256,
            ping_interval: DEFAULT_PING_INTERVAL,
            pong_timeout: DEFAULT_PONG_TIMEOUT,
            announce: None,
            secret: None,
            runtime: None,
        }
    }

    /// The address the server listens on (with the real port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The websocket path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `ws://<local address>/<path>` (with `127.0.0.1` for a wildcard
    /// address).
    pub fn url(&self) -> String {
        let mut addr = self.local_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("ws://{addr}{}", self.path)
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.shared.topic
    }

    /// The fingerprint frames carry.
    pub fn fingerprint(&self) -> u64 {
        self.shared.fingerprint
    }

    /// The runtime it runs on.
    pub fn runtime(&self) -> &NetRuntime {
        &self.runtime
    }

    /// The announcer, if the topic is announced.
    pub fn announcer(&self) -> Option<&Announcer> {
        self.announcer.as_ref()
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.shared.outbox.lock().connections().count()
    }

    /// Each open connection: its subscriber's address, frames written to it,
    /// messages dropped for it, frames queued for it now.
    pub fn connection_stats(&self) -> Vec<ConnectionStats> {
        self.shared
            .outbox
            .lock()
            .connections()
            .map(|(c, queued)| ConnectionStats {
                peer: c.peer,
                written: c.written.load(Ordering::Relaxed),
                dropped: c.dropped.load(Ordering::Relaxed),
                queued,
            })
            .collect()
    }

    /// Sends `payload` (already wire-encoded) to every connection; returns
    /// how many it was queued for. Under [`SlowPolicy::Wait`] this blocks
    /// up to the timeout per full queue, so call it from a thread that may
    /// block (not from an async task).
    ///
    /// # Errors
    ///
    /// [`NetSendError::TooLarge`], [`NetSendError::Stopped`].
    pub fn send(&self, payload: &[u8]) -> Result<usize, NetSendError> {
        self.send_frame(payload.len(), |out| out.extend_from_slice(payload), None)
    }

    /// Like [`send`](NetPublisher::send); `on_done` is called once the
    /// message has been written to every connection it was queued for (or
    /// dropped there), by whichever thread lets go of its last copy: a
    /// runtime thread after the write, the sending thread when it was
    /// queued for none or a policy dropped it there. Keep it short.
    ///
    /// # Errors
    ///
    /// As `send` (`on_done` is then not called).
    pub fn send_with(
        &self,
        payload: &[u8],
        on_done: impl FnOnce(SendOutcome) + Send + 'static,
    ) -> Result<usize, NetSendError> {
        self.send_frame(
            payload.len(),
            |out| out.extend_from_slice(payload),
            Some(Box::new(on_done)),
        )
    }

    fn send_frame(
        &self,
        len: usize,
        write_payload: impl FnOnce(&mut BytesMut),
        on_done: Option<DoneCallback>,
    ) -> Result<usize, NetSendError> {
        let shared = &self.shared;
        if shared.stopping.load(Ordering::Relaxed) {
            return Err(NetSendError::Stopped);
        }
        let max = shared.max_message_size.min(u32::MAX as usize);
        if len > max {
            return Err(NetSendError::TooLarge { len, max });
        }
        // Allocated only when a policy acts.
        let (mut wake, mut released) = (Vec::new(), Vec::new());
        // When the frame is queued: read before the lock (to hold it
        // less), again after a wait for room.
        let mut timestamp_ns = now_ns();
        let (mut frames, waited) = shared.make_room(shared.outbox.lock(), &mut wake, &mut released);
        if waited {
            timestamp_ns = now_ns();
        }
        // Connections closed as slow (waiting senders and `drain` see it).
        let closed = !wake.is_empty();
        let header = FrameHeader {
            flags: 0,
            origin: shared.origin,
            fingerprint: shared.fingerprint,
            sequence: frames.next_sequence(),
            timestamp_ns,
            // Checked against the limit above.
            payload_len: len as u32,
        };
        // The whole websocket frame: its RFC 6455 header, our header, the
        // payload, written once whatever the number of connections; the
        // writers copy it to their sockets as it is.
        let mut ws_head = [0u8; WS_HEADER_MAX];
        let ws_len = ws_binary_header(FRAME_HEADER_LEN + len, &mut ws_head);
        let mut head = [0u8; FRAME_HEADER_LEN];
        header.write(&mut head);
        let (queued, lone) = frames.append(
            ws_len + FRAME_HEADER_LEN + len,
            |out| {
                out.extend_from_slice(&ws_head[..ws_len]);
                out.extend_from_slice(&head);
                write_payload(out);
            },
            on_done,
            &mut wake,
        );
        // Every send that gets here is counted: the count is the sequence
        // (a store, where an increment would be a locked instruction).
        shared
            .counters
            .sent
            .store(frames.next_sequence(), Ordering::Relaxed);
        drop(frames);
        // Completions run, and writers are woken, outside the lock.
        drop(lone);
        drop(released);
        if closed {
            shared.outbox.space.notify_all();
            shared.outbox.idle.notify_all();
        }
        for client in &wake {
            client.ready.notify_one();
        }
        Ok(queued)
    }

    /// Waits until every queued frame has been written and flushed, or
    /// `timeout` passed; returns whether all were. Call it before dropping
    /// a publisher whose last messages must arrive.
    pub fn drain(&self, timeout: Duration) -> bool {
        self.shared.outbox.wait_idle(Instant::now() + timeout)
    }

    /// Waits until at least `n` connections are open, or `timeout` passed;
    /// returns whether they are.
    pub fn wait_for_connections(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.connections() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The counters.
    pub fn stats(&self) -> PublisherStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PublisherStats {
            sent: get(&c.sent),
            written: get(&c.written),
            batches: get(&c.batches),
            connections: self.connections(),
            accepted: get(&c.accepted),
            refused: get(&c.refused),
            unauthorized: get(&c.unauthorized),
            dropped_timeout: get(&c.dropped_timeout),
            dropped_oldest: get(&c.dropped_oldest),
            disconnected_slow: get(&c.disconnected_slow),
            ping_timeouts: get(&c.ping_timeouts),
            io_errors: get(&c.io_errors),
        }
    }

    /// Stops: says goodbye on discovery, closes every connection with a
    /// websocket close handshake and waits up to `timeout` for them to
    /// finish; returns whether all did. Queued frames are dropped:
    /// [`drain`](NetPublisher::drain) first to keep them. Dropping stops
    /// without waiting (a connection may then be reset before its peer has
    /// read everything).
    pub fn close(mut self, timeout: Duration) -> bool {
        self.stop();
        let deadline = Instant::now() + timeout;
        while self.connections() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    fn stop(&mut self) {
        if let Some(announcer) = self.announcer.take() {
            announcer.shutdown();
        }
        self.shared.stopping.store(true, Ordering::Relaxed);
        self.shared.stop.send_replace(true);
    }
}

impl Drop for NetPublisher {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for NetPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetPublisher")
            .field("topic", &self.shared.topic)
            .field("url", &self.url())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// A [`NetPublisher`] of `T` messages: [`send`](TypedNetPublisher::send)
/// encodes with the wire codec straight into the frame.
pub struct TypedNetPublisher<T> {
    inner: NetPublisher,
    _type: PhantomData<fn(&T)>,
}

impl<T: ShmMessage> TypedNetPublisher<T> {
    /// Encodes `msg` and sends it to every connection; see
    /// [`NetPublisher::send`].
    ///
    /// # Errors
    ///
    /// As `NetPublisher::send`, and [`NetSendError::Encode`] for a type
    /// with no wire form.
    pub fn send(&self, msg: &T) -> Result<usize, NetSendError> {
        self.send_inner(msg, None)
    }

    /// Encodes and sends `msg`; `on_done` as in [`NetPublisher::send_with`].
    ///
    /// # Errors
    ///
    /// As [`send`](TypedNetPublisher::send).
    pub fn send_with(
        &self,
        msg: &T,
        on_done: impl FnOnce(SendOutcome) + Send + 'static,
    ) -> Result<usize, NetSendError> {
        self.send_inner(msg, Some(Box::new(on_done)))
    }

    fn send_inner(&self, msg: &T, on_done: Option<DoneCallback>) -> Result<usize, NetSendError> {
        // Fails only for a type with an atomic field: checked before any
        // framing, so nothing is queued (a frame whose payload was never
        // written would break the connection's stream).
        let bytes = wire::encode_ref(msg).map_err(NetSendError::Encode)?;
        self.inner
            .send_frame(bytes.len(), |out| out.extend_from_slice(bytes), on_done)
    }

    /// The untyped publisher (untyped `send`, stats, address, drain).
    pub fn raw(&self) -> &NetPublisher {
        &self.inner
    }

    /// [`NetPublisher::close`].
    pub fn close(self, timeout: Duration) -> bool {
        self.inner.close(timeout)
    }
}

impl<T> std::ops::Deref for TypedNetPublisher<T> {
    type Target = NetPublisher;
    fn deref(&self) -> &NetPublisher {
        &self.inner
    }
}

impl<T> fmt::Debug for TypedNetPublisher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, path: String) {
    let mut stop = shared.stop.subscribe();
    let path: Arc<str> = path.into();
    loop {
        tokio::select! {
            () = super::stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    tokio::spawn(serve(Arc::clone(&shared), tcp, peer, Arc::clone(&path)));
                }
                Err(e) => {
                    tracing::debug!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
}

/// How long a closing connection waits for the peer's close.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How long a client may take to finish the websocket handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn serve(shared: Arc<Shared>, tcp: TcpStream, peer: SocketAddr, path: Arc<str>) {
    let _ = tcp.set_nodelay(true);
    // The handshake callback's signature is tungstenite's.
    #[allow(clippy::result_large_err)]
    let check_path = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() != &*path {
            let mut refusal = ErrorResponse::new(Some(format!("no topic at {}", req.uri().path())));
            *refusal.status_mut() = StatusCode::NOT_FOUND;
            return Err(refusal);
        }
        if let Some((secret, nonces)) = &shared.auth {
            let token = req
                .headers()
                .get(AUTH_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let now = unix_ms();
            let checked = secret
                .check_token(token, &path, now, DEFAULT_WINDOW_MS)
                .and_then(|(nonce, ts)| {
                    nonces
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .check(nonce, ts, now)
                });
            if let Err(why) = checked {
                bump(&shared.counters.unauthorized);
                tracing::debug!(%peer, "websocket handshake unauthorized: {why}");
                let mut refusal = ErrorResponse::new(Some(format!("unauthorized: {why}")));
                *refusal.status_mut() = StatusCode::UNAUTHORIZED;
                return Err(refusal);
            }
        }
        Ok(resp)
    };
    // Subscribers send only control frames: a small limit for what they send.
    // Its read buffer is small too (the library zeroes it before each read).
    let config = ws_config(4096).read_buffer_size(4096);
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(tcp, check_path, Some(config));
    let ws = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            bump(&shared.counters.refused);
            tracing::debug!(%peer, "websocket handshake refused: {e}");
            return;
        }
        Err(_) => {
            bump(&shared.counters.refused);
            tracing::debug!(%peer, "websocket handshake timed out");
            return;
        }
    };
    bump(&shared.counters.accepted);
    let client = shared.outbox.connect(peer);
    // However the task ends (finished, dropped with its runtime, unwinding),
    // the connection leaves the outbox.
    let _leave = Leave {
        shared: Arc::clone(&shared),
        client: Arc::clone(&client),
    };
    tracing::debug!(topic = %shared.topic, %peer, "subscriber connected");
    let ended = run_connection(&shared, &client, ws).await;
    if let Err(what) = ended {
        tracing::debug!(topic = %shared.topic, %peer, "connection ended: {what}");
    }
}

/// Takes a connection out of its publisher when dropped.
struct Leave {
    shared: Arc<Shared>,
    client: Arc<Client>,
}

impl Drop for Leave {
    fn drop(&mut self) {
        self.shared.outbox.remove(&self.client);
    }
}

async fn run_connection(
    shared: &Shared,
    client: &Client,
    ws: tokio_tungstenite::WebSocketStream<TcpStream>,
) -> Result<(), String> {
    // Not split: only the `incoming` branch borrows `ws` while waiting, and
    // branch bodies run after every branch future is dropped; a split
    // stream would take a lock on every `feed`.
    let mut ws = ws;
    let mut stop = shared.stop.subscribe();
    // One future for the connection's life: a new one per message would
    // register and unregister a waiter (two lock round trips) each time.
    let stopped = super::stopped(&mut stop);
    tokio::pin!(stopped);
    let mut ping = tokio::time::interval(shared.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut awaiting_pong: Option<Instant> = None;
    // The bytes of the frames taken (slices of the outbox's buffer), and
    // their completions.
    let mut slices: Vec<Bytes> = Vec::new();
    let mut done: Vec<Arc<Completion>> = Vec::new();
    let mut released: Vec<Arc<Completion>> = Vec::new();
    // A buffer of written frames nothing refers to any more, for the
    // outbox to reuse.
    let mut recycled: Option<BytesMut> = None;
    // Frames taken.
    let mut taken = 0;
    let slot = client.slot;
    loop {
        let ready = async {
            // Under the lock: a sender that queues after this wakes us.
            // (What was taken before was written: drain may be waiting.)
            let (wait, waiters) = shared.outbox.lock().written_and_ready(slot, &mut recycled);
            // One the outbox did not keep goes outside its lock.
            recycled = None;
            if waiters {
                shared.outbox.idle.notify_all();
            }
            if wait {
                client.ready.notified().await;
            }
        };
        tokio::select! {
            biased;
            () = &mut stopped => {
                close_handshake(&mut ws).await;
                return Ok(());
            }
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Pong(_))) => awaiting_pong = None,
                Some(Ok(Message::Close(_))) | None => return Ok(()),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    bump(&shared.counters.io_errors);
                    return Err(e.to_string());
                }
            },
            _ = ping.tick() => {
                if awaiting_pong.is_some_and(|t| t.elapsed() > shared.pong_timeout) {
                    bump(&shared.counters.ping_timeouts);
                    let _ = tokio::time::timeout(CLOSE_GRACE, ws.send(Message::Close(None))).await;
                    return Err("no pong in time".into());
                }
                if awaiting_pong.is_none() {
                    awaiting_pong = Some(Instant::now());
                }
                // A socket that takes no ping either has a peer that
                // stopped reading.
                match tokio::time::timeout(shared.pong_timeout, ws.send(Message::Ping(Bytes::new()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        bump(&shared.counters.io_errors);
                        return Err(e.to_string());
                    }
                    Err(_) => {
                        bump(&shared.counters.ping_timeouts);
                        return Err("a ping waited longer than the pong timeout".into());
                    }
                }
            }
            () = ready => {
                // Take what is queued; when that was less than a batch,
                // yield once so that a sender running on another thread
                // can add more before the one write (a write per frame
                // would be a system call per frame).
                let mut yielded = false;
                loop {
                    let took = shared.outbox.lock().take(
                        slot,
                        shared.batch - taken,
                        &mut slices,
                        &mut done,
                        &mut released,
                    );
                    // Completions of frames every connection has now taken
                    // run outside the lock (when no writer holds them).
                    released.clear();
                    if took.closed {
                        let _ = tokio::time::timeout(CLOSE_GRACE, ws.send(Message::Close(None))).await;
                        return Err("closed by the publisher".into());
                    }
                    taken += took.frames;
                    // Room again: wake senders waiting for it under
                    // `SlowPolicy::Wait`.
                    if took.room_made {
                        shared.outbox.space.notify_all();
                    }
                    if yielded || taken >= shared.batch {
                        break;
                    }
                    yielded = true;
                    tokio::task::yield_now().await;
                }
                if taken == 0 {
                    // A wake-up left over from an earlier wait.
                    continue;
                }
                let n = std::mem::take(&mut taken) as u64;
                // What the websocket library has buffered (a pong) goes
                // out whole first; then our frames, already encoded, go
                // straight to the socket, between two whole frames of its.
                // A peer that stops reading leaves the write waiting: the
                // publisher stopping or closing the connection (as slow)
                // ends it, mid-frame if need be (the connection is dropped).
                let outcome = {
                    let write = async {
                        // A pong the library holds goes first, within the
                        // same limit as our frames.
                        match tokio::time::timeout(shared.pong_timeout, ws.flush()).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => return Err(WriteError::Io(e.to_string())),
                            Err(_) => return Err(WriteError::Stalled),
                        }
                        write_slices(ws.get_mut(), &slices, shared.pong_timeout).await
                    };
                    tokio::pin!(write);
                    loop {
                        tokio::select! {
                            biased;
                            written = &mut write => break Some(written),
                            () = &mut stopped => {
                                // A peer that reads gets its last frames
                                // whole and a close handshake.
                                match tokio::time::timeout(CLOSE_GRACE, &mut write).await {
                                    Ok(Ok(())) => break None,
                                    _ => return Ok(()),
                                }
                            }
                            () = client.ready.notified() => {
                                if shared.outbox.lock().is_closed(slot) {
                                    return Err("closed by the publisher".into());
                                }
                            }
                        }
                    }
                };
                recycled = super::outbox::recycle(&mut slices);
                match outcome {
                    Some(Ok(())) => {}
                    Some(Err(WriteError::Stalled)) => {
                        bump(&shared.counters.ping_timeouts);
                        return Err("no byte accepted for the pong timeout: the subscriber stopped reading".into());
                    }
                    Some(Err(WriteError::Io(e))) => {
                        bump(&shared.counters.io_errors);
                        return Err(e);
                    }
                    None => {
                        close_handshake(&mut ws).await;
                        return Ok(());
                    }
                }
                for d in done.drain(..) {
                    d.written.fetch_add(1, Ordering::Relaxed);
                }
                shared.counters.written.fetch_add(n, Ordering::Relaxed);
                client.written.fetch_add(n, Ordering::Relaxed);
                bump(&shared.counters.batches);
            }
        }
    }
}

/// Says goodbye: a close frame, then reads until the peer's close, so that
/// nothing it sent is left unread (closing a socket with unread data resets
/// the connection, and the peer would lose what it had not read yet).
async fn close_handshake(ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>) {
    let _ = tokio::time::timeout(CLOSE_GRACE, ws.send(Message::Close(None))).await;
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(m)) = ws.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Why frames could not be written.
enum WriteError {
    /// The socket took no byte for the stall limit (the peer stopped
    /// reading).
    Stalled,
    Io(String),
}

/// Waits until `tcp` can take more bytes, at most `stall`.
async fn writable(tcp: &TcpStream, stall: Duration) -> Result<(), WriteError> {
    match tokio::time::timeout(stall, tcp.writable()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(WriteError::Io(e.to_string())),
        Err(_) => Err(WriteError::Stalled),
    }
}

/// Writes `slices` in order (several with one `writev`), waiting while the
/// socket's buffer is full, but not longer than `stall` at a time.
async fn write_slices(
    tcp: &TcpStream,
    slices: &[Bytes],
    stall: Duration,
) -> Result<(), WriteError> {
    if let [one] = slices {
        return write_all(tcp, one, stall).await;
    }
    // Where the next byte to write is: `slices[i][at..]`.
    let (mut i, mut at) = (0, 0);
    while i < slices.len() {
        let mut iov = [std::io::IoSlice::new(&[]); 32];
        let mut n = 0;
        for (k, s) in slices[i..].iter().take(iov.len()).enumerate() {
            iov[k] = std::io::IoSlice::new(if k == 0 { &s[at..] } else { s });
            n += 1;
        }
        match tcp.try_write_vectored(&iov[..n]) {
            Ok(0) => {
                return Err(WriteError::Io(
                    "the connection accepts no more bytes".into(),
                ))
            }
            Ok(mut wrote) => {
                while wrote > 0 {
                    let left = slices[i].len() - at;
                    if wrote < left {
                        at += wrote;
                        break;
                    }
                    wrote -= left;
                    i += 1;
                    at = 0;
                }
                // Empty slices (none are) would be stepped over here too.
                while i < slices.len() && slices[i].len() == at {
                    i += 1;
                    at = 0;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => writable(tcp, stall).await?,
            Err(e) => return Err(WriteError::Io(e.to_string())),
        }
    }
    Ok(())
}

/// Writes all of `buf` to `tcp`, waiting while the socket's buffer is full,
/// but not longer than `stall` at a time.
async fn write_all(tcp: &TcpStream, mut buf: &[u8], stall: Duration) -> Result<(), WriteError> {
    while !buf.is_empty() {
        match tcp.try_write(buf) {
            Ok(0) => {
                return Err(WriteError::Io(
                    "the connection accepts no more bytes".into(),
                ))
            }
            Ok(n) => buf = buf.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => writable(tcp, stall).await?,
            Err(e) => return Err(WriteError::Io(e.to_string())),
        }
    }
    Ok(())
}
