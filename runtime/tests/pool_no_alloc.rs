//! Creating, cloning, handing over and dropping pool pointers allocates
//! nothing on the heap: control blocks live in the pool's memory.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    sync::atomic::{AtomicU32, Ordering},
};

use shmidl::{LocalPool, Pool, Segment};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to `System`, only counting allocations made
// by the current thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

#[test]
fn pointer_operations_do_not_allocate() {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "t-noalloc-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let seg = Segment::builder(&name)
        .size(1 << 20)
        .create_exclusive()
        .unwrap();
    let pool = Pool::<[u64; 8]>::builder(&seg, "p")
        .capacity(8)
        .open_or_create()
        .unwrap();
    let local = LocalPool::<[u64; 8]>::new(8).unwrap();
    let n = allocations_in(|| {
        for i in 0..1000u64 {
            let mut m = pool.try_make([i; 8]).ok().unwrap();
            m[1] = 1;
            let a = m.freeze();
            let b = a.clone();
            let raw = b.into_raw();
            // SAFETY: `raw` came from `into_raw` and is redeemed once.
            let c = unsafe { pool.from_raw(raw) }.unwrap();
            let d = pool.upgrade(c.raw()).unwrap();
            drop((a, c, d));
            let l = local.try_make([i; 8]).ok().unwrap().freeze();
            let l2 = l.clone();
            drop((l, l2));
        }
    });
    assert_eq!(n, 0, "pool pointer operations allocated {n} times");
    assert_eq!(pool.free_count(), 8);
}
