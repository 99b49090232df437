//! A domain's topic registry: one fixed-size entry per topic (name, type
//! name, fingerprint, element count, configuration), in one object of the
//! domain segment.
//!
//! Layout (`docs/segment-format.md`, "Topic registry"): a 64-byte header
//! (`capacity`, `entry_size`, `count`), then `capacity` entries of 512 bytes.
//! Entries are found by open addressing on the FNV-1a hash of the topic
//! name, probing linearly; a lookup stops at the first empty entry. When
//! every entry is taken, a new topic takes the entry of a topic no process
//! uses (one that was opened since it was defined, and has no segment now),
//! which becomes *free* first (a tombstone: lookups probe past it). So a
//! long-lived domain whose topic names change never fills up with topics of
//! the past. Entries are written only under the domain's directory lock
//! (the kernel releases it if the writer dies), and published by a Release
//! store of `state`.

use crate::{
    fingerprint::Hasher,
    router::SendMode,
    segment::{ObjectError, ObjectKind, ObjectSpec, ObjectType, Segment},
    sync::{AtomicU32, AtomicU64, Ordering},
    topic::TopicConfig,
};

/// Longest topic name (bytes), as in the schema language.
pub const MAX_TOPIC_NAME_LEN: usize = 128;
/// Longest stored type name; longer descriptions are cut (the fingerprint,
/// not the name, decides whether two types match).
const MAX_TYPE_NAME_LEN: usize = 256;

const ENTRY_EMPTY: u32 = 0;
const ENTRY_READY: u32 = 1;
/// A tombstone: the entry of a topic nobody used any more, free for a new
/// topic; lookups probe past it.
const ENTRY_FREE: u32 = 2;

/// `Entry::flags`: the configuration is the defaults a joiner
/// ([`Join`](crate::Join)) created the topic with, not one a process asked
/// for exactly.
const FLAG_JOINED: u32 = 1;
/// `Entry::flags`: a process opened the topic's segment since this
/// definition. Only such an entry is ever freed for another topic: one
/// defined a moment ago, whose definer is still creating its segment, is
/// not.
const FLAG_OPENED: u32 = 2;

#[repr(C, align(64))]
struct Header {
    capacity: AtomicU32,
    entry_size: AtomicU32,
    /// Entries ready (informational: nothing depends on it; a writer
    /// killed at the wrong moment leaves it off by one).
    count: AtomicU32,
    _reserved: [AtomicU32; 13],
}

#[repr(C, align(64))]
struct Entry {
    state: AtomicU32,
    name_len: AtomicU32,
    name_hash: AtomicU64,
    fingerprint: AtomicU64,
    /// Elements per sample for a runtime-sized topic; 0 for a fixed-size one.
    elements: AtomicU32,
    type_name_len: AtomicU32,
    pool: AtomicU32,
    pool_chunks: AtomicU32,
    depth: AtomicU32,
    max_publishers: AtomicU32,
    max_subscribers: AtomicU32,
    overflow_mode: AtomicU32,
    overflow_timeout_ns: AtomicU64,
    /// Bumped each time the topic is redefined (while no segment of it
    /// existed); part of the topic segment's name.
    generation: AtomicU32,
    /// [`FLAG_JOINED`] or 0 (a zero word in a registry written before the
    /// flag existed).
    flags: AtomicU32,
    name: [AtomicU64; MAX_TOPIC_NAME_LEN / 8],
    type_name: [AtomicU64; MAX_TYPE_NAME_LEN / 8],
}

const _: () = {
    assert!(std::mem::size_of::<Header>() == 64);
    assert!(std::mem::size_of::<Entry>() == 512);
};

/// What a registry entry says about a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicRecord {
    pub index: u32,
    pub generation: u32,
    pub type_name: String,
    pub fingerprint: u64,
    /// Includes the elements per sample of a `[T]` topic (0 for `T`).
    pub config: TopicConfig,
    /// `config` is what a joiner created the topic with (the defaults
    /// raised to its minimums), not a configuration asked for exactly.
    pub joined: bool,
}

/// Decodes a copy of a registry object (see `Segment::read_object`):
/// every ready entry, bounds-checked; a corrupt copy yields fewer entries,
/// never a panic.
pub(crate) fn decode_records(bytes: &[u8]) -> Vec<(String, TopicRecord)> {
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
    };
    let text_at = |at: usize, len: u32, max: usize| -> Option<String> {
        let len = (len as usize).min(max);
        Some(String::from_utf8_lossy(bytes.get(at..at + len)?).into_owned())
    };
    let (Some(capacity), Some(512)) = (u32_at(0), u32_at(4)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for i in 0..capacity {
        let base = 64 + 512 * i as usize;
        let entry = (|| {
            if u32_at(base)? != ENTRY_READY {
                return None;
            }
            let name = text_at(base + 72, u32_at(base + 4)?, MAX_TOPIC_NAME_LEN)?;
            let record = TopicRecord {
                index: i,
                generation: u32_at(base + 64)?,
                type_name: text_at(base + 200, u32_at(base + 28)?, MAX_TYPE_NAME_LEN)?,
                fingerprint: u64_at(base + 16)?,
                config: TopicConfig {
                    elements: u32_at(base + 24)?,
                    pool: u32_at(base + 32)?,
                    pool_chunks: u32_at(base + 36)?,
                    depth: u32_at(base + 40)?,
                    max_publishers: u32_at(base + 44)?,
                    max_subscribers: u32_at(base + 48)?,
                    overflow: SendMode::decode(u32_at(base + 52)?, u64_at(base + 56)?)?,
                },
                joined: u32_at(base + 68)? & FLAG_JOINED != 0,
            };
            Some((name, record))
        })();
        match entry {
            Some(e) => out.push(e),
            // Past the end of the copy: stop.
            None if bytes.len() < base + 512 => break,
            None => {}
        }
    }
    out
}

const _: () = {
    // `decode_records` reads these offsets; keep them in step with `Entry`.
    assert!(std::mem::offset_of!(Entry, name_len) == 4);
    assert!(std::mem::offset_of!(Entry, fingerprint) == 16);
    assert!(std::mem::offset_of!(Entry, elements) == 24);
    assert!(std::mem::offset_of!(Entry, type_name_len) == 28);
    assert!(std::mem::offset_of!(Entry, pool) == 32);
    assert!(std::mem::offset_of!(Entry, overflow_mode) == 52);
    assert!(std::mem::offset_of!(Entry, overflow_timeout_ns) == 56);
    assert!(std::mem::offset_of!(Entry, generation) == 64);
    assert!(std::mem::offset_of!(Entry, flags) == 68);
    assert!(std::mem::offset_of!(Entry, name) == 72);
    assert!(std::mem::offset_of!(Entry, type_name) == 200);
};

/// The registry of one domain, mapped in this process.
pub(crate) struct Registry {
    segment: Segment,
    offset: u64,
    capacity: u32,
}

/// Bytes of a registry of `capacity` entries.
pub(crate) fn registry_bytes(capacity: u32) -> u64 {
    64 + 512 * u64::from(capacity)
}

fn words_of<const N: usize>(s: &str) -> [u64; N] {
    let mut bytes = vec![0u8; N * 8];
    let len = s.len().min(N * 8);
    bytes[..len].copy_from_slice(&s.as_bytes()[..len]);
    let mut words = [0u64; N];
    for (w, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *w = u64::from_le_bytes(b);
    }
    words
}

fn string_of(words: &[AtomicU64], len: u32) -> String {
    let bytes: Vec<u8> = words
        .iter()
        .flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes())
        .take((len as usize).min(words.len() * 8))
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn hash_of(name: &str) -> u64 {
    Hasher::new().str(name).finish()
}

impl Registry {
    /// Finds or creates the registry object of `capacity` entries in the
    /// domain segment. An existing registry is used whatever its capacity.
    pub(crate) fn open(segment: &Segment, capacity: u32) -> Result<Self, ObjectError> {
        let size = registry_bytes(capacity);
        let spec = ObjectSpec {
            ty: ObjectType {
                kind: ObjectKind::TOPIC_REGISTRY,
                fingerprint: crate::fingerprint::runtime("topic_registry", 1),
                size,
            },
            align: 64,
            any_size: true,
        };
        let placed = segment.find_or_create_raw("topics", spec, |ptr| {
            // SAFETY: the directory reserved `size` bytes at `ptr`, 64-aligned,
            // for us alone until the entry is marked ready; zero bytes are
            // empty entries.
            unsafe { ptr.as_ptr().write_bytes(0, size as usize) };
            // SAFETY: the object starts with a `Header` (64-aligned, now
            // zero-initialised atomics), written before publication.
            let header = unsafe { ptr.cast::<Header>().as_ref() };
            header.capacity.store(capacity, Ordering::Relaxed);
            header.entry_size.store(512, Ordering::Relaxed);
        })?;
        let corrupt = |what: &'static str| ObjectError::Corrupt {
            segment: segment.name().to_owned(),
            index: 0,
            what,
        };
        if placed.size < 64 {
            return Err(corrupt("topic registry smaller than its header"));
        }
        // SAFETY: the object is initialised, 64-aligned and at least 64
        // bytes; the header's fields are atomics.
        let header = unsafe { segment.ptr_at(placed.offset).cast::<Header>().as_ref() };
        let found = header.capacity.load(Ordering::Relaxed);
        if header.entry_size.load(Ordering::Relaxed) != 512
            || found == 0
            || registry_bytes(found) > placed.size
        {
            return Err(corrupt("topic registry header does not match its object"));
        }
        Ok(Registry {
            segment: segment.clone(),
            offset: placed.offset,
            capacity: found,
        })
    }

    pub(crate) fn capacity(&self) -> u32 {
        self.capacity
    }

    fn header(&self) -> &Header {
        // SAFETY: checked in `open`: an initialised header at `offset`,
        // kept mapped by `self.segment`.
        unsafe { self.segment.ptr_at(self.offset).cast::<Header>().as_ref() }
    }

    fn entry(&self, i: u32) -> &Entry {
        debug_assert!(i < self.capacity);
        let at = self.offset + 64 + 512 * u64::from(i);
        // SAFETY: `i < capacity` and `open` checked that `capacity` entries
        // fit in the object; entries are 64-aligned and all atomics.
        unsafe { self.segment.ptr_at(at).cast::<Entry>().as_ref() }
    }

    /// The probe sequence of `name`: where it is, or the entry where it
    /// would go (the first free entry on its way, else the empty one that
    /// ends it). `None` if every entry is taken by other names.
    fn probe(&self, name: &str) -> (Option<u32>, Option<u32>) {
        let hash = hash_of(name);
        let start = (hash % u64::from(self.capacity)) as u32;
        let mut free = None;
        for k in 0..self.capacity {
            let i = (start + k) % self.capacity;
            let e = self.entry(i);
            // SYNC POINT: pairs with the Release store of `state` in
            // `define`: a READY entry's fields are visible.
            match e.state.load(Ordering::Acquire) {
                ENTRY_READY
                    if e.name_hash.load(Ordering::Relaxed) == hash
                        && e.name_len.load(Ordering::Relaxed) as usize == name.len()
                        && string_of(&e.name, name.len() as u32) == name =>
                {
                    return (Some(i), None);
                }
                ENTRY_READY => {}
                ENTRY_EMPTY => return (None, free.or(Some(i))),
                ENTRY_FREE => {
                    free.get_or_insert(i);
                }
                // A corrupt state: never reuse the entry, keep probing.
                _ => {}
            }
        }
        (None, free)
    }

    /// Frees (under the directory lock) one entry of a topic that was
    /// opened since its definition and for which `unused` holds (no process
    /// uses it now), looking from `start`. Returns whether it freed one.
    fn free_one_unused(&self, start: u32, unused: &impl Fn(&TopicRecord) -> bool) -> bool {
        for k in 0..self.capacity {
            let i = (start + k) % self.capacity;
            let e = self.entry(i);
            let reusable = e.state.load(Ordering::Acquire) == ENTRY_READY
                && e.flags.load(Ordering::Relaxed) & FLAG_OPENED != 0
                && unused(&self.record(i));
            if reusable {
                // A new topic in this entry gets the next generation, so its
                // segment is never named like one of the topic freed here.
                e.generation.fetch_add(1, Ordering::Relaxed);
                e.state.store(ENTRY_FREE, Ordering::Release);
                self.header().count.fetch_sub(1, Ordering::Relaxed);
                return true;
            }
        }
        false
    }

    /// Confirms (under the directory lock) that `name` is still the topic
    /// of `record` (same entry and generation) once the caller's segment of
    /// it exists, and marks the entry opened (see [`FLAG_OPENED`]); an
    /// `exact` opener also clears [`FLAG_JOINED`] (its configuration is
    /// the one asked for now). `false` if the topic was redefined or freed
    /// meanwhile: the caller starts over.
    pub(crate) fn confirm(
        &self,
        name: &str,
        record: &TopicRecord,
        exact: bool,
    ) -> Result<bool, ObjectError> {
        self.segment.with_directory_lock(|| {
            let Some(i) = self.probe(name).0 else {
                return false;
            };
            let e = self.entry(i);
            if i != record.index || e.generation.load(Ordering::Relaxed) != record.generation {
                return false;
            }
            let flags = e.flags.load(Ordering::Relaxed);
            let clear = if exact { FLAG_JOINED } else { 0 };
            e.flags
                .store((flags | FLAG_OPENED) & !clear, Ordering::Relaxed);
            true
        })
    }

    /// The record of `name`, if the topic was ever defined in this domain.
    /// Read under the directory lock, so never a mix of a redefinition's
    /// fields and the ones before it.
    pub(crate) fn lookup(&self, name: &str) -> Result<Option<TopicRecord>, ObjectError> {
        self.segment
            .with_directory_lock(|| self.probe(name).0.map(|i| self.record(i)))
    }

    fn record(&self, i: u32) -> TopicRecord {
        let e = self.entry(i);
        let load = |a: &AtomicU32| a.load(Ordering::Relaxed);
        TopicRecord {
            index: i,
            generation: load(&e.generation),
            type_name: string_of(&e.type_name, load(&e.type_name_len)),
            fingerprint: e.fingerprint.load(Ordering::Relaxed),
            config: TopicConfig {
                elements: load(&e.elements),
                pool: load(&e.pool),
                pool_chunks: load(&e.pool_chunks),
                depth: load(&e.depth),
                // An undecodable mode (a corrupt entry) reads as the default;
                // the router's own header decides what really happens.
                overflow: SendMode::decode(
                    load(&e.overflow_mode),
                    e.overflow_timeout_ns.load(Ordering::Relaxed),
                )
                .unwrap_or(TopicConfig::default().overflow),
                max_publishers: load(&e.max_publishers),
                max_subscribers: load(&e.max_subscribers),
            },
            joined: load(&e.flags) & FLAG_JOINED != 0,
        }
    }

    /// Every topic of the domain, in registry order.
    pub(crate) fn records(&self) -> Vec<(String, TopicRecord)> {
        (0..self.capacity)
            .filter(|&i| self.entry(i).state.load(Ordering::Acquire) == ENTRY_READY)
            .map(|i| {
                let e = self.entry(i);
                (
                    string_of(&e.name, e.name_len.load(Ordering::Relaxed)),
                    self.record(i),
                )
            })
            .collect()
    }

    /// Defines `name` (under the directory lock): a new entry, or, with
    /// `redefine`, new type and configuration for an existing one (the
    /// caller checked that no segment of the topic exists). When every
    /// entry is taken, first frees those of topics for which `unused`
    /// holds. Returns the record now in force, or `None` if the registry is
    /// full of topics in use.
    pub(crate) fn define(
        &self,
        name: &str,
        new: &TopicRecord,
        redefine: impl FnOnce(&TopicRecord) -> bool,
        unused: impl Fn(&TopicRecord) -> bool,
    ) -> Result<Option<TopicRecord>, ObjectError> {
        self.segment.with_directory_lock(|| {
            let (mut found, mut slot) = self.probe(name);
            if found.is_none() && slot.is_none() {
                let start = (hash_of(name) % u64::from(self.capacity)) as u32;
                if self.free_one_unused(start, &unused) {
                    (found, slot) = self.probe(name);
                }
            }
            let (i, fresh) = match (found, slot) {
                (Some(i), _) => {
                    let current = self.record(i);
                    if !redefine(&current) {
                        return Some(current);
                    }
                    (i, false)
                }
                (None, Some(i)) => (i, true),
                (None, None) => return None,
            };
            let e = self.entry(i);
            if !fresh {
                // A redefinition bumps the generation before it writes
                // anything: a process that read the old record and opens its
                // segment meanwhile (or after a redefiner died half way)
                // sees the generation move when it confirms, and starts
                // over, never sharing a segment named for the old record.
                e.generation.fetch_add(1, Ordering::Release);
            }
            let store = |a: &AtomicU32, v: u32| a.store(v, Ordering::Relaxed);
            store(&e.name_len, name.len() as u32);
            e.name_hash.store(hash_of(name), Ordering::Relaxed);
            for (w, v) in e.name.iter().zip(words_of::<16>(name)) {
                w.store(v, Ordering::Relaxed);
            }
            e.fingerprint.store(new.fingerprint, Ordering::Relaxed);
            store(&e.elements, new.config.elements);
            let type_len = new.type_name.len().min(MAX_TYPE_NAME_LEN);
            store(&e.type_name_len, type_len as u32);
            for (w, v) in e.type_name.iter().zip(words_of::<32>(&new.type_name)) {
                w.store(v, Ordering::Relaxed);
            }
            let c = &new.config;
            store(&e.pool, c.pool);
            store(&e.pool_chunks, c.pool_chunks);
            store(&e.depth, c.depth);
            store(&e.max_publishers, c.max_publishers);
            store(&e.max_subscribers, c.max_subscribers);
            let (mode, timeout) = c.overflow.encode();
            store(&e.overflow_mode, mode);
            e.overflow_timeout_ns.store(timeout, Ordering::Relaxed);
            store(&e.flags, if new.joined { FLAG_JOINED } else { 0 });
            if fresh {
                // SYNC POINT: pairs with the Acquire loads of `state` in
                // `probe` and `records`: whoever sees READY sees the fields.
                e.state.store(ENTRY_READY, Ordering::Release);
                self.header().count.fetch_add(1, Ordering::Relaxed);
            }
            // (A redefinition changes fields of a READY entry that no
            // process uses: no segment of the topic exists. Readers of a
            // record, `lookup`, hold the directory lock, so none sees a mix
            // of old and new fields unless a redefiner died half way; then
            // every reader sees the same mix, under the new generation.)
            Some(self.record(i))
        })
    }
}

#[cfg(all(test, not(shmidl_loom)))]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The bytes of a registry of `capacity` entries holding `topics`
    /// topics, as `shmidl ls` copies them out of a domain.
    fn registry_copy(capacity: u32, topics: u32) -> Vec<u8> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("reg-copy-{}-{k}", std::process::id());
        let segment = Segment::builder(&name)
            .size(1 << 20)
            .create_exclusive()
            .unwrap();
        let reg = Registry::open(&segment, capacity).unwrap();
        for t in 0..topics {
            let mut r = record(u64::from(t));
            r.type_name = format!("pkg.v1.Type{t}");
            reg.define(&format!("topic/{t}"), &r, |_| false, |_| false)
                .unwrap()
                .unwrap();
        }
        let size = registry_bytes(capacity) as usize;
        // SAFETY: the registry object is `size` bytes at `reg.offset`,
        // mapped while `segment` lives; only this thread writes it now.
        unsafe { std::slice::from_raw_parts(segment.ptr_at(reg.offset).as_ptr(), size) }.to_vec()
    }

    proptest! {
        /// Whatever bytes a registry copy holds (another process wrote the
        /// segment), decoding it never panics, never returns more entries
        /// than fit in the copy, and never a name or type name longer than
        /// an entry holds.
        #[test]
        fn decoding_any_registry_bytes_never_panics(
            flips in proptest::collection::vec((0usize..64 + 512 * 8, any::<u8>()), 0..64),
            capacity in prop_oneof![Just(None), any::<u32>().prop_map(Some)],
            cut in 0usize..64 + 512 * 8,
        ) {
            let mut bytes = registry_copy(8, 5);
            for (at, b) in flips {
                bytes[at] = b;
            }
            if let Some(c) = capacity {
                bytes[..4].copy_from_slice(&c.to_le_bytes());
            }
            let copy = &bytes[..cut.min(bytes.len())];
            // The fuzz target's checks (`fuzz/fuzz_targets/topic_registry.rs`).
            crate::topic::fuzzing::check_registry_input(copy);
            for (_, r) in decode_records(copy) {
                prop_assert!(r.type_name.len() <= MAX_TYPE_NAME_LEN * 3);
            }
        }
    }

    #[test]
    fn an_intact_copy_decodes_to_its_topics() {
        let decoded = decode_records(&registry_copy(8, 5));
        let mut names: Vec<_> = decoded.iter().map(|(n, _)| n.clone()).collect();
        names.sort();
        assert_eq!(
            names,
            (0..5).map(|t| format!("topic/{t}")).collect::<Vec<_>>()
        );
        for (name, r) in decoded {
            let t: u64 = name.trim_start_matches("topic/").parse().unwrap();
            assert_eq!((r.fingerprint, r.type_name), (t, format!("pkg.v1.Type{t}")));
        }
    }

    fn record(fingerprint: u64) -> TopicRecord {
        TopicRecord {
            index: 0,
            generation: 0,
            type_name: "u64".into(),
            fingerprint,
            config: TopicConfig::default(),
            joined: false,
        }
    }

    /// `n` names whose probe sequences start at the same entry of a
    /// registry of 4.
    fn colliding(n: usize) -> Vec<String> {
        let target = hash_of("a0") % 4;
        (0..)
            .map(|i| format!("a{i}"))
            .filter(|s| hash_of(s) % 4 == target)
            .take(n)
            .collect()
    }

    /// A freed entry (a tombstone) does not hide the topics probed past it,
    /// a topic behind it is never defined twice, only an entry opened since
    /// its definition is freed, and a new topic takes the tombstone under
    /// the next generation.
    #[test]
    fn freed_entries_keep_what_lies_behind_them_and_are_reused() {
        let name = format!("reg-unit-{}", std::process::id());
        let segment = Segment::builder(&name)
            .size(1 << 20)
            .create_exclusive()
            .unwrap();
        let reg = Registry::open(&segment, 4).unwrap();
        let names = colliding(5);
        let never = |_: &TopicRecord| false;
        let define = |n: &str, fp: u64, unused: &dyn Fn(&TopicRecord) -> bool| {
            reg.define(n, &record(fp), |_| false, unused).unwrap()
        };
        let a = define(&names[0], 1, &never).unwrap();
        let b = define(&names[1], 2, &never).unwrap();
        assert_eq!(b.index, (a.index + 1) % 4, "b lies behind a");
        define(&names[2], 3, &never).unwrap();
        define(&names[3], 4, &never).unwrap();

        // Full. `a` is unused but was never opened: not freed.
        let a_unused = |r: &TopicRecord| r.fingerprint == 1;
        assert!(define(&names[4], 5, &a_unused).is_none());
        assert!(reg.confirm(&names[0], &a, true).unwrap());

        // Freed, not yet reused: a tombstone.
        assert!(reg.free_one_unused(0, &a_unused));
        assert!(reg.lookup(&names[0]).unwrap().is_none());
        assert!(!reg.confirm(&names[0], &a, true).unwrap(), "a's old record");
        assert_eq!(reg.lookup(&names[1]).unwrap().unwrap().index, b.index);
        let again = define(&names[1], 2, &never).unwrap();
        assert_eq!(
            again.index, b.index,
            "b found behind the tombstone, not defined twice"
        );
        assert_eq!(reg.records().len(), 3);

        // The next new topic takes the tombstone, one generation on.
        let e = define(&names[4], 5, &never).unwrap();
        assert_eq!((e.index, e.generation), (a.index, a.generation + 1));
        assert_eq!(reg.records().len(), 4);
    }
}
