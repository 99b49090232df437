//! What the derive accepts: nested derived structs, arrays, atomics, explicit
//! padding, tuple structs, keyword fields, `#[shm(name)]`, `#[shm(crate)]`.

use std::sync::atomic::{AtomicBool, AtomicU64};

use shmidl::{ShmMessage, ShmSafe};

#[derive(ShmMessage)]
#[repr(C)]
#[shm(name = "robot.v1.Vec3")]
pub struct Vec3 {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

#[derive(ShmMessage)]
#[repr(C, align(16))]
struct Frame {
    poses: [Vec3; 4],
    grid: [[u16; 3]; 2],
    #[shm(padding)]
    __pad0: [u8; 4],
    seq: AtomicU64,
    ready: AtomicBool,
    r#type: u8,
    #[shm(padding)]
    __pad1: [u8; 6],
}

#[derive(ShmMessage)]
#[repr(C)]
struct Pair(u32, i32);

mod reexport {
    pub use shmidl as runtime;
}

#[derive(ShmMessage)]
#[repr(C)]
#[shm(crate = "crate::reexport::runtime", name = "other.Wrapped")]
struct Wrapped {
    inner: Pair,
    flag: bool,
    #[shm(padding)]
    __pad0: [u8; 3],
}

fn assert_shm_safe<T: ShmSafe>() -> u64 {
    T::FINGERPRINT
}

fn main() {
    assert_eq!(assert_shm_safe::<Vec3>(), 0x02b4_5cb4_3104_7436);
    assert_eq!(std::mem::size_of::<Frame>(), 96 + 12 + 4 + 8 + 1 + 1 + 6);
    let fingerprints = [
        assert_shm_safe::<Frame>(),
        assert_shm_safe::<Pair>(),
        assert_shm_safe::<Wrapped>(),
    ];
    assert!(!fingerprints.contains(&Vec3::FINGERPRINT));
}
