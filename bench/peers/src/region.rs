//! One page of `/dev/shm` mapped by both processes: the memory of the `cacheline` and
//! `futex` baselines.
//!
//! The leader creates the file (`O_CREAT | O_EXCL`, mode 0600, zero-filled by `ftruncate`),
//! the follower opens and maps it and then raises `ready`; the leader unlinks the name as soon
//! as `ready` is seen, so nothing is left in `/dev/shm` even if a process dies later. If the
//! follower never comes, the leader's `Drop` unlinks the name.

use std::{ptr::NonNull, sync::atomic::AtomicU32, sync::atomic::AtomicU64};

use rustix::{
    fd::OwnedFd,
    fs::{fstat, ftruncate, Mode},
    mm::{mmap, munmap, MapFlags, ProtFlags},
    shm,
};

use crate::peer::{Context, Result};

/// Size of the file and of the mapping: one page.
const SIZE: usize = 4096;

/// The busy-poll ping-pong words: both in one cache line.
#[repr(C, align(64))]
pub struct Line {
    /// Written by the leader: the number of the last ping.
    pub ping: AtomicU64,
    /// Written by the follower: the number of the last pong.
    pub pong: AtomicU64,
}

/// The futex ping-pong words (32 bits: the futex word size).
#[repr(C, align(64))]
pub struct Words {
    /// Written by the leader, waited on by the follower.
    pub ping: AtomicU32,
    /// Written by the follower, waited on by the leader.
    pub pong: AtomicU32,
}

/// Start-up handshake, on its own cache line.
#[repr(C, align(64))]
pub struct Control {
    /// Set to 1 by the follower once it has mapped the region.
    pub ready: AtomicU32,
}

/// What the shared page holds. Every field is an atomic whose all-zero bit pattern is a valid
/// value, so a zero-filled page is a valid `Layout`.
#[repr(C)]
pub struct Layout {
    pub line: Line,
    pub words: Words,
    pub control: Control,
}

const _: () = assert!(size_of::<Layout>() <= SIZE);

/// A mapping of the shared page, unmapped on drop.
pub struct Region {
    // INVARIANTS: `ptr` is the start of a live `MAP_SHARED` mapping of `SIZE` bytes of a
    // file at least `SIZE` bytes long, readable and writable, page-aligned; it stays mapped
    // until `Drop` runs. The page holds a valid `Layout` (zero-filled or written through
    // atomics only).
    ptr: NonNull<Layout>,
    /// The `/dev/shm` name while this process still has to unlink it (leader only).
    to_unlink: Option<String>,
}

impl Region {
    /// Creates and maps a fresh page named `name` (leader side).
    pub fn create(name: &str) -> Result<Self> {
        let shm_name = format!("/{name}");
        let fd = shm::open(
            &shm_name,
            shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR,
            Mode::from_raw_mode(0o600),
        )
        .context(format!("creating /dev/shm{shm_name}"))?;
        let mapped = ftruncate(&fd, SIZE as u64)
            .context("sizing the shared page")
            .and_then(|()| map(&fd));
        match mapped {
            Ok(ptr) => Ok(Self {
                ptr,
                to_unlink: Some(shm_name),
            }),
            Err(e) => {
                // A failed start must not leave the name behind.
                let _ = shm::unlink(&shm_name);
                Err(e)
            }
        }
    }

    /// Opens and maps the page the leader created (follower side).
    pub fn open(name: &str) -> Result<Self> {
        let shm_name = format!("/{name}");
        let fd = shm::open(&shm_name, shm::OFlags::RDWR, Mode::empty())
            .context(format!("opening /dev/shm{shm_name}"))?;
        let len = fstat(&fd).context("fstat on the shared page")?.st_size;
        if len < SIZE as i64 {
            return Err(format!("/dev/shm{shm_name} has {len} bytes, expected {SIZE}").into());
        }
        Ok(Self {
            ptr: map(&fd)?,
            to_unlink: None,
        })
    }

    /// Removes the name from `/dev/shm`; both mappings stay valid.
    pub fn unlink(&mut self) -> Result<()> {
        if let Some(name) = self.to_unlink.take() {
            shm::unlink(&name).context(format!("unlinking /dev/shm{name}"))?;
        }
        Ok(())
    }

    pub fn get(&self) -> &Layout {
        // SAFETY: by the INVARIANTS on `ptr`, it points to a live, aligned mapping of at
        // least `size_of::<Layout>()` bytes (checked at compile time above) that holds a
        // valid `Layout`, and it stays mapped for as long as `self` lives, which bounds the
        // returned borrow. Sharing is sound: `Layout` has only atomics, which the std docs
        // for `AtomicU32`/`AtomicU64` say "ha[ve] the same size and bit validity as the
        // underlying integer type", so another process writing the same bytes through its
        // own atomics is an atomic access, never a data race.
        unsafe { self.ptr.as_ref() }
    }
}

fn map(fd: &OwnedFd) -> Result<NonNull<Layout>> {
    // SAFETY: a fresh mapping (null hint, no MAP_FIXED) cannot alias any Rust object; `fd` is
    // a shared-memory file of at least SIZE bytes (sized by `create`, checked by `open`), so
    // no access within the mapping can fault with SIGBUS.
    let ptr = unsafe {
        mmap(
            std::ptr::null_mut(),
            SIZE,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
            fd,
            0,
        )
    }
    .context("mapping the shared page")?;
    NonNull::new(ptr.cast::<Layout>()).ok_or_else(|| "mmap returned null".into())
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `ptr` and SIZE describe exactly the mapping made in `map` (INVARIANTS);
        // it is unmapped once, here, and no borrow from `get` outlives `self`.
        let _ = unsafe { munmap(self.ptr.as_ptr().cast(), SIZE) };
        let _ = self.unlink();
    }
}
