//! Participants over a segment's life: rows claimed and released, who is
//! alive, reclaiming dead participants through the hooks of the layers
//! above (`hooks.rs`), and the last live participant removing the segment
//! and what depends on it.

use super::*;

impl Segment {
    /// Number of live participants (attached handles) across all
    /// processes, probed now; participants that died are not counted.
    pub fn attached(&self) -> u32 {
        match reopen(&self.inner.file) {
            Ok(probe) => live_rows(&self.inner.map, &probe, None),
            // Without a probe every row in use counts as alive.
            Err(_) => rows_in_use(&self.inner.map),
        }
    }

    /// Every participant row in use, with its liveness probed now.
    pub fn participants(&self) -> Vec<ParticipantInfo> {
        // Without a probe, liveness reads as alive (as for a probe error).
        // Never probe through `file`: it holds our own row's lock, and
        // locking and unlocking that byte through it would release it.
        let probe = reopen(&self.inner.file).ok();
        inspect::participants_of(&self.inner.map, probe.as_ref())
    }

    /// Finds participants that died without leaving and reclaims everything
    /// they held: router ports and queued messages, pool references, their
    /// attachment and their row. Returns how many were reclaimed.
    ///
    /// Runs automatically on attach and when a blocking wait times out;
    /// costs one `fcntl` per participant row, and nothing on the send or
    /// receive path.
    ///
    /// A dead participant's share of a pool or router is released by hooks
    /// that the pool and router layers register when this process first
    /// opens one (and that `Node`, `audit` and `shmidl clean` register
    /// always); in a process that has neither, rows of dead participants
    /// are left for one that has (`segment/hooks.rs`).
    pub fn cleanup_dead(&self) -> io::Result<usize> {
        use participants::{generation_of, pack, state_of, ALIVE, FREE, RECLAIMING};
        let objects = self.objects_raw();
        if let Some(&(kind, _, _)) = objects
            .iter()
            .find(|(kind, _, _)| hooks::needs_hooks(*kind) && hooks::get(*kind).is_none())
        {
            tracing::debug!(
                segment = %self.name(),
                %kind,
                "not reclaiming here: this process has no recovery hooks for the segment's objects"
            );
            return Ok(0);
        }
        let probe = reopen(&self.inner.file)?;
        let mut reclaimed = 0;
        for r in 0..layout::PARTICIPANT_CAPACITY {
            if r == self.inner.row {
                continue;
            }
            let row = self.inner.row(r);
            let cur = row.state.load(Ordering::Acquire);
            let takeover = match state_of(cur) {
                ALIVE => false,
                // Another survivor is reclaiming it; take over only if that
                // survivor died too (each reclaim step is safe to repeat).
                RECLAIMING => {
                    let by = row.reclaimer.load(Ordering::Acquire);
                    if by >= layout::PARTICIPANT_CAPACITY || participants::is_alive(&probe, by)? {
                        continue;
                    }
                    true
                }
                _ => continue,
            };
            if participants::is_alive(&probe, r)? {
                continue;
            }
            row.reclaimer.store(self.inner.row, Ordering::Release);
            let generation = generation_of(cur);
            if !takeover
                && row
                    .state
                    .compare_exchange(
                        cur,
                        pack(generation, RECLAIMING),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
                    .is_err()
            {
                continue; // another survivor won
            }
            crate::crash::crash_point!("reclaim.after_claim");
            tracing::warn!(
                segment = %self.name(),
                row = r,
                pid = row.pid.load(Ordering::Relaxed),
                "reclaiming what a dead participant held"
            );
            self.reclaim_row(r, &objects);
            row.state.store(pack(generation, FREE), Ordering::Release);
            reclaimed += 1;
        }
        Ok(reclaimed)
    }

    /// Releases everything participant row `row` held in `objects` (this
    /// segment's), through their kinds' hooks in phase order: routers
    /// first (their queues hold pool references), then pools.
    pub(super) fn reclaim_row(&self, row: u32, objects: &[(ObjectKind, u64, u64)]) {
        let dead_id = self.inner.row(row).id.load(Ordering::Acquire);
        let mut work: Vec<_> = objects
            .iter()
            .filter_map(|&(kind, offset, size)| Some((hooks::get(kind)?, offset, size)))
            .collect();
        work.sort_by_key(|(h, _, _)| h.phase);
        for (h, offset, size) in work {
            (h.reclaim)(self, offset, size, row, dead_id);
        }
    }
}

/// The control block of a validated mapping.
pub(super) fn control_of(map: &MmapRaw) -> &HeaderControl {
    // SAFETY: the header was validated, so the mapping holds at least
    // DATA_OFFSET bytes and CONTROL_OFFSET (256) is inside it and suitably
    // aligned (mappings are page-aligned). `HeaderControl` is all atomics,
    // valid for any bit pattern, and lives as long as the mapping.
    unsafe {
        &*map
            .as_ptr()
            .wrapping_add(CONTROL_OFFSET as usize)
            .cast::<HeaderControl>()
    }
}

/// Participant row `row` of a validated mapping.
pub(super) fn row_of(map: &MmapRaw, row: u32) -> &Row {
    debug_assert!(row < layout::PARTICIPANT_CAPACITY);
    let off =
        layout::PARTICIPANT_OFFSET as usize + row as usize * layout::PARTICIPANT_ROW_SIZE as usize;
    // SAFETY: `row < PARTICIPANT_CAPACITY`, so the row lies inside the
    // validated header area (const assertions in `layout`), 64-aligned;
    // `Row` is all atomics, valid for any bit pattern.
    unsafe { &*map.as_ptr().wrapping_add(off).cast::<Row>() }
}

/// Claims a free participant row: locks its byte first, then marks it
/// alive, so no prober can ever see it alive without the lock held.
/// `Ok(None)` if every row is taken.
pub(super) fn claim_row(map: &MmapRaw, file: &File, id: u64) -> io::Result<Option<(u32, u32)>> {
    use participants::{lock_byte, pack, state_of, ALIVE, FREE};
    for r in 0..layout::PARTICIPANT_CAPACITY {
        let row = row_of(map, r);
        let cur = row.state.load(Ordering::Acquire);
        if state_of(cur) != FREE {
            continue;
        }
        if !lock::ofd_lock(file, lock_byte(r), libc::F_WRLCK as libc::c_short)? {
            continue;
        }
        crate::crash::crash_point!("segment.attach.after_lock");
        let generation = participants::generation_of(cur).wrapping_add(1);
        row.pid.store(std::process::id(), Ordering::Relaxed);
        row.id.store(id, Ordering::Relaxed);
        row.start_time
            .store(participants::own_start_time(), Ordering::Relaxed);
        row.since_unix_ns.store(now_unix_ns(), Ordering::Relaxed);
        if row
            .state
            .compare_exchange(
                cur,
                pack(generation, ALIVE),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            return Ok(Some((r, generation)));
        }
        lock::ofd_lock(file, lock_byte(r), libc::F_UNLCK as libc::c_short)?;
    }
    Ok(None)
}

/// Frees our row and then its liveness lock.
pub(super) fn release_row(map: &MmapRaw, file: &File, row: u32, generation: u32) {
    use participants::{pack, ALIVE, FREE};
    let _ = row_of(map, row).state.compare_exchange(
        pack(generation, ALIVE),
        pack(generation, FREE),
        Ordering::SeqCst,
        Ordering::Relaxed,
    );
    let _ = lock::ofd_lock(
        file,
        participants::lock_byte(row),
        libc::F_UNLCK as libc::c_short,
    );
}

/// A second open file description of the segment file, holding no lock:
/// what liveness probes lock through (one of our own would not conflict
/// with our own locks). Opened for each probing operation and closed after
/// (taking no lock of its own, closing releases nothing), so an attached
/// segment costs one descriptor, not two: a process with a thousand topics
/// open holds a thousand. `/proc/self/fd` reaches the file even after it
/// was unlinked.
pub(super) fn reopen(file: &File) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// Rows in state ALIVE or RECLAIMING, without probing their locks.
pub(super) fn rows_in_use(map: &MmapRaw) -> u32 {
    use participants::{state_of, ALIVE, RECLAIMING};
    (0..layout::PARTICIPANT_CAPACITY)
        .filter(|&r| {
            let st = state_of(row_of(map, r).state.load(Ordering::SeqCst));
            st == ALIVE || st == RECLAIMING
        })
        .count() as u32
}

/// Rows (other than `except`) held by a live participant: state ALIVE or
/// RECLAIMING and its lock held. An unreadable probe counts as alive.
pub(super) fn live_rows(map: &MmapRaw, probe: &File, except: Option<u32>) -> u32 {
    use participants::{state_of, ALIVE, RECLAIMING};
    (0..layout::PARTICIPANT_CAPACITY)
        .filter(|&r| Some(r) != except)
        .filter(|&r| {
            let st = state_of(row_of(map, r).state.load(Ordering::SeqCst));
            (st == ALIVE || st == RECLAIMING) && participants::is_alive(probe, r).unwrap_or(true)
        })
        .count() as u32
}

/// Leaves: frees our row, and if no live participant remains, removes the
/// segment. Participants that died count as gone: their objects die with
/// the file.
///
/// The last leaver sets `closing` (SeqCst CAS) and then scans the rows
/// (SeqCst); a joiner marks its row ALIVE (SeqCst CAS) and then reads
/// `closing` (SeqCst). In the single order of SeqCst operations either the
/// leaver's scan sees the joiner (it clears `closing` and keeps the file) or
/// the joiner sees `closing` (it backs off and retries the open, finding
/// the file gone or kept).
pub(super) fn leave(inner: &Inner) {
    release_row(&inner.map, &inner.file, inner.row, inner.row_generation);
    if inner.info.owner_id != 0 {
        // A dependent segment: its owner (or retirement) removes it.
        return;
    }
    // Without a probe, stay conservative: keep the file (a leak that
    // `shmidl clean` removes), never remove one a live process uses.
    let Ok(probe) = reopen(&inner.file) else {
        return;
    };
    if live_rows(&inner.map, &probe, None) > 0 {
        return;
    }
    let closing = &inner.control().closing;
    if closing
        .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return; // someone else is closing it
    }
    if live_rows(&inner.map, &probe, None) > 0 {
        closing.store(0, Ordering::SeqCst);
        return;
    }
    match shm::unlink(inner.name.shm_path()) {
        Ok(()) => {
            tracing::debug!(segment = %inner.name, "last participant left; segment removed");
            remove_dependents(&inner.map, &inner.name, &inner.info);
        }
        // Unlinked already (`purge_and_create`, `unlink`): what depends on
        // it (named after its id) is ours to remove all the same.
        Err(Errno::NOENT) => remove_dependents(&inner.map, &inner.name, &inner.info),
        Err(e) => tracing::warn!(segment = %inner.name, error = %e, "removing segment failed"),
    }
}

/// Removes the segments that depend on the segment mapped at `map`, which
/// was just unlinked (the chunks of its growable pools), through the hooks
/// of its objects' kinds. Without them (a process that never opened a
/// pool), dependents stay until `shmidl clean` finds their owner gone.
pub(crate) fn remove_dependents(map: &MmapRaw, name: &SegmentName, info: &HeaderInfo) {
    for (kind, offset, size) in objects_of(map, info.total_size) {
        match hooks::get(kind).map(|h| h.remove_dependents) {
            Some(Some(remove)) => {
                let ptr = map.as_mut_ptr().wrapping_add(offset as usize);
                remove(ptr, size, name.as_str(), info.segment_id, offset);
            }
            Some(None) => {}
            None if hooks::needs_hooks(kind) => tracing::debug!(
                segment = %name, %kind,
                "no hooks to remove what depends on this object here"
            ),
            None => {}
        }
    }
}
