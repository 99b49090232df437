//! The [`ShmSafe`] marker: types that may live in shared memory.

use std::sync::atomic::{
    AtomicBool, AtomicI16, AtomicI32, AtomicI64, AtomicI8, AtomicU16, AtomicU32, AtomicU64,
    AtomicU8,
};

use crate::fingerprint;

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
pub unsafe trait ShmSafe: Sized + Send + Sync + 'static {
    /// The structural fingerprint of the type.
    const FINGERPRINT: u64;
}

macro_rules! primitive {
    ($($t:ty => $name:literal),* $(,)?) => {$(
        // SAFETY: primitives have a fixed size and alignment, hold no
        // pointers and need no drop; the fingerprint is `primitive(name)`.
        unsafe impl ShmSafe for $t {
            const FINGERPRINT: u64 = fingerprint::primitive($name);
        }
    )*};
}

primitive! {
    bool => "bool", u8 => "u8", u16 => "u16", u32 => "u32", u64 => "u64",
    i8 => "i8", i16 => "i16", i32 => "i32", i64 => "i64", f32 => "f32", f64 => "f64",
}

macro_rules! atomic {
    ($($t:ty => $name:literal),* $(,)?) => {$(
        // SAFETY: "This type has the same size and bit validity as the
        // underlying integer type" (std::sync::atomic docs, Rust 1.85); it
        // holds no pointer and needs no drop. Atomics are lock-free on every
        // target shmidl supports, so they work across processes.
        unsafe impl ShmSafe for $t {
            const FINGERPRINT: u64 = fingerprint::runtime($name, 1);
        }
    )*};
}

atomic! {
    AtomicBool => "atomic_bool", AtomicU8 => "atomic_u8", AtomicU16 => "atomic_u16",
    AtomicU32 => "atomic_u32", AtomicU64 => "atomic_u64", AtomicI8 => "atomic_i8",
    AtomicI16 => "atomic_i16", AtomicI32 => "atomic_i32", AtomicI64 => "atomic_i64",
}

// SAFETY: an array of `ShmSafe` elements is laid out as `N` consecutive
// elements ("An array of [T; N] has a size of size_of::<T>() * N and the same
// alignment of T", Reference, type layout), so it inherits every promise of
// `T`; the fingerprint is `array(fp(T), N)`.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {
    const FINGERPRINT: u64 = fingerprint::array(T::FINGERPRINT, N as u64);
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
