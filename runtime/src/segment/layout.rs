//! The byte layout of a segment (format version 2), and its validation.
//!
//! `docs/segment-format.md` is the reference; this file is its executable
//! form. Every offset is from the start of the segment; nothing in shared
//! memory is a pointer.
//!
//! ```text
//! 0        HeaderInfo     (256 B, written once before the segment is published)
//! 256      HeaderControl  (256 B, atomics)
//! 512      directory      (DIR_CAPACITY × 128 B entries)
//! 12288    participants   (PARTICIPANT_CAPACITY × 64 B rows)
//! 16384    data           (objects, placed by the bump allocator)
//! ```

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::sync::{AtomicU32, AtomicU64};

/// `SHMIDL` + format family + a byte that is never valid UTF-8, so a text
/// file can never pass for a segment.
pub(crate) const MAGIC: [u8; 8] = *b"SHMIDL\x00\xfe";
/// The layout version this build reads and writes.
pub(crate) const FORMAT_VERSION: u32 = 2;

/// Offsets and capacities of format version 2 (those of the segment
/// header are version 1's; routers changed, `docs/segment-format.md`).
pub(crate) const CONTROL_OFFSET: u64 = 256;
pub(crate) const DIR_OFFSET: u64 = 512;
pub(crate) const DIR_CAPACITY: u32 = 64;
pub(crate) const DIR_ENTRY_SIZE: u32 = 128;
pub(crate) const PARTICIPANT_OFFSET: u64 = 12288;
pub(crate) const PARTICIPANT_CAPACITY: u32 = 64;
pub(crate) const PARTICIPANT_ROW_SIZE: u32 = 64;
pub(crate) const DATA_OFFSET: u64 = 16384;

/// Largest segment accepted (1 TiB): a corrupted size field cannot make us
/// map an absurd range.
pub(crate) const MAX_SEGMENT_SIZE: u64 = 1 << 40;

/// Objects are placed at least this aligned (one cache line), so two objects
/// never share a line.
pub(crate) const OBJECT_ALIGN: u64 = 64;

/// `HeaderControl::state` once the segment is usable.
pub(crate) const STATE_READY: u32 = 0x5245_4459; // "READY"

/// Directory entry states.
pub(crate) const ENTRY_EMPTY: u32 = 0;
pub(crate) const ENTRY_INITIALIZING: u32 = 1;
pub(crate) const ENTRY_READY: u32 = 2;

/// The architecture a segment was made on: endianness, pointer width and the
/// alignment of `u64`. Segments are never shared between architectures.
pub(crate) const fn arch_tag() -> u32 {
    let endian: u32 = if cfg!(target_endian = "little") { 1 } else { 2 };
    let ptr_bytes = (usize::BITS / 8) << 8;
    let u64_align = (std::mem::align_of::<u64>() as u32) << 16;
    endian | ptr_bytes | u64_align | (0x5a << 24)
}

/// The immutable part of the header: written by the creator before the
/// segment file gets its public name, never written again.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub(crate) struct HeaderInfo {
    pub magic: [u8; 8],
    pub format_version: u32,
    pub arch_tag: u32,
    pub total_size: u64,
    pub control_offset: u64,
    pub dir_offset: u64,
    pub dir_capacity: u32,
    pub dir_entry_size: u32,
    pub participant_offset: u64,
    pub participant_capacity: u32,
    pub participant_row_size: u32,
    pub data_offset: u64,
    /// Random identity of this segment (distinguishes a segment from a later
    /// one re-created under the same name).
    pub segment_id: u64,
    pub creator_pid: u32,
    /// File mode bits the creator asked for.
    pub mode: u32,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_unix_ns: u64,
    /// Non-zero for a dependent segment (a growable pool's chunk): the id
    /// of the segment that owns it. A dependent segment is not removed when
    /// its last participant leaves but by its owner (or by retirement).
    pub owner_id: u64,
    pub reserved: [u8; 152],
}

const _: () = assert!(std::mem::size_of::<HeaderInfo>() == 256);

/// The mutable part of the header. Every field is atomic.
#[repr(C)]
pub(crate) struct HeaderControl {
    /// [`STATE_READY`] in a published segment.
    pub state: AtomicU32,
    /// Non-zero while the last participant is removing the segment: nobody
    /// may join any more.
    pub closing: AtomicU32,
    /// Bumped (and woken) each time the directory lock is released.
    pub dir_seq: AtomicU32,
    /// Processes sleeping on `dir_seq`.
    pub dir_waiters: AtomicU32,
    /// Next free byte of the data area. Advanced only under the directory lock.
    pub alloc_next: AtomicU64,
}

const _: () = assert!(std::mem::size_of::<HeaderControl>() <= 256);

/// One named object.
///
/// INVARIANTS: fields other than `state` are written only while the writer
/// holds the directory lock and `state != ENTRY_READY`; once `state` is
/// `ENTRY_READY` (stored with `Release`) the entry never changes again.
/// Entries are filled in index order, so the first `ENTRY_EMPTY` entry ends
/// the used part of the directory.
#[repr(C)]
pub(crate) struct DirEntry {
    pub state: AtomicU32,
    pub kind: AtomicU32,
    pub name_len: AtomicU32,
    pub _reserved: AtomicU32,
    pub fingerprint: AtomicU64,
    pub offset: AtomicU64,
    pub size: AtomicU64,
    pub align: AtomicU64,
    /// The name, zero-padded, as little-endian 8-byte words.
    pub name: [AtomicU64; 8],
    pub _tail: [AtomicU64; 2],
}

const _: () = assert!(std::mem::size_of::<DirEntry>() == DIR_ENTRY_SIZE as usize);
const _: () =
    assert!(DIR_OFFSET + (DIR_CAPACITY as u64) * (DIR_ENTRY_SIZE as u64) <= PARTICIPANT_OFFSET);
const _: () = assert!(
    PARTICIPANT_OFFSET + (PARTICIPANT_CAPACITY as u64) * (PARTICIPANT_ROW_SIZE as u64)
        <= DATA_OFFSET
);

/// Packs a name into the directory's word form.
pub(crate) fn name_words(name: &str) -> [u64; 8] {
    let mut bytes = [0u8; 64];
    bytes[..name.len()].copy_from_slice(name.as_bytes());
    let mut words = [0u64; 8];
    for (w, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *w = u64::from_le_bytes(b);
    }
    words
}

/// What a header check found wrong. Converted to the public error by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderFault {
    Truncated { size: u64 },
    BadMagic,
    UnsupportedVersion { found: u32 },
    ArchMismatch { found: u32 },
    Corrupt { field: &'static str, value: u64 },
}

impl HeaderInfo {
    /// A header for a new segment of `total_size` bytes.
    pub(crate) fn new(total_size: u64, segment_id: u64, mode: u32, created_unix_ns: u64) -> Self {
        Self {
            magic: MAGIC,
            format_version: FORMAT_VERSION,
            arch_tag: arch_tag(),
            total_size,
            control_offset: CONTROL_OFFSET,
            dir_offset: DIR_OFFSET,
            dir_capacity: DIR_CAPACITY,
            dir_entry_size: DIR_ENTRY_SIZE,
            participant_offset: PARTICIPANT_OFFSET,
            participant_capacity: PARTICIPANT_CAPACITY,
            participant_row_size: PARTICIPANT_ROW_SIZE,
            data_offset: DATA_OFFSET,
            segment_id,
            creator_pid: std::process::id(),
            mode,
            created_unix_ns,
            owner_id: 0,
            reserved: [0; 152],
        }
    }

    /// Reads and checks the header at the start of `bytes`, a file of
    /// `file_size` bytes. Every field is checked before anything trusts it.
    pub(crate) fn parse(bytes: &[u8], file_size: u64) -> Result<Self, HeaderFault> {
        if file_size < DATA_OFFSET {
            return Err(HeaderFault::Truncated { size: file_size });
        }
        let (info, _) = Self::read_from_prefix(bytes)
            .map_err(|_| HeaderFault::Truncated { size: file_size })?;
        if info.magic != MAGIC {
            return Err(HeaderFault::BadMagic);
        }
        if info.format_version != FORMAT_VERSION {
            return Err(HeaderFault::UnsupportedVersion {
                found: info.format_version,
            });
        }
        if info.arch_tag != arch_tag() {
            return Err(HeaderFault::ArchMismatch {
                found: info.arch_tag,
            });
        }
        let expect = |field: &'static str, value: u64, want: u64| {
            if value == want {
                Ok(())
            } else {
                Err(HeaderFault::Corrupt { field, value })
            }
        };
        if info.total_size != file_size {
            // A size field that disagrees with the file: truncated copy or
            // a file that was grown or shrunk behind our back.
            return Err(if info.total_size > file_size {
                HeaderFault::Truncated { size: file_size }
            } else {
                HeaderFault::Corrupt {
                    field: "total_size",
                    value: info.total_size,
                }
            });
        }
        if info.total_size > MAX_SEGMENT_SIZE {
            return Err(HeaderFault::Corrupt {
                field: "total_size",
                value: info.total_size,
            });
        }
        expect("control_offset", info.control_offset, CONTROL_OFFSET)?;
        expect("dir_offset", info.dir_offset, DIR_OFFSET)?;
        expect(
            "dir_capacity",
            info.dir_capacity.into(),
            DIR_CAPACITY.into(),
        )?;
        expect(
            "dir_entry_size",
            info.dir_entry_size.into(),
            DIR_ENTRY_SIZE.into(),
        )?;
        expect(
            "participant_offset",
            info.participant_offset,
            PARTICIPANT_OFFSET,
        )?;
        expect(
            "participant_capacity",
            info.participant_capacity.into(),
            PARTICIPANT_CAPACITY.into(),
        )?;
        expect(
            "participant_row_size",
            info.participant_row_size.into(),
            PARTICIPANT_ROW_SIZE.into(),
        )?;
        expect("data_offset", info.data_offset, DATA_OFFSET)?;
        if info.mode & !0o777 != 0 {
            return Err(HeaderFault::Corrupt {
                field: "mode",
                value: info.mode.into(),
            });
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(size: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; DATA_OFFSET as usize];
        HeaderInfo::new(size, 7, 0o600, 1)
            .write_to_prefix(&mut bytes)
            .unwrap();
        bytes
    }

    #[test]
    fn accepts_what_it_writes() {
        let b = valid(1 << 20);
        assert_eq!(HeaderInfo::parse(&b, 1 << 20).unwrap().segment_id, 7);
    }

    #[test]
    fn rejects_each_broken_field() {
        let size = 1 << 20;
        assert_eq!(
            HeaderInfo::parse(&valid(size), 100).unwrap_err(),
            HeaderFault::Truncated { size: 100 }
        );
        assert_eq!(
            HeaderInfo::parse(&vec![0; DATA_OFFSET as usize], size).unwrap_err(),
            HeaderFault::BadMagic
        );
        let mut b = valid(size);
        b[8] = 9;
        assert_eq!(
            HeaderInfo::parse(&b, size).unwrap_err(),
            HeaderFault::UnsupportedVersion { found: 9 }
        );
        let mut b = valid(size);
        b[12] ^= 0xff;
        assert!(matches!(
            HeaderInfo::parse(&b, size).unwrap_err(),
            HeaderFault::ArchMismatch { .. }
        ));
        assert_eq!(
            HeaderInfo::parse(&valid(size), size / 2).unwrap_err(),
            HeaderFault::Truncated { size: size / 2 }
        );
        assert!(matches!(
            HeaderInfo::parse(&valid(size), size * 2).unwrap_err(),
            HeaderFault::Corrupt {
                field: "total_size",
                ..
            }
        ));
        let mut b = valid(size);
        b[32] = 1; // dir_offset
        assert!(matches!(
            HeaderInfo::parse(&b, size).unwrap_err(),
            HeaderFault::Corrupt {
                field: "dir_offset",
                ..
            }
        ));
    }
}
