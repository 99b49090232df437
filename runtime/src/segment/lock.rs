//! The directory lock: an open-file-description byte-range lock on the
//! segment file, plus an in-process mutex.
//!
//! Why this and not a lock word in shared memory: the kernel releases an OFD
//! lock when the last descriptor of its open file description closes, which
//! includes the process being killed. A crashed creator therefore can never
//! leave the directory locked. Waiting is a futex on `HeaderControl::dir_seq`,
//! bumped on every release; a wait is capped at [`POLL`] so that a holder that
//! died (and so never bumps) costs at most one poll interval.
//!
//! OFD locks conflict between different open file descriptions even inside
//! one process, but not between threads sharing one; the `Mutex` covers that.

use std::{
    fs::File,
    io,
    os::fd::AsRawFd,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use crate::{
    futex,
    sync::{AtomicU32, Ordering},
};

/// Longest single futex sleep while the lock is held by someone else.
const POLL: Duration = Duration::from_millis(5);

/// Byte of the segment file that the directory lock covers.
pub(crate) const DIR_LOCK_BYTE: i64 = 0;

/// Applies (`F_WRLCK`) or releases (`F_UNLCK`) an OFD lock on one byte,
/// without blocking. `Ok(false)` means someone else holds it.
pub(crate) fn ofd_lock(file: &File, byte: i64, kind: libc::c_short) -> io::Result<bool> {
    // SAFETY: `flock` is a plain C struct for which all-zero bytes are a valid
    // value ("l_pid ... must be set to zero" for OFD locks, fcntl(2)).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte;
    fl.l_len = 1;
    // SAFETY: `fd` is open for the lifetime of `file`; F_OFD_SETLK reads the
    // `flock` we pass by pointer and does not keep it (fcntl(2)).
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(err),
    }
}

/// Held directory lock; released on drop.
pub(crate) struct DirLockGuard<'a> {
    file: &'a File,
    seq: &'a AtomicU32,
    waiters: &'a AtomicU32,
    _local: MutexGuard<'a, ()>,
}

/// Why the lock was not taken.
#[derive(Debug)]
pub(crate) enum DirLockError {
    TimedOut,
    Io(io::Error),
}

/// Takes the directory lock, waiting until `deadline`.
pub(crate) fn lock_dir<'a>(
    local: &'a Mutex<()>,
    file: &'a File,
    seq: &'a AtomicU32,
    waiters: &'a AtomicU32,
    deadline: Instant,
) -> Result<DirLockGuard<'a>, DirLockError> {
    // A panic while holding the local mutex leaves nothing inconsistent (the
    // shared state is protected by the entry states), so poison is ignored.
    let local_guard = local.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let observed = seq.load(Ordering::Acquire);
        if ofd_lock(file, DIR_LOCK_BYTE, libc::F_WRLCK as libc::c_short)
            .map_err(DirLockError::Io)?
        {
            return Ok(DirLockGuard {
                file,
                seq,
                waiters,
                _local: local_guard,
            });
        }
        if Instant::now() >= deadline {
            return Err(DirLockError::TimedOut);
        }
        waiters.fetch_add(1, Ordering::SeqCst);
        let cap = Instant::now() + POLL;
        futex::wait_until(seq, observed, Some(cap.min(deadline)));
        waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for DirLockGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = ofd_lock(self.file, DIR_LOCK_BYTE, libc::F_UNLCK as libc::c_short) {
            // Cannot happen for a descriptor we hold open; if it did, the
            // lock is released anyway when the descriptor closes.
            tracing::error!(error = %e, "releasing the segment directory lock failed");
        }
        // SYNC POINT: pairs with the Acquire load of `seq` in `lock_dir`.
        self.seq.fetch_add(1, Ordering::Release);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            futex::wake_all(self.seq);
        }
    }
}
