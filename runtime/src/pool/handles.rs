//! The pool handles users hold: [`Pool`], [`ArrayPool`], [`LocalPool`],
//! their builders, and [`RouterPool`], what a router needs of a pool.

use super::*;

/// Shared implementation of the three pool handles.
#[doc(hidden)]
pub struct PoolCore<V: ?Sized> {
    pub(super) inner: Arc<PoolInner>,
    pub(super) _v: PhantomData<fn() -> Box<V>>,
}

impl<V: ?Sized> Clone for PoolCore<V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            _v: PhantomData,
        }
    }
}

impl<V: ?Sized + SlotView> PoolCore<V> {
    pub(crate) fn inner(&self) -> &Arc<PoolInner> {
        &self.inner
    }

    pub(crate) fn name(&self) -> &str {
        &self.inner.name
    }

    /// Takes over one reference owned by a raw handle (a queue entry).
    ///
    /// # Safety
    /// As [`Pool::from_raw`]: the handle owns a reference, redeemed once.
    pub(crate) unsafe fn adopt(&self, raw: RawSample) -> Result<Sample<V>, HandleError> {
        // SAFETY: forwarded to the caller.
        unsafe { self.adopt_raw(raw) }
    }

    /// Starts fetching the lines of the sample `raw` names (its control
    /// block and the start of its payload), for a queue entry about to be
    /// taken: a hint, ignored for a slot outside the first chunk.
    pub(crate) fn prefetch(&self, raw: RawSample) {
        self.inner.prefetch(raw.slot, false);
    }

    /// Whether `sample` points into this pool (the same pool object, even
    /// if opened through another handle).
    pub(crate) fn owns(&self, sample: &Sample<V>) -> bool {
        let id = self.inner.identity();
        id.is_some() && sample.pool().identity() == id
    }

    /// Counts one more reference to the live sample `raw` names, for a
    /// queue entry. The caller holds a reference to it, so it is alive and
    /// its chunk is mapped; `false` (nothing counted) only if that does not
    /// hold.
    pub(crate) fn retain_raw(&self, raw: RawSample) -> bool {
        match growth::resolve(&self.inner, raw.slot) {
            Ok((chunk, local)) => {
                chunk.ctl()[local as usize].retain();
                true
            }
            Err(e) => {
                tracing::error!(pool = %self.inner.name, error = %e, "cannot count a queue reference");
                false
            }
        }
    }

    /// Records that this process holds the reference `raw` owns (again).
    pub(crate) fn hold_raw(&self, raw: RawSample) {
        if let Ok((chunk, local)) = growth::resolve(&self.inner, raw.slot) {
            chunk.hold(local);
        }
    }

    /// Erases the record of the reference `raw` owns, just before it is
    /// handed to a queue or released.
    pub(crate) fn unhold_raw(&self, raw: RawSample) {
        if let Ok((chunk, local)) = growth::resolve(&self.inner, raw.slot) {
            chunk.unhold(local);
        }
    }

    /// Releases the reference a queue entry owned. An entry that does not
    /// name a live slot (corrupted memory) is refused: nothing is released,
    /// so it can leak but never be released twice.
    pub(crate) fn release_raw(&self, raw: RawSample) -> Result<(), HandleError> {
        let (chunk, local) = growth::resolve(&self.inner, raw.slot)?;
        chunk.release_raw_local(raw, local)
    }

    pub(super) fn try_slot(&self) -> Option<UninitSample<V>> {
        let (chunk, index, generation) = growth::alloc_any(&self.inner)?;
        Some(UninitSample::new(chunk, index, generation))
    }

    /// A free slot, waiting up to `timeout` (the clock is read only if the
    /// pool is exhausted).
    pub(super) fn slot_within(&self, timeout: Duration) -> Option<UninitSample<V>> {
        if let Some(s) = self.try_slot() {
            return Some(s);
        }
        let (chunk, index, generation) = self.inner.alloc_until(Some(Instant::now() + timeout))?;
        Some(UninitSample::new(chunk, index, generation))
    }

    pub(super) fn exhausted<X>(&self, value: X) -> PoolExhausted<X> {
        let capacity = self.inner.geom.capacity * growth::live_chunks(&self.inner);
        PoolExhausted::new(
            &self.inner.name,
            self.inner.topic.as_deref(),
            capacity,
            value,
        )
    }

    pub(super) fn upgrade(&self, raw: RawSample) -> Result<Sample<V>, HandleError> {
        let (chunk, local) = growth::resolve(&self.inner, raw.slot)?;
        let ctl = chunk.check_handle(raw, local)?;
        if !ctl.upgrade(raw.generation) {
            return Err(chunk.stale(raw, local));
        }
        Ok(Sample::adopt_shared(&chunk, local))
    }

    /// # Safety
    /// See [`Pool::from_raw`].
    pub(super) unsafe fn adopt_raw(&self, raw: RawSample) -> Result<Sample<V>, HandleError> {
        let (chunk, local) = growth::resolve(&self.inner, raw.slot)?;
        let ctl = chunk.check_handle(raw, local)?;
        let (generation, refs) = ctl.snapshot();
        if generation != raw.generation || refs == 0 {
            return Err(chunk.stale(raw, local));
        }
        Ok(Sample::adopt_shared(&chunk, local))
    }
}

macro_rules! pool_common {
    ($view:ty) => {
        /// Number of slots in the chunks that exist now: the capacity the
        /// pool was created with, times [`chunks`](Self::chunks).
        pub fn capacity(&self) -> u32 {
            self.core.inner.geom.capacity * self.chunks()
        }

        /// Slots per chunk: the capacity the pool was created with.
        pub fn chunk_capacity(&self) -> u32 {
            self.core.inner.geom.capacity
        }

        /// Chunks that exist now, the first included (always 1 for a pool
        /// that cannot grow).
        pub fn chunks(&self) -> u32 {
            growth::live_chunks(&self.core.inner)
        }

        /// Chunks this pool may grow to, the first included (1: fixed
        /// size).
        pub fn max_chunks(&self) -> u32 {
            self.core.inner.geom.max_chunks
        }

        /// Number of free slots now, over every chunk (exact when no one is
        /// allocating or freeing concurrently).
        pub fn free_count(&self) -> u32 {
            growth::free_count(&self.core.inner)
        }

        /// The pool's name (its object name, or the `LocalPool` label).
        pub fn name(&self) -> &str {
            &self.core.inner.name
        }

        /// A new reference to the live object a raw handle names, like
        /// `Weak::upgrade`: fails if the slot was freed or reused since. Safe
        /// with any value, even a forged one: it never revives a dead slot.
        pub fn upgrade(&self, raw: RawSample) -> Result<Sample<$view>, HandleError> {
            self.core.upgrade(raw)
        }

        /// Takes over the reference that [`Sample::into_raw`] detached,
        /// after checking that the handle is not stale.
        ///
        /// # Safety
        /// `raw` must come from `into_raw` on a sample of this pool, and
        /// each such handle must be passed to `from_raw` (or released) at
        /// most once across all processes: redeeming one twice releases a
        /// reference that does not exist.
        pub unsafe fn from_raw(&self, raw: RawSample) -> Result<Sample<$view>, HandleError> {
            // SAFETY: forwarded to the caller.
            unsafe { self.core.adopt_raw(raw) }
        }

        /// A slot with uninitialised contents, without waiting.
        pub fn try_loan_uninit(&self) -> Result<UninitSample<$view>, PoolExhausted> {
            self.core.try_slot().ok_or_else(|| self.core.exhausted(()))
        }

        /// A slot with uninitialised contents, waiting up to `timeout`.
        pub fn loan_uninit_timeout(
            &self,
            timeout: Duration,
        ) -> Result<UninitSample<$view>, PoolExhausted> {
            self.core
                .slot_within(timeout)
                .ok_or_else(|| self.core.exhausted(()))
        }
    };
}

/// `try_make` and `make_timeout`, shared by [`Pool`] and [`LocalPool`].
macro_rules! pool_make {
    () => {
        /// Stores `value` in a free slot without waiting.
        pub fn try_make(&self, value: T) -> Result<SampleMut<T>, PoolExhausted<T>> {
            match self.core.try_slot() {
                Some(s) => Ok(s.write(value)),
                None => Err(self.core.exhausted(value)),
            }
        }

        /// Stores `value` in a free slot, waiting up to `timeout` for another
        /// thread or process to free one.
        pub fn make_timeout(
            &self,
            value: T,
            timeout: Duration,
        ) -> Result<SampleMut<T>, PoolExhausted<T>> {
            match self.core.slot_within(timeout) {
                Some(s) => Ok(s.write(value)),
                None => Err(self.core.exhausted(value)),
            }
        }
    };
}

/// Builds a pool in a segment. The finishing method names the policy.
#[derive(Debug)]
pub struct PoolBuilder<'s, T> {
    pub(super) segment: &'s Segment,
    pub(super) name: String,
    pub(super) capacity: u32,
    pub(super) elements: u32,
    pub(super) max_chunks: u32,
    pub(super) timeout: Duration,
    /// The topic whose pool this is (see `PoolInner::topic`).
    pub(super) topic: Option<String>,
    pub(super) _t: PhantomData<fn() -> T>,
}

impl<'s, T: ShmSafe> PoolBuilder<'s, T> {
    pub(super) fn new(segment: &'s Segment, name: &str) -> Self {
        Self {
            segment,
            name: name.to_owned(),
            capacity: 64,
            elements: 1,
            max_chunks: 1,
            timeout: Duration::from_secs(1),
            topic: None,
            _t: PhantomData,
        }
    }

    /// Number of slots (default 64).
    #[must_use]
    pub fn capacity(mut self, slots: u32) -> Self {
        self.capacity = slots;
        self
    }

    /// How long `make_pooled` and `loan` wait for a free slot (default 1 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Lets the pool grow, up to `max_chunks` chunks of `capacity` slots
    /// each, the first included (default 1: fixed size; at most
    /// [`MAX_POOL_CHUNKS`]). When every chunk is exhausted, an allocation
    /// adds a chunk in a segment of its own, which other processes map
    /// when they first meet one of its slots; a chunk that becomes
    /// entirely free while a newer one exists is retired and its segment
    /// unlinked. Only when `max_chunks` chunks exist does an allocation
    /// wait or fail.
    #[must_use]
    pub fn growable(mut self, max_chunks: u32) -> Self {
        self.max_chunks = max_chunks;
        self
    }

    pub(super) fn build(
        self,
        kind: ObjectKind,
        create: bool,
    ) -> Result<Arc<PoolInner>, PoolOpenError> {
        self.build_elem(Elem::of::<T>(), kind, create)
    }
}

/// What a pool needs of its element type: its size, alignment and
/// fingerprint, and how to drop values in place; from a Rust type
/// ([`Elem::of`]) or a type known at run time ([`DynType`](crate::DynType)).
#[derive(Clone, Copy)]
pub(super) struct Elem {
    pub(super) size: usize,
    pub(super) align: usize,
    pub(super) fingerprint: u64,
    pub(super) drop_slot: unsafe fn(NonNull<u8>, usize),
}

impl Elem {
    pub(super) fn of<T: ShmSafe>() -> Self {
        Self {
            size: size_of::<T>(),
            align: align_of::<T>(),
            fingerprint: T::FINGERPRINT,
            drop_slot: drop_elements::<T>,
        }
    }
}

impl<T> PoolBuilder<'_, T> {
    pub(super) fn spec(
        &self,
        kind: ObjectKind,
        fingerprint: u64,
        geom: &Geometry,
        any: bool,
    ) -> ObjectSpec {
        ObjectSpec {
            ty: ObjectType {
                kind,
                fingerprint,
                size: geom.total_size as u64,
            },
            align: geom.align as u64,
            any_size: any,
        }
    }

    pub(super) fn build_elem(
        self,
        elem: Elem,
        kind: ObjectKind,
        create: bool,
    ) -> Result<Arc<PoolInner>, PoolOpenError> {
        register_hooks();
        let fingerprint = pool_fingerprint_of(kind, elem.fingerprint, elem.size);
        let asked = if create {
            Some(
                Geometry::with(elem.size, elem.align, self.capacity, self.elements)?
                    .growth(self.max_chunks, 0)?,
            )
        } else {
            None
        };
        let placed = match &asked {
            Some(geom) => self.segment.find_or_create_raw(
                &self.name,
                self.spec(kind, fingerprint, geom, true),
                |ptr| {
                    // SAFETY: the directory reserved `geom.total_size` bytes
                    // at `ptr`, aligned to `geom.align`, for us alone.
                    unsafe { init_pool_untyped(ptr, geom, (elem.size, elem.align), fingerprint, 0) }
                },
            )?,
            None => {
                let probe = Geometry::with(elem.size, elem.align, 1, 1)?;
                self.segment
                    .find_raw(&self.name, self.spec(kind, fingerprint, &probe, true))?
            }
        };
        let ptr = self.segment.ptr_at(placed.offset);
        let corrupt = |what| PoolOpenError::Corrupt {
            name: self.name.clone(),
            what,
        };
        if placed.size < size_of::<PoolHeader>() as u64 {
            return Err(corrupt("object smaller than a pool header"));
        }
        // SAFETY: the object is at least a header long, 64-aligned (objects
        // are placed at cache-line boundaries) and initialised; the plain
        // fields are immutable after publication.
        let header = unsafe { ptr.cast::<PoolHeader>().as_ref() };
        let found = validate_header_elem(header, placed.size, elem.size, elem.align)
            .ok_or_else(|| corrupt("header does not match its object"))?;
        if found.chunk != 0 {
            return Err(corrupt("the object is a later chunk of a pool"));
        }
        if let Some(geom) = asked {
            if (geom.capacity, geom.elements) != (found.capacity, found.elements) {
                return Err(PoolOpenError::GeometryMismatch {
                    name: self.name,
                    capacity: geom.capacity,
                    elements: geom.elements,
                    found_capacity: found.capacity,
                    found_elements: found.elements,
                });
            }
            if geom.max_chunks != found.max_chunks {
                return Err(PoolOpenError::GrowthMismatch {
                    name: self.name,
                    max_chunks: geom.max_chunks,
                    found_max_chunks: found.max_chunks,
                });
            }
            debug_assert_eq!(geom, found);
        }
        // One view per pool per segment handle: the holdings bitmap of this
        // handle's participant row then has a single writer.
        self.segment.local_view(placed.offset, || {
            let mut inner = make_inner::<()>(
                ptr,
                found,
                self.name.clone(),
                self.timeout,
                Backing::Segment(self.segment.clone()),
            );
            inner.drop_slot = elem.drop_slot;
            inner.topic = self.topic.clone();
            inner.identity = Some((self.segment.id(), placed.offset));
            inner.row = Some(self.segment.participant_row());
            inner.stash_row = inner.row;
            inner.growth = Growth::new(&inner, self.segment, placed.offset, kind, fingerprint);
            Ok(Arc::new(inner))
        })
    }
}

impl<T: ShmSafe> PoolBuilder<'_, T> {
    /// Finds the pool, or creates it with the configured capacity. An
    /// existing pool with another capacity is a `GeometryMismatch`.
    pub fn open_or_create(self) -> Result<Pool<T>, PoolOpenError> {
        let segment = self.segment.clone();
        Ok(Pool {
            core: PoolCore {
                inner: self.build(ObjectKind::POOL, true)?,
                _v: PhantomData,
            },
            segment,
        })
    }

    /// Opens an existing pool, whatever its capacity.
    pub fn open(self) -> Result<Pool<T>, PoolOpenError> {
        let segment = self.segment.clone();
        Ok(Pool {
            core: PoolCore {
                inner: self.build(ObjectKind::POOL, false)?,
                _v: PhantomData,
            },
            segment,
        })
    }
}

/// The same builder for array pools: also needs the element count.
#[derive(Debug)]
pub struct ArrayPoolBuilder<'s, T>(PoolBuilder<'s, T>);

impl<T: ShmSafe> ArrayPoolBuilder<'_, T> {
    /// Number of slots (default 64).
    #[must_use]
    pub fn capacity(mut self, slots: u32) -> Self {
        self.0.capacity = slots;
        self
    }

    /// Elements per slot (default 1), e.g. pixels per image.
    #[must_use]
    pub fn elements(mut self, n: u32) -> Self {
        self.0.elements = n;
        self
    }

    /// How long waiting loans wait for a free slot (default 1 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.0.timeout = timeout;
        self
    }

    /// Lets the pool grow to `max_chunks` chunks, as
    /// [`PoolBuilder::growable`].
    #[must_use]
    pub fn growable(mut self, max_chunks: u32) -> Self {
        self.0.max_chunks = max_chunks;
        self
    }

    /// Finds the pool, or creates it with the configured geometry.
    pub fn open_or_create(self) -> Result<ArrayPool<T>, PoolOpenError> {
        let segment = self.0.segment.clone();
        Ok(ArrayPool {
            core: PoolCore {
                inner: self.0.build(ObjectKind::ARRAY_POOL, true)?,
                _v: PhantomData,
            },
            segment,
        })
    }

    /// Opens an existing array pool, whatever its geometry.
    pub fn open(self) -> Result<ArrayPool<T>, PoolOpenError> {
        let segment = self.0.segment.clone();
        Ok(ArrayPool {
            core: PoolCore {
                inner: self.0.build(ObjectKind::ARRAY_POOL, false)?,
                _v: PhantomData,
            },
            segment,
        })
    }
}

/// A pool of `T` in a shared-memory segment.
///
/// ```
/// use shmidl::{Pool, Segment};
/// # let name = format!("doc-pool-{}", std::process::id());
/// let segment = Segment::builder(&name).size(1 << 20).open_or_create()?;
/// let pool = Pool::<[f32; 16]>::builder(&segment, "poses").capacity(8).open_or_create()?;
/// let mut s = pool.make_pooled([0.0; 16])?;   // unique and mutable
/// s[3] = 1.5;
/// let shared = s.freeze();                     // shared, read-only, clonable
/// let again = shared.clone();
/// assert_eq!(again[3], 1.5);
/// assert_eq!(pool.free_count(), 7);
/// drop((shared, again));
/// assert_eq!(pool.free_count(), 8);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pool<T: ShmSafe> {
    pub(super) core: PoolCore<T>,
    pub(super) segment: Segment,
}

impl<T: ShmSafe> Clone for Pool<T> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
            segment: self.segment.clone(),
        }
    }
}

impl<T: ShmSafe> Pool<T> {
    /// The segment the pool lives in.
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// Starts building the pool `name` in `segment`.
    pub fn builder<'s>(segment: &'s Segment, name: &str) -> PoolBuilder<'s, T> {
        PoolBuilder::new(segment, name)
    }

    pool_common!(T);

    /// Stores `value` in a free slot, waiting up to the pool's timeout.
    pub fn make_pooled(&self, value: T) -> Result<SampleMut<T>, PoolExhausted<T>> {
        self.make_timeout(value, self.core.inner.timeout)
    }

    pool_make!();

    /// A slot with whatever bytes it held (zero if never used), waiting up
    /// to the pool's timeout: nothing is written, so loaning a multi-megabyte
    /// slot costs the same as a small one. Any bytes are a valid `T`
    /// (`ShmSafe`), but they may be a previous message's.
    pub fn loan_recycled(&self) -> Result<SampleMut<T>, PoolExhausted> {
        let slot = self.loan_uninit()?;
        // SAFETY: pool memory always holds initialised bytes (zero-filled
        // segment or heap pages, or a previous value's bytes, which have no
        // padding), and any bytes are a valid `T` ("every byte pattern is a
        // valid value", `ShmSafe`).
        Ok(unsafe { slot.assume_init() })
    }

    /// Like [`loan_recycled`](Self::loan_recycled), without waiting.
    pub fn try_loan_recycled(&self) -> Result<SampleMut<T>, PoolExhausted> {
        let slot = self.try_loan_uninit()?;
        // SAFETY: as in `loan_recycled`.
        Ok(unsafe { slot.assume_init() })
    }

    /// A slot with uninitialised contents, waiting up to the pool's
    /// timeout: write it with [`UninitSample::write`], or through
    /// [`UninitSample::as_mut_ptr`] then `assume_init`.
    pub fn loan_uninit(&self) -> Result<UninitSample<T>, PoolExhausted> {
        self.loan_uninit_timeout(self.core.inner.timeout)
    }

    /// A slot whose bytes are all zero, waiting up to the pool's timeout;
    /// no `Default` needed, whatever the size of `T`.
    pub fn loan_zeroed(&self) -> Result<SampleMut<T>, PoolExhausted> {
        Ok(self.loan_uninit()?.zeroed())
    }

    /// Like [`loan_zeroed`](Self::loan_zeroed), without waiting.
    pub fn try_loan_zeroed(&self) -> Result<SampleMut<T>, PoolExhausted> {
        Ok(self.try_loan_uninit()?.zeroed())
    }

    /// A slot holding `T::default()`, waiting up to the pool's timeout.
    pub fn loan(&self) -> Result<SampleMut<T>, PoolExhausted>
    where
        T: Default,
    {
        self.make_pooled(T::default())
            .map_err(|_| self.core.exhausted(()))
    }

    /// A slot holding `T::default()`, without waiting.
    pub fn try_loan(&self) -> Result<SampleMut<T>, PoolExhausted>
    where
        T: Default,
    {
        self.try_make(T::default())
            .map_err(|_| self.core.exhausted(()))
    }
}

/// A pool whose slots hold `n` elements of `T` each (`n` fixed when the
/// pool is created): images, point clouds. Pointers deref to `[T]`.
///
/// ```
/// use shmidl::{ArrayPool, Segment};
/// # let name = format!("doc-apool-{}", std::process::id());
/// let segment = Segment::builder(&name).size(4 << 20).open_or_create()?;
/// let images = ArrayPool::<u8>::builder(&segment, "frames")
///     .capacity(4)
///     .elements(640 * 480)
///     .open_or_create()?;
/// let mut frame = images.try_loan_filled(0)?;
/// frame[0] = 255;
/// assert_eq!(frame.len(), 640 * 480);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ArrayPool<T: ShmSafe> {
    pub(super) core: PoolCore<[T]>,
    pub(super) segment: Segment,
}

impl<T: ShmSafe> Clone for ArrayPool<T> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
            segment: self.segment.clone(),
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl<T: crate::ShmSafe> Sealed for super::Pool<T> {}
    impl<T: crate::ShmSafe> Sealed for super::ArrayPool<T> {}
    impl Sealed for super::DynPool {}
}

/// A pool in shared memory whose samples a [`Router`](crate::Router)
/// carries: [`Pool<T>`] (samples of `T`), [`ArrayPool<T>`] (samples of
/// `[T]`, each with its own length) or [`DynPool`] (samples of a type known
/// at run time). Sealed.
pub trait RouterPool: sealed::Sealed + Clone + Send + Sync + 'static {
    /// What a sample of the pool is seen as.
    type View: ?Sized + SlotView<Pool = Self>;

    /// What is known of the element type only at run time: `()` for the
    /// typed pools, the [`DynType`](crate::DynType) for a [`DynPool`].
    #[doc(hidden)]
    type Payload: Send + Sync + 'static;

    /// The payload of the typed pools, `None` for a [`DynPool`].
    #[doc(hidden)]
    fn static_payload() -> Option<Self::Payload>;

    /// The canonical name and fingerprint of what a sample is seen as.
    #[doc(hidden)]
    fn describe(payload: &Self::Payload) -> (String, u64);

    /// The fingerprint of what a sample of this pool is seen as.
    #[doc(hidden)]
    fn view_fingerprint(&self) -> u64;

    /// The untyped pool behind the handle.
    #[doc(hidden)]
    fn core(&self) -> &PoolCore<Self::View>;

    /// The segment the pool lives in.
    #[doc(hidden)]
    fn home(&self) -> &Segment;

    /// Opens or creates the pool `name` in `segment`; `elements` is the
    /// slot length of an array pool (ignored otherwise).
    #[doc(hidden)]
    fn open_in(
        payload: &Self::Payload,
        segment: &Segment,
        name: &str,
        capacity: u32,
        elements: u32,
        max_chunks: u32,
        topic: Option<&str>,
    ) -> Result<Self, PoolOpenError>;

    /// Bytes and alignment of one chunk of such a pool.
    #[doc(hidden)]
    fn object_bytes(
        payload: &Self::Payload,
        capacity: u32,
        elements: u32,
    ) -> Result<(u64, u64), PoolOpenError>;
}

impl<T: ShmSafe> RouterPool for Pool<T> {
    type View = T;
    type Payload = ();

    fn static_payload() -> Option<()> {
        Some(())
    }

    fn describe(_: &()) -> (String, u64) {
        (T::type_name(), T::FINGERPRINT)
    }

    fn view_fingerprint(&self) -> u64 {
        T::FINGERPRINT
    }

    fn core(&self) -> &PoolCore<T> {
        &self.core
    }

    fn home(&self) -> &Segment {
        &self.segment
    }

    fn open_in(
        _: &(),
        segment: &Segment,
        name: &str,
        capacity: u32,
        _elements: u32,
        max_chunks: u32,
        topic: Option<&str>,
    ) -> Result<Self, PoolOpenError> {
        let mut builder = Pool::builder(segment, name)
            .capacity(capacity)
            .growable(max_chunks);
        builder.topic = topic.map(str::to_owned);
        builder.open_or_create()
    }

    fn object_bytes(_: &(), capacity: u32, _elements: u32) -> Result<(u64, u64), PoolOpenError> {
        pool_object_bytes::<T>(capacity, 1)
    }
}

impl<T: ShmSafe> RouterPool for ArrayPool<T> {
    type View = [T];
    type Payload = ();

    fn static_payload() -> Option<()> {
        Some(())
    }

    fn describe(_: &()) -> (String, u64) {
        (<[T]>::type_name(), <[T]>::FINGERPRINT)
    }

    fn view_fingerprint(&self) -> u64 {
        <[T]>::FINGERPRINT
    }

    fn core(&self) -> &PoolCore<[T]> {
        &self.core
    }

    fn home(&self) -> &Segment {
        &self.segment
    }

    fn open_in(
        _: &(),
        segment: &Segment,
        name: &str,
        capacity: u32,
        elements: u32,
        max_chunks: u32,
        topic: Option<&str>,
    ) -> Result<Self, PoolOpenError> {
        let mut builder = ArrayPool::builder(segment, name)
            .capacity(capacity)
            .elements(elements)
            .growable(max_chunks);
        builder.0.topic = topic.map(str::to_owned);
        builder.open_or_create()
    }

    fn object_bytes(_: &(), capacity: u32, elements: u32) -> Result<(u64, u64), PoolOpenError> {
        pool_object_bytes::<T>(capacity, elements)
    }
}

impl<T: ShmSafe> ArrayPool<T> {
    /// Starts building the array pool `name` in `segment`.
    pub fn builder<'s>(segment: &'s Segment, name: &str) -> ArrayPoolBuilder<'s, T> {
        ArrayPoolBuilder(PoolBuilder::new(segment, name))
    }

    pool_common!([T]);

    /// Elements per slot: the longest sample.
    pub fn elements(&self) -> u32 {
        self.core.inner.geom.elements
    }

    /// The segment the pool lives in.
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// A sample of `len` elements (at most [`elements`](Self::elements)),
    /// waiting up to the pool's timeout, holding whatever the slot held
    /// (zero bytes or an earlier sample's elements, valid `T`s either way):
    /// nothing is written, so a 4 MiB sample costs what a 64-byte one does.
    /// Fill it, then freeze or publish it; readers see `len` elements.
    pub fn loan_slice(&self, len: usize) -> Result<SampleMut<[T]>, LoanError> {
        self.check_len(len)?;
        let slot = self.loan_uninit_timeout(self.core.inner.timeout)?;
        Ok(Self::recycled(slot, len))
    }

    /// Like [`loan_slice`](Self::loan_slice), without waiting.
    pub fn try_loan_slice(&self, len: usize) -> Result<SampleMut<[T]>, LoanError> {
        self.check_len(len)?;
        let slot = self.try_loan_uninit()?;
        Ok(Self::recycled(slot, len))
    }

    /// A sample holding a copy of `items` (at most
    /// [`elements`](Self::elements) of them), waiting up to the pool's
    /// timeout.
    pub fn loan_copy(&self, items: &[T]) -> Result<SampleMut<[T]>, LoanError>
    where
        T: Copy,
    {
        let mut sample = self.loan_slice(items.len())?;
        sample.copy_from_slice(items);
        Ok(sample)
    }

    pub(super) fn check_len(&self, len: usize) -> Result<(), SliceTooLong> {
        let capacity = self.elements() as usize;
        if len > capacity {
            return Err(SliceTooLong {
                requested: len,
                capacity,
            });
        }
        Ok(())
    }

    /// `slot` as a sample of `len <= elements` elements, with the bytes it
    /// holds.
    pub(super) fn recycled(slot: UninitSample<[T]>, len: usize) -> SampleMut<[T]> {
        // SAFETY: pool memory always holds initialised bytes (zero-filled
        // segment pages, or an earlier sample's elements, which have no
        // padding), and any bytes are a valid `T` (`ShmSafe`).
        let mut sample = unsafe { slot.assume_init() };
        sample.truncate(len);
        sample
    }

    /// A slot with every element set to `value`, without waiting.
    pub fn try_loan_filled(&self, value: T) -> Result<SampleMut<[T]>, PoolExhausted>
    where
        T: Clone,
    {
        let s = self.try_loan_uninit()?;
        Ok(s.fill_with(|_| value.clone()))
    }

    /// Like [`loan_copy`](Self::loan_copy), without waiting: a sample
    /// holding a copy of `items` (at most [`elements`](Self::elements)).
    pub fn try_loan_copy(&self, items: &[T]) -> Result<SampleMut<[T]>, LoanError>
    where
        T: Copy,
    {
        let mut sample = self.try_loan_slice(items.len())?;
        sample.copy_from_slice(items);
        Ok(sample)
    }

    /// A slot whose element `i` is `f(i)`, waiting up to the pool's timeout.
    pub fn loan_with(&self, f: impl FnMut(usize) -> T) -> Result<SampleMut<[T]>, PoolExhausted> {
        let s = self.loan_uninit_timeout(self.core.inner.timeout)?;
        Ok(s.fill_with(f))
    }
}

/// The same pool on the heap, for one process: no segment, same pointers.
///
/// ```
/// use shmidl::LocalPool;
/// let pool = LocalPool::<u64>::new(4)?;
/// let a = pool.try_make(7).map_err(|e| e.to_string())?.freeze();
/// assert_eq!(*a.clone(), 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LocalPool<T: ShmSafe> {
    pub(super) core: PoolCore<T>,
}

impl<T: ShmSafe> Clone for LocalPool<T> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
        }
    }
}

impl<T: ShmSafe> LocalPool<T> {
    /// A heap pool of `capacity` slots.
    pub fn new(capacity: u32) -> Result<Self, PoolOpenError> {
        let geom = Geometry::new::<T>(capacity, 1)?;
        let layout = Layout::from_size_align(geom.total_size, geom.align).map_err(|_| {
            PoolOpenError::InvalidGeometry("pool does not fit in the address space")
        })?;
        // SAFETY: `layout` has non-zero size (at least a header).
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        // SAFETY: freshly allocated with the geometry's size and alignment.
        unsafe { init_pool::<T>(ptr, &geom, pool_fingerprint::<T>(ObjectKind::POOL), 0) };
        let mut inner = make_inner::<T>(
            ptr,
            geom,
            "local".to_owned(),
            Duration::from_secs(1),
            Backing::Heap { ptr, layout },
        );
        inner.stash_row = Some(0);
        Ok(Self {
            core: PoolCore {
                inner: Arc::new(inner),
                _v: PhantomData,
            },
        })
    }

    pool_common!(T);

    pool_make!();
}
