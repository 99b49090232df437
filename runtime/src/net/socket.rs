//! The UDP sockets of discovery, configured with socket2 and then used as
//! plain `std::net::UdpSocket`s (safe `send_to`/`recv_from`).

use std::{
    io,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket},
    time::Duration,
};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};

use super::{
    config::{DiscoveryConfig, Interface},
    NetError,
};

/// The index of interface `name`, read from sysfs (no `unsafe`, no libc).
pub(crate) fn interface_index(name: &str) -> Result<u32, NetError> {
    let bad = || NetError::Interface {
        name: name.to_owned(),
    };
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(bad());
    }
    let text =
        std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex")).map_err(|_| bad())?;
    text.trim().parse().map_err(|_| bad())
}

fn udp() -> io::Result<Socket> {
    Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
}

fn udp6() -> io::Result<Socket> {
    let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_only_v6(true)?;
    Ok(s)
}

/// The interface index IPv6 multicast uses: by name, else 0 (the kernel's
/// choice; an IPv4 address names no IPv6 interface).
fn index_v6(config: &DiscoveryConfig) -> Result<u32, NetError> {
    match &config.interface {
        Interface::Name(name) => interface_index(name),
        Interface::Default | Interface::Address(_) => Ok(0),
    }
}

/// Where the IPv6 announcements go.
pub(crate) fn destination_v6(
    config: &DiscoveryConfig,
    group: Ipv6Addr,
) -> Result<SocketAddr, NetError> {
    Ok(SocketAddrV6::new(group, config.port, 0, index_v6(config)?).into())
}

/// The announcer's IPv6 socket: multicast hop limit and loopback set,
/// leaving by the configured interface.
pub(crate) fn sender_v6(config: &DiscoveryConfig) -> Result<UdpSocket, NetError> {
    let s = udp6().map_err(ctx("create the IPv6 sending socket"))?;
    s.set_multicast_hops_v6(config.ttl)
        .map_err(ctx("IPV6_MULTICAST_HOPS"))?;
    s.set_multicast_loop_v6(config.multicast_loop)
        .map_err(ctx("IPV6_MULTICAST_LOOP"))?;
    let index = index_v6(config)?;
    if index != 0 {
        s.set_multicast_if_v6(index)
            .map_err(ctx("IPV6_MULTICAST_IF"))?;
    }
    if let Interface::Name(name) = &config.interface {
        s.bind_device(Some(name.as_bytes()))
            .map_err(ctx("SO_BINDTODEVICE"))?;
    }
    s.set_write_timeout(Some(Duration::from_secs(1)))
        .map_err(ctx("SO_SNDTIMEO"))?;
    Ok(s.into())
}

/// An IPv6 listening socket, as [`listener`] for IPv4: `[::]:port`,
/// reuse-address and reuse-port, the group joined.
pub(crate) fn listener_v6(
    config: &DiscoveryConfig,
    group: Ipv6Addr,
    poll: Duration,
) -> Result<UdpSocket, NetError> {
    let s = udp6().map_err(ctx("create the IPv6 listening socket"))?;
    s.set_reuse_address(true).map_err(ctx("SO_REUSEADDR"))?;
    s.set_reuse_port(true).map_err(ctx("SO_REUSEPORT"))?;
    let index = index_v6(config)?;
    if let Interface::Name(name) = &config.interface {
        s.bind_device(Some(name.as_bytes()))
            .map_err(ctx("SO_BINDTODEVICE"))?;
    }
    s.bind(&SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, config.port, 0, 0).into())
        .map_err(ctx("bind the IPv6 discovery port"))?;
    s.set_multicast_all_v6(false)
        .map_err(ctx("IPV6_MULTICAST_ALL"))?;
    s.join_multicast_v6(&group, index)
        .map_err(ctx("join the IPv6 multicast group"))?;
    s.set_read_timeout(Some(poll)).map_err(ctx("SO_RCVTIMEO"))?;
    Ok(s.into())
}

fn ctx(what: &'static str) -> impl FnOnce(io::Error) -> NetError {
    move |source| NetError::Socket { what, source }
}

/// The announcer's socket: broadcast allowed, multicast TTL and loopback
/// set, leaving by the configured interface.
pub(crate) fn sender(config: &DiscoveryConfig) -> Result<UdpSocket, NetError> {
    let s = udp().map_err(ctx("create the sending socket"))?;
    s.set_broadcast(true).map_err(ctx("SO_BROADCAST"))?;
    s.set_multicast_ttl_v4(config.ttl)
        .map_err(ctx("IP_MULTICAST_TTL"))?;
    s.set_multicast_loop_v4(config.multicast_loop)
        .map_err(ctx("IP_MULTICAST_LOOP"))?;
    match &config.interface {
        Interface::Default => {}
        Interface::Name(name) => {
            interface_index(name)?;
            s.bind_device(Some(name.as_bytes()))
                .map_err(ctx("SO_BINDTODEVICE"))?;
        }
        Interface::Address(addr) => {
            s.set_multicast_if_v4(addr)
                .map_err(ctx("IP_MULTICAST_IF"))?;
            s.bind(&SocketAddrV4::new(*addr, 0).into())
                .map_err(ctx("bind to the interface address"))?;
        }
    }
    s.set_write_timeout(Some(Duration::from_secs(1)))
        .map_err(ctx("SO_SNDTIMEO"))?;
    Ok(s.into())
}

/// Where announcements go, one address per transport in use.
pub(crate) fn destinations(config: &DiscoveryConfig) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    if config.transport.multicast() {
        out.push(SocketAddrV4::new(config.group, config.port).into());
    }
    if config.transport.broadcast() {
        out.push(SocketAddrV4::new(config.broadcast_address, config.port).into());
    }
    out
}

/// A listening socket: bound to the wildcard address on the port with
/// `SO_REUSEADDR` and `SO_REUSEPORT`, so any number of processes on a host
/// listen at once. Broadcast and multicast datagrams are delivered to every
/// socket bound so (only unicast is load-balanced among a reuse-port
/// group). Joins the group when multicast is in use. Reads time out after
/// `poll` so the owner can check for shutdown.
pub(crate) fn listener(config: &DiscoveryConfig, poll: Duration) -> Result<UdpSocket, NetError> {
    let s = udp().map_err(ctx("create the listening socket"))?;
    s.set_reuse_address(true).map_err(ctx("SO_REUSEADDR"))?;
    s.set_reuse_port(true).map_err(ctx("SO_REUSEPORT"))?;
    if let Interface::Name(name) = &config.interface {
        interface_index(name)?;
        s.bind_device(Some(name.as_bytes()))
            .map_err(ctx("SO_BINDTODEVICE"))?;
    }
    s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, config.port).into())
        .map_err(ctx("bind the discovery port"))?;
    if config.transport.multicast() {
        // Only the groups this socket joined, not every group some other
        // socket of the host joined on this port.
        s.set_multicast_all_v4(false)
            .map_err(ctx("IP_MULTICAST_ALL"))?;
        let interface = match &config.interface {
            Interface::Default => InterfaceIndexOrAddress::Address(Ipv4Addr::UNSPECIFIED),
            Interface::Name(name) => InterfaceIndexOrAddress::Index(interface_index(name)?),
            Interface::Address(addr) => InterfaceIndexOrAddress::Address(*addr),
        };
        match s.join_multicast_v4_n(&config.group, &interface) {
            Ok(()) => {}
            // With both transports, a host with no route for the group
            // (no default route, say) still hears broadcasts.
            Err(e) if config.transport.broadcast() => tracing::warn!(
                "discovery: cannot join {} ({e}); listening for broadcasts only",
                config.group
            ),
            Err(e) => return Err(ctx("join the multicast group")(e)),
        }
    }
    s.set_read_timeout(Some(poll)).map_err(ctx("SO_RCVTIMEO"))?;
    Ok(s.into())
}
