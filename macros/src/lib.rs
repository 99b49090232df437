//! # shmidl-macros
//!
//! `#[derive(ShmMessage)]`: makes a `#[repr(C)]` struct usable in
//! [shmidl](https://github.com/shmidl/shmidl) shared memory and on the wire
//! by implementing `shmidl::ShmSafe` and `shmidl::ShmMessage` for it, with
//! the type fingerprint that lets processes (and `.shmidl` schemas) agree on
//! the type. Use it through the runtime's
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
//! The full rules and every `#[shm(...)]` attribute are documented on
//! [`ShmMessage`](derive@ShmMessage) (and on `shmidl::ShmMessage`, which
//! re-exports it).

/// Makes a `#[repr(C)]` struct usable in shared memory and on the wire, or
/// a fieldless enum usable as a message field.
///
/// # On a struct
///
/// Implements `shmidl::ShmSafe` (the type fingerprint, the static layout
/// description `LAYOUT`) and `shmidl::ShmMessage` (the qualified name and
/// the wire codec) after checking at compile time that the struct can live
/// in shared memory:
///
/// - it is `#[repr(C)]`, optionally with `align(N)`, never `packed` or
///   `transparent`, and has no generic parameters or lifetimes;
/// - it has at least one field that is not padding;
/// - every field type implements `shmidl::ShmSafe`: integers, `f32`, `f64`,
///   atomic integers, arrays, `shmidl::Bool`, `shmidl::Enum<E>`,
///   `shmidl::FixedSizeString<N>`, `shmidl::FixedSizeBytes<N>`,
///   `shmidl::FixedSizeVec<T, N>` and other structs that derive
///   `ShmMessage`. A refused type gets an error on the field that says why
///   and what to use instead: references and pointers (addresses differ
///   between processes), `Box`/`String`/`Vec`/`Rc`/`Arc` (one process's
///   heap), `usize`/`isize` (size depends on the target), `char` and `bool`
///   (another process may write a byte that is not a valid value:
///   use `u32` and `shmidl::Bool`), a Rust enum (use `shmidl::Enum<E>`),
///   slices, tuples and trait objects;
/// - it has no implicit padding: each field must start where the previous
///   one ends, and the last one end at the struct's size. Otherwise the
///   error, on the field after which the padding falls, gives the offsets,
///   the number of bytes and the field to add, e.g. ``add `#[shm(padding)]
///   __pad0: [u8; 3]` right after `flag` ``. (Code generated from a schema
///   adds these fields itself.)
///
/// # On an enum
///
/// A fieldless enum with an integer repr (`#[repr(u8)]` … `#[repr(i64)]`)
/// gets `shmidl::ShmEnum`: the schema's enum fingerprint (its name, repr,
/// and each variant's name and value), its layout, and the checked
/// conversion from the stored integer. Use it in messages as
/// `shmidl::Enum<MyEnum>`, which reads back with `.get()` and returns an
/// error, not undefined behaviour, for a value no variant declares. The
/// enum must be `Copy`.
///
/// # Attributes
///
/// On the struct or enum:
///
/// - `#[shm(name = "robot.v1.Pose")]`: the schema's qualified name, hashed
///   into the fingerprint and returned by `ShmMessage::TYPE_NAME`. Default:
///   the Rust identifier (without `r#`). Give the schema's name so that a
///   derived type and the schema type have the same fingerprint and can
///   exchange messages.
/// - `#[shm(crate = "path::to::shmidl")]`: where the runtime crate is, when
///   it is not reachable as `::shmidl` (a renamed dependency, a re-export).
/// - `#[shm(default)]` (structs only): implements `Default` as the all-zero
///   value, with each enum field at its first variant when 0 is not a
///   declared value. `#[derive(Default)]` cannot do this for arrays longer
///   than 32 elements; this can, for any size.
///
/// On a field:
///
/// - `#[shm(padding)]`: an explicit padding field. It must be `[u8; N]`; it
///   counts for the layout, not for the fingerprint, and must be zero on
///   the wire. Name such fields `__pad0`, `__pad1`, … as generated code
///   does.
/// - `#[shm(name = "self")]`: the field's name in the fingerprint and the
///   layout description, when the Rust identifier cannot be the schema's
///   (a schema field `self` is the Rust field `self_`). Default: the
///   identifier without `r#` (`r#type` is `type`), or the position of a
///   tuple field.
///
/// Every problem is reported at once, each at its cause; the derive never
/// panics.
///
/// ```
/// use shmidl::{Bool, Enum, FixedSizeString, ShmMessage, ShmSafe};
///
/// #[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
/// #[repr(u8)]
/// #[shm(name = "robot.v1.Mode")]
/// enum Mode { Idle = 0, Run = 1, Fault = 2 }
///
/// #[derive(ShmMessage, Debug)]
/// #[repr(C)]
/// #[shm(name = "robot.v1.Status", default)]
/// struct Status {
///     stamp_ns: u64,
///     mode: Enum<Mode>,
///     armed: Bool,
///     name: FixedSizeString<32>,
///     #[shm(padding)]
///     __pad0: [u8; 2],
/// }
///
/// let mut status = Status::default();
/// status.mode.set(Mode::Run);
/// assert_eq!(std::mem::size_of::<Status>(), 48);
/// assert_eq!(<Status as ShmMessage>::TYPE_NAME, "robot.v1.Status");
/// let bytes = status.encode_to_vec()?;
/// assert_eq!(Status::decode(&bytes)?.mode.get(), Ok(Mode::Run));
/// # Ok::<(), shmidl::wire::WireError>(())
/// ```
#[proc_macro_derive(ShmMessage, attributes(shm))]
pub fn derive_shm_message(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    shmidl_codegen::derive::expand(input).into()
}

/// Includes the Rust code that `shmidl_codegen::compile` generated in
/// `build.rs` for the given schema packages, inside modules that mirror the
/// package paths.
///
/// ```text
/// // src/lib.rs, with build.rs compiling schema/robot.shmidl (package robot.v1)
/// shmidl::include_schema!("robot.v1");
/// // now: robot::v1::JointState, robot::v1::topics::robot_joint_states, ...
/// ```
///
/// Several packages in one call share their common module prefixes
/// (`include_schema!("robot.v1", "robot.common")` makes one `pub mod robot`
/// holding `v1` and `common`), so references between them resolve. `"_"`
/// includes the root package (files without `package`) in place. The files
/// are `$OUT_DIR/<package>.rs`, so Cargo rebuilds when they change.
#[proc_macro]
pub fn include_schema(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    shmidl_codegen::include::expand(input.into()).into()
}
