//! # shmidl-codegen
//!
//! Code generation for [shmidl](https://github.com/shmidl/shmidl): `.shmidl`
//! schemas → Rust source (for `build.rs` and `shmidl gen`, feature
//! `schema`), and the expansion behind `#[derive(ShmMessage)]`
//! ([`derive::expand`]).
//!
//! ## From a schema, in `build.rs`
//!
//! ```toml
//! [dependencies]
//! shmidl = "0.1"
//! [build-dependencies]
//! shmidl-codegen = { version = "0.1", features = ["schema"] }
//! ```
//!
//! ```no_run
//! # #[cfg(feature = "schema")]
//! // build.rs
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     shmidl_codegen::compile(&["schema/robot.shmidl"], &["schema"])?;
//!     Ok(())
//! }
//! # #[cfg(not(feature = "schema"))] fn main() {}
//! ```
//!
//! ```text
//! // src/lib.rs: the package `robot.v1` becomes the module `robot::v1`.
//! shmidl::include_schema!("robot.v1");
//! ```
//!
//! `compile` loads the schemas and their imports (next to each file, then in
//! the include directories), checks them (a schema error fails the build with
//! `path:line:col: error: …`, the source line and a caret, as `shmidl check`
//! prints it), and writes one file per package to `$OUT_DIR`:
//! `<package>.rs`, or `_.rs` for files without `package`. Each file starts
//! with an `@generated` header, is formatted with prettyplease, and is
//! written only when its content changed; `cargo:rerun-if-changed` is printed
//! for every schema and import, and each schema warning as a
//! `cargo:warning=` line (`path:line:col: message`).
//!
//! `Config` (a `&mut Self` builder) sets the options: `out_dir`,
//! `type_attribute(path, "#[...]")` and `derive(path, "serde::Serialize")`
//! for the types under a path (`"."` all, `"robot.v1"` a package,
//! `"robot.v1.Pose"` one type), `runtime_crate("::my_shmidl")`,
//! `topics(false)`, `emit_rerun_if_changed(false)`, `emit_warnings(false)`;
//! `generate` returns the files instead of writing them.
//!
//! ## What is generated
//!
//! For `package robot.v1;` with `enum Mode: u8 { Idle = 0, Run = 1 }`,
//! `message Pose { stamp: u64, mode: Mode, name: string<8>, ok: bool }` and
//! `topic "robot/pose": Pose { depth: 4 }`:
//!
//! ```text
//! #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, ::shmidl::ShmMessage)]
//! #[repr(u8)]
//! #[shm(name = "robot.v1.Mode", crate = "::shmidl")]
//! pub enum Mode { #[default] Idle = 0, Run = 1 }
//!
//! #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ::shmidl::ShmMessage)]
//! #[repr(C)]
//! #[shm(name = "robot.v1.Pose", crate = "::shmidl", default)]
//! pub struct Pose {
//!     pub stamp: u64,
//!     pub mode: ::shmidl::Enum<Mode>,          // checked when read: `.get()`
//!     pub name: ::shmidl::FixedSizeString<8>,
//!     pub ok: ::shmidl::Bool,
//!     #[doc(hidden)]
//!     #[shm(padding)]
//!     pub __pad0: [u8; 2],                     // explicit, zeroed padding
//! }
//!
//! pub mod topics {
//!     pub mod robot_pose {
//!         pub const NAME: &str = "robot/pose";
//!         pub type Message = super::super::Pose;
//!         pub fn config() -> ::shmidl::TopicConfig { /* the schema's options */ }
//!         pub fn publisher(node: &::shmidl::Node) -> Result<::shmidl::Publisher<Message>, ::shmidl::TopicError>;
//!         pub fn subscriber(node: &::shmidl::Node) -> Result<::shmidl::Subscriber<Message>, ::shmidl::TopicError>;
//!     }
//! }
//! ```
//!
//! Constants become `pub const`, `///` docs are carried over (code blocks
//! in them as `text`, so they never run as doctests of your crate), keyword
//! field names are escaped (`r#type`; `self` becomes `self_` with
//! `#[shm(name = "self")]`), and references across packages are relative
//! (`super::common::Vec3`), resolved by the module tree `include_schema!`
//! builds. Eq and Hash are derived where no float is inside. The generated
//! code writes no impl itself: `#[derive(ShmMessage)]` is the one place that
//! does, so a hand-written struct and a generated one behave the same.
//!
//! An enum's `#[default]` is its variant of value 0, or its first variant
//! when none is 0: the value a zeroed message's field holds (the derive's
//! `#[shm(default)]`), so `Mode::default()` is what `Pose::default().mode`
//! reads.
//!
//! A topic's module is its name lowercased with `/` as `_`
//! (`"robot/Pose"` → `robot_pose`). Names that are distinct in the schema but
//! would meet in Rust (fields `self` and `self_`; topics `a/b` and `A_b`; a
//! type named `topics` next to the topics module, or named like a
//! sub-package's module) are schema errors, reported like `shmidl check`
//! reports them, never code that does not compile.
//!
//! ## The derive
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
//! [`derive`](mod@derive) works on `syn` items only and never sees a schema.
//! The schema generator (`schema/`, feature `schema`) reads `shmidl-idl`'s
//! checked model and emits plain `#[repr(C)]` structs with
//! `#[derive(ShmMessage)]`, so that [`derive::expand`] stays the one place
//! that writes `ShmSafe` impls.

pub mod derive;
mod ident;
pub mod include;
#[cfg(feature = "schema")]
mod schema;

#[cfg(feature = "schema")]
pub use schema::{compile, Config, Error, GeneratedFile};
