use shmidl::ShmMessage;

// Any byte but 0 and 1 is undefined behaviour in a Rust `bool`.
#[derive(ShmMessage)]
#[repr(C)]
struct Flags {
    armed: bool,
    ready: std::sync::atomic::AtomicBool,
}

fn main() {}
