use shmidl::ShmMessage;

#[derive(ShmMessage)]
struct NoRepr {
    a: u64,
}

#[derive(ShmMessage)]
#[repr(C, packed)]
struct Packed {
    a: u8,
    b: u64,
}

#[derive(ShmMessage)]
#[repr(transparent)]
struct Transparent {
    a: u64,
}

fn main() {}
