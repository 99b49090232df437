//! A pool object's header and geometry: sizes and offsets computed from
//! the element type and capacity, written once by the creator and validated
//! by everyone who opens it (`docs/segment-format.md`).

use super::*;

/// Header at the start of a pool object.
///
/// INVARIANTS: the fields before `free` are written once, by the creator,
/// before the object is published, and never change; `ctl_offset`,
/// `slots_offset` and `stride` describe arrays that lie inside the object.
#[repr(C, align(64))]
pub(crate) struct PoolHeader {
    pub(super) magic: u32,
    pub(super) capacity: u32,
    pub(super) elements: u32,
    pub(super) elem_size: u32,
    pub(super) elem_align: u32,
    pub(super) _pad0: u32,
    pub(super) stride: u64,
    pub(super) ctl_offset: u64,
    pub(super) slots_offset: u64,
    pub(super) total_size: u64,
    /// The pool's type fingerprint (as in its directory entry), so that a
    /// chunk can be opened without knowing the element type.
    pub(super) elem_fingerprint: u64,
    /// Chunks the pool may grow to, the first included (1: fixed size).
    /// The same in every chunk.
    pub(super) max_chunks: u32,
    /// Which chunk this object is: 0 for the object users open by name.
    pub(super) chunk_index: u32,
    /// On its own cache line: the hot free list.
    pub(super) free: CacheLine<FreeList>,
    /// First chunk only: per chunk `k`, `epoch << 1 | live`
    /// (see `growth.rs`). Read-mostly, on lines of its own.
    pub(super) chunks: CacheLine<[AtomicU64; MAX_POOL_CHUNKS as usize]>,
    /// Bit `r`: participant row `r` has stashed slots at some point (see
    /// `stash.rs`); where thieves look first. Read-mostly.
    pub(super) stash_hint: CacheLine<AtomicU64>,
}

#[repr(C, align(64))]
pub(super) struct CacheLine<T>(pub(super) T);

// The layout `docs/segment-format.md` documents (loom's atomics are larger).
#[cfg(not(shmidl_loom))]
const _: () = {
    assert!(std::mem::offset_of!(PoolHeader, elem_fingerprint) == 56);
    assert!(std::mem::offset_of!(PoolHeader, max_chunks) == 64);
    assert!(std::mem::offset_of!(PoolHeader, free) == 128);
    assert!(std::mem::offset_of!(PoolHeader, chunks) == 192);
    assert!(std::mem::offset_of!(PoolHeader, stash_hint) == 448);
    assert!(size_of::<PoolHeader>() == 512);
    assert!(size_of::<Stash>() == 2 * CACHE_LINE);
};

/// Sizes and offsets of a pool object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Geometry {
    pub(super) capacity: u32,
    pub(super) elements: u32,
    /// Bytes of one element (`size_of::<T>()`).
    pub(super) elem_size: usize,
    pub(super) stride: usize,
    pub(super) ctl_offset: usize,
    pub(super) slots_offset: usize,
    /// Per-participant holdings bitmaps: `PARTICIPANT_ROWS` rows of
    /// `holdings_row` bytes.
    pub(super) holdings_offset: usize,
    pub(super) holdings_row: usize,
    /// Per-participant stashes of free slots: `PARTICIPANT_ROWS` lines.
    pub(super) stash_offset: usize,
    pub(super) total_size: usize,
    pub(super) align: usize,
    /// Chunks the pool may grow to (1: fixed size).
    pub(super) max_chunks: u32,
    /// Which chunk this object is.
    pub(super) chunk: u32,
}

impl Geometry {
    /// Sets the growth limit and chunk index, checking that every global
    /// slot index (`chunk * capacity + slot`) fits below
    /// [`MAX_POOL_CAPACITY`].
    pub(super) fn growth(mut self, max_chunks: u32, chunk: u32) -> Result<Self, PoolOpenError> {
        if max_chunks == 0 || max_chunks > MAX_POOL_CHUNKS {
            const _: () = assert!(MAX_POOL_CHUNKS == 32, "the message below names 32");
            return Err(PoolOpenError::InvalidGeometry(
                "a pool grows to 1 ..= 32 chunks (`MAX_POOL_CHUNKS`)",
            ));
        }
        if chunk >= max_chunks {
            return Err(PoolOpenError::InvalidGeometry(
                "chunk index beyond the growth limit",
            ));
        }
        if u64::from(self.capacity) * u64::from(max_chunks) > u64::from(MAX_POOL_CAPACITY) {
            return Err(PoolOpenError::InvalidGeometry(
                "capacity × chunks must not exceed 2^30 slots",
            ));
        }
        self.max_chunks = max_chunks;
        self.chunk = chunk;
        Ok(self)
    }

    pub(super) fn new<T>(capacity: u32, elements: u32) -> Result<Self, PoolOpenError> {
        Self::with(size_of::<T>(), align_of::<T>(), capacity, elements)
    }

    pub(super) fn with(
        elem_size: usize,
        elem_align: usize,
        capacity: u32,
        elements: u32,
    ) -> Result<Self, PoolOpenError> {
        if capacity == 0 || capacity > MAX_POOL_CAPACITY {
            return Err(PoolOpenError::InvalidGeometry(
                "capacity must be 1 ..= 2^30 slots",
            ));
        }
        if elements == 0 {
            return Err(PoolOpenError::InvalidGeometry(
                "elements per slot must be at least 1",
            ));
        }
        let too_big = PoolOpenError::InvalidGeometry("pool does not fit in the address space");
        if !elem_align.is_power_of_two() || elem_align > 4096 {
            return Err(PoolOpenError::InvalidGeometry(
                "impossible element alignment",
            ));
        }
        let align = elem_align.max(CACHE_LINE);
        let payload = elem_size
            .checked_mul(elements as usize)
            .ok_or_else(|| too_big.clone_geom())?;
        // Slots of at least one cache line, aligned for T: neighbours never
        // share a line (no false sharing between two writers).
        let stride = payload
            .max(1)
            .checked_next_multiple_of(align)
            .ok_or_else(|| too_big.clone_geom())?;
        let ctl_offset = size_of::<PoolHeader>();
        let ctl_bytes = (capacity as usize)
            .checked_mul(size_of::<SlotCtl>())
            .ok_or_else(|| too_big.clone_geom())?;
        let slots_offset = (ctl_offset + ctl_bytes)
            .checked_next_multiple_of(align)
            .ok_or_else(|| too_big.clone_geom())?;
        let holdings_offset = stride
            .checked_mul(capacity as usize)
            .and_then(|b| b.checked_add(slots_offset))
            .and_then(|b| b.checked_next_multiple_of(CACHE_LINE))
            .ok_or_else(|| too_big.clone_geom())?;
        // One bit per slot per participant row, each row on its own lines.
        let holdings_row = (capacity as usize).div_ceil(64) * 8;
        let holdings_row = holdings_row.next_multiple_of(CACHE_LINE);
        let stash_offset = holdings_row
            .checked_mul(PARTICIPANT_ROWS)
            .and_then(|b| b.checked_add(holdings_offset))
            .ok_or_else(|| too_big.clone_geom())?;
        let total_size = (PARTICIPANT_ROWS * size_of::<Stash>())
            .checked_add(stash_offset)
            .filter(|&t| t <= isize::MAX as usize)
            .ok_or(too_big)?;
        Ok(Self {
            capacity,
            elements,
            elem_size,
            stride,
            ctl_offset,
            slots_offset,
            holdings_offset,
            holdings_row,
            stash_offset,
            total_size,
            align,
            max_chunks: 1,
            chunk: 0,
        })
    }
}

impl PoolOpenError {
    pub(super) fn clone_geom(&self) -> Self {
        match self {
            Self::InvalidGeometry(s) => Self::InvalidGeometry(s),
            _ => Self::InvalidGeometry("invalid geometry"),
        }
    }
}

/// Bytes and alignment of a pool object of `capacity` slots of `elements`
/// values of `T` (one chunk): what a segment needs to hold it.
pub(crate) fn pool_object_bytes<T>(
    capacity: u32,
    elements: u32,
) -> Result<(u64, u64), PoolOpenError> {
    let geom = Geometry::new::<T>(capacity, elements)?;
    Ok((geom.total_size as u64, geom.align as u64))
}

pub(super) fn pool_fingerprint<T: ShmSafe>(kind: ObjectKind) -> u64 {
    pool_fingerprint_of(kind, T::FINGERPRINT, size_of::<T>())
}

/// [`pool_fingerprint`] of an element type with `fingerprint` and `size`.
pub(super) fn pool_fingerprint_of(kind: ObjectKind, fingerprint: u64, size: usize) -> u64 {
    Hasher::new()
        .str("pool")
        .u64(u64::from(kind.0))
        .u64(u64::from(POOL_MAGIC))
        .u64(fingerprint)
        .u64(size as u64)
        .finish()
}

/// Writes a fresh pool (header, linked free list) at `ptr`, for elements
/// of `T`.
///
/// # Safety
/// As [`init_pool_untyped`].
pub(super) unsafe fn init_pool<T>(ptr: NonNull<u8>, geom: &Geometry, fingerprint: u64, seed: u32) {
    // SAFETY: forwarded to the caller.
    unsafe {
        init_pool_untyped(
            ptr,
            geom,
            (size_of::<T>(), align_of::<T>()),
            fingerprint,
            seed,
        )
    }
}

/// Writes a fresh pool at `ptr`: header, free list linking every slot,
/// and every slot's generation set to `seed`.
///
/// # Safety
/// `ptr` must be valid for writes of `geom.total_size` bytes, aligned to
/// `geom.align`, and not accessed by anyone else during the call.
pub(super) unsafe fn init_pool_untyped(
    ptr: NonNull<u8>,
    geom: &Geometry,
    (elem_size, elem_align): (usize, usize),
    fingerprint: u64,
    seed: u32,
) {
    let header = PoolHeader {
        magic: POOL_MAGIC,
        capacity: geom.capacity,
        elements: geom.elements,
        elem_size: elem_size as u32,
        elem_align: elem_align as u32,
        _pad0: 0,
        stride: geom.stride as u64,
        ctl_offset: geom.ctl_offset as u64,
        slots_offset: geom.slots_offset as u64,
        total_size: geom.total_size as u64,
        elem_fingerprint: fingerprint,
        max_chunks: geom.max_chunks,
        chunk_index: geom.chunk,
        free: CacheLine(FreeList::new(geom.capacity)),
        chunks: CacheLine(std::array::from_fn(|_| AtomicU64::new(0))),
        stash_hint: CacheLine(AtomicU64::new(0)),
    };
    // SAFETY: `ptr` is valid and aligned for a header (caller; the header
    // is 64-aligned and geom.align >= 64).
    unsafe { ptr.cast::<PoolHeader>().as_ptr().write(header) };
    for (i, ctl) in linked_ctl(geom.capacity).enumerate() {
        // SAFETY: control block `i < capacity` lies inside the object
        // (`Geometry::new` sized it), 64-aligned within a 64-aligned object.
        let p = ptr
            .as_ptr()
            .wrapping_add(geom.ctl_offset + i * size_of::<SlotCtl>())
            .cast::<SlotCtl>();
        ctl.word.store(u64::from(seed) << 32, Ordering::Relaxed);
        // SAFETY: see above.
        unsafe { p.write(ctl) };
    }
}

/// Reads the geometry back from a header and checks it against the
/// directory entry's size and against elements of `size` and `align`
/// bytes. `None` if anything disagrees.
pub(super) fn validate_header_elem(
    h: &PoolHeader,
    object_size: u64,
    size: usize,
    align: usize,
) -> Option<Geometry> {
    if h.elem_size as usize != size || h.elem_align as usize != align {
        return None;
    }
    validate_header_untyped(h, object_size)
}

/// [`validate_header`] without knowing the element type: trusts the
/// header's element size and alignment, checks everything derived from them.
pub(super) fn validate_header_untyped(h: &PoolHeader, object_size: u64) -> Option<Geometry> {
    if h.magic != POOL_MAGIC {
        return None;
    }
    let geom = Geometry::with(
        h.elem_size as usize,
        h.elem_align as usize,
        h.capacity,
        h.elements,
    )
    .ok()?
    .growth(h.max_chunks, h.chunk_index)
    .ok()?;
    let agrees = geom.stride as u64 == h.stride
        && geom.ctl_offset as u64 == h.ctl_offset
        && geom.slots_offset as u64 == h.slots_offset
        && geom.total_size as u64 == h.total_size
        && h.total_size == object_size;
    agrees.then_some(geom)
}
