//! What the `shmidl` command is built from and other tools can reuse.
//!
//! - [`dyn_schema`]: a schema's message types at run time, as the
//!   [`DynType`](shmidl::DynType)s that `shmidl bridge` opens topics with.

pub mod dyn_schema;
