use shmidl::ShmMessage;

#[derive(ShmMessage)]
#[repr(C)]
struct Pointers {
    shared: &'static u64,
    unique: &'static mut u64,
    raw: *const u8,
    raw_mut: *mut u8,
    callback: fn(u32) -> u32,
}

fn main() {}
