//! The child process of shmidl's end-to-end tests.
//!
//! `shmidl-test-child <scenario> <args…>`; answers on stdout as `key=value`
//! lines; exits non-zero with a message on stderr when something fails.

#![allow(clippy::print_stdout)]

use std::{
    process::ExitCode,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use shmidl::{ObjectError, Segment};
use shmidl_tests::wait_for;

const DEADLINE: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["race", control, target] => race(control, target),
        ["find-wrong-type", seg, obj] => find_wrong_type(seg, obj),
        ["read", seg, obj] => read(seg, obj),
        _ => Err(format!("unknown scenario {args:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shmidl-test-child: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Races `open_or_create` of segment `target` and `find_or_create` of the
/// object `obj` in it, released together by the `go` flag in `control`.
/// The init closure counts itself in `control`'s `inits`.
fn race(control: &str, target: &str) -> Result<(), String> {
    let ctl = Segment::open(control).map_err(|e| e.to_string())?;
    let ready = ctl.find::<AtomicU64>("ready").map_err(|e| e.to_string())?;
    let go = ctl.find::<AtomicU64>("go").map_err(|e| e.to_string())?;
    let done = ctl.find::<AtomicU64>("done").map_err(|e| e.to_string())?;
    let inits = ctl.find::<AtomicU64>("inits").map_err(|e| e.to_string())?;
    ready.fetch_add(1, Ordering::SeqCst);
    if !wait_for(DEADLINE, || go.load(Ordering::SeqCst) == 1) {
        return Err("no go signal".into());
    }
    let seg = Segment::builder(target)
        .size(1 << 20)
        .open_or_create()
        .map_err(|e| e.to_string())?;
    let me = u64::from(std::process::id());
    let obj = seg
        .find_or_create("obj", || {
            inits.fetch_add(1, Ordering::SeqCst);
            AtomicU64::new(me)
        })
        .map_err(|e| e.to_string())?;
    println!("segment_id={:x}", seg.id());
    println!("offset={}", obj.offset());
    println!("value={}", obj.load(Ordering::SeqCst));
    // Stay attached until every racer has answered, so the segment cannot
    // vanish and be re-created between two racers.
    done.fetch_add(1, Ordering::SeqCst);
    if !wait_for(DEADLINE, || go.load(Ordering::SeqCst) == 2) {
        return Err("no release signal".into());
    }
    Ok(())
}

/// Looks up an `AtomicU64` object as a `u32` and reports the error.
fn find_wrong_type(seg: &str, obj: &str) -> Result<(), String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    match seg.find::<u32>(obj) {
        Err(ObjectError::TypeMismatch {
            expected, found, ..
        }) => {
            println!("error=type_mismatch");
            println!("expected_size={}", expected.size);
            println!("found_size={}", found.size);
            Ok(())
        }
        Err(e) => Err(format!("unexpected error {e}")),
        Ok(_) => Err("a u32 view of an AtomicU64 object was allowed".into()),
    }
}

/// Reads an `AtomicU64` object and adds one to it.
fn read(seg: &str, obj: &str) -> Result<(), String> {
    let seg = Segment::open(seg).map_err(|e| e.to_string())?;
    let v = seg.find::<AtomicU64>(obj).map_err(|e| e.to_string())?;
    println!("value={}", v.fetch_add(1, Ordering::SeqCst));
    Ok(())
}
