use shmidl::ShmMessage;

#[derive(ShmMessage)]
#[repr(C)]
struct Tuple {
    pair: (u32, u32),
}

#[derive(ShmMessage)]
#[repr(C)]
struct Slice {
    len: u32,
    items: [u32],
}

#[derive(ShmMessage)]
#[repr(C)]
struct TraitObject {
    len: u32,
    object: dyn Send,
}

fn main() {}
