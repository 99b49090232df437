use shmidl::ShmMessage;

#[derive(ShmMessage)]
#[repr(u8)]
enum Mode {
    Idle = 0,
    Run = 1,
}

fn main() {}
