//! Property tests of the discovery packet parser (`shmidl::net::Packet`):
//! every packet round-trips, every accepted byte string re-encodes to
//! itself, random and mutated bytes never panic, and every truncation of a
//! valid packet is refused. The same harness as the cargo-fuzz target
//! `fuzz/fuzz_targets/discovery_packet.rs`.
#![cfg(feature = "net")]

use proptest::prelude::*;
use shmidl::net::{split, AnnouncedTopic, Packet, PacketError, Role, MAX_PACKET_LEN};

fn string(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<char>(), 0..max.min(40)).prop_map(|c| c.into_iter().collect()),
        "[a-z/_.]{0,255}".prop_map(String::from),
    ]
    .prop_map(move |mut s: String| {
        while s.len() > max {
            s.pop();
        }
        s
    })
}

fn topic() -> impl Strategy<Value = AnnouncedTopic> {
    (
        string(255).prop_filter("a name", |s| !s.is_empty()),
        string(255),
        any::<u64>(),
        prop_oneof![Just(Role::Publisher), Just(Role::Subscriber)],
        any::<u16>(),
        string(255),
    )
        .prop_map(
            |(name, type_name, fingerprint, role, ws_port, ws_path)| AnnouncedTopic {
                name,
                type_name,
                fingerprint,
                role,
                ws_port,
                ws_path,
            },
        )
}

prop_compose! {
    fn header()(
        goodbye in any::<bool>(),
        sender_id in any::<u64>(),
        sequence in any::<u64>(),
        pid in any::<u32>(),
        lease_ms in any::<u32>(),
        host in string(255),
    ) -> Packet {
        Packet { goodbye, sender_id, sequence, pid, lease_ms, part: 0, parts: 1, host, topics: vec![] }
    }
}

/// Random packets, split as the announcer splits them (so each fits).
fn packets() -> impl Strategy<Value = Vec<Packet>> {
    (header(), prop::collection::vec(topic(), 0..12))
        .prop_map(|(h, topics)| split(&h, &topics).expect("valid topics split"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn every_packet_round_trips(packets in packets()) {
        for p in packets {
            let bytes = p.encode().unwrap();
            prop_assert!(bytes.len() <= MAX_PACKET_LEN);
            prop_assert_eq!(Packet::parse(&bytes), Ok(p));
            shmidl::net::fuzzing::check_discovery_input(&bytes);
        }
    }

    #[test]
    fn every_truncation_is_refused(packets in packets(), cut in any::<prop::sample::Index>()) {
        let bytes = packets[0].encode().unwrap();
        let n = cut.index(bytes.len());
        prop_assert!(Packet::parse(&bytes[..n]).is_err());
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1500)) {
        shmidl::net::fuzzing::check_discovery_input(&bytes);
    }

    #[test]
    fn mutated_packets_never_panic_and_stay_canonical(
        packets in packets(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = packets[0].encode().unwrap();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        shmidl::net::fuzzing::check_discovery_input(&bytes);
    }

    #[test]
    fn random_bytes_behind_a_valid_header_never_panic(
        packets in packets(),
        tail in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        // A valid header and length, then garbage: exercises the topic
        // parser rather than the magic check.
        let mut bytes = packets[0].encode().unwrap();
        bytes.truncate(37);
        bytes.extend_from_slice(&tail);
        bytes.truncate(MAX_PACKET_LEN);
        let len = u16::try_from(bytes.len()).unwrap();
        bytes[6..8].copy_from_slice(&len.to_le_bytes());
        shmidl::net::fuzzing::check_discovery_input(&bytes);
        if let Err(e) = Packet::parse(&bytes) {
            let past_the_header =
                !matches!(e, PacketError::BadMagic { .. } | PacketError::Length { .. });
            prop_assert!(past_the_header, "{e}");
        }
    }
}
