//! Pools in one process: allocation, sharing, exhaustion, handles, geometry.

use std::{
    sync::atomic::{AtomicU32, AtomicUsize, Ordering},
    thread,
    time::Duration,
};

use shmidl::{ArrayPool, HandleError, LocalPool, ObjectError, Pool, PoolOpenError, Segment};

fn segment(tag: &str) -> Segment {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "t-pool-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    Segment::builder(&name)
        .size(4 << 20)
        .create_exclusive()
        .unwrap()
}

static DROPS: AtomicUsize = AtomicUsize::new(0);

/// Its destructor only touches a static, valid in any process.
#[derive(shmidl::ShmMessage)]
#[repr(C)]
#[shm(name = "test.Counted")]
struct Counted(u64);

impl Drop for Counted {
    fn drop(&mut self) {
        DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn the_last_clone_frees_the_slot_and_drops_once() {
    let seg = segment("last");
    let pool = Pool::<Counted>::builder(&seg, "p")
        .capacity(4)
        .open_or_create()
        .unwrap();
    let before = DROPS.load(Ordering::SeqCst);
    let a = pool.try_make(Counted(9)).unwrap().freeze();
    let clones: Vec<_> = (0..10).map(|_| a.clone()).collect();
    assert_eq!(pool.free_count(), 3);
    assert_eq!(
        a.shared_count(),
        1,
        "clones in one process share one reference"
    );
    drop(a);
    assert_eq!(clones[9].0, 9);
    drop(clones);
    assert_eq!(pool.free_count(), 4);
    assert_eq!(DROPS.load(Ordering::SeqCst) - before, 1);
}

#[test]
fn an_exhausted_pool_hands_the_value_back() {
    let seg = segment("exh");
    let pool = Pool::<u64>::builder(&seg, "p")
        .capacity(2)
        .open_or_create()
        .unwrap();
    let _a = pool.try_make(1).unwrap();
    let _b = pool.try_make(2).unwrap();
    let err = pool.try_make(3).unwrap_err();
    assert_eq!(err.into_inner(), 3);
    let err = pool.make_timeout(4, Duration::from_millis(20)).unwrap_err();
    assert_eq!(err.into_inner(), 4);
}

#[test]
fn a_waiting_loan_is_woken_when_a_slot_is_freed() {
    let seg = segment("wake");
    let pool = Pool::<u64>::builder(&seg, "p")
        .capacity(1)
        .open_or_create()
        .unwrap();
    let held = pool.try_make(1).unwrap();
    let waiter = {
        let pool = pool.clone();
        thread::spawn(move || pool.make_timeout(2, Duration::from_secs(20)).map(|s| *s))
    };
    thread::sleep(Duration::from_millis(20));
    drop(held);
    assert_eq!(waiter.join().unwrap().unwrap(), 2);
}

#[test]
fn handles_upgrade_only_while_the_object_lives() {
    let seg = segment("handle");
    let pool = Pool::<u64>::builder(&seg, "p")
        .capacity(2)
        .open_or_create()
        .unwrap();
    let a = pool.try_make(5).unwrap().freeze();
    let raw = a.raw();
    let b = pool.upgrade(raw).unwrap();
    assert_eq!(*b, 5);
    drop((a, b));
    assert!(matches!(pool.upgrade(raw), Err(HandleError::Stale { .. })));
    // The slot is reused with a new generation: the old handle stays dead.
    let c = pool.try_make(6).unwrap().freeze();
    let d = pool.try_make(7).unwrap().freeze();
    assert!(pool.upgrade(raw).is_err());
    assert!(matches!(
        pool.upgrade(shmidl::RawSample {
            slot: 99,
            generation: 1
        }),
        Err(HandleError::OutOfRange { .. })
    ));
    // into_raw keeps the object alive with no pointer left.
    let owned = c.into_raw();
    assert_eq!(pool.free_count(), 0);
    // SAFETY: `owned` came from `into_raw` and is redeemed once.
    let back = unsafe { pool.from_raw(owned) }.unwrap();
    assert_eq!(*back, 6);
    drop((back, d));
    assert_eq!(pool.free_count(), 2);
}

#[test]
fn a_mutable_sample_cannot_be_reached_through_a_handle() {
    let seg = segment("excl");
    let pool = Pool::<u64>::builder(&seg, "p")
        .capacity(1)
        .open_or_create()
        .unwrap();
    let first = pool.try_make(1).unwrap().freeze();
    let raw = first.raw();
    drop(first);
    // The slot is reused by a unique, mutable sample: generation + 1.
    let mut m = pool.try_make(2).unwrap();
    let guess = shmidl::RawSample {
        slot: raw.slot,
        generation: raw.generation + 1,
    };
    assert!(pool.upgrade(guess).is_err(), "would alias a SampleMut");
    *m = 3;
    let shared = m.freeze();
    assert_eq!(*pool.upgrade(guess).unwrap(), 3, "shareable once frozen");
    drop(shared);
    assert_eq!(pool.free_count(), 1);
}

#[test]
fn reopening_checks_type_and_geometry() {
    let seg = segment("geom");
    let pool = Pool::<u64>::builder(&seg, "p")
        .capacity(8)
        .open_or_create()
        .unwrap();
    let same = Pool::<u64>::builder(&seg, "p").open().unwrap();
    assert_eq!(same.capacity(), 8);
    let _s = same.try_make(1).unwrap();
    assert_eq!(pool.free_count(), 7, "both handles see one pool");
    assert!(matches!(
        Pool::<u64>::builder(&seg, "p").capacity(9).open_or_create(),
        Err(PoolOpenError::GeometryMismatch {
            found_capacity: 8,
            ..
        })
    ));
    assert!(matches!(
        Pool::<u32>::builder(&seg, "p").open(),
        Err(PoolOpenError::Object(ObjectError::TypeMismatch { .. }))
    ));
    assert!(matches!(
        ArrayPool::<u64>::builder(&seg, "p").open(),
        Err(PoolOpenError::Object(ObjectError::TypeMismatch { .. }))
    ));
    assert!(matches!(
        Pool::<u64>::builder(&seg, "q").capacity(0).open_or_create(),
        Err(PoolOpenError::InvalidGeometry(_))
    ));
}

#[test]
fn array_pool_slots_hold_n_elements() {
    let seg = segment("array");
    let pool = ArrayPool::<u16>::builder(&seg, "img")
        .capacity(3)
        .elements(1000)
        .open_or_create()
        .unwrap();
    let mut a = pool.try_loan_filled(7).unwrap();
    a[999] = 1;
    let a = a.freeze();
    assert_eq!(a.len(), 1000);
    assert_eq!((a[0], a[999]), (7, 1));
    let b = pool.loan_with(|i| i as u16).unwrap();
    assert_eq!(b[500], 500);
    let reopened = ArrayPool::<u16>::builder(&seg, "img").open().unwrap();
    assert_eq!(reopened.elements(), 1000);
    assert_eq!(reopened.upgrade(a.raw()).unwrap()[999], 1);
    drop((a, b));
    assert_eq!(pool.free_count(), 3);
}

/// `try_loan_copy` takes a slice of any length up to the slot's elements,
/// as `loan_copy` does, and refuses a longer one with an error (it used to
/// panic unless the length was exactly the slot's).
#[test]
fn copies_into_array_slots_take_any_length_up_to_the_slot() {
    let seg = segment("arraycopy");
    let pool = ArrayPool::<u8>::builder(&seg, "img")
        .capacity(2)
        .elements(16)
        .open_or_create()
        .unwrap();
    let short = pool.try_loan_copy(&[1, 2, 3]).unwrap().freeze();
    assert_eq!(&short[..], &[1, 2, 3]);
    let full = pool.loan_copy(&[9; 16]).unwrap().freeze();
    assert_eq!(full.len(), 16);
    let err = pool.try_loan_copy(&[0; 17]).unwrap_err();
    assert!(matches!(err, shmidl::LoanError::TooLong(_)), "{err}");
    drop((short, full));
    assert_eq!(pool.free_count(), 2);
}

#[test]
fn local_pool_behaves_like_a_shared_one() {
    let pool = LocalPool::<u64>::new(2).unwrap();
    let a = pool.try_make(1).unwrap().freeze();
    let b = a.clone();
    let t = thread::spawn(move || *b + 1);
    assert_eq!(t.join().unwrap(), 2);
    assert_eq!(pool.free_count(), 1);
    drop(a);
    assert_eq!(pool.free_count(), 2);
}

#[test]
fn a_sample_keeps_its_pool_and_segment_alive() {
    let seg = segment("alive");
    let name = seg.name().to_owned();
    let pool = Pool::<u64>::builder(&seg, "p").open_or_create().unwrap();
    let s = pool.try_make(3).unwrap().freeze();
    drop((pool, seg));
    assert_eq!(*s, 3, "the mapping is still there");
    assert!(
        Segment::open(&name).is_ok(),
        "the segment is still attached"
    );
    drop(s);
    assert!(Segment::open(&name).is_err(), "the last pointer removed it");
}

#[test]
fn slots_freed_into_one_participants_stash_serve_another() {
    // Two segment handles are two participants, each with its own stash.
    let a_seg = segment("stash");
    let b_seg = Segment::open(a_seg.name()).unwrap();
    let a = Pool::<u64>::builder(&a_seg, "p")
        .capacity(20)
        .open_or_create()
        .unwrap();
    let b = Pool::<u64>::builder(&b_seg, "p").open().unwrap();
    // Everything B had goes back to B's stash (14 slots) and the list.
    let all: Vec<_> = (0..20).map(|v| b.try_make(v).unwrap()).collect();
    drop(all);
    assert_eq!(a.free_count(), 20);
    // A has an empty stash: it takes B's stash and the list, all 20.
    let taken: Vec<_> = (0..20).map(|v| a.try_make(v).unwrap()).collect();
    assert!(
        a.try_make(99).is_err(),
        "exhausted only when nothing is left"
    );
    let mut slots: Vec<u32> = taken.iter().map(|s| s.slot()).collect();
    slots.sort_unstable();
    assert_eq!(
        slots,
        (0..20).collect::<Vec<_>>(),
        "each slot handed out once"
    );
    drop(taken);
    assert_eq!(b.free_count(), 20);
}
