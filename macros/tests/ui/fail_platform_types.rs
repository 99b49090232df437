use shmidl::ShmMessage;

#[derive(ShmMessage)]
#[repr(C)]
struct PlatformSized {
    len: usize,
    offset: isize,
    letter: char,
    lens: [usize; 4],
}

fn main() {}
