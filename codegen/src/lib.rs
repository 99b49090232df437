//! # shmidl-codegen
//!
//! Code generation for [shmidl](https://github.com/shmidl/shmidl): turns Rust
//! structs (and, in a later release, `.shmidl` schemas) into the items that
//! make a type usable in shared memory.
//!
//! Today this crate holds the expansion of `#[derive(ShmMessage)]`,
//! [`derive::expand`]. The `shmidl-macros` proc-macro crate is a few lines
//! around it, and tests call it directly. Users don't depend on this crate
//! for the derive: they write `#[derive(shmidl::ShmMessage)]`.
//!
//! ```
//! let input: syn::DeriveInput = syn::parse_quote! {
//!     #[repr(C)]
//!     #[shm(name = "robot.v1.Vec3")]
//!     struct Vec3 { x: f64, y: f64, z: f64 }
//! };
//! let tokens = shmidl_codegen::derive::expand(input);
//! // An `unsafe impl ::shmidl::ShmSafe for Vec3` with the schema fingerprint
//! // of `robot.v1.Vec3` and its layout, an `impl ShmMessage`, plus
//! // compile-time checks that it has no padding.
//! assert!(tokens.to_string().contains("FINGERPRINT"));
//! ```
//!
//! ## The derive's rules
//!
//! `#[derive(ShmMessage)]` accepts a struct (named fields, tuple fields) that
//!
//! - is `#[repr(C)]`, optionally with `align(N)` (not `packed`, not
//!   `transparent`), and has no generic parameters or lifetimes;
//! - has at least one field, and only field types that implement
//!   `shmidl::ShmSafe`: integers, floats, atomic integers, arrays, `Bool`,
//!   `Enum<E>`, the bounded `FixedSize*` types, and other structs that
//!   derive `ShmMessage`. References, raw and function pointers, `Box`,
//!   `String`, `Vec`, `Rc`, `Arc`, `bool`, `char`, `usize`, trait objects,
//!   slices and tuples get an error that says why, on the field type;
//! - has no implicit padding: each field starts where the previous one ends
//!   (checked at compile time, field by field, with an error on the field
//!   after which the padding falls). Make padding explicit with
//!   `#[shm(padding)] __pad0: [u8; N]` fields; they count for the layout and
//!   not for the fingerprint, as in the schema language.
//!
//! It also accepts a fieldless enum with an integer repr (`#[repr(u8)]` …
//! `#[repr(i64)]`), for which it implements `shmidl::ShmEnum`.
//!
//! Attributes: `#[shm(name = "pkg.path.Type")]` sets the qualified name that
//! the fingerprint hashes (default: the struct's identifier), so a derived
//! struct can match a schema type; `#[shm(crate = "path")]` names the runtime
//! when it is not reachable as `::shmidl`; `#[shm(default)]` implements
//! `Default` as the all-zero value. The user-facing documentation of each
//! is on `shmidl::ShmMessage`.
//!
//! The fingerprint is computed at compile time by `shmidl::fingerprint` with
//! the algorithm of `docs/schema-language.md` §6: the struct's name, then each
//! non-padding field's name (a raw identifier `r#type` as `type`; tuple fields
//! as `0`, `1`, ...) and its type's own fingerprint. A derived struct and a
//! schema struct with the same name, field names and field types have the
//! same fingerprint.
//!
//! The derive cannot see a `Drop` impl. One is allowed, but it runs in
//! whichever process releases a pool slot's last reference, so it must not
//! rely on state of the process that made the value (`shmidl::ShmSafe`'s
//! `# Safety` section).
//!
//! Every problem is reported, each at its cause; the expansion never panics.
//!
//! ## Module boundary
//!
//! [`derive`](mod@derive) works on `syn` items only and never sees a schema. The schema →
//! Rust generator (a `build.rs` API over `shmidl-idl`) will be a separate
//! module behind a `schema` feature, emitting plain `#[repr(C)]` structs with
//! `#[derive(ShmMessage)]`, so that [`derive::expand`] stays the one place that
//! writes `ShmSafe` impls.

pub mod derive;
#[cfg(feature = "schema")]
mod schema;

#[cfg(feature = "schema")]
pub use schema::{compile, Config, Error, GeneratedFile};
