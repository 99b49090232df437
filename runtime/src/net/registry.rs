//! The receiving side's state: live peers and topics, as a pure state
//! machine (packets and the time come in, events come out), so every rule
//! is unit-tested without sockets. [`Discovery`](super::Discovery) runs one
//! behind a socket.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    time::{Duration, Instant},
};

use super::packet::{AnnouncedTopic, Packet, PacketError, Role};

/// How far back a sequence number may go and still be taken for a
/// reordered packet of a live sender rather than a restart.
const REORDER_WINDOW: u64 = 8;

/// What a listener knows about one sender.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerInfo {
    /// The sender's id.
    pub sender_id: u64,
    /// Its host name, as announced.
    pub host: String,
    /// Its process id, as announced.
    pub pid: u32,
    /// The address its first packet came from (its first IPv4 one, when it
    /// announces over both IPv4 and IPv6). Kept, not updated per packet: a
    /// sender whose multicast and broadcast leave from different addresses
    /// must not flip its endpoint back and forth.
    pub source: SocketAddr,
    /// The last sequence number seen.
    pub sequence: u64,
    /// Its lease.
    pub lease: Duration,
    /// When it was first seen.
    pub first_seen: Instant,
    /// When it was last heard from.
    pub last_seen: Instant,
    /// Distinct announcement rounds (sequence numbers) seen.
    pub rounds: u64,
}

impl PeerInfo {
    /// Announcement rounds per second, from the first to the last seen
    /// (0 until two rounds have been seen).
    pub fn rate_hz(&self) -> f64 {
        let span = self.last_seen.duration_since(self.first_seen).as_secs_f64();
        if self.rounds < 2 || span <= 0.0 {
            0.0
        } else {
            (self.rounds - 1) as f64 / span
        }
    }
}

/// One topic of one peer, as a listener sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicEntry {
    /// The topic as announced.
    pub topic: AnnouncedTopic,
    /// The announcing peer (as of the last announcement).
    pub peer: PeerInfo,
    /// When this topic was first seen from this peer.
    pub first_seen: Instant,
    /// When it was last announced.
    pub last_seen: Instant,
    /// When it expires without another announcement.
    pub expires: Instant,
    /// The fingerprint this listener expects for the topic's name, if it
    /// watches the name.
    pub expected_fingerprint: Option<u64>,
}

impl TopicEntry {
    /// Whether a subscriber may connect: the fingerprint is the expected one,
    /// or the name is not watched.
    pub fn is_connectable(&self) -> bool {
        self.expected_fingerprint
            .is_none_or(|fp| fp == self.topic.fingerprint)
    }

    /// `host:port/path` of the websocket endpoint (the peer's source
    /// address, the announced port and path); `None` when the sender serves
    /// no websocket for this topic (port 0).
    pub fn endpoint(&self) -> Option<String> {
        (self.topic.ws_port != 0).then(|| {
            format!(
                "{}:{}{}",
                self.peer.source.ip(),
                self.topic.ws_port,
                self.topic.ws_path
            )
        })
    }
}

/// Why a topic left the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoneReason {
    /// Its sender said goodbye (for it, or for all its topics).
    Goodbye,
    /// Its lease ran out.
    Expired,
    /// The registry was full and this was the least recently seen.
    Evicted,
    /// Its sender restarted (the new incarnation announces afresh).
    Restarted,
}

/// What changed in the registry.
#[derive(Clone, Debug, PartialEq)]
pub enum DiscoveryEvent {
    /// A connectable topic appeared.
    TopicAppeared(TopicEntry),
    /// A topic's type, fingerprint or endpoint changed.
    TopicChanged {
        /// Before (boxed: keeps the event as small as its other kinds).
        old: Box<TopicEntry>,
        /// After.
        new: TopicEntry,
    },
    /// A topic left.
    TopicGone {
        /// The entry as last seen.
        entry: TopicEntry,
        /// Why.
        reason: GoneReason,
    },
    /// A sender restarted: the same sender id from another process, or
    /// with a sequence number that went back (the announcer started over).
    /// Its old topics are reported gone (`Restarted`) and its new ones
    /// appear.
    PeerRestarted {
        /// The previous incarnation.
        old: PeerInfo,
        /// The new one.
        new: PeerInfo,
    },
    /// A watched topic announced with another fingerprint than expected.
    /// It is kept (for tools) but never [connectable](TopicEntry::is_connectable),
    /// and never reported as appeared.
    FingerprintMismatch {
        /// The entry.
        entry: TopicEntry,
        /// The fingerprint this listener expects.
        expected: u64,
    },
}

/// Counters of a listener: what it received and what it dropped, per reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscoveryStats {
    /// Datagrams received.
    pub received: u64,
    /// Packets applied to the registry.
    pub accepted: u64,
    /// Packets of this process's own announcers, ignored.
    pub own: u64,
    /// Reordered packets older than what was already applied, ignored.
    pub stale: u64,
    /// Goodbyes from unknown senders, ignored.
    pub unknown_goodbyes: u64,
    /// Rejected: shorter than the header.
    pub too_short: u64,
    /// Rejected: longer than the maximum packet length.
    pub too_large: u64,
    /// Rejected: foreign magic.
    pub bad_magic: u64,
    /// Rejected: a version this crate does not read.
    pub unsupported_version: u64,
    /// Rejected: length field ≠ datagram length.
    pub length: u64,
    /// Rejected: reserved flag bits set.
    pub reserved_flags: u64,
    /// Rejected: part/parts out of range.
    pub bad_part: u64,
    /// Rejected: a topic count the packet cannot hold.
    pub too_many_topics: u64,
    /// Rejected: a field runs past the end.
    pub truncated: u64,
    /// Rejected: a string is not UTF-8.
    pub utf8: u64,
    /// Rejected: an empty topic name.
    pub empty_topic_name: u64,
    /// Rejected: an unknown role.
    pub bad_role: u64,
    /// Rejected: bytes after the last topic.
    pub trailing: u64,
    /// Refused (a secret is configured): no authentication trailer.
    pub unauthenticated: u64,
    /// Refused: a trailer whose tag is wrong (another key, or altered
    /// bytes: a forgery).
    pub bad_tag: u64,
    /// Refused: a tagged packet sent too long ago or in the future (outside
    /// the authentication window).
    pub auth_stale: u64,
    /// Refused: a tagged packet older than one already accepted from its
    /// sender (a replay).
    pub replayed: u64,
    /// Peers evicted because the registry held `max_peers`.
    pub peers_evicted: u64,
    /// Topics evicted because the registry held `max_topics`.
    pub topics_evicted: u64,
}

impl DiscoveryStats {
    /// Counts a rejected packet under its reason.
    pub fn count_rejected(&mut self, error: &PacketError) {
        let counter = match error {
            PacketError::TooShort { .. } => &mut self.too_short,
            PacketError::TooLarge { .. } => &mut self.too_large,
            PacketError::BadMagic { .. } => &mut self.bad_magic,
            PacketError::UnsupportedVersion { .. } => &mut self.unsupported_version,
            PacketError::Length { .. } => &mut self.length,
            PacketError::ReservedFlags { .. } => &mut self.reserved_flags,
            PacketError::BadPart { .. } => &mut self.bad_part,
            PacketError::TooManyTopics { .. } => &mut self.too_many_topics,
            PacketError::Truncated { .. } => &mut self.truncated,
            PacketError::Utf8 { .. } => &mut self.utf8,
            PacketError::EmptyTopicName { .. } => &mut self.empty_topic_name,
            PacketError::BadRole { .. } => &mut self.bad_role,
            PacketError::Trailing { .. } => &mut self.trailing,
        };
        *counter += 1;
    }

    /// All rejected packets, whatever the reason.
    pub fn rejected(&self) -> u64 {
        self.too_short
            + self.too_large
            + self.bad_magic
            + self.unsupported_version
            + self.length
            + self.reserved_flags
            + self.bad_part
            + self.too_many_topics
            + self.truncated
            + self.utf8
            + self.empty_topic_name
            + self.bad_role
            + self.trailing
    }
}

/// A topic of a peer: name and role.
type TopicKey = (String, Role);

struct Peer {
    info: PeerInfo,
    /// Its key in `Registry::peer_ages`.
    touch: u64,
    topics: HashMap<TopicKey, Tracked>,
}

struct Tracked {
    entry: TopicEntry,
    /// Its key in `Registry::topic_ages`.
    touch: u64,
}

/// Live peers and topics, bounded by `max_peers` and `max_topics`.
///
/// Eviction takes the least recently *touched* (announced) peer or topic,
/// found in O(log n) through an index of touch counters, so a flood at the
/// caps costs the same per packet as below them. With the non-decreasing
/// `now` a listener passes, least recently touched is least recently seen.
pub struct Registry {
    peers: HashMap<u64, Peer>,
    // INVARIANTS: `peer_ages` holds exactly one `touch → sender id` per
    // entry of `peers`, and `topic_ages` one `touch → (sender id, key)`
    // per topic of every peer; touches are unique and grow.
    peer_ages: BTreeMap<u64, u64>,
    topic_ages: BTreeMap<u64, (u64, TopicKey)>,
    next_touch: u64,
    watched: HashMap<String, u64>,
    max_peers: usize,
    max_topics: usize,
    stats: DiscoveryStats,
    /// With a shared secret: the key and what it has accepted.
    auth: Option<(super::NetSecret, super::ReplayGuard)>,
}

impl Registry {
    /// An empty registry with these caps (each at least 1).
    pub fn new(max_peers: usize, max_topics: usize) -> Registry {
        Registry {
            peers: HashMap::new(),
            peer_ages: BTreeMap::new(),
            topic_ages: BTreeMap::new(),
            next_touch: 0,
            watched: HashMap::new(),
            max_peers: max_peers.max(1),
            max_topics: max_topics.max(1),
            stats: DiscoveryStats::default(),
            auth: None,
        }
    }

    /// Accepts only packets sealed with `secret`, sent within `window` of
    /// this host's clock and not older than one already accepted from the
    /// same sender (`docs/security.md`).
    pub fn require_secret(&mut self, secret: super::NetSecret, window: std::time::Duration) {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        self.auth = Some((secret, super::ReplayGuard::new(window_ms)));
    }

    /// Expects topic `name` to carry `fingerprint`; returns the
    /// [`FingerprintMismatch`](DiscoveryEvent::FingerprintMismatch) events of
    /// entries already known that do not.
    pub fn watch(&mut self, name: &str, fingerprint: u64) -> Vec<DiscoveryEvent> {
        self.watched.insert(name.to_owned(), fingerprint);
        let mut events = Vec::new();
        for peer in self.peers.values_mut() {
            for entry in peer
                .topics
                .values_mut()
                .map(|t| &mut t.entry)
                .filter(|e| e.topic.name == name)
            {
                entry.expected_fingerprint = Some(fingerprint);
                if !entry.is_connectable() {
                    events.push(DiscoveryEvent::FingerprintMismatch {
                        entry: entry.clone(),
                        expected: fingerprint,
                    });
                }
            }
        }
        events
    }

    /// The counters.
    pub fn stats(&self) -> &DiscoveryStats {
        &self.stats
    }

    /// The counters, to count what happens before a packet reaches
    /// [`handle_datagram`](Registry::handle_datagram).
    pub fn stats_mut(&mut self) -> &mut DiscoveryStats {
        &mut self.stats
    }

    /// Every live topic, sorted by name, role and host.
    pub fn topics(&self) -> Vec<TopicEntry> {
        let mut out: Vec<TopicEntry> = self
            .peers
            .values()
            .flat_map(|p| p.topics.values().map(|t| t.entry.clone()))
            .collect();
        out.sort_by(|a, b| {
            (&a.topic.name, a.topic.role, &a.peer.host, a.peer.pid).cmp(&(
                &b.topic.name,
                b.topic.role,
                &b.peer.host,
                b.peer.pid,
            ))
        });
        out
    }

    /// Every live peer, sorted by host and pid.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let mut out: Vec<PeerInfo> = self.peers.values().map(|p| p.info.clone()).collect();
        out.sort_by(|a, b| (&a.host, a.pid).cmp(&(&b.host, b.pid)));
        out
    }

    /// Parses a datagram and applies it; a malformed one is counted under
    /// its reason and changes nothing.
    pub fn handle_datagram(
        &mut self,
        bytes: &[u8],
        source: SocketAddr,
        now: Instant,
    ) -> Vec<DiscoveryEvent> {
        self.handle_datagram_at(bytes, source, now, super::auth::unix_ms())
    }

    /// [`handle_datagram`](Registry::handle_datagram) with the wall clock
    /// given (milliseconds since the UNIX epoch), against which sealed
    /// packets' sending times are checked.
    pub fn handle_datagram_at(
        &mut self,
        bytes: &[u8],
        source: SocketAddr,
        now: Instant,
        wall_ms: u64,
    ) -> Vec<DiscoveryEvent> {
        self.stats.received += 1;
        match Packet::parse(bytes) {
            Ok(packet) => {
                if let Some((secret, guard)) = &mut self.auth {
                    let checked = if Packet::is_sealed(bytes) {
                        secret
                            .open_packet(bytes)
                            .and_then(|sent| guard.check(packet.sender_id, sent, wall_ms))
                    } else {
                        Err(super::AuthFailure::Missing)
                    };
                    if let Err(why) = checked {
                        tracing::debug!("refused a discovery packet from {source}: {why}");
                        let counter = match why {
                            super::AuthFailure::BadTag | super::AuthFailure::Malformed => {
                                &mut self.stats.bad_tag
                            }
                            super::AuthFailure::Stale => &mut self.stats.auth_stale,
                            super::AuthFailure::Replayed => &mut self.stats.replayed,
                            super::AuthFailure::Missing => &mut self.stats.unauthenticated,
                        };
                        *counter += 1;
                        return Vec::new();
                    }
                }
                self.handle(packet, source, now)
            }
            Err(e) => {
                tracing::trace!("dropped a discovery packet from {source}: {e}");
                self.stats.count_rejected(&e);
                Vec::new()
            }
        }
    }

    /// Applies a parsed packet.
    pub fn handle(
        &mut self,
        packet: Packet,
        source: SocketAddr,
        now: Instant,
    ) -> Vec<DiscoveryEvent> {
        let mut events = Vec::new();
        let lease = Duration::from_millis(u64::from(packet.lease_ms));
        let fresh = PeerInfo {
            sender_id: packet.sender_id,
            host: packet.host.clone(),
            pid: packet.pid,
            source,
            sequence: packet.sequence,
            lease,
            first_seen: now,
            last_seen: now,
            rounds: 1,
        };

        // A restart: the same id from another process, or with a sequence
        // that went back further than reordering explains. (A new id is a
        // new peer: two announcers may share a process, so host and pid do
        // not identify one; a sender that wants its restarts recognised
        // keeps its id, `DiscoveryConfig::sender_id`.)
        let restarted_from = match self.peers.get(&packet.sender_id) {
            Some(peer) => {
                let went_back = packet.sequence < peer.info.sequence;
                if peer.info.pid != packet.pid
                    || (went_back && peer.info.sequence - packet.sequence > REORDER_WINDOW)
                {
                    Some(packet.sender_id)
                } else if went_back {
                    self.stats.stale += 1;
                    return events;
                } else {
                    None
                }
            }
            None => None,
        };
        if let Some(old_id) = restarted_from {
            if let Some(old) = self.remove_peer(old_id, GoneReason::Restarted, &mut events) {
                events.insert(
                    0,
                    DiscoveryEvent::PeerRestarted {
                        old,
                        new: fresh.clone(),
                    },
                );
            }
        }

        if packet.goodbye {
            if !self.peers.contains_key(&packet.sender_id) {
                self.stats.unknown_goodbyes += 1;
                return events;
            }
            self.stats.accepted += 1;
            if packet.topics.is_empty() {
                self.remove_peer(packet.sender_id, GoneReason::Goodbye, &mut events);
            } else if let Some(peer) = self.peers.get_mut(&packet.sender_id) {
                peer.info.last_seen = now;
                for t in &packet.topics {
                    if let Some(gone) = peer.topics.remove(&(t.name.clone(), t.role)) {
                        self.topic_ages.remove(&gone.touch);
                        events.push(DiscoveryEvent::TopicGone {
                            entry: gone.entry,
                            reason: GoneReason::Goodbye,
                        });
                    }
                }
            }
            return events;
        }

        self.stats.accepted += 1;
        if !self.peers.contains_key(&packet.sender_id) {
            while self.peers.len() >= self.max_peers {
                let Some((_, oldest)) = self.peer_ages.pop_first() else {
                    break;
                };
                self.stats.peers_evicted += 1;
                self.remove_peer(oldest, GoneReason::Evicted, &mut events);
            }
            let touch = self.touch();
            self.peer_ages.insert(touch, packet.sender_id);
            self.peers.insert(
                packet.sender_id,
                Peer {
                    info: fresh,
                    touch,
                    topics: HashMap::new(),
                },
            );
        }
        let touch = self.touch();
        let info = {
            let Some(peer) = self.peers.get_mut(&packet.sender_id) else {
                return events;
            };
            self.peer_ages.remove(&peer.touch);
            self.peer_ages.insert(touch, packet.sender_id);
            peer.touch = touch;
            if packet.sequence != peer.info.sequence {
                peer.info.rounds += 1;
            }
            peer.info.sequence = packet.sequence;
            peer.info.last_seen = now;
            peer.info.lease = lease;
            if source.is_ipv4() && peer.info.source.is_ipv6() {
                peer.info.source = source;
            }
            peer.info.host.clone_from(&packet.host);
            peer.info.clone()
        };

        for topic in packet.topics {
            let key = (topic.name.clone(), topic.role);
            let known = self
                .peers
                .get(&packet.sender_id)
                .is_some_and(|p| p.topics.contains_key(&key));
            if !known {
                while self.topic_ages.len() >= self.max_topics {
                    if !self.evict_oldest_topic(&mut events) {
                        break;
                    }
                }
            }
            let expected = self.watched.get(&topic.name).copied();
            let touch = self.touch();
            let Some(peer) = self.peers.get_mut(&packet.sender_id) else {
                // Evicting topics never removes this peer; nothing to do.
                continue;
            };
            let new = TopicEntry {
                topic,
                peer: info.clone(),
                first_seen: now,
                last_seen: now,
                expires: now + lease,
                expected_fingerprint: expected,
            };
            match peer.topics.get_mut(&key) {
                Some(tracked) => {
                    self.topic_ages.remove(&tracked.touch);
                    self.topic_ages
                        .insert(touch, (packet.sender_id, key.clone()));
                    tracked.touch = touch;
                    let entry = &mut tracked.entry;
                    let changed = entry.topic != new.topic;
                    let old = std::mem::replace(
                        entry,
                        TopicEntry {
                            first_seen: entry.first_seen,
                            ..new
                        },
                    );
                    if changed {
                        if entry.is_connectable() {
                            events.push(DiscoveryEvent::TopicChanged {
                                old: Box::new(old),
                                new: entry.clone(),
                            });
                        } else if old.topic.fingerprint != entry.topic.fingerprint {
                            events.push(mismatch(entry));
                        }
                    }
                }
                None => {
                    events.push(if new.is_connectable() {
                        DiscoveryEvent::TopicAppeared(new.clone())
                    } else {
                        mismatch(&new)
                    });
                    self.topic_ages
                        .insert(touch, (packet.sender_id, key.clone()));
                    peer.topics.insert(key, Tracked { entry: new, touch });
                }
            }
        }
        events
    }

    /// Removes what outlived its lease: topics, and peers that have no
    /// topic left and were not heard from for a lease.
    pub fn expire(&mut self, now: Instant) -> Vec<DiscoveryEvent> {
        let mut events = Vec::new();
        let mut empty = Vec::new();
        let ages = &mut self.topic_ages;
        for peer in self.peers.values_mut() {
            peer.topics.retain(|_, tracked| {
                let live = tracked.entry.expires > now;
                if !live {
                    ages.remove(&tracked.touch);
                    events.push(DiscoveryEvent::TopicGone {
                        entry: tracked.entry.clone(),
                        reason: GoneReason::Expired,
                    });
                }
                live
            });
            if peer.topics.is_empty() && peer.info.last_seen + peer.info.lease <= now {
                empty.push(peer.info.sender_id);
            }
        }
        for id in empty {
            if let Some(peer) = self.peers.remove(&id) {
                self.peer_ages.remove(&peer.touch);
            }
        }
        events
    }

    /// The earliest time at which [`expire`](Registry::expire) has
    /// something to do.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.peers
            .values()
            .flat_map(|p| {
                p.topics
                    .values()
                    .map(|t| t.entry.expires)
                    .chain(std::iter::once(p.info.last_seen + p.info.lease))
            })
            .min()
    }

    fn remove_peer(
        &mut self,
        id: u64,
        reason: GoneReason,
        events: &mut Vec<DiscoveryEvent>,
    ) -> Option<PeerInfo> {
        let peer = self.peers.remove(&id)?;
        self.peer_ages.remove(&peer.touch);
        let mut gone: Vec<TopicEntry> = peer
            .topics
            .into_values()
            .map(|t| {
                self.topic_ages.remove(&t.touch);
                t.entry
            })
            .collect();
        gone.sort_by(|a, b| a.topic.name.cmp(&b.topic.name));
        events.extend(
            gone.into_iter()
                .map(|entry| DiscoveryEvent::TopicGone { entry, reason }),
        );
        Some(peer.info)
    }

    fn evict_oldest_topic(&mut self, events: &mut Vec<DiscoveryEvent>) -> bool {
        let Some((_, (id, key))) = self.topic_ages.pop_first() else {
            return false;
        };
        let Some(gone) = self.peers.get_mut(&id).and_then(|p| p.topics.remove(&key)) else {
            // Cannot happen (see the invariants); the index entry is gone.
            return true;
        };
        self.stats.topics_evicted += 1;
        events.push(DiscoveryEvent::TopicGone {
            entry: gone.entry,
            reason: GoneReason::Evicted,
        });
        true
    }

    fn touch(&mut self) -> u64 {
        self.next_touch += 1;
        self.next_touch
    }

    /// How many topics are live.
    pub fn topic_count(&self) -> usize {
        self.topic_ages.len()
    }

    /// Checks the index invariants (tests).
    #[cfg(test)]
    fn check(&self) {
        assert_eq!(self.peer_ages.len(), self.peers.len());
        let topics: usize = self.peers.values().map(|p| p.topics.len()).sum();
        assert_eq!(self.topic_ages.len(), topics);
        for (touch, (id, key)) in &self.topic_ages {
            assert_eq!(self.peers[id].topics[key].touch, *touch);
        }
        for (touch, id) in &self.peer_ages {
            assert_eq!(self.peers[id].touch, *touch);
        }
    }
}

fn mismatch(entry: &TopicEntry) -> DiscoveryEvent {
    DiscoveryEvent::FingerprintMismatch {
        entry: entry.clone(),
        expected: entry.expected_fingerprint.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
