use shmidl::ShmMessage;

#[derive(ShmMessage)]
#[repr(C)]
union Bits {
    a: u32,
    b: f32,
}

fn main() {}
