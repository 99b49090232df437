use shmidl::ShmMessage;

#[repr(C)]
struct NotDerived {
    a: u64,
}

#[derive(ShmMessage)]
#[repr(C)]
struct Outer {
    inner: NotDerived,
    maybe: [Option<u32>; 2],
}

fn main() {}
