use shmidl::ShmMessage;

// 1 byte, 3 bytes of implicit padding, 4 bytes.
#[derive(ShmMessage)]
#[repr(C)]
struct Padded {
    flag: u8,
    value: u32,
}

// align(8) adds 4 bytes at the end.
#[derive(ShmMessage)]
#[repr(C, align(8))]
struct TailPadded {
    value: u32,
}

fn main() {}
