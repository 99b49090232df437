//! The object directory: finding or creating named objects atomically
//! across processes, reading entries defensively, and [`ShmRef`], the
//! handle to a plain object.

use super::*;

impl Segment {
    /// (kind, offset, size) of every ready directory entry that lies inside
    /// the data area.
    pub(crate) fn objects_raw(&self) -> Vec<(ObjectKind, u64, u64)> {
        objects_of(&self.inner.map, self.size())
    }

    /// The process-local view of the shared object at `offset`, made by
    /// `make` the first time it is asked for through this handle.
    pub(crate) fn local_view<V: Any + Send + Sync, E>(
        &self,
        offset: u64,
        make: impl FnOnce() -> Result<Arc<V>, E>,
    ) -> Result<Arc<V>, E> {
        let mut reg = self
            .inner
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(v) = reg.get(&offset).and_then(Weak::upgrade) {
            if let Ok(v) = v.downcast::<V>() {
                return Ok(v);
            }
        }
        let v = make()?;
        let weak: Weak<dyn Any + Send + Sync> =
            Arc::downgrade(&(v.clone() as Arc<dyn Any + Send + Sync>));
        reg.insert(offset, weak);
        Ok(v)
    }

    /// The live process-local view at `offset`, if this handle has one.
    pub(crate) fn existing_view<V: Any + Send + Sync>(&self, offset: u64) -> Option<Arc<V>> {
        let reg = self
            .inner
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        reg.get(&offset)?.upgrade()?.downcast::<V>().ok()
    }

    /// The objects in the directory (name and type), in creation order.
    /// Entries still being initialised are skipped.
    pub fn objects(&self) -> Vec<(String, ObjectType)> {
        (0..DIR_CAPACITY)
            .map(|i| self.inner.entry(i))
            .take_while(|e| e.state.load(Ordering::Acquire) != ENTRY_EMPTY)
            .filter(|e| e.state.load(Ordering::Acquire) == ENTRY_READY)
            .filter_map(|e| Some((entry_name(e)?, entry_type(e))))
            .collect()
    }

    /// Finds the object `name` of type `T`, or creates it with `init`.
    ///
    /// Atomic across processes: exactly one caller runs `init` (while the
    /// directory is locked); every other caller, in any process, gets the
    /// same object. An existing object of another kind, type or size is a
    /// [`ObjectError::TypeMismatch`], never a reinterpretation. If a creator
    /// dies while running `init`, the next caller runs `init` again in place.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use shmidl::Segment;
    /// # let name = format!("doc-foc-{}", std::process::id());
    /// let seg = Segment::builder(&name).open_or_create()?;
    /// let counter = seg.find_or_create("hits", || AtomicU64::new(0))?;
    /// counter.fetch_add(1, Ordering::Relaxed);
    /// let again = seg.find::<AtomicU64>("hits")?;
    /// assert_eq!(again.load(Ordering::Relaxed), 1);
    /// assert!(seg.find::<u32>("hits").is_err()); // another type
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn find_or_create<T: ShmSafe>(
        &self,
        name: &str,
        init: impl FnOnce() -> T,
    ) -> Result<ShmRef<T>, ObjectError> {
        let placed = self.find_or_create_raw(name, plain_spec::<T>(), |ptr| {
            // SAFETY: `ptr` is valid for writes of `size_of::<T>()` bytes and
            // aligned to `align_of::<T>()` (the spec asked for both), and
            // nobody else reads the object before it is marked ready.
            unsafe { ptr.cast::<T>().as_ptr().write(init()) }
        })?;
        // SAFETY: the entry was created for exactly `T` (kind, fingerprint
        // and size match), and is initialised.
        Ok(unsafe { self.object_at(placed.offset) })
    }

    /// Finds an existing object `name` of type `T`. Waits (up to the timeout)
    /// if another process is creating it right now.
    pub fn find<T: ShmSafe>(&self, name: &str) -> Result<ShmRef<T>, ObjectError> {
        let placed = self.find_raw(name, plain_spec::<T>())?;
        // SAFETY: as in `find_or_create`.
        Ok(unsafe { self.object_at(placed.offset) })
    }

    /// A typed handle to an initialised object at `offset`.
    ///
    /// # Safety
    /// A `T` must be initialised at `offset`, which must be in bounds and
    /// aligned for `T`.
    pub(crate) unsafe fn object_at<T: ShmSafe>(&self, offset: u64) -> ShmRef<T> {
        debug_assert!(offset + std::mem::size_of::<T>() as u64 <= self.size());
        ShmRef {
            ptr: self.ptr_at(offset).cast(),
            segment: self.clone(),
            _t: PhantomData,
        }
    }

    /// The address of `offset` in this process's mapping.
    pub(crate) fn ptr_at(&self, offset: u64) -> NonNull<u8> {
        assert!(offset <= self.size(), "offset {offset} outside the segment");
        // SAFETY: `offset <= size`, so the result is inside the mapping or
        // one past its end; the mapping pointer is never null.
        unsafe { NonNull::new_unchecked(self.inner.map.as_mut_ptr().wrapping_add(offset as usize)) }
    }

    /// Finds or creates an object from a run-time spec; returns its offset.
    pub(crate) fn find_or_create_raw(
        &self,
        name: &str,
        spec: ObjectSpec,
        init: impl FnOnce(NonNull<u8>),
    ) -> Result<Placed, ObjectError> {
        validate_object_name(name)?;
        if let Some(off) = self.scan_ready(name, spec)? {
            return Ok(off);
        }
        let _guard = self.lock_dir()?;
        let control = self.inner.control();
        let mut first_empty = None;
        for i in 0..DIR_CAPACITY {
            let e = self.inner.entry(i);
            match e.state.load(Ordering::Acquire) {
                ENTRY_EMPTY => {
                    first_empty = Some(i);
                    break;
                }
                ENTRY_READY if entry_is(e, name) => return self.check_entry(i, e, name, spec),
                ENTRY_INITIALIZING if entry_is(e, name) => {
                    // We hold the lock, so its creator died during `init`:
                    // the object was never visible; run `init` again in place.
                    let placed = self.check_entry(i, e, name, spec)?;
                    tracing::warn!(segment = %self.name(), object = name, "re-initialising an object whose creator died");
                    init(self.ptr_at(placed.offset));
                    // SYNC POINT: pairs with the Acquire loads of `state`.
                    e.state.store(ENTRY_READY, Ordering::Release);
                    return Ok(placed);
                }
                ENTRY_READY | ENTRY_INITIALIZING => {}
                _ => return Err(self.corrupt(i, "unknown entry state")),
            }
        }
        let Some(index) = first_empty else {
            return Err(ObjectError::DirectoryFull {
                segment: self.name().to_owned(),
                capacity: DIR_CAPACITY,
            });
        };
        let next = control.alloc_next.load(Ordering::Relaxed);
        let align = spec.align.max(OBJECT_ALIGN);
        let start = round_up(next, align);
        let end = start
            .checked_add(spec.ty.size)
            .filter(|&e| e <= self.size());
        let Some(end) = end else {
            return Err(ObjectError::OutOfSpace {
                segment: self.name().to_owned(),
                name: name.to_owned(),
                requested: spec.ty.size + (start - next),
                available: self.size().saturating_sub(next),
            });
        };
        let e = self.inner.entry(index);
        e.kind.store(spec.ty.kind.0, Ordering::Relaxed);
        e.fingerprint.store(spec.ty.fingerprint, Ordering::Relaxed);
        e.offset.store(start, Ordering::Relaxed);
        e.size.store(spec.ty.size, Ordering::Relaxed);
        e.align.store(align, Ordering::Relaxed);
        e.name_len.store(name.len() as u32, Ordering::Relaxed);
        for (w, v) in e.name.iter().zip(layout::name_words(name)) {
            w.store(v, Ordering::Relaxed);
        }
        e.state.store(ENTRY_INITIALIZING, Ordering::Release);
        control.alloc_next.store(end, Ordering::Release);
        crate::crash::crash_point!("directory.before_ready");
        init(self.ptr_at(start));
        // SYNC POINT: pairs with the Acquire loads of `state` in `scan_ready`:
        // whoever sees READY sees the initialised object.
        e.state.store(ENTRY_READY, Ordering::Release);
        tracing::debug!(segment = %self.name(), object = name, offset = start, "created object");
        Ok(Placed {
            offset: start,
            size: spec.ty.size,
        })
    }

    /// Finds an existing object from a run-time spec; returns its offset.
    pub(crate) fn find_raw(&self, name: &str, spec: ObjectSpec) -> Result<Placed, ObjectError> {
        validate_object_name(name)?;
        if let Some(off) = self.scan_ready(name, spec)? {
            return Ok(off);
        }
        // Maybe it is being created right now: its creator holds the lock,
        // so taking it waits for the creator to finish.
        let being_made = (0..DIR_CAPACITY)
            .map(|i| self.inner.entry(i))
            .any(|e| e.state.load(Ordering::Acquire) == ENTRY_INITIALIZING && entry_is(e, name));
        if being_made {
            let _guard = self.lock_dir()?;
            if let Some(off) = self.scan_ready(name, spec)? {
                return Ok(off);
            }
        }
        Err(ObjectError::NotFound {
            segment: self.name().to_owned(),
            name: name.to_owned(),
        })
    }

    /// Lock-free scan of ready entries.
    pub(super) fn scan_ready(
        &self,
        name: &str,
        spec: ObjectSpec,
    ) -> Result<Option<Placed>, ObjectError> {
        for i in 0..DIR_CAPACITY {
            let e = self.inner.entry(i);
            match e.state.load(Ordering::Acquire) {
                ENTRY_EMPTY => return Ok(None),
                ENTRY_READY if entry_is(e, name) => {
                    return self.check_entry(i, e, name, spec).map(Some)
                }
                ENTRY_READY | ENTRY_INITIALIZING => {}
                _ => return Err(self.corrupt(i, "unknown entry state")),
            }
        }
        Ok(None)
    }

    /// Checks a matching entry against the spec and the segment bounds.
    pub(super) fn check_entry(
        &self,
        index: u32,
        e: &DirEntry,
        name: &str,
        spec: ObjectSpec,
    ) -> Result<Placed, ObjectError> {
        let found = entry_type(e);
        let same = found.kind == spec.ty.kind
            && found.fingerprint == spec.ty.fingerprint
            && (spec.any_size || found.size == spec.ty.size);
        if !same {
            return Err(ObjectError::TypeMismatch {
                segment: self.name().to_owned(),
                name: name.to_owned(),
                expected: spec.ty,
                found,
            });
        }
        let off = e.offset.load(Ordering::Relaxed);
        let in_bounds = off >= DATA_OFFSET
            && off
                .checked_add(found.size)
                .is_some_and(|end| end <= self.size());
        if !in_bounds {
            return Err(self.corrupt(index, "object lies outside the data area"));
        }
        if off % spec.align.max(1) != 0 {
            return Err(self.corrupt(index, "object offset is misaligned"));
        }
        Ok(Placed {
            offset: off,
            size: found.size,
        })
    }

    pub(super) fn corrupt(&self, index: u32, what: &'static str) -> ObjectError {
        ObjectError::Corrupt {
            segment: self.name().to_owned(),
            index,
            what,
        }
    }

    /// Runs `f` holding the segment's directory lock (the kernel releases it
    /// if this process dies inside `f`).
    pub(crate) fn with_directory_lock<R>(&self, f: impl FnOnce() -> R) -> Result<R, ObjectError> {
        let _guard = self.lock_dir()?;
        Ok(f())
    }

    pub(super) fn lock_dir(&self) -> Result<lock::DirLockGuard<'_>, ObjectError> {
        let c = self.inner.control();
        lock::lock_dir(
            &self.inner.dir_local,
            &self.inner.file,
            &c.dir_seq,
            &c.dir_waiters,
            Instant::now() + self.inner.timeout,
        )
        .map_err(|e| match e {
            lock::DirLockError::TimedOut => ObjectError::Timeout {
                segment: self.name().to_owned(),
            },
            lock::DirLockError::Io(source) => ObjectError::Io {
                segment: self.name().to_owned(),
                source,
            },
        })
    }
}

pub(super) fn plain_spec<T: ShmSafe>() -> ObjectSpec {
    ObjectSpec {
        ty: ObjectType {
            kind: ObjectKind::PLAIN,
            fingerprint: T::FINGERPRINT,
            size: std::mem::size_of::<T>() as u64,
        },
        align: std::mem::align_of::<T>() as u64,
        any_size: false,
    }
}

pub(super) fn entry_type(e: &DirEntry) -> ObjectType {
    ObjectType {
        kind: ObjectKind(e.kind.load(Ordering::Relaxed)),
        fingerprint: e.fingerprint.load(Ordering::Relaxed),
        size: e.size.load(Ordering::Relaxed),
    }
}

pub(super) fn entry_is(e: &DirEntry, name: &str) -> bool {
    e.name_len.load(Ordering::Relaxed) as usize == name.len()
        && e.name
            .iter()
            .zip(layout::name_words(name))
            .all(|(w, v)| w.load(Ordering::Relaxed) == v)
}

pub(super) fn entry_name(e: &DirEntry) -> Option<String> {
    let len = e.name_len.load(Ordering::Relaxed) as usize;
    let bytes: Vec<u8> = e
        .name
        .iter()
        .flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes())
        .take(len.min(64))
        .collect();
    String::from_utf8(bytes).ok()
}

/// Directory entry `index` of a validated mapping.
pub(super) fn entry_of(map: &MmapRaw, index: u32) -> &DirEntry {
    debug_assert!(index < DIR_CAPACITY);
    let off = DIR_OFFSET as usize + index as usize * layout::DIR_ENTRY_SIZE as usize;
    // SAFETY: `index < DIR_CAPACITY`, so the entry lies inside the
    // validated header area (checked by a const assertion in `layout`),
    // 8-aligned; `DirEntry` is all atomics, valid for any bit pattern.
    unsafe { &*map.as_ptr().wrapping_add(off).cast::<DirEntry>() }
}

/// (kind, offset, size) of every ready directory entry of the segment
/// mapped at `map` (`size` bytes) that lies inside the data area.
pub(crate) fn objects_of(map: &MmapRaw, size: u64) -> Vec<(ObjectKind, u64, u64)> {
    (0..DIR_CAPACITY)
        .map(|i| entry_of(map, i))
        .take_while(|e| e.state.load(Ordering::Acquire) != ENTRY_EMPTY)
        .filter(|e| e.state.load(Ordering::Acquire) == ENTRY_READY)
        .map(|e| {
            let t = entry_type(e);
            (t.kind, e.offset.load(Ordering::Relaxed), t.size)
        })
        .filter(|&(_, off, len)| {
            off >= DATA_OFFSET && off.checked_add(len).is_some_and(|end| end <= size)
        })
        .collect()
}

/// A handle to a `T` in a segment. Keeps the segment mapped.
///
/// Shared memory is shared: the handle gives `&T` only, so mutation goes
/// through atomics (or other `Sync` interior mutability made for shared
/// memory).
pub struct ShmRef<T: ShmSafe> {
    // INVARIANTS: `ptr` points to an initialised `T` inside `segment`'s
    // mapping, which `segment` keeps alive.
    pub(super) ptr: NonNull<T>,
    pub(super) segment: Segment,
    pub(super) _t: PhantomData<T>,
}

// SAFETY: a `ShmRef<T>` only gives `&T`; `T: ShmSafe` is `Sync + Send`, so
// sharing or sending the handle is sharing `&T` across threads.
unsafe impl<T: ShmSafe> Send for ShmRef<T> {}

// SAFETY: as above.
unsafe impl<T: ShmSafe> Sync for ShmRef<T> {}

impl<T: ShmSafe> ShmRef<T> {
    /// The segment the object lives in.
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// Offset of the object in its segment.
    pub fn offset(&self) -> u64 {
        self.ptr.as_ptr() as u64 - self.segment.inner.map.as_ptr() as u64
    }
}

impl<T: ShmSafe> Clone for ShmRef<T> {
    fn clone(&self) -> Self {
        Self {
            ptr: self.ptr,
            segment: self.segment.clone(),
            _t: PhantomData,
        }
    }
}

impl<T: ShmSafe> Deref for ShmRef<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: by the struct invariant the pointee is an initialised `T`
        // kept mapped by `self.segment` for as long as `self` lives.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: ShmSafe + fmt::Debug> fmt::Debug for ShmRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmRef")
            .field("segment", &self.segment.name())
            .field("offset", &self.offset())
            .field("value", &**self)
            .finish()
    }
}
