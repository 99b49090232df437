use shmidl::ShmMessage;

#[derive(ShmMessage)]
#[repr(C)]
#[shm(nmae = "robot.v1.Vec3")]
struct UnknownKey {
    a: u64,
}

#[derive(ShmMessage)]
#[repr(C)]
#[shm(name = "robot/v1/Vec3")]
struct BadName {
    a: u64,
}

#[derive(ShmMessage)]
#[repr(C)]
struct BadPadding {
    a: u16,
    #[shm(padding)]
    pad: [u16; 1],
    #[shm(crate = "b")]
    b: u32,
}

#[derive(ShmMessage)]
#[repr(C)]
struct Empty {}

fn main() {}
