//! The sending side: a background thread that announces a set of topics
//! every interval, at once when the set changes, and says goodbye when it
//! stops.

use std::{
    net::{SocketAddr, UdpSocket},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Condvar, Mutex, MutexGuard, PoisonError,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use super::{
    config::DiscoveryConfig,
    host_name,
    packet::{split, AnnouncedTopic, Packet},
    random_sender_id, register_own, socket, unregister_own, NetError,
};

/// Announces topics until dropped or [`shut down`](Announcer::shutdown).
///
/// One background thread per announcer sends the topics every
/// [`DiscoveryConfig::interval`] (split over as many packets as they need,
/// each with the same sequence number), right away when they change, a
/// goodbye listing the topics [`remove_topic`](Announcer::remove_topic)
/// withdraws, and a goodbye without topics when it stops.
pub struct Announcer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    sender_id: u64,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    sent: AtomicU64,
    errors: AtomicU64,
}

struct State {
    topics: Vec<AnnouncedTopic>,
    /// Topics removed since the last round, announced in a goodbye.
    withdrawn: Vec<AnnouncedTopic>,
    changed: bool,
    stop: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Announcer {
    /// Opens the sending socket and starts announcing `topics` (first
    /// announcement at once).
    ///
    /// # Errors
    ///
    /// [`NetError::Socket`]/[`NetError::Interface`] when the socket cannot be
    /// configured as asked, [`NetError::Encode`] when a topic cannot be
    /// encoded (a string over 255 bytes, an empty name).
    pub fn start(
        config: DiscoveryConfig,
        topics: Vec<AnnouncedTopic>,
    ) -> Result<Announcer, NetError> {
        let sender_id = config.sender_id.unwrap_or_else(random_sender_id);
        let template = Packet {
            goodbye: false,
            sender_id,
            sequence: 0,
            pid: std::process::id(),
            lease_ms: u32::try_from(config.lease.as_millis()).unwrap_or(u32::MAX),
            part: 0,
            parts: 1,
            host: host_name(),
            topics: Vec::new(),
        };
        // Refuse what cannot be encoded now, not in the thread.
        split(&template, &topics)?;
        let mut routes = Vec::new();
        if config.ipv4 {
            routes.push((socket::sender(&config)?, socket::destinations(&config)));
        }
        if let Some(group) = config.ipv6_multicast() {
            routes.push((
                socket::sender_v6(&config)?,
                vec![socket::destination_v6(&config, group)?],
            ));
        }
        if routes.is_empty() {
            return Err(NetError::NothingToUse);
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                topics,
                withdrawn: Vec::new(),
                changed: false,
                stop: false,
            }),
            wake: Condvar::new(),
            sent: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        });
        register_own(sender_id);
        let worker = Worker {
            shared: Arc::clone(&shared),
            routes,
            template,
            interval: config.interval.max(Duration::from_millis(1)),
            secret: config.secret.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("shmidl-announce".into())
            .spawn(move || worker.run())
            .map_err(|e| {
                unregister_own(sender_id);
                NetError::Thread(e)
            })?;
        tracing::debug!(
            sender_id = format_args!("{sender_id:#018x}"),
            "announcer started"
        );
        Ok(Announcer {
            shared,
            thread: Some(thread),
            sender_id,
        })
    }

    /// This announcer's sender id.
    pub fn sender_id(&self) -> u64 {
        self.sender_id
    }

    /// Datagrams sent so far (each packet counts once per destination).
    pub fn packets_sent(&self) -> u64 {
        self.shared.sent.load(Ordering::Relaxed)
    }

    /// Datagrams that could not be sent (the first is logged at `warn`,
    /// the rest at `debug`).
    pub fn send_errors(&self) -> u64 {
        self.shared.errors.load(Ordering::Relaxed)
    }

    /// The topics announced now.
    pub fn topics(&self) -> Vec<AnnouncedTopic> {
        self.shared.lock().topics.clone()
    }

    /// Replaces the announced topics, announcing at once; topics no longer
    /// in the set are withdrawn with a goodbye.
    ///
    /// # Errors
    ///
    /// [`NetError::Encode`] when a topic cannot be encoded; nothing changes.
    pub fn set_topics(&self, topics: Vec<AnnouncedTopic>) -> Result<(), NetError> {
        check(&topics)?;
        let mut state = self.shared.lock();
        let gone: Vec<AnnouncedTopic> = state
            .topics
            .iter()
            .filter(|old| !topics.iter().any(|t| same_key(t, old)))
            .cloned()
            .collect();
        state.withdrawn.extend(gone);
        state.topics = topics;
        state.changed = true;
        self.shared.wake.notify_all();
        Ok(())
    }

    /// Adds a topic (or replaces the one of the same name and role),
    /// announcing at once.
    ///
    /// # Errors
    ///
    /// [`NetError::Encode`] when the topic cannot be encoded.
    pub fn add_topic(&self, topic: AnnouncedTopic) -> Result<(), NetError> {
        check(std::slice::from_ref(&topic))?;
        let mut state = self.shared.lock();
        state.topics.retain(|t| !same_key(t, &topic));
        state.topics.push(topic);
        state.changed = true;
        self.shared.wake.notify_all();
        Ok(())
    }

    /// Withdraws every topic named `name` (any role) with a goodbye; returns
    /// whether there was one.
    pub fn remove_topic(&self, name: &str) -> bool {
        let mut state = self.shared.lock();
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut state.topics)
            .into_iter()
            .partition(|t| t.name == name);
        state.topics = kept;
        let any = !gone.is_empty();
        state.withdrawn.extend(gone);
        state.changed |= any;
        self.shared.wake.notify_all();
        any
    }

    /// Stops announcing: sends the goodbye and joins the thread. Dropping
    /// the announcer does the same.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::warn!("the announcer thread panicked");
            }
        }
        unregister_own(self.sender_id);
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcer")
            .field("sender_id", &format_args!("{:#018x}", self.sender_id))
            .field("packets_sent", &self.packets_sent())
            .finish_non_exhaustive()
    }
}

fn same_key(a: &AnnouncedTopic, b: &AnnouncedTopic) -> bool {
    a.name == b.name && a.role == b.role
}

fn check(topics: &[AnnouncedTopic]) -> Result<(), NetError> {
    let template = Packet {
        goodbye: false,
        sender_id: 0,
        sequence: 0,
        pid: 0,
        lease_ms: 0,
        part: 0,
        parts: 1,
        host: host_name(),
        topics: Vec::new(),
    };
    split(&template, topics)?;
    Ok(())
}

struct Worker {
    shared: Arc<Shared>,
    /// Each socket (IPv4, IPv6) with where it sends.
    routes: Vec<(UdpSocket, Vec<SocketAddr>)>,
    template: Packet,
    interval: Duration,
    /// Seals every packet when set.
    secret: Option<super::NetSecret>,
}

impl Worker {
    fn run(mut self) {
        let mut next = Instant::now();
        loop {
            let (topics, withdrawn, stop) = {
                let mut state = self.shared.lock();
                loop {
                    if state.stop || state.changed {
                        break;
                    }
                    let now = Instant::now();
                    if now >= next {
                        break;
                    }
                    state = self
                        .shared
                        .wake
                        .wait_timeout(state, next - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                state.changed = false;
                (
                    state.topics.clone(),
                    std::mem::take(&mut state.withdrawn),
                    state.stop,
                )
            };
            self.template.sequence += 1;
            if stop {
                self.send_round(true, &[]);
                return;
            }
            if !withdrawn.is_empty() {
                self.send_round(true, &withdrawn);
            }
            self.send_round(false, &topics);
            next = Instant::now() + self.interval;
        }
    }

    fn send_round(&self, goodbye: bool, topics: &[AnnouncedTopic]) {
        let template = Packet {
            goodbye,
            ..self.template.clone()
        };
        let packets = match split(&template, topics) {
            Ok(p) => p,
            Err(e) => {
                // Checked when the topics were set; cannot happen.
                tracing::warn!("cannot encode the announcement: {e}");
                return;
            }
        };
        for packet in packets {
            let encoded = match &self.secret {
                Some(secret) => packet.encode_sealed(secret, super::auth::unix_ms()),
                None => packet.encode(),
            };
            let bytes = match encoded {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("cannot encode the announcement: {e}");
                    continue;
                }
            };
            for (socket, to) in self
                .routes
                .iter()
                .flat_map(|(s, d)| d.iter().map(move |to| (s, to)))
            {
                match socket.send_to(&bytes, to) {
                    Ok(_) => {
                        self.shared.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        // The first failure is worth a warning (no route,
                        // interface down); repeats of it are not.
                        if self.shared.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                            tracing::warn!("discovery send to {to} failed: {e}");
                        } else {
                            tracing::debug!("discovery send to {to} failed: {e}");
                        }
                    }
                }
            }
        }
    }
}
