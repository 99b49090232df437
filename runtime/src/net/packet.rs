//! The discovery announcement packet: encoding and parsing, pure (no I/O).
//!
//! The byte layout is written down in `docs/wire-format.md`, section
//! "Discovery announcements"; a test below encodes the example packet of that
//! page and compares it with the page's hex dump.
//!
//! The encoding is canonical: every field of the datagram is a field of
//! [`Packet`], reserved bits must be zero and lengths are exact, so
//! `encode(parse(bytes)) == bytes` for every accepted `bytes`.

use thiserror::Error;

/// The first four bytes of every discovery packet: `SHMD`.
pub const MAGIC: [u8; 4] = *b"SHMD";
/// The packet format version this crate writes and reads.
pub const VERSION: u8 = 1;
/// No packet is longer than this (fits one Ethernet MTU with IP and UDP
/// headers, and leaves room for tunnels).
pub const MAX_PACKET_LEN: usize = 1400;
/// The smallest packet: the 36-byte fixed header and the host name's
/// length byte (an empty host name, no topics).
pub const HEADER_LEN: usize = 37;
/// The smallest topic entry (one-byte name, empty type name and path).
pub const MIN_TOPIC_LEN: usize = 15;
/// Longest host name, topic name, type name or path (a one-byte length).
pub const MAX_STRING_LEN: usize = 255;
/// Flag bit 0: the sender leaves (all its topics, or the listed ones).
pub const FLAG_GOODBYE: u8 = 0x01;
/// Flag bit 1: the packet ends with an authentication trailer (the sending
/// time and an HMAC-SHA256 tag, [`TRAILER_LEN`](super::TRAILER_LEN) bytes,
/// counted in the length field).
pub const FLAG_AUTH: u8 = 0x02;

/// What a sender does with a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// It publishes the topic (code 1).
    Publisher,
    /// It subscribes to the topic (code 2).
    Subscriber,
}

impl Role {
    /// The role's byte in a packet.
    pub const fn code(self) -> u8 {
        match self {
            Role::Publisher => 1,
            Role::Subscriber => 2,
        }
    }

    /// The role of a byte, if it names one.
    pub const fn from_code(code: u8) -> Option<Role> {
        match code {
            1 => Some(Role::Publisher),
            2 => Some(Role::Subscriber),
            _ => None,
        }
    }

    /// `"publisher"` or `"subscriber"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
        }
    }
}

/// One topic in an announcement.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AnnouncedTopic {
    /// The topic's name, e.g. `robot/joint_states` (1 to 255 bytes).
    pub name: String,
    /// The qualified schema type name, e.g. `robot.v1.JointState` (up to 255 bytes).
    pub type_name: String,
    /// The type's fingerprint: `ShmSafe::FINGERPRINT`, as `shmidl check -v` prints it.
    pub fingerprint: u64,
    /// Whether the sender publishes or subscribes.
    pub role: Role,
    /// The TCP port of the sender's websocket server for this topic; 0 when
    /// it serves none.
    pub ws_port: u16,
    /// The websocket path, e.g. `/robot/joint_states` (up to 255 bytes).
    pub ws_path: String,
}

impl AnnouncedTopic {
    /// A topic of the message type `T` with role `role` and no websocket
    /// endpoint (port 0, empty path).
    pub fn of<T: crate::ShmMessage>(name: &str, role: Role) -> AnnouncedTopic {
        AnnouncedTopic {
            name: name.to_owned(),
            type_name: T::TYPE_NAME.to_owned(),
            fingerprint: T::FINGERPRINT,
            role,
            ws_port: 0,
            ws_path: String::new(),
        }
    }

    /// Sets the websocket endpoint.
    #[must_use]
    pub fn with_websocket(mut self, port: u16, path: &str) -> AnnouncedTopic {
        self.ws_port = port;
        self.ws_path = path.to_owned();
        self
    }

    /// Bytes this topic takes in a packet.
    pub fn encoded_len(&self) -> usize {
        MIN_TOPIC_LEN - 1 + self.name.len() + self.type_name.len() + self.ws_path.len()
    }

    fn check(&self) -> Result<(), PacketEncodeError> {
        check_string("topic name", &self.name)?;
        if self.name.is_empty() {
            return Err(PacketEncodeError::EmptyTopicName);
        }
        check_string("type name", &self.type_name)?;
        check_string("websocket path", &self.ws_path)
    }
}

/// One discovery datagram: a header and a (possibly empty) list of topics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// A goodbye: without topics the sender leaves; with topics it withdraws
    /// those.
    pub goodbye: bool,
    /// The sender's random identity (one per announcer, unless configured).
    pub sender_id: u64,
    /// The announcement round; every packet of one round has the same one,
    /// and it grows by one each round.
    pub sequence: u64,
    /// The sender's process id.
    pub pid: u32,
    /// How long the topics stay valid without another announcement, in ms.
    pub lease_ms: u32,
    /// This packet's index among the round's packets (0-based).
    pub part: u8,
    /// How many packets the round has (at least 1).
    pub parts: u8,
    /// The sender's host name (up to 255 bytes).
    pub host: String,
    /// The topics this packet carries.
    pub topics: Vec<AnnouncedTopic>,
}

/// Why bytes are not a discovery packet.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PacketError {
    /// Shorter than the fixed header.
    #[error("{len} bytes is shorter than the smallest packet ({HEADER_LEN} bytes)")]
    TooShort {
        /// The datagram's length.
        len: usize,
    },
    /// Longer than [`MAX_PACKET_LEN`].
    #[error("{len} bytes is more than the {MAX_PACKET_LEN} a packet may have")]
    TooLarge {
        /// The datagram's length.
        len: usize,
    },
    /// Not a shmidl discovery packet.
    #[error("foreign packet: magic {found:02x?}")]
    BadMagic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A version this crate does not read.
    #[error("unsupported discovery packet version {version}")]
    UnsupportedVersion {
        /// The version byte.
        version: u8,
    },
    /// The length field disagrees with the datagram's length.
    #[error("the packet says {declared} bytes but is {actual}")]
    Length {
        /// The length field.
        declared: usize,
        /// The datagram's length.
        actual: usize,
    },
    /// A flag bit that version 1 does not define is set.
    #[error("reserved flag bits set: {flags:#04x}")]
    ReservedFlags {
        /// The flags byte.
        flags: u8,
    },
    /// `part` is not below `parts`, or `parts` is 0.
    #[error("part {part} of {parts}")]
    BadPart {
        /// The part field.
        part: u8,
        /// The parts field.
        parts: u8,
    },
    /// More topics than the packet's bytes could hold.
    #[error("{count} topics cannot fit in the packet")]
    TooManyTopics {
        /// The topic count field.
        count: usize,
    },
    /// A field runs past the end of the packet.
    #[error("field `{field}` at byte {offset} runs past the end")]
    Truncated {
        /// Which field.
        field: &'static str,
        /// Its offset.
        offset: usize,
    },
    /// A string is not UTF-8.
    #[error("field `{field}` at byte {offset} is not UTF-8")]
    Utf8 {
        /// Which field.
        field: &'static str,
        /// Its offset.
        offset: usize,
    },
    /// A topic name is empty.
    #[error("empty topic name at byte {offset}")]
    EmptyTopicName {
        /// Its offset.
        offset: usize,
    },
    /// A role byte is neither 1 nor 2.
    #[error("role {role} at byte {offset} is neither publisher (1) nor subscriber (2)")]
    BadRole {
        /// The byte.
        role: u8,
        /// Its offset.
        offset: usize,
    },
    /// Bytes left after the last topic.
    #[error("{extra} bytes after the last topic")]
    Trailing {
        /// How many.
        extra: usize,
    },
}

impl PacketError {
    /// A short stable name of the reason (`"too_short"`, `"bad_magic"`, …),
    /// as counted in `DiscoveryStats`.
    pub const fn reason(&self) -> &'static str {
        match self {
            PacketError::TooShort { .. } => "too_short",
            PacketError::TooLarge { .. } => "too_large",
            PacketError::BadMagic { .. } => "bad_magic",
            PacketError::UnsupportedVersion { .. } => "unsupported_version",
            PacketError::Length { .. } => "length",
            PacketError::ReservedFlags { .. } => "reserved_flags",
            PacketError::BadPart { .. } => "bad_part",
            PacketError::TooManyTopics { .. } => "too_many_topics",
            PacketError::Truncated { .. } => "truncated",
            PacketError::Utf8 { .. } => "utf8",
            PacketError::EmptyTopicName { .. } => "empty_topic_name",
            PacketError::BadRole { .. } => "bad_role",
            PacketError::Trailing { .. } => "trailing",
        }
    }
}

/// Why a packet cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PacketEncodeError {
    /// A string is longer than [`MAX_STRING_LEN`] bytes.
    #[error("{field} is {len} bytes; at most {MAX_STRING_LEN} fit")]
    StringTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// A topic has an empty name.
    #[error("a topic name is empty")]
    EmptyTopicName,
    /// The packet would be longer than [`MAX_PACKET_LEN`].
    #[error("the packet would be {len} bytes; at most {MAX_PACKET_LEN} fit")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// `part` is not below `parts`, or `parts` is 0.
    #[error("part {part} of {parts}")]
    BadPart {
        /// The part field.
        part: u8,
        /// The parts field.
        parts: u8,
    },
    /// The topics need more than 255 packets.
    #[error("{topics} topics need more than 255 packets")]
    TooManyTopics {
        /// How many topics.
        topics: usize,
    },
}

fn check_string(field: &'static str, s: &str) -> Result<(), PacketEncodeError> {
    if s.len() > MAX_STRING_LEN {
        return Err(PacketEncodeError::StringTooLong {
            field,
            len: s.len(),
        });
    }
    Ok(())
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    // Checked by the callers: at most MAX_STRING_LEN bytes.
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

impl Packet {
    /// Bytes this packet takes on the wire.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + self.host.len()
            + self
                .topics
                .iter()
                .map(AnnouncedTopic::encoded_len)
                .sum::<usize>()
    }

    /// The packet's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, PacketEncodeError> {
        self.encode_with(0, 0)
    }

    /// The packet's bytes with the authentication trailer of `secret`,
    /// sent at `unix_ms` (milliseconds since the UNIX epoch): flag bit 1
    /// set, the length counting the trailer (`docs/wire-format.md`).
    pub fn encode_sealed(
        &self,
        secret: &super::NetSecret,
        unix_ms: u64,
    ) -> Result<Vec<u8>, PacketEncodeError> {
        let mut out = self.encode_with(FLAG_AUTH, super::TRAILER_LEN)?;
        let trailer = secret.seal_packet(&out, unix_ms);
        out.extend_from_slice(&trailer);
        Ok(out)
    }

    /// Whether `bytes`, a datagram [`parse`](Packet::parse) accepted,
    /// carries an authentication trailer (which only a receiver with the
    /// secret can check).
    pub fn is_sealed(bytes: &[u8]) -> bool {
        bytes.get(5).is_some_and(|f| f & FLAG_AUTH != 0)
    }

    /// The bytes before any trailer, with `flags` added and `trailer`
    /// more bytes counted in the length field.
    fn encode_with(&self, flags: u8, trailer: usize) -> Result<Vec<u8>, PacketEncodeError> {
        check_string("host name", &self.host)?;
        for topic in &self.topics {
            topic.check()?;
        }
        if self.parts == 0 || self.part >= self.parts {
            return Err(PacketEncodeError::BadPart {
                part: self.part,
                parts: self.parts,
            });
        }
        let body = self.encoded_len();
        let len = body + trailer;
        if len > MAX_PACKET_LEN {
            return Err(PacketEncodeError::TooLarge { len });
        }
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(flags | if self.goodbye { FLAG_GOODBYE } else { 0 });
        // len <= MAX_PACKET_LEN < u16::MAX, and the topic count is below
        // len / MIN_TOPIC_LEN.
        out.extend_from_slice(&(len as u16).to_le_bytes());
        out.extend_from_slice(&self.sender_id.to_le_bytes());
        out.extend_from_slice(&self.sequence.to_le_bytes());
        out.extend_from_slice(&self.pid.to_le_bytes());
        out.extend_from_slice(&self.lease_ms.to_le_bytes());
        out.push(self.part);
        out.push(self.parts);
        out.extend_from_slice(&(self.topics.len() as u16).to_le_bytes());
        put_string(&mut out, &self.host);
        for t in &self.topics {
            put_string(&mut out, &t.name);
            put_string(&mut out, &t.type_name);
            out.extend_from_slice(&t.fingerprint.to_le_bytes());
            out.push(t.role.code());
            out.extend_from_slice(&t.ws_port.to_le_bytes());
            put_string(&mut out, &t.ws_path);
        }
        debug_assert_eq!(out.len(), body);
        Ok(out)
    }

    /// Parses one datagram. Never panics; every rule of
    /// `docs/wire-format.md` that bytes can break is a [`PacketError`].
    pub fn parse(bytes: &[u8]) -> Result<Packet, PacketError> {
        let len = bytes.len();
        if len > MAX_PACKET_LEN {
            return Err(PacketError::TooLarge { len });
        }
        if len < 5 {
            return Err(PacketError::TooShort { len });
        }
        let mut r = Reader { bytes, pos: 0 };
        let magic = r.array::<4>("magic")?;
        if magic != MAGIC {
            return Err(PacketError::BadMagic { found: magic });
        }
        let version = r.u8("version")?;
        if version != VERSION {
            return Err(PacketError::UnsupportedVersion { version });
        }
        if len < HEADER_LEN {
            return Err(PacketError::TooShort { len });
        }
        let flags = r.u8("flags")?;
        if flags & !(FLAG_GOODBYE | FLAG_AUTH) != 0 {
            return Err(PacketError::ReservedFlags { flags });
        }
        let declared = usize::from(u16::from_le_bytes(r.array("length")?));
        if declared != len {
            return Err(PacketError::Length {
                declared,
                actual: len,
            });
        }
        let sender_id = u64::from_le_bytes(r.array("sender id")?);
        let sequence = u64::from_le_bytes(r.array("sequence")?);
        let pid = u32::from_le_bytes(r.array("pid")?);
        let lease_ms = u32::from_le_bytes(r.array("lease")?);
        let part = r.u8("part")?;
        let parts = r.u8("parts")?;
        if parts == 0 || part >= parts {
            return Err(PacketError::BadPart { part, parts });
        }
        // A sealed packet's topics end where its trailer starts.
        let end = if flags & FLAG_AUTH != 0 {
            if len < HEADER_LEN + super::TRAILER_LEN {
                return Err(PacketError::TooShort { len });
            }
            len - super::TRAILER_LEN
        } else {
            len
        };
        r.bytes = &bytes[..end];
        let count = usize::from(u16::from_le_bytes(r.array("topic count")?));
        if count > (end - HEADER_LEN) / MIN_TOPIC_LEN {
            return Err(PacketError::TooManyTopics { count });
        }
        let host = r.string("host name")?;
        let mut topics = Vec::with_capacity(count);
        for _ in 0..count {
            let at = r.pos;
            let name = r.string("topic name")?;
            if name.is_empty() {
                return Err(PacketError::EmptyTopicName { offset: at });
            }
            let type_name = r.string("type name")?;
            let fingerprint = u64::from_le_bytes(r.array("fingerprint")?);
            let at = r.pos;
            let code = r.u8("role")?;
            let role = Role::from_code(code).ok_or(PacketError::BadRole {
                role: code,
                offset: at,
            })?;
            let ws_port = u16::from_le_bytes(r.array("websocket port")?);
            let ws_path = r.string("websocket path")?;
            topics.push(AnnouncedTopic {
                name,
                type_name,
                fingerprint,
                role,
                ws_port,
                ws_path,
            });
        }
        if r.pos != end {
            return Err(PacketError::Trailing { extra: end - r.pos });
        }
        Ok(Packet {
            goodbye: flags & FLAG_GOODBYE != 0,
            sender_id,
            sequence,
            pid,
            lease_ms,
            part,
            parts,
            host,
            topics,
        })
    }
}

/// A cursor over a datagram; every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&[u8], PacketError> {
        let truncated = PacketError::Truncated {
            field,
            offset: self.pos,
        };
        let end = self.pos.checked_add(n).ok_or(truncated.clone())?;
        let slice = self.bytes.get(self.pos..end).ok_or(truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], PacketError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, PacketError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn string(&mut self, field: &'static str) -> Result<String, PacketError> {
        let at = self.pos;
        let n = usize::from(self.u8(field)?);
        let raw = self.take(n, field)?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| PacketError::Utf8 { field, offset: at })
    }
}

/// Splits `topics` into the fewest packets that each stay under
/// [`MAX_PACKET_LEN`] with room for an authentication trailer, in order, each a full header (a copy of `template`
/// with `part`, `parts` and `topics` set) plus a run of topics. No topics
/// gives one packet with none.
pub fn split(
    template: &Packet,
    topics: &[AnnouncedTopic],
) -> Result<Vec<Packet>, PacketEncodeError> {
    check_string("host name", &template.host)?;
    // Room is left for an authentication trailer, sealed or not.
    let room = MAX_PACKET_LEN - super::TRAILER_LEN - HEADER_LEN - template.host.len();
    let mut runs: Vec<Vec<AnnouncedTopic>> = vec![Vec::new()];
    let mut used = 0;
    for topic in topics {
        topic.check()?;
        let n = topic.encoded_len();
        // The longest topic (3 × 255 + 14 bytes) with the longest host
        // (255 bytes) still fits one packet, so a fresh run always takes it.
        if used + n > room && !runs.last().is_some_and(Vec::is_empty) {
            runs.push(Vec::new());
            used = 0;
        }
        used += n;
        if let Some(run) = runs.last_mut() {
            run.push(topic.clone());
        }
    }
    let parts = u8::try_from(runs.len()).map_err(|_| PacketEncodeError::TooManyTopics {
        topics: topics.len(),
    })?;
    Ok(runs
        .into_iter()
        .enumerate()
        .map(|(i, topics)| Packet {
            part: i as u8,
            parts,
            topics,
            ..template.clone()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of docs/wire-format.md, "Discovery announcements".
    pub(crate) fn doc_example() -> Packet {
        Packet {
            goodbye: false,
            sender_id: 0x1122_3344_5566_7788,
            sequence: 5,
            pid: 4242,
            lease_ms: 3000,
            part: 0,
            parts: 1,
            host: "arm1".into(),
            topics: vec![AnnouncedTopic {
                name: "robot/joints".into(),
                type_name: "robot.v1.JointState".into(),
                fingerprint: 0x0123_4567_89ab_cdef,
                role: Role::Publisher,
                ws_port: 9001,
                ws_path: "/joints".into(),
            }],
        }
    }

    /// The hex column of the doc's dump, in order.
    fn doc_hex() -> Vec<u8> {
        let doc = include_str!("../../../docs/wire-format.md");
        let section = doc
            .split("<!-- discovery-example-begin -->")
            .nth(1)
            .and_then(|s| s.split("<!-- discovery-example-end -->").next())
            .expect("the example markers in docs/wire-format.md");
        let mut out = Vec::new();
        for line in section.lines().filter(|l| l.starts_with("0x")) {
            // "0x0000  53 48 4d 44   meaning": the bytes sit between the
            // offset and two spaces before the meaning.
            let rest = line.split_once("  ").map_or("", |(_, r)| r).trim_start();
            let bytes = rest.split("  ").next().unwrap_or("");
            for b in bytes.split_whitespace() {
                out.push(u8::from_str_radix(b, 16).expect("hex byte in the doc"));
            }
        }
        out
    }

    #[test]
    fn the_doc_example_is_what_encode_writes() {
        let bytes = doc_example().encode().unwrap();
        assert_eq!(bytes, doc_hex());
        assert_eq!(Packet::parse(&bytes).unwrap(), doc_example());
    }

    #[test]
    fn a_sealed_packet_parses_to_the_same_packet_and_its_tag_checks() {
        let secret = crate::net::NetSecret::from_bytes(b"sixteen or more bytes").unwrap();
        let p = doc_example();
        let sealed = p.encode_sealed(&secret, 1_700_000_000_000).unwrap();
        assert_eq!(sealed.len(), p.encoded_len() + crate::net::TRAILER_LEN);
        assert_eq!(sealed[5], FLAG_AUTH);
        assert_eq!(Packet::parse(&sealed), Ok(p.clone()));
        assert!(Packet::is_sealed(&sealed));
        assert!(!Packet::is_sealed(&p.encode().unwrap()));
        assert_eq!(secret.open_packet(&sealed), Ok(1_700_000_000_000));
        // Every truncation is refused, and bit 2 is still reserved.
        for n in 0..sealed.len() {
            assert!(Packet::parse(&sealed[..n]).is_err(), "{n} bytes");
        }
        let mut reserved = sealed.clone();
        reserved[5] |= 0x04;
        assert!(matches!(
            Packet::parse(&reserved),
            Err(PacketError::ReservedFlags { .. })
        ));
    }

    #[test]
    fn a_goodbye_without_topics_round_trips() {
        let p = Packet {
            goodbye: true,
            topics: vec![],
            ..doc_example()
        };
        let bytes = p.encode().unwrap();
        assert_eq!(bytes.len(), HEADER_LEN + 4);
        assert_eq!(Packet::parse(&bytes).unwrap(), p);
    }

    #[test]
    fn each_rule_has_its_error() {
        let good = doc_example().encode().unwrap();
        let mut b = good.clone();
        b[0] = b'X';
        assert!(matches!(
            Packet::parse(&b),
            Err(PacketError::BadMagic { .. })
        ));
        let mut b = good.clone();
        b[4] = 2;
        assert_eq!(
            Packet::parse(&b),
            Err(PacketError::UnsupportedVersion { version: 2 })
        );
        let mut b = good.clone();
        b[5] = 0x80;
        assert_eq!(
            Packet::parse(&b),
            Err(PacketError::ReservedFlags { flags: 0x80 })
        );
        let mut b = good.clone();
        b.push(0);
        assert!(matches!(Packet::parse(&b), Err(PacketError::Length { .. })));
        let mut b = good.clone();
        b.push(0);
        let n = b.len() as u16;
        b[6..8].copy_from_slice(&n.to_le_bytes());
        assert_eq!(Packet::parse(&b), Err(PacketError::Trailing { extra: 1 }));
        let mut b = good.clone();
        b[33] = 0;
        assert!(matches!(
            Packet::parse(&b),
            Err(PacketError::BadPart { .. })
        ));
        let mut b = good.clone();
        b[34] = 200;
        assert!(matches!(
            Packet::parse(&b),
            Err(PacketError::TooManyTopics { count: 200 })
        ));
        let mut b = good.clone();
        b[38] = 0xff;
        assert!(matches!(Packet::parse(&b), Err(PacketError::Utf8 { .. })));
        let role_at = good.len() - 1 - 7 - 2 - 1;
        let mut b = good.clone();
        b[role_at] = 3;
        assert!(matches!(
            Packet::parse(&b),
            Err(PacketError::BadRole { role: 3, .. })
        ));
        assert_eq!(
            Packet::parse(&good[..10]),
            Err(PacketError::TooShort { len: 10 })
        );
        assert!(matches!(
            Packet::parse(&vec![0; MAX_PACKET_LEN + 1]),
            Err(PacketError::TooLarge { .. })
        ));
    }

    #[test]
    fn many_topics_split_into_self_contained_packets() {
        let topics: Vec<AnnouncedTopic> = (0..200)
            .map(|i| AnnouncedTopic {
                name: format!("topic/number/{i}"),
                ..doc_example().topics[0].clone()
            })
            .collect();
        let packets = split(&doc_example(), &topics).unwrap();
        assert!(packets.len() > 1);
        let mut back = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            let bytes = p.encode().unwrap();
            assert!(bytes.len() <= MAX_PACKET_LEN);
            let parsed = Packet::parse(&bytes).unwrap();
            assert_eq!(usize::from(parsed.part), i);
            assert_eq!(usize::from(parsed.parts), packets.len());
            back.extend(parsed.topics);
        }
        assert_eq!(back, topics);
    }

    #[test]
    fn the_largest_topic_with_the_largest_host_fits_one_packet() {
        let long = "x".repeat(MAX_STRING_LEN);
        let topic = AnnouncedTopic {
            name: long.clone(),
            type_name: long.clone(),
            ws_path: long.clone(),
            ..doc_example().topics[0].clone()
        };
        let template = Packet {
            host: long,
            ..doc_example()
        };
        let packets = split(&template, &[topic.clone(), topic]).unwrap();
        assert_eq!(packets.len(), 2);
        for p in packets {
            p.encode().unwrap();
        }
    }
}
