//! [`DynPool`]: a pool of a message type known only at run time.

use std::fmt;

use super::*;
use crate::{dynamic::DynType, pool::handles::Elem, DynMessage};

/// A pool of messages of a [`DynType`], a type known only at run time. It
/// is the same object a `Pool<T>` of the type would open (same name,
/// fingerprint and geometry), so typed programs and tools that read a
/// schema share it. Topics of a `DynType` use one
/// ([`Node::dyn_publisher`](crate::Node::dyn_publisher)).
pub struct DynPool {
    pub(super) core: PoolCore<DynMessage>,
    pub(super) segment: Segment,
    pub(super) ty: Arc<DynType>,
}

impl Clone for DynPool {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
            segment: self.segment.clone(),
            ty: Arc::clone(&self.ty),
        }
    }
}

impl fmt::Debug for DynPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynPool")
            .field("name", &self.core.inner.name)
            .field("type", &self.ty.name())
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

/// What the pool needs of `ty`; its values need no drop (they are bytes).
fn elem_of(ty: &DynType) -> Elem {
    Elem {
        size: ty.size(),
        align: ty.align(),
        fingerprint: ty.fingerprint(),
        drop_slot: drop_elements::<()>,
    }
}

impl DynPool {
    /// Finds the pool `name` of `ty` in `segment`, or creates it with
    /// `capacity` slots per chunk and up to `max_chunks` chunks (1: fixed
    /// size), as [`PoolBuilder::growable`] does. An existing pool of
    /// another type is a fingerprint mismatch; of another capacity, a
    /// `GeometryMismatch`.
    pub fn open_or_create(
        segment: &Segment,
        name: &str,
        ty: &DynType,
        capacity: u32,
        max_chunks: u32,
    ) -> Result<DynPool, PoolOpenError> {
        Self::open_for(segment, name, ty, capacity, max_chunks, None)
    }

    /// [`open_or_create`](Self::open_or_create) for `topic`'s pool.
    fn open_for(
        segment: &Segment,
        name: &str,
        ty: &DynType,
        capacity: u32,
        max_chunks: u32,
        topic: Option<&str>,
    ) -> Result<DynPool, PoolOpenError> {
        let builder = PoolBuilder::<()> {
            segment,
            name: name.to_owned(),
            capacity,
            elements: 1,
            max_chunks,
            timeout: Duration::from_secs(1),
            topic: topic.map(str::to_owned),
            _t: PhantomData,
        };
        Ok(DynPool {
            core: PoolCore {
                inner: builder.build_elem(elem_of(ty), ObjectKind::POOL, true)?,
                _v: PhantomData,
            },
            segment: segment.clone(),
            ty: Arc::new(ty.clone()),
        })
    }

    /// The type of the pool's messages.
    pub fn dyn_type(&self) -> &DynType {
        &self.ty
    }

    /// The segment the pool lives in.
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// The pool's object name.
    pub fn name(&self) -> &str {
        &self.core.inner.name
    }

    /// Number of slots in the chunks that exist now.
    pub fn capacity(&self) -> u32 {
        self.core.inner.geom.capacity * growth::live_chunks(&self.core.inner)
    }

    /// Number of free slots now, over every chunk (exact when no one is
    /// allocating or freeing concurrently).
    pub fn free_count(&self) -> u32 {
        growth::free_count(&self.core.inner)
    }

    /// A message of zero bytes, waiting up to the pool's timeout (1 s).
    pub fn loan_zeroed(&self) -> Result<SampleMut<DynMessage>, PoolExhausted> {
        self.loan_zeroed_timeout(self.core.inner.timeout)
    }

    /// A slot with uninitialised contents, waiting up to the pool's timeout
    /// (1 s); see [`loan_uninit_timeout`](Self::loan_uninit_timeout).
    pub fn loan_uninit(&self) -> Result<UninitSample<DynMessage>, PoolExhausted> {
        self.loan_uninit_timeout(self.core.inner.timeout)
    }

    /// A slot with uninitialised contents, without waiting.
    pub fn try_loan_uninit(&self) -> Result<UninitSample<DynMessage>, PoolExhausted> {
        self.core.try_slot().ok_or_else(|| self.core.exhausted(()))
    }

    /// A message of zero bytes, waiting up to `timeout` for a free slot.
    /// Zero bytes are a valid value of every type.
    pub fn loan_zeroed_timeout(
        &self,
        timeout: Duration,
    ) -> Result<SampleMut<DynMessage>, PoolExhausted> {
        self.core
            .slot_within(timeout)
            .map(UninitSample::zeroed)
            .ok_or_else(|| self.core.exhausted(()))
    }

    /// A slot with uninitialised contents, waiting up to `timeout`: write
    /// every byte through [`UninitSample::as_mut_ptr`], or use
    /// [`wire::decode_dyn_into`](crate::wire::decode_dyn_into).
    pub fn loan_uninit_timeout(
        &self,
        timeout: Duration,
    ) -> Result<UninitSample<DynMessage>, PoolExhausted> {
        self.core
            .slot_within(timeout)
            .ok_or_else(|| self.core.exhausted(()))
    }
}

impl RouterPool for DynPool {
    type View = DynMessage;
    type Payload = DynType;

    fn static_payload() -> Option<DynType> {
        None
    }

    fn describe(payload: &DynType) -> (String, u64) {
        (payload.name().to_owned(), payload.fingerprint())
    }

    fn view_fingerprint(&self) -> u64 {
        self.ty.fingerprint()
    }

    fn core(&self) -> &PoolCore<DynMessage> {
        &self.core
    }

    fn home(&self) -> &Segment {
        &self.segment
    }

    fn open_in(
        payload: &DynType,
        segment: &Segment,
        name: &str,
        capacity: u32,
        _elements: u32,
        max_chunks: u32,
        topic: Option<&str>,
    ) -> Result<Self, PoolOpenError> {
        DynPool::open_for(segment, name, payload, capacity, max_chunks, topic)
    }

    fn object_bytes(
        payload: &DynType,
        capacity: u32,
        _elements: u32,
    ) -> Result<(u64, u64), PoolOpenError> {
        let geom = Geometry::with(payload.size(), payload.align(), capacity, 1)?;
        Ok((geom.total_size as u64, geom.align as u64))
    }
}
