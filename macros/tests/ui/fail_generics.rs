use shmidl::ShmMessage;

#[derive(ShmMessage)]
#[repr(C)]
struct Generic<T> {
    value: T,
}

#[derive(ShmMessage)]
#[repr(C)]
struct Capacity<const N: usize> {
    values: [u32; N],
}

fn main() {}
