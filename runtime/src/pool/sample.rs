//! Pointers into a pool: [`UninitSample`] → [`SampleMut`] → [`Sample`].

use std::{
    fmt,
    marker::PhantomData,
    mem::ManuallyDrop,
    ops::{Deref, DerefMut},
    ptr::NonNull,
    sync::{atomic::Ordering as StdOrdering, Arc},
};

use super::PoolInner;
use crate::shm_safe::ShmSafe;

mod sealed {
    pub trait Sealed {}
    impl<T: crate::ShmSafe> Sealed for T {}
    impl<T: crate::ShmSafe> Sealed for [T] {}
    impl Sealed for super::DynMessage {}
}

/// What a pool slot is seen as: a `T` ([`Pool`](crate::Pool),
/// [`LocalPool`](crate::LocalPool)), a `[T]`
/// ([`ArrayPool`](crate::ArrayPool)), or the bytes of a message whose type
/// is known only at run time ([`DynMessage`], of a [`DynPool`](crate::DynPool)).
/// It is also what a [`Router`](crate::Router) carries: `Router<T>` samples
/// of a `Pool<T>`, `Router<[T]>` samples of an `ArrayPool<T>`,
/// `Router<DynMessage>` samples of a `DynPool`. Sealed.
///
/// # Safety
/// `view` must return a pointer to the slot's memory with the right
/// metadata (slice length) and nothing else.
pub unsafe trait SlotView: sealed::Sealed + Send + Sync + 'static {
    /// The shared-memory pool whose samples a router of `Self` carries:
    /// [`Pool<T>`](crate::Pool) or [`ArrayPool<T>`](crate::ArrayPool).
    type Pool: crate::pool::RouterPool<View = Self>;

    /// Whether a slot holds a run of elements whose length travels with the
    /// sample (`[T]`), rather than one value (`T`).
    #[doc(hidden)]
    const SLICE: bool;

    /// Whether the type is known only at run time ([`DynMessage`]): a slot
    /// is then seen as all its bytes.
    #[doc(hidden)]
    const DYNAMIC: bool = false;

    /// The payload's fingerprint: `T::FINGERPRINT`, or for `[T]`
    /// [`fingerprint::slice`](crate::fingerprint::slice) of it. 0 for
    /// [`DynMessage`], whose fingerprint is its [`DynType`](crate::DynType)'s,
    /// known at run time.
    const FINGERPRINT: u64;

    /// The payload's canonical description: `T`'s, or `[T]` around it
    /// (`DynMessage` for [`DynMessage`]: its type's is in its
    /// [`DynType`](crate::DynType)).
    fn type_name() -> String;

    /// The slot at `ptr`, seen with `len` values (bytes for
    /// [`DynMessage`]).
    #[doc(hidden)]
    fn view(ptr: NonNull<u8>, len: usize) -> NonNull<Self>;
}

// SAFETY: a single-value slot is the value itself.
unsafe impl<T: ShmSafe> SlotView for T {
    type Pool = crate::pool::Pool<T>;
    const SLICE: bool = false;
    const FINGERPRINT: u64 = T::FINGERPRINT;

    fn type_name() -> String {
        T::LAYOUT.describe()
    }

    fn view(ptr: NonNull<u8>, _: usize) -> NonNull<Self> {
        ptr.cast()
    }
}

// SAFETY: an array slot holds `elements` consecutive `T`s, and callers pass
// `len <= elements` (`PoolInner::view_len` clamps).
unsafe impl<T: ShmSafe> SlotView for [T] {
    type Pool = crate::pool::ArrayPool<T>;
    const SLICE: bool = true;
    const FINGERPRINT: u64 = crate::fingerprint::slice(T::FINGERPRINT);

    fn type_name() -> String {
        format!("[{}]", T::LAYOUT.describe())
    }

    fn view(ptr: NonNull<u8>, len: usize) -> NonNull<Self> {
        NonNull::slice_from_raw_parts(ptr.cast(), len)
    }
}

/// The bytes of a message whose type is known only at run time, from a
/// schema (see [`DynType`](crate::DynType)): what a tool such as
/// `shmidl bridge` carries for any topic without Rust code of its type.
/// Its bytes are the message's memory, which is also its wire form.
///
/// A `Sample<DynMessage>` of a topic is the same slot a typed program sees
/// as its `T`: the two interoperate on one topic.
#[repr(transparent)]
pub struct DynMessage([u8]);

impl DynMessage {
    /// The message's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The message's bytes, to write. Whatever is written is the message
    /// its subscribers read; a program that decodes it as its type validates
    /// it first (a typed subscriber of the topic trusts the publishers of
    /// its domain, see `docs/security.md`).
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Deref for DynMessage {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl DerefMut for DynMessage {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl fmt::Debug for DynMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DynMessage({} bytes)", self.0.len())
    }
}

// SAFETY: a dynamic slot is seen as its `len` bytes; callers pass the
// slot's size in bytes (`PoolInner::view_len`, `UninitSample::as_mut_ptr`).
// `DynMessage` is `repr(transparent)` over `[u8]`, so the fat pointer's
// metadata is that byte count.
unsafe impl SlotView for DynMessage {
    type Pool = crate::pool::DynPool;
    const SLICE: bool = false;
    const DYNAMIC: bool = true;
    const FINGERPRINT: u64 = 0;

    fn type_name() -> String {
        "DynMessage".to_owned()
    }

    fn view(ptr: NonNull<u8>, len: usize) -> NonNull<Self> {
        let bytes: NonNull<[u8]> = NonNull::slice_from_raw_parts(ptr, len);
        // `repr(transparent)`: the same pointer and metadata.
        let ptr = bytes.as_ptr() as *mut DynMessage;
        // SAFETY: `ptr` has the address of `bytes`, which is non-null.
        unsafe { NonNull::new_unchecked(ptr) }
    }
}

/// A plain, copyable name of a pool object: slot index and generation.
///
/// It can travel through shared memory or a pipe to another process, which
/// turns it back into a [`Sample`] with [`Pool::upgrade`](crate::Pool::upgrade)
/// (always safe: a stale handle is refused) or, to take over a reference
/// detached by [`Sample::into_raw`], with `from_raw`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawSample {
    /// Slot index.
    pub slot: u32,
    /// Generation of the slot when the handle was made.
    pub generation: u32,
}

impl RawSample {
    /// Packs the handle in one `u64` (generation high, slot low).
    pub fn to_u64(self) -> u64 {
        u64::from(self.generation) << 32 | u64::from(self.slot)
    }

    /// Unpacks [`to_u64`](Self::to_u64).
    pub fn from_u64(v: u64) -> Self {
        Self {
            slot: v as u32,
            generation: (v >> 32) as u32,
        }
    }
}

/// A freshly allocated slot whose contents are not initialised yet.
/// Dropping it returns the slot without running any destructor.
pub struct UninitSample<V: ?Sized + SlotView> {
    inner: Arc<PoolInner>,
    index: u32,
    _v: PhantomData<Box<V>>,
}

impl<V: ?Sized + SlotView> UninitSample<V> {
    pub(super) fn new(inner: Arc<PoolInner>, index: u32, _generation: u32) -> Self {
        if V::SLICE {
            // A fresh sample of an array slot uses every element until
            // `SampleMut::set_len` says otherwise.
            inner.set_len(index, inner.geom.elements);
        }
        Self {
            inner,
            index,
            _v: PhantomData,
        }
    }

    /// Pointer to the uninitialised slot.
    pub fn as_mut_ptr(&mut self) -> NonNull<V> {
        V::view(self.inner.slot_ptr(self.index), self.inner.full_len::<V>())
    }

    /// Declares the slot initialised.
    ///
    /// # Safety
    /// Every element of the slot must have been initialised through
    /// [`as_mut_ptr`](Self::as_mut_ptr) with a valid value.
    pub unsafe fn assume_init(self) -> SampleMut<V> {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the Arc is moved out once.
        let inner = unsafe { std::ptr::read(&this.inner) };
        SampleMut {
            inner,
            index: this.index,
            _v: PhantomData,
        }
    }
}

impl<V: ?Sized + SlotView> UninitSample<V> {
    /// Fills the slot with zero bytes, a valid value of every `ShmSafe`
    /// type (and of every element of an array slot).
    pub fn zeroed(mut self) -> SampleMut<V> {
        let len = self.inner.geom.elements as usize * self.inner.geom.elem_size;
        let ptr = self.as_mut_ptr().cast::<u8>();
        // SAFETY: the slot is ours alone and holds `elements` values of
        // `elem_size` bytes.
        unsafe { ptr.as_ptr().write_bytes(0, len) };
        // SAFETY: every byte was just written, and zero bytes are a valid
        // value of every `ShmSafe` type ("every byte pattern is a valid
        // value").
        unsafe { self.assume_init() }
    }
}

impl<T: ShmSafe> UninitSample<T> {
    /// Writes `value` into the slot.
    pub fn write(mut self, value: T) -> SampleMut<T> {
        // SAFETY: the slot is ours alone, valid and aligned for `T`.
        unsafe { self.as_mut_ptr().as_ptr().write(value) };
        // SAFETY: the only element was just initialised.
        unsafe { self.assume_init() }
    }
}

impl<T: ShmSafe> UninitSample<[T]> {
    /// Initialises element `i` with `f(i)`. If `f` panics, the slot goes
    /// back to the pool and already written elements are leaked (never
    /// dropped twice, never read).
    pub fn fill_with(mut self, mut f: impl FnMut(usize) -> T) -> SampleMut<[T]> {
        let base = self.as_mut_ptr().cast::<T>();
        for i in 0..self.inner.geom.elements as usize {
            let value = f(i);
            // `i < elements`: inside the slot.
            let p = base.as_ptr().wrapping_add(i);
            // SAFETY: `p` is inside the slot, aligned for `T`, and the slot
            // is ours alone.
            unsafe { p.write(value) };
        }
        // SAFETY: every element was just initialised.
        unsafe { self.assume_init() }
    }
}

impl<V: ?Sized + SlotView> Drop for UninitSample<V> {
    fn drop(&mut self) {
        // Nothing was initialised: free without dropping contents.
        self.inner.free_exclusive(self.index, false);
    }
}

/// The only reference to a pool object: mutable in place. Freeze it into
/// a [`Sample`] to share it (clone, send through a router).
pub struct SampleMut<V: ?Sized + SlotView> {
    inner: Arc<PoolInner>,
    index: u32,
    _v: PhantomData<Box<V>>,
}

// SAFETY: a `SampleMut<V>` is the unique owner of a `V` (like `Box<V>`);
// `V: ShmSafe` (or a slice of it) is `Send + Sync`.
unsafe impl<V: ?Sized + SlotView + Send> Send for SampleMut<V> {}
// SAFETY: as above; `&SampleMut` gives only `&V`.
unsafe impl<V: ?Sized + SlotView + Sync> Sync for SampleMut<V> {}

impl<V: ?Sized + SlotView> SampleMut<V> {
    /// Makes the object shared and read-only.
    pub fn freeze(self) -> Sample<V> {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the Arc is moved out once.
        let inner = unsafe { std::ptr::read(&this.inner) };
        // A fresh slot has no local references in this process.
        inner.local[this.index as usize].store(1, StdOrdering::Relaxed);
        // Record the reference before it stops naming us as its owner: a
        // reclaimer frees a recorded exclusive slot once, by either mark.
        inner.hold(this.index);
        crate::crash::crash_point!("pool.freeze.after_hold");
        inner.ctl()[this.index as usize].share();
        Sample {
            // SAFETY: `Arc::into_raw` never returns null.
            inner: unsafe { NonNull::new_unchecked(Arc::into_raw(inner).cast_mut()) },
            index: this.index,
            _v: PhantomData,
        }
    }

    /// Slot index in the pool (counting the slots of earlier chunks of a
    /// growable pool).
    pub fn slot(&self) -> u32 {
        self.inner.base + self.index
    }

    /// Whether this sample points into the same pool object as `other`.
    pub(crate) fn same_pool_as(&self, other: &PoolInner) -> bool {
        self.inner.identity().is_some() && self.inner.identity() == other.identity()
    }

    /// Ends exclusive ownership and returns the handle that now owns the
    /// sample's only reference, plus `extra` more references (one per
    /// additional queue the caller will push it into). The reference is
    /// recorded nowhere from here on (a crash leaks it to the audit): the
    /// caller pushes it into a queue at once, or records it
    /// ([`Pool::hold_raw`](crate::Pool)) before anything that can wait.
    pub(crate) fn into_owned_raw(self, extra: u32) -> RawSample {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the Arc is moved out once and
        // dropped at the end of this function.
        let inner = unsafe { std::ptr::read(&this.inner) };
        let ctl = &inner.ctl()[this.index as usize];
        ctl.share();
        for _ in 0..extra {
            ctl.retain();
        }
        RawSample {
            slot: inner.base + this.index,
            generation: ctl.snapshot().0,
        }
    }
}

impl<T: ShmSafe> SampleMut<[T]> {
    /// The most elements this sample can hold: its pool's
    /// [`elements`](crate::ArrayPool::elements).
    pub fn capacity(&self) -> usize {
        self.inner.geom.elements as usize
    }

    /// Sets the number of elements the sample holds, the length its
    /// readers see (in every process: it travels with the sample). Growing
    /// exposes whatever the slot held beyond the old length: zero bytes or
    /// an earlier message's elements, both valid `T`s (`ShmSafe`).
    pub fn set_len(&mut self, len: usize) -> Result<(), SliceTooLong> {
        let capacity = self.capacity();
        if len > capacity {
            return Err(SliceTooLong {
                requested: len,
                capacity,
            });
        }
        // `len <= capacity <= u32::MAX` (the pool's element count is a u32).
        self.inner.set_len(self.index, len as u32);
        Ok(())
    }

    /// Shortens the sample to `len` elements; no effect if it is not longer.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            // `len` is below the current length, so within the capacity.
            self.inner.set_len(self.index, len as u32);
        }
    }
}

/// A sample of a `[T]` pool was asked to hold more elements than its slot
/// has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a sample of {requested} elements does not fit a slot of {capacity}")]
pub struct SliceTooLong {
    /// Elements asked for.
    pub requested: usize,
    /// Elements a slot holds (the pool's `elements`).
    pub capacity: usize,
}

impl<V: ?Sized + SlotView> Deref for SampleMut<V> {
    type Target = V;
    fn deref(&self) -> &V {
        let p = V::view(
            self.inner.slot_ptr(self.index),
            self.inner.view_len::<V>(self.index),
        );
        // SAFETY: the slot is initialised and kept alive by our reference.
        unsafe { p.as_ref() }
    }
}

impl<V: ?Sized + SlotView> DerefMut for SampleMut<V> {
    fn deref_mut(&mut self) -> &mut V {
        let mut p = V::view(
            self.inner.slot_ptr(self.index),
            self.inner.view_len::<V>(self.index),
        );
        // SAFETY: initialised, alive, and ours alone: no other reference to
        // this slot exists in any process while a `SampleMut` holds it.
        unsafe { p.as_mut() }
    }
}

impl<V: ?Sized + SlotView> Drop for SampleMut<V> {
    fn drop(&mut self) {
        self.inner.free_exclusive(self.index, true);
    }
}

impl<V: ?Sized + SlotView + fmt::Debug> fmt::Debug for SampleMut<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SampleMut")
            .field("slot", &self.index)
            .field("value", &&**self)
            .finish()
    }
}

/// A shared, read-only reference to a pool object, counted across every
/// process. Cloning is one process-local atomic increment; the object is
/// dropped and its slot freed once the last reference anywhere is gone.
pub struct Sample<V: ?Sized + SlotView> {
    // INVARIANTS: `inner` came from `Arc::into_raw`; this process holds one
    // strong count for every slot whose local count is non-zero, and one
    // shared reference in that slot's control block.
    inner: NonNull<PoolInner>,
    index: u32,
    _v: PhantomData<Arc<V>>,
}

// SAFETY: like `Arc<V>`: shared read-only access to a `Send + Sync` value.
unsafe impl<V: ?Sized + SlotView + Send + Sync> Send for Sample<V> {}
// SAFETY: as above.
unsafe impl<V: ?Sized + SlotView + Send + Sync> Sync for Sample<V> {}

impl<V: ?Sized + SlotView> Sample<V> {
    pub(crate) fn pool(&self) -> &PoolInner {
        // SAFETY: by the struct invariant the pool outlives `self`.
        unsafe { self.inner.as_ref() }
    }

    /// Adopts one shared reference to `index` that the caller just took
    /// (by `upgrade`) or took over (by `from_raw`).
    pub(super) fn adopt_shared(pool: &Arc<PoolInner>, index: u32) -> Self {
        let prev = pool.local[index as usize].fetch_add(1, StdOrdering::Relaxed);
        if prev == 0 {
            // First reference in this process: the shared reference becomes
            // the process's (recorded after it was counted), and the process
            // holds the pool alive.
            pool.hold(index);
            std::mem::forget(pool.clone());
        } else {
            // The process already holds a shared reference; give this one
            // back. It cannot be the last: ours keeps the count above zero.
            pool.release_shared(index);
        }
        Self {
            inner: NonNull::from(&**pool),
            index,
            _v: PhantomData,
        }
    }

    /// Slot index in the pool (counting the slots of earlier chunks of a
    /// growable pool).
    pub fn slot(&self) -> u32 {
        self.pool().base + self.index
    }

    /// This object's plain handle. The handle holds no reference: use
    /// `Pool::upgrade` to get one back while the object lives.
    pub fn raw(&self) -> RawSample {
        RawSample {
            slot: self.pool().base + self.index,
            generation: self.pool().ctl()[self.index as usize].snapshot().0,
        }
    }

    /// Turns this pointer into a plain handle that *owns* one shared
    /// reference, for another process to take over with `from_raw` (or to
    /// release). Until then the object stays alive, even if this process
    /// exits.
    pub fn into_raw(self) -> RawSample {
        let raw = self.raw();
        // Count the detached reference before dropping ours: the count never
        // touches zero in between.
        self.pool().ctl()[self.index as usize].retain();
        drop(self);
        raw
    }

    /// References to this object across all processes (one per process
    /// holding it, plus one per handle in flight).
    pub fn shared_count(&self) -> u32 {
        self.pool().ctl()[self.index as usize].snapshot().1
    }
}

impl<V: ?Sized + SlotView> Clone for Sample<V> {
    fn clone(&self) -> Self {
        let prev = self.pool().local[self.index as usize].fetch_add(1, StdOrdering::Relaxed);
        debug_assert!(prev > 0 && prev < u32::MAX);
        Self {
            inner: self.inner,
            index: self.index,
            _v: PhantomData,
        }
    }
}

impl<V: ?Sized + SlotView> Drop for Sample<V> {
    fn drop(&mut self) {
        let pool = self.pool();
        // SYNC POINT: Release/Acquire on the local count, as `Arc` does:
        // every use through any clone happens before the release below.
        if pool.local[self.index as usize].fetch_sub(1, StdOrdering::Release) != 1 {
            return;
        }
        std::sync::atomic::fence(StdOrdering::Acquire);
        // Erase the record before giving the reference up.
        pool.unhold(self.index);
        crate::crash::crash_point!("pool.release.after_unhold");
        pool.release_shared(self.index);
        // SAFETY: the local count went 1 → 0, so we give back the strong
        // count taken when it went 0 → 1 (struct invariant).
        unsafe { Arc::decrement_strong_count(self.inner.as_ptr()) };
    }
}

impl<V: ?Sized + SlotView> Deref for Sample<V> {
    type Target = V;
    fn deref(&self) -> &V {
        let pool = self.pool();
        let p = V::view(pool.slot_ptr(self.index), pool.view_len::<V>(self.index));
        // SAFETY: initialised and alive while we hold a reference; shared
        // access only (no `SampleMut` exists once a `Sample` does).
        unsafe { p.as_ref() }
    }
}

impl<V: ?Sized + SlotView + fmt::Debug> fmt::Debug for Sample<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sample")
            .field("slot", &self.index)
            .field("value", &&**self)
            .finish()
    }
}
