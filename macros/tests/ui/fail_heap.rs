use std::{rc::Rc, sync::Arc};

use shmidl::ShmMessage;

#[derive(ShmMessage)]
#[repr(C)]
struct Heap {
    boxed: Box<u64>,
    text: String,
    items: Vec<u8>,
    rc: Rc<u64>,
    arc: Arc<u64>,
    nested: [Option<std::boxed::Box<u8>>; 2],
}

fn main() {}
