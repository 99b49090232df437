//! What the derive accepts: nested derived structs, arrays, atomics, explicit
//! padding, tuple structs, keyword fields, `#[shm(name)]`, `#[shm(crate)]`,
//! `#[shm(default)]`, enums, `Bool`, bounded strings, bytes and sequences.

use std::sync::atomic::{AtomicU64, AtomicU8};

use shmidl::{
    Bool, Enum, FixedSizeBytes, FixedSizeString, FixedSizeVec, ShmEnum, ShmMessage, ShmSafe,
};

#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
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
    ready: AtomicU8,
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
    flag: shmidl::Bool,
    #[shm(padding)]
    __pad0: [u8; 3],
}

/// Matches `enum Mode: u8 { Idle = 0, Run = 1, Fault = 2 }` in `robot.v1`.
#[derive(ShmMessage, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
#[shm(name = "robot.v1.Mode")]
enum Mode {
    #[default]
    Idle,
    Run,
    Fault,
}

#[derive(ShmMessage, Clone, Copy, Debug)]
#[repr(i64)]
enum Signed {
    Low = -5,
    High = i64::MAX,
}

#[derive(ShmMessage, Debug, PartialEq)]
#[repr(C)]
#[shm(name = "robot.v1.Status", default)]
struct Status {
    mode: Enum<Mode>,
    armed: Bool,
    name: FixedSizeString<30>,
    blob: FixedSizeBytes<3>,
    #[shm(padding)]
    __pad0: [u8; 5],
    signed: Enum<Signed>,
    samples: FixedSizeVec<Vec3, 2>,
    big: [u8; 2000],
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

    assert_eq!(<Mode as ShmEnum>::FINGERPRINT, 0xc5ae_4fc3_7fbd_3973);
    assert_eq!(Enum::<Mode>::FINGERPRINT, 0xc5ae_4fc3_7fbd_3973);
    assert_eq!(Mode::from_repr(2), Some(Mode::Fault));
    assert_eq!(Mode::from_repr(3), None);
    assert_eq!(Signed::from_repr(i64::MAX).map(|s| s as i64), Some(i64::MAX));

    // 1 + 1 + 34 + 7 bytes, 5 of padding to align `signed`, then 8 + 56 + 2000.
    assert_eq!(std::mem::size_of::<Status>(), 48 + 8 + 56 + 2000);
    let mut status = Status::default();
    assert_eq!(status.mode.get(), Ok(Mode::Idle));
    status.name = "arm".try_into().unwrap();
    assert_eq!(<Status as ShmMessage>::TYPE_NAME, "robot.v1.Status");
    let bytes = status.encode_to_vec().unwrap();
    assert_eq!(Status::decode(&bytes).unwrap(), status);
}
