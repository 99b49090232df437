//! The [`ShmSafe`] marker: types that may live in shared memory.

use std::sync::atomic::{
    AtomicI16, AtomicI32, AtomicI64, AtomicI8, AtomicU16, AtomicU32, AtomicU64, AtomicU8,
};

use crate::{
    fingerprint,
    layout::{Primitive, TypeKind, TypeLayout},
};

/// A type whose values may be placed in shared memory and read by other
/// processes that map the same bytes at other addresses.
///
/// Derive it with [`#[derive(ShmMessage)]`](crate::ShmMessage); don't
/// implement it by hand. The derive checks every rule below at compile time
/// and computes the fingerprint the schema compiler computes for the same
/// type. Hand-written impls are for the runtime's own types (primitives,
/// atomics, arrays), which no derive can see into.
///
/// # Safety
///
/// Implementors promise that:
/// - the type has a fixed layout (`#[repr(C)]`, `#[repr(transparent)]`, a
///   primitive, or an array of such types) that is the same in every process
///   built for the same architecture;
/// - it holds no pointers, references, file descriptors or other values that
///   are only meaningful inside one process (`Box`, `String`, `Vec`, `&T`,
///   `usize`-sized handles …);
/// - if it has a destructor, that destructor is correct in *any* process
///   (a pool runs it in whichever process drops the last reference) and
///   touches no process-local state of the process that made the value;
///   objects placed directly in a segment with `find_or_create` are never
///   dropped;
/// - [`FINGERPRINT`](Self::FINGERPRINT) is computed with the algorithm of
///   [`crate::fingerprint`] from the type's canonical description, so two
///   types with the same fingerprint have the same layout and meaning.
/// - [`LAYOUT`](Self::LAYOUT) describes the type truthfully (size,
///   alignment, each field's offset and type).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot live in shared memory: it does not implement `ShmSafe`",
    label = "not `ShmSafe`",
    note = "message types are `#[repr(C)]` structs with `#[derive(ShmMessage)]`; in them a \
            Rust enum is stored as `shmidl::Enum<E>` (derive `ShmMessage` on the enum), a \
            `bool` as `shmidl::Bool`, a string as `shmidl::FixedSizeString<N>`, a `Vec` as \
            `shmidl::FixedSizeVec<T, N>`"
)]
pub unsafe trait ShmSafe: Sized + Send + Sync + 'static {
    /// The structural fingerprint of the type.
    const FINGERPRINT: u64;

    /// The static description of the layout (what tools and the wire codec
    /// walk).
    const LAYOUT: &'static TypeLayout;

    /// The value whose bytes are all zero (valid for every `ShmSafe` type,
    /// which accepts every byte pattern).
    #[must_use]
    fn zeroed() -> Self {
        // SAFETY: `ShmSafe` promises that every byte pattern, all-zero
        // included, is a valid value of `Self` ("every byte pattern is a
        // valid value" in the trait's `# Safety`).
        unsafe { std::mem::zeroed() }
    }
}

macro_rules! primitive {
    ($($t:ty => $p:ident),* $(,)?) => {$(
        // SAFETY: integers and floats have a fixed size and alignment, no
        // padding, every bit pattern is a valid value ("all bit patterns are
        // valid" for integers; any bits are some `f32`/`f64`, possibly NaN),
        // they hold no pointers and need no drop; the fingerprint is
        // `primitive(name)`.
        unsafe impl ShmSafe for $t {
            const FINGERPRINT: u64 = fingerprint::primitive(Primitive::$p.name());
            const LAYOUT: &'static TypeLayout =
                &TypeLayout::primitive(Primitive::$p, Self::FINGERPRINT);
        }
    )*};
}

primitive! {
    u8 => U8, u16 => U16, u32 => U32, u64 => U64,
    i8 => I8, i16 => I16, i32 => I32, i64 => I64, f32 => F32, f64 => F64,
}

macro_rules! atomic {
    ($($t:ty => $name:literal, $p:ident),* $(,)?) => {$(
        // SAFETY: "This type has the same size and bit validity as the
        // underlying integer type" (std::sync::atomic docs, Rust 1.85), so
        // every bit pattern is valid and there is no padding; it holds no
        // pointer and needs no drop. Atomics are lock-free on every target
        // shmidl supports, so they work across processes. (`AtomicBool` is
        // not `ShmSafe`: a byte other than 0 or 1 is not a valid one.)
        unsafe impl ShmSafe for $t {
            const FINGERPRINT: u64 = fingerprint::runtime($name, 1);
            const LAYOUT: &'static TypeLayout = &TypeLayout {
                size: Primitive::$p.size(),
                align: Primitive::$p.size(),
                fingerprint: Self::FINGERPRINT,
                plain: false,
                atomic: true,
                kind: TypeKind::Atomic(Primitive::$p),
            };
        }
    )*};
}

atomic! {
    AtomicU8 => "atomic_u8", U8, AtomicU16 => "atomic_u16", U16,
    AtomicU32 => "atomic_u32", U32, AtomicU64 => "atomic_u64", U64,
    AtomicI8 => "atomic_i8", I8, AtomicI16 => "atomic_i16", I16,
    AtomicI32 => "atomic_i32", I32, AtomicI64 => "atomic_i64", I64,
}

// SAFETY: an array of `ShmSafe` elements is laid out as `N` consecutive
// elements ("An array of [T; N] has a size of size_of::<T>() * N and the same
// alignment of T", Reference, type layout), with no bytes between them, so
// it inherits every promise of `T`; the fingerprint is `array(fp(T), N)`.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {
    const FINGERPRINT: u64 = fingerprint::array(T::FINGERPRINT, N as u64);
    const LAYOUT: &'static TypeLayout = &TypeLayout {
        size: std::mem::size_of::<Self>(),
        align: std::mem::align_of::<Self>(),
        fingerprint: Self::FINGERPRINT,
        plain: T::LAYOUT.plain,
        atomic: T::LAYOUT.atomic,
        kind: TypeKind::Array {
            element: T::LAYOUT,
            len: N,
        },
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_structural() {
        assert_eq!(u8::FINGERPRINT, fingerprint::primitive("u8"));
        assert_eq!(
            <[u32; 4]>::FINGERPRINT,
            fingerprint::array(fingerprint::primitive("u32"), 4)
        );
        assert_ne!(<[u32; 4]>::FINGERPRINT, <[u32; 5]>::FINGERPRINT);
        assert_ne!(AtomicU32::FINGERPRINT, u32::FINGERPRINT);
    }
}
