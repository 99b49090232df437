//! The listening side: a background thread that receives announcements,
//! keeps a [`Registry`], and hands its events to callbacks and async
//! streams.

use std::{
    net::UdpSocket,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use tokio::sync::broadcast;

use super::{
    config::DiscoveryConfig,
    is_own,
    packet::MAX_PACKET_LEN,
    registry::{DiscoveryEvent, DiscoveryStats, PeerInfo, Registry, TopicEntry},
    socket, NetError,
};

/// How often the thread wakes without traffic, to expire leases and notice
/// shutdown: an expiry is late by at most about this.
const POLL: Duration = Duration::from_millis(20);
/// Events an [`EventStream`] may fall behind before it skips the oldest.
const STREAM_CAPACITY: usize = 1024;

type Callback = Box<dyn Fn(&DiscoveryEvent) + Send + Sync>;

/// Listens for announcements and keeps the live peers and topics.
///
/// ```no_run
/// # use shmidl::net::{Discovery, DiscoveryConfig, DiscoveryEvent};
/// # async fn demo() -> Result<(), shmidl::net::NetError> {
/// let discovery = Discovery::builder(DiscoveryConfig::default()).start()?;
/// let mut events = discovery.events();
/// while let Some(event) = events.next_event().await {
///     if let DiscoveryEvent::TopicAppeared(entry) = event {
///         println!("{} at {:?}", entry.topic.name, entry.endpoint());
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub struct Discovery {
    inner: Arc<Inner>,
    /// One per socket (IPv4, IPv6).
    threads: Vec<JoinHandle<()>>,
}

struct Inner {
    registry: Mutex<Registry>,
    callbacks: Mutex<Vec<Callback>>,
    events: broadcast::Sender<DiscoveryEvent>,
    stop: AtomicBool,
    ignore_own: bool,
}

impl Inner {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, events: Vec<DiscoveryEvent>) {
        if events.is_empty() {
            return;
        }
        let callbacks = self
            .callbacks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for event in events {
            for callback in callbacks.iter() {
                callback(&event);
            }
            // No receiver is not an error: nobody streams events.
            let _ = self.events.send(event);
        }
    }
}

/// Configures a [`Discovery`] before it starts, so that no announcement is
/// seen before the expectations and callbacks are in place.
pub struct DiscoveryBuilder {
    config: DiscoveryConfig,
    watched: Vec<(String, u64)>,
    callbacks: Vec<Callback>,
}

impl DiscoveryBuilder {
    /// Expects topic `name` to carry `fingerprint` (the local type's
    /// `ShmSafe::FINGERPRINT`): any other is reported as
    /// [`DiscoveryEvent::FingerprintMismatch`] and never as connectable.
    #[must_use]
    pub fn watch(mut self, name: &str, fingerprint: u64) -> Self {
        self.watched.push((name.to_owned(), fingerprint));
        self
    }

    /// Calls `f` with every event, on the listening thread (keep it short;
    /// it must not call [`Discovery::on_event`]).
    #[must_use]
    pub fn on_event(mut self, f: impl Fn(&DiscoveryEvent) + Send + Sync + 'static) -> Self {
        self.callbacks.push(Box::new(f));
        self
    }

    /// Binds the port (shared with other listeners of this host), joins the
    /// multicast group and starts the listening thread.
    ///
    /// # Errors
    ///
    /// [`NetError::Socket`]/[`NetError::Interface`] when the socket cannot be
    /// configured, [`NetError::Thread`] when no thread can be started.
    pub fn start(self) -> Result<Discovery, NetError> {
        let mut sockets = Vec::new();
        if self.config.ipv4 {
            sockets.push(socket::listener(&self.config, POLL)?);
        }
        if let Some(group) = self.config.ipv6_multicast() {
            sockets.push(socket::listener_v6(&self.config, group, POLL)?);
        }
        if sockets.is_empty() {
            return Err(NetError::NothingToUse);
        }
        let mut registry = Registry::new(self.config.max_peers, self.config.max_topics);
        if let Some(secret) = &self.config.secret {
            registry.require_secret(secret.clone(), self.config.auth_window);
        }
        for (name, fp) in &self.watched {
            registry.watch(name, *fp);
        }
        let inner = Arc::new(Inner {
            registry: Mutex::new(registry),
            callbacks: Mutex::new(self.callbacks),
            events: broadcast::channel(STREAM_CAPACITY).0,
            stop: AtomicBool::new(false),
            ignore_own: self.config.ignore_own,
        });
        let mut discovery = Discovery {
            inner,
            threads: Vec::new(),
        };
        for socket in sockets {
            let worker = Arc::clone(&discovery.inner);
            let thread = std::thread::Builder::new()
                .name("shmidl-discovery".into())
                .spawn(move || listen(&worker, &socket))
                // Dropping `discovery` stops the threads already started.
                .map_err(NetError::Thread)?;
            discovery.threads.push(thread);
        }
        Ok(discovery)
    }
}

impl Discovery {
    /// A builder with `config`.
    pub fn builder(config: DiscoveryConfig) -> DiscoveryBuilder {
        DiscoveryBuilder {
            config,
            watched: Vec::new(),
            callbacks: Vec::new(),
        }
    }

    /// Starts listening with `config` and no expectations.
    ///
    /// # Errors
    ///
    /// As [`DiscoveryBuilder::start`].
    pub fn start(config: DiscoveryConfig) -> Result<Discovery, NetError> {
        Self::builder(config).start()
    }

    /// Expects topic `name` to carry `fingerprint` from now on; entries
    /// already known that do not are reported as mismatches.
    pub fn watch(&self, name: &str, fingerprint: u64) {
        let events = self.inner.registry().watch(name, fingerprint);
        self.inner.publish(events);
    }

    /// Calls `f` with every later event, on the listening thread.
    pub fn on_event(&self, f: impl Fn(&DiscoveryEvent) + Send + Sync + 'static) {
        self.inner
            .callbacks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::new(f));
    }

    /// An async stream of every later event.
    pub fn events(&self) -> EventStream {
        EventStream {
            rx: self.inner.events.subscribe(),
            missed: 0,
        }
    }

    /// Every live topic (connectable or not), sorted by name.
    pub fn topics(&self) -> Vec<TopicEntry> {
        self.inner.registry().topics()
    }

    /// Live topics a subscriber may connect to.
    pub fn connectable_topics(&self) -> Vec<TopicEntry> {
        let mut topics = self.topics();
        topics.retain(TopicEntry::is_connectable);
        topics
    }

    /// Every live peer.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.inner.registry().peers()
    }

    /// The counters.
    pub fn stats(&self) -> DiscoveryStats {
        self.inner.registry().stats().clone()
    }

    /// Stops listening and joins the thread; dropping does the same.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::warn!("the discovery thread panicked");
            }
        }
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn listen(inner: &Inner, socket: &UdpSocket) {
    // One byte more than a packet may have: a longer datagram is cut to
    // this and rejected as too large.
    let mut buf = vec![0u8; MAX_PACKET_LEN + 1];
    // Leases are checked once per POLL, not per datagram: a check walks
    // every topic, and a flood must not make each datagram cost that.
    let mut next_check = Instant::now();
    while !inner.stop.load(Ordering::Relaxed) {
        let received = socket.recv_from(&mut buf);
        let now = Instant::now();
        let mut events = Vec::new();
        {
            let mut registry = inner.registry();
            match received {
                Ok((n, source)) => {
                    let data = &buf[..n];
                    if inner.ignore_own && own_packet(data) {
                        let stats = registry.stats_mut();
                        stats.received += 1;
                        stats.own += 1;
                    } else {
                        events = registry.handle_datagram(data, source, now);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    tracing::debug!("discovery receive failed: {e}");
                    drop(registry);
                    std::thread::sleep(POLL);
                    continue;
                }
            }
            if now >= next_check {
                events.extend(registry.expire(now));
                next_check = now + POLL;
            }
        }
        inner.publish(events);
    }
}

/// Whether `data` looks like a packet of one of this process's announcers
/// (its sender id field, bytes 8..16, is one of theirs).
fn own_packet(data: &[u8]) -> bool {
    data.len() >= 16
        && data[..4] == super::MAGIC
        && data
            .get(8..16)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .is_some_and(|id| is_own(u64::from_le_bytes(id)))
}

/// Discovery events as an async stream (a `tokio::sync::broadcast`
/// receiver: works under any executor).
pub struct EventStream {
    rx: broadcast::Receiver<DiscoveryEvent>,
    missed: u64,
}

impl EventStream {
    /// The next event; `None` once the [`Discovery`] is gone. A stream that
    /// falls more than 1,024 events behind skips the oldest and counts
    /// them in [`missed`](EventStream::missed).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped future loses no event.
    pub async fn next_event(&mut self) -> Option<DiscoveryEvent> {
        loop {
            match self.rx.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(n)) => self.missed += n,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event if one is waiting, without blocking.
    pub fn try_next_event(&mut self) -> Option<DiscoveryEvent> {
        loop {
            match self.rx.try_recv() {
                Ok(event) => return Some(event),
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.missed += n,
                Err(_) => return None,
            }
        }
    }

    /// Events skipped because the stream fell behind.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("missed", &self.missed)
            .finish_non_exhaustive()
    }
}
