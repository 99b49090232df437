//! Type fingerprints: 64-bit FNV-1a over a canonical, structural encoding.
//!
//! The same algorithm is implemented by `shmidl-idl` for schema types and by
//! the `ShmMessage` derive for Rust structs, so a schema-based program and a
//! derive-based program agree on a type exactly when they describe the same
//! layout. The algorithm is specified in `docs/schema-language.md`; in short,
//! with `str(s)` = `u32` LE byte length then the bytes and `u64(x)` = 8 LE bytes:
//!
//! | type | encoded as |
//! |---|---|
//! | primitive `P` | `str("prim") str(P)` |
//! | `[T; N]` | `str("array") u64(fp(T)) u64(N)` |
//! | `string<N>` | `str("string") u64(N)` |
//! | `bytes<N>` | `str("bytes") u64(N)` |
//! | `sequence<T, N>` | `str("sequence") u64(fp(T)) u64(N)` |
//! | enum | `str("enum") str(name) str(repr) u64(count)`, then `str(variant) u64(value)` each |
//! | struct | `str("struct") str(name) u64(count)`, then `str(field) u64(fp(type))` each |
//!
//! Everything here is a `const fn`, so fingerprints are compile-time constants.

/// FNV-1a 64-bit offset basis.
const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// A running FNV-1a hash over the canonical encoding.
///
/// ```
/// use shmidl::fingerprint::Hasher;
/// const FP: u64 = Hasher::new().str("prim").str("u8").finish();
/// assert_eq!(FP, <u8 as shmidl::ShmSafe>::FINGERPRINT);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Hasher(u64);

impl Hasher {
    /// A hasher at the FNV offset basis.
    #[must_use]
    pub const fn new() -> Self {
        Self(OFFSET_BASIS)
    }

    /// Feeds raw bytes.
    #[must_use]
    pub const fn bytes(self, bytes: &[u8]) -> Self {
        let mut h = self.0;
        let mut i = 0;
        while i < bytes.len() {
            h ^= bytes[i] as u64;
            h = h.wrapping_mul(PRIME);
            i += 1;
        }
        Self(h)
    }

    /// Feeds `u64(x)`: eight little-endian bytes.
    #[must_use]
    pub const fn u64(self, x: u64) -> Self {
        self.bytes(&x.to_le_bytes())
    }

    /// Feeds `str(s)`: the `u32` little-endian byte length, then the bytes.
    #[must_use]
    pub const fn str(self, s: &str) -> Self {
        self.bytes(&(s.len() as u32).to_le_bytes())
            .bytes(s.as_bytes())
    }

    /// The fingerprint.
    #[must_use]
    pub const fn finish(self) -> u64 {
        self.0
    }
}

impl Default for Hasher {
    fn default() -> Self {
        Self::new()
    }
}

/// Fingerprint of a primitive (`bool`, `u8` … `f64`).
#[must_use]
pub const fn primitive(name: &str) -> u64 {
    Hasher::new().str("prim").str(name).finish()
}

/// Fingerprint of a fixed array `[T; n]` given `fp(T)`.
#[must_use]
pub const fn array(element: u64, n: u64) -> u64 {
    Hasher::new().str("array").u64(element).u64(n).finish()
}

/// Fingerprint of `string<n>`.
#[must_use]
pub const fn string(n: u64) -> u64 {
    Hasher::new().str("string").u64(n).finish()
}

/// Fingerprint of `bytes<n>`.
#[must_use]
pub const fn bytes(n: u64) -> u64 {
    Hasher::new().str("bytes").u64(n).finish()
}

/// Fingerprint of `sequence<T, n>` given `fp(T)`.
#[must_use]
pub const fn sequence(element: u64, n: u64) -> u64 {
    Hasher::new().str("sequence").u64(element).u64(n).finish()
}

/// Fingerprint of a runtime-sized run `[T]` (an array pool's or a
/// `Router<[T]>`'s samples) given `fp(T)`.
#[must_use]
pub const fn slice(element: u64) -> u64 {
    Hasher::new().str("slice").u64(element).finish()
}

/// Starts a struct's fingerprint; feed each field with
/// [`Hasher::str`]`(name)` then [`Hasher::u64`]`(fp(type))`.
#[must_use]
pub const fn struct_start(qualified_name: &str, field_count: u64) -> Hasher {
    Hasher::new()
        .str("struct")
        .str(qualified_name)
        .u64(field_count)
}

/// Starts an enum's fingerprint; feed each variant with
/// [`Hasher::str`]`(name)` then [`Hasher::u64`]`(value as two's-complement u64)`.
#[must_use]
pub const fn enum_start(qualified_name: &str, repr: &str, variant_count: u64) -> Hasher {
    Hasher::new()
        .str("enum")
        .str(qualified_name)
        .str(repr)
        .u64(variant_count)
}

/// Fingerprint of a runtime-internal type that no schema can name (atomics,
/// control words): `str("runtime") str(name) u64(version)`.
#[must_use]
pub const fn runtime(name: &str, version: u64) -> u64 {
    Hasher::new().str("runtime").str(name).u64(version).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hand_computed_fnv1a() {
        // FNV-1a 64 of the empty input is the offset basis; of "a" it is the
        // published test vector 0xaf63dc4c8601ec8c.
        assert_eq!(Hasher::new().finish(), OFFSET_BASIS);
        assert_eq!(Hasher::new().bytes(b"a").finish(), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn agrees_with_the_schema_compiler() {
        // `struct Vec3 { x: f64, y: f64, z: f64 }` in `package robot.v1;` as
        // pinned by shmidl-idl's golden tests and docs/schema-language.md.
        let f64_fp = primitive("f64");
        let vec3 = struct_start("robot.v1.Vec3", 3)
            .str("x")
            .u64(f64_fp)
            .str("y")
            .u64(f64_fp)
            .str("z")
            .u64(f64_fp)
            .finish();
        assert_eq!(vec3, 0x02b4_5cb4_3104_7436);
    }

    #[test]
    fn enums_agree_with_the_schema_compiler() {
        // `enum Mode: u8 { Idle = 0, Run = 1, Fault = 2 }` in `robot.v1`,
        // pinned in docs/schema-language.md.
        let mode = enum_start("robot.v1.Mode", "u8", 3)
            .str("Idle")
            .u64(0)
            .str("Run")
            .u64(1)
            .str("Fault")
            .u64(2)
            .finish();
        assert_eq!(mode, 0xc5ae_4fc3_7fbd_3973);
    }

    #[test]
    fn distinguishes_structure() {
        assert_ne!(primitive("u8"), primitive("i8"));
        assert_ne!(array(primitive("u8"), 4), array(primitive("u8"), 5));
        assert_ne!(string(4), bytes(4));
        let a = struct_start("P", 2).str("x").u64(primitive("f32")).str("y");
        assert_ne!(
            a.u64(primitive("f32")).finish(),
            a.u64(primitive("f64")).finish()
        );
    }
}
