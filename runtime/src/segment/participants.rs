//! The participant table: who is attached to a segment, and proof of who
//! is dead.
//!
//! Each attached [`Segment`](super::Segment) handle owns one row. Its
//! liveness proof is an open-file-description write lock on byte
//! `1 + row` of the segment file, taken *before* the row is marked alive
//! and held until the handle is dropped — or until the kernel drops it
//! because the process died. A survivor proves a participant dead by taking
//! the same lock from a second, unlocked descriptor: success means no one
//! holds it. Unlike a pid, this cannot be fooled by pid reuse, and unlike
//! pidfd it needs no relationship between the processes.
//!
//! Row state word: `generation << 32 | state`, with states FREE, ALIVE and
//! RECLAIMING. Reclaiming a dead row is claimed by CAS (ALIVE → RECLAIMING,
//! recording the reclaimer's row), so two survivors never reclaim the same
//! participant; a reclaimer that dies mid-way is itself proven dead and its
//! work taken over (every reclaim step is safe to repeat).

use std::{fs::File, io};

use super::lock::ofd_lock;
use crate::sync::{AtomicU32, AtomicU64};

pub(crate) const FREE: u32 = 0;
pub(crate) const ALIVE: u32 = 1;
pub(crate) const RECLAIMING: u32 = 2;

/// One participant, 64 bytes.
#[repr(C, align(64))]
pub(crate) struct Row {
    /// `generation << 32 | state`.
    pub state: AtomicU64,
    pub pid: AtomicU32,
    /// While RECLAIMING: the reclaimer's row.
    pub reclaimer: AtomicU32,
    /// Random participant id.
    pub id: AtomicU64,
    /// Process start time (clock ticks since boot, `/proc/self/stat`).
    pub start_time: AtomicU64,
    /// When the row was claimed, ns since the Unix epoch.
    pub since_unix_ns: AtomicU64,
}

pub(crate) fn pack(generation: u32, state: u32) -> u64 {
    u64::from(generation) << 32 | u64::from(state)
}

pub(crate) fn state_of(word: u64) -> u32 {
    word as u32
}

pub(crate) fn generation_of(word: u64) -> u32 {
    (word >> 32) as u32
}

/// The byte of the segment file whose lock proves row `row` alive.
pub(crate) fn lock_byte(row: u32) -> i64 {
    1 + i64::from(row)
}

/// Whether the owner of row `row` is alive, probed from `probe`, a
/// descriptor of the segment file that holds no participant lock of its
/// own row being probed. (Our own rows read as alive: the probe descriptor
/// is a different open file description, so our locks conflict with it.)
pub(crate) fn is_alive(probe: &File, row: u32) -> io::Result<bool> {
    let byte = lock_byte(row);
    if ofd_lock(probe, byte, libc::F_WRLCK as libc::c_short)? {
        ofd_lock(probe, byte, libc::F_UNLCK as libc::c_short)?;
        Ok(false)
    } else {
        Ok(true)
    }
}

/// This process's start time in clock ticks since boot (field 22 of
/// `/proc/self/stat`), 0 if unreadable. Shown by `shmidl ls`; liveness
/// never depends on it.
pub(crate) fn own_start_time() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // The command name (field 2) may contain spaces; fields after
            // its closing parenthesis are space-separated.
            let rest = &s[s.rfind(')')? + 2..];
            rest.split(' ').nth(19)?.parse().ok()
        })
        .unwrap_or(0)
}

/// A participant as seen by [`Segment::participants`](super::Segment::participants).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantInfo {
    /// Row in the participant table.
    pub row: u32,
    /// Process id when it attached.
    pub pid: u32,
    /// Random participant id.
    pub id: u64,
    /// Process start time (clock ticks since boot).
    pub start_time: u64,
    /// Whether its liveness lock is held (`false`: it died without leaving).
    pub alive: bool,
    /// Whether a survivor is reclaiming what it held right now.
    pub reclaiming: bool,
}
