//! Discovery configuration: how announcements travel, shared by the
//! announcer and the listener.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    time::Duration,
};

/// The UDP port discovery uses unless configured: 7447.
pub const DEFAULT_PORT: u16 = 7447;
/// The IPv4 multicast group discovery uses unless configured:
/// 239.255.77.77 (organisation-local scope, RFC 2365).
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 77, 77);
/// The IPv6 multicast group for [`DiscoveryConfig::ipv6_group`]:
/// ff02::7447 (link-local scope).
pub const DEFAULT_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x7447);
/// How often an announcer repeats itself unless configured: 1 s.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// How many intervals an announcement stays valid unless configured: 3.
pub const DEFAULT_LEASE_INTERVALS: u32 = 3;
/// The most peers a listener tracks unless configured.
pub const DEFAULT_MAX_PEERS: usize = 256;
/// The most topics a listener tracks unless configured.
pub const DEFAULT_MAX_TOPICS: usize = 4096;

/// Which way announcements travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP broadcast to [`DiscoveryConfig::broadcast_address`].
    Broadcast,
    /// UDP multicast to [`DiscoveryConfig::group`].
    Multicast,
    /// Both: every packet is sent twice, and a listener takes either (the
    /// second copy only refreshes what the first one set).
    Both,
}

impl Transport {
    /// Whether broadcast is used.
    pub const fn broadcast(self) -> bool {
        matches!(self, Transport::Broadcast | Transport::Both)
    }

    /// Whether multicast is used.
    pub const fn multicast(self) -> bool {
        matches!(self, Transport::Multicast | Transport::Both)
    }
}

/// The network interface discovery uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Interface {
    /// Whatever the routing table picks (the default route's interface).
    Default,
    /// An interface by name, e.g. `eth0` or `lo`: multicast by its index,
    /// broadcast bound to the device (`SO_BINDTODEVICE`).
    Name(String),
    /// An interface by one of its IPv4 addresses: multicast joins and sends
    /// there; broadcast is sent from that address.
    Address(Ipv4Addr),
}

/// How discovery sends and listens. Announcer and listener must agree on
/// port, transport, group and broadcast address.
#[derive(Clone, Debug)]
pub struct DiscoveryConfig {
    /// The UDP port (default [`DEFAULT_PORT`]).
    pub port: u16,
    /// Broadcast, multicast or both (default [`Transport::Both`]).
    pub transport: Transport,
    /// The multicast group (default [`DEFAULT_GROUP`]).
    pub group: Ipv4Addr,
    /// Whether IPv4 is used (default true).
    pub ipv4: bool,
    /// An IPv6 multicast group, used as well when multicast is on (default
    /// `None`: IPv4 only; [`DEFAULT_GROUP_V6`] is ours). IPv6 has no
    /// broadcast. A link-local group needs an interface by name (or a
    /// default route). A peer heard over both keeps its IPv4 source.
    pub ipv6_group: Option<Ipv6Addr>,
    /// Where broadcasts go (default 255.255.255.255; with an interface by
    /// name the limited broadcast leaves through that interface; a subnet
    /// broadcast such as 10.0.0.255 also works).
    pub broadcast_address: Ipv4Addr,
    /// The interface (default [`Interface::Default`]).
    pub interface: Interface,
    /// Multicast time-to-live (IPv6: hop limit): how many routers a packet
    /// may cross (default 1: this link only).
    pub ttl: u32,
    /// Whether multicast sent by this host is looped back to listeners on
    /// this host (default true; IPv4 and IPv6).
    pub multicast_loop: bool,
    /// Time between announcements (default [`DEFAULT_INTERVAL`]).
    pub interval: Duration,
    /// How long an announcement stays valid (default 3 intervals); sent in
    /// every packet, so each listener applies the sender's lease.
    pub lease: Duration,
    /// The announcer's sender id; `None` draws a random one. A process
    /// that keeps its id across restarts is recognised as restarted.
    pub sender_id: Option<u64>,
    /// Whether a listener ignores the announcements of this process's own
    /// announcers (default true).
    pub ignore_own: bool,
    /// The most peers (senders) a listener tracks; the least recently seen
    /// is evicted first (default [`DEFAULT_MAX_PEERS`]).
    pub max_peers: usize,
    /// The most topics a listener tracks; the least recently seen is
    /// evicted first (default [`DEFAULT_MAX_TOPICS`]).
    pub max_topics: usize,
    /// A shared secret (default `None`: announcements are neither signed
    /// nor checked, as in the seed). With one, announcers seal every packet
    /// with an HMAC-SHA256 tag and the sending time, and listeners drop
    /// packets without a valid tag, outside [`auth_window`](Self::auth_window)
    /// or replayed (counted in `DiscoveryStats`). Load it with
    /// [`NetSecret::from_file`](super::NetSecret::from_file) or
    /// [`NetSecret::from_env`](super::NetSecret::from_env).
    pub secret: Option<super::NetSecret>,
    /// How far a sealed packet's sending time may be from the listener's
    /// clock (default 10 s): hosts' clocks must agree this well.
    pub auth_window: Duration,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            port: DEFAULT_PORT,
            transport: Transport::Both,
            group: DEFAULT_GROUP,
            ipv4: true,
            ipv6_group: None,
            broadcast_address: Ipv4Addr::BROADCAST,
            interface: Interface::Default,
            ttl: 1,
            multicast_loop: true,
            interval: DEFAULT_INTERVAL,
            lease: DEFAULT_INTERVAL * DEFAULT_LEASE_INTERVALS,
            sender_id: None,
            ignore_own: true,
            max_peers: DEFAULT_MAX_PEERS,
            max_topics: DEFAULT_MAX_TOPICS,
            secret: None,
            auth_window: Duration::from_millis(super::DEFAULT_WINDOW_MS),
        }
    }
}

impl DiscoveryConfig {
    /// The defaults on `port`.
    pub fn on_port(port: u16) -> Self {
        DiscoveryConfig {
            port,
            ..Self::default()
        }
    }

    /// Sets the interval and a lease of three intervals.
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self.lease = interval * DEFAULT_LEASE_INTERVALS;
        self
    }

    /// Sets the transport.
    #[must_use]
    pub fn with_transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Sets the interface.
    #[must_use]
    pub fn with_interface(mut self, interface: Interface) -> Self {
        self.interface = interface;
        self
    }

    /// The IPv6 group, if IPv6 multicast is in use.
    pub fn ipv6_multicast(&self) -> Option<Ipv6Addr> {
        self.ipv6_group.filter(|_| self.transport.multicast())
    }

    /// Discovery on this host only: the interface of 127.0.0.1 (so
    /// announcements come from 127.0.0.1; by name, `lo`, multicast would
    /// leave from the host's primary address), broadcast to
    /// 127.255.255.255, multicast looped back. What tests use.
    #[must_use]
    pub fn loopback(mut self) -> Self {
        self.interface = Interface::Address(Ipv4Addr::LOCALHOST);
        self.broadcast_address = Ipv4Addr::new(127, 255, 255, 255);
        self.multicast_loop = true;
        self
    }
}
