//! The network side of shmidl (cargo feature `net`, on by default).
//!
//! Today: **discovery**. A process announces its topics over UDP, by
//! broadcast, by multicast or both (IPv4; IPv6 multicast on request)
//! ([`Announcer`]); other processes, on this
//! host or on the link, listen and keep a registry of live peers and topics
//! ([`Discovery`]), with callbacks and an async stream of
//! [`DiscoveryEvent`]s. The packet is documented byte by byte in
//! `docs/wire-format.md` ("Discovery announcements") and encoded and parsed
//! by [`Packet`] without any I/O.
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! use shmidl::net::{AnnouncedTopic, Announcer, Discovery, DiscoveryConfig, Role};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let port = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
//! // On this host only; `DiscoveryConfig::default()` uses the network.
//! let mut config = DiscoveryConfig::on_port(port).loopback();
//! config.ignore_own = false; // listen to this process's own announcer too
//!
//! let discovery = Discovery::builder(config.clone())
//!     .watch("robot/joint_states", 0x0123_4567_89ab_cdef)
//!     .on_event(|event| eprintln!("{event:?}"))
//!     .start()?;
//!
//! let topic = AnnouncedTopic {
//!     name: "robot/joint_states".into(),
//!     type_name: "robot.v1.JointState".into(),
//!     fingerprint: 0x0123_4567_89ab_cdef,
//!     role: Role::Publisher,
//!     ws_port: 9001,
//!     ws_path: "/robot/joint_states".into(),
//! };
//! let announcer = Announcer::start(config, vec![topic])?;
//!
//! let deadline = Instant::now() + Duration::from_secs(10);
//! while discovery.connectable_topics().is_empty() && Instant::now() < deadline {
//!     std::thread::sleep(Duration::from_millis(1));
//! }
//! let seen = discovery.connectable_topics();
//! assert_eq!(seen[0].topic.ws_port, 9001);
//! println!("robot/joint_states at {:?}", seen[0].endpoint());
//!
//! announcer.shutdown(); // a goodbye: listeners drop the topic at once
//! # Ok(())
//! # }
//! ```
//!
//! This module uses only the public API of the rest of the crate
//! (`ShmMessage` for a topic's type name and fingerprint).

use std::{
    collections::HashSet,
    io,
    sync::{Mutex, PoisonError},
};

use thiserror::Error;

mod announcer;
mod auth;
mod bridge;
mod clock;
mod config;
#[doc(hidden)]
pub mod fuzzing;
mod listener;
mod packet;
mod registry;
mod socket;
pub mod ws;

pub use self::{
    announcer::Announcer,
    auth::{
        random_nonce, AuthFailure, NetSecret, NonceGuard, ReplayGuard, SecretError,
        DEFAULT_WINDOW_MS, MAX_REMEMBERED, MIN_SECRET_LEN, TAG_LEN, TRAILER_LEN,
    },
    bridge::{Bridge, BridgeCounters, BridgeError, BridgeStats, DynBridge, PeerStats},
    config::{
        DiscoveryConfig, Interface, Transport, DEFAULT_GROUP, DEFAULT_GROUP_V6, DEFAULT_INTERVAL,
        DEFAULT_LEASE_INTERVALS, DEFAULT_MAX_PEERS, DEFAULT_MAX_TOPICS, DEFAULT_PORT,
    },
    listener::{Discovery, DiscoveryBuilder, EventStream},
    packet::{
        split, AnnouncedTopic, Packet, PacketEncodeError, PacketError, Role, FLAG_AUTH,
        FLAG_GOODBYE, HEADER_LEN, MAGIC, MAX_PACKET_LEN, MAX_STRING_LEN, MIN_TOPIC_LEN, VERSION,
    },
    registry::{DiscoveryEvent, DiscoveryStats, GoneReason, PeerInfo, Registry, TopicEntry},
    ws::{
        NetMessage, NetPublisher, NetRuntime, NetSendError, NetStartError, NetStream,
        NetSubscriber, RawMessage, SlowPolicy, TypedNetPublisher,
    },
};

/// Why the network side could not start.
#[derive(Debug, Error)]
pub enum NetError {
    /// A socket call failed.
    #[error("discovery socket: {what}: {source}")]
    Socket {
        /// What was being done.
        what: &'static str,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// No network interface has this name.
    #[error("no network interface named {name:?}")]
    Interface {
        /// The name asked for.
        name: String,
    },
    /// The topics cannot be announced.
    #[error("cannot encode the announcement: {0}")]
    Encode(#[from] PacketEncodeError),
    /// The configuration leaves nothing to send or listen on (IPv4 off and
    /// no IPv6 multicast).
    #[error("discovery has nothing to use: IPv4 is off and IPv6 multicast is not configured")]
    NothingToUse,
    /// The background thread could not be started.
    #[error("cannot start the discovery thread: {0}")]
    Thread(#[source] io::Error),
}

/// Sender ids of this process's running announcers, so that its listeners
/// can tell their own packets.
static OWN_SENDERS: Mutex<Option<HashSet<u64>>> = Mutex::new(None);

pub(crate) fn register_own(id: u64) {
    let mut own = OWN_SENDERS.lock().unwrap_or_else(PoisonError::into_inner);
    own.get_or_insert_with(HashSet::new).insert(id);
}

pub(crate) fn unregister_own(id: u64) {
    let mut own = OWN_SENDERS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(set) = own.as_mut() {
        set.remove(&id);
    }
}

pub(crate) fn is_own(id: u64) -> bool {
    let own = OWN_SENDERS.lock().unwrap_or_else(PoisonError::into_inner);
    own.as_ref().is_some_and(|s| s.contains(&id))
}

/// A random non-zero 64-bit sender id from the kernel's random source.
pub fn random_sender_id() -> u64 {
    let mut b = [0u8; 8];
    let filled =
        rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty()).map_or(0, |n| n);
    let id = u64::from_le_bytes(b);
    if filled == 8 && id != 0 {
        return id;
    }
    // getrandom cannot fail for 8 bytes on a supported kernel; should it,
    // mix time and pid so ids still differ between processes.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (t ^ (u64::from(std::process::id()) << 32)) | 1
}

/// This host's name (`uname` node name), cut to [`MAX_STRING_LEN`] bytes.
pub fn host_name() -> String {
    let uname = rustix::system::uname();
    let mut name = uname.nodename().to_string_lossy().into_owned();
    if name.len() > MAX_STRING_LEN {
        let mut end = MAX_STRING_LEN;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}
