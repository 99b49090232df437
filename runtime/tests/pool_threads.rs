//! Many threads of one process loaning and dropping from one pool at once:
//! they share the process's participant row and so its stash, which takes
//! one owner at a time. No slot is ever handed to two threads at once, and
//! every slot is free at the end.

use std::sync::{Arc, Barrier};

use shmidl::{Pool, Segment};

#[test]
fn threads_of_one_process_never_get_the_same_slot() {
    let name = format!("pool-threads-{}", std::process::id());
    let segment = Segment::builder(&name)
        .size(1 << 20)
        .open_or_create()
        .unwrap();
    let pool = Pool::<[u64; 4]>::builder(&segment, "p")
        .capacity(64)
        .open_or_create()
        .unwrap();
    let threads = 4;
    let barrier = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads as u64)
        .map(|t| {
            let pool = pool.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let mut held = Vec::new();
                for i in 0..20_000u64 {
                    let mut s = pool.loan_zeroed().expect("a free slot");
                    s[0] = t;
                    s[1] = i;
                    held.push(s);
                    if held.len() == 3 || i % 7 == 0 {
                        for s in held.drain(..) {
                            // Nobody else wrote into our slot meanwhile.
                            assert_eq!(s[0], t, "a slot handed out twice");
                            let shared = s.freeze();
                            let again = shared.clone();
                            drop(shared);
                            drop(again);
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(pool.free_count(), 64);
}
