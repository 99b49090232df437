//! # shmidl-macros
//!
//! `#[derive(ShmMessage)]`: makes a `#[repr(C)]` struct usable in
//! [shmidl](https://github.com/shmidl/shmidl) shared memory by implementing
//! `shmidl::ShmSafe` for it, with the type fingerprint that lets processes
//! (and `.shmidl` schemas) agree on the type. Use it through the runtime's
//! re-export, `shmidl::ShmMessage`; this crate is a few lines around
//! `shmidl_codegen::derive::expand`, where the rules are documented in full.
//!
//! ```
//! use shmidl::{LocalPool, ShmMessage, ShmSafe};
//!
//! /// Matches `struct Vec3 { x: f64, y: f64, z: f64 }` in `package robot.v1;`.
//! #[derive(ShmMessage, Debug, PartialEq)]
//! #[repr(C)]
//! #[shm(name = "robot.v1.Vec3")]
//! struct Vec3 {
//!     x: f64,
//!     y: f64,
//!     z: f64,
//! }
//!
//! #[derive(ShmMessage)]
//! #[repr(C)]
//! struct Pose {
//!     position: Vec3,
//!     stamp_ns: u64,
//!     flags: [u8; 4],
//!     #[shm(padding)]
//!     __pad0: [u8; 4],
//! }
//!
//! // The same fingerprint as the schema compiler computes for robot.v1.Vec3.
//! assert_eq!(Vec3::FINGERPRINT, 0x02b4_5cb4_3104_7436);
//!
//! let pool = LocalPool::<Pose>::new(4)?;
//! let pose = Pose {
//!     position: Vec3 { x: 1.0, y: 2.0, z: 3.0 },
//!     stamp_ns: 7,
//!     flags: [0; 4],
//!     __pad0: [0; 4],
//! };
//! let sample = pool.try_make(pose).map_err(|_| "pool exhausted")?;
//! assert_eq!(sample.position, Vec3 { x: 1.0, y: 2.0, z: 3.0 });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Rules
//!
//! The struct must be `#[repr(C)]` (optionally `align(N)`), without generic
//! parameters, with at least one field, and without implicit padding (add
//! `#[shm(padding)] name: [u8; N]` fields instead). Every field type must
//! implement `ShmSafe`: primitives other than `usize`, `isize` and `char`,
//! atomics, arrays, and structs that derive `ShmMessage`. References,
//! pointers, `Box`, `String`, `Vec`, `Rc`, `Arc`, trait objects, slices and
//! tuples are refused with an error on the field. Enums and unions are
//! refused for now (enums arrive with the schema code generator).
//!
//! Attributes: `#[shm(name = "pkg.Type")]` (the qualified name hashed into
//! the fingerprint; default: the struct's identifier) and
//! `#[shm(crate = "path")]` (the runtime's path; default `::shmidl`).

/// Implements `shmidl::ShmSafe` for a `#[repr(C)]` struct after checking that
/// it can live in shared memory; see the [crate docs](crate).
#[proc_macro_derive(ShmMessage, attributes(shm))]
pub fn derive_shm_message(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    shmidl_codegen::derive::expand(input).into()
}
