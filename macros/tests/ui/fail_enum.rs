use shmidl::{ShmMessage, ShmSafe};

// No integer repr.
#[derive(ShmMessage, Clone, Copy)]
enum NoRepr {
    A,
}

// `C` and `usize` depend on the target.
#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
enum CRepr {
    A,
}

#[derive(ShmMessage, Clone, Copy)]
#[repr(usize)]
enum SizeRepr {
    A,
}

// Data-carrying variants.
#[derive(ShmMessage, Clone, Copy)]
#[repr(u8)]
enum WithData {
    A(u8),
}

#[derive(ShmMessage, Clone, Copy)]
#[repr(u8)]
enum Mode {
    A,
}

// A Rust enum itself is not `ShmSafe`: the field is `shmidl::Enum<Mode>`.
#[derive(ShmMessage)]
#[repr(C)]
struct UsesEnum {
    mode: Mode,
}

fn main() {
    let _ = <UsesEnum as ShmSafe>::FINGERPRINT;
}
