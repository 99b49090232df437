//! The fingerprint hash: 64-bit FNV-1a over a byte stream of two encoders.
//!
//! This module is the whole algorithm's vocabulary, public so that other
//! implementations (the `#[derive(ShmMessage)]` macro, tests, tools in other languages)
//! can compute the same values. What is fed for each kind of type is specified in
//! `docs/schema-language.md` and implemented by [`Schema`](crate::Schema); the layout of
//! the stream is:
//!
//! * `str(s)`: the byte length of `s` as a little-endian `u32`, then the UTF-8 bytes;
//! * `u64(x)`: `x` as 8 little-endian bytes.
//!
//! ```
//! use shmidl_idl::fingerprint::Fingerprinter;
//!
//! // fp(u8) = FNV-1a(str("prim") str("u8"))
//! let mut h = Fingerprinter::new();
//! h.str("prim").str("u8");
//! assert_eq!(h.finish(), shmidl_idl::Primitive::U8.fingerprint());
//! ```

/// FNV-1a 64-bit offset basis.
pub const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
pub const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Plain 64-bit FNV-1a over `bytes`.
pub const fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash = FNV_OFFSET_BASIS;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    hash
}

/// An incremental FNV-1a hasher with the two fingerprint encoders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprinter {
    hash: u64,
}

impl Default for Fingerprinter {
    fn default() -> Self {
        Self::new()
    }
}

impl Fingerprinter {
    /// A hasher that has seen no bytes.
    pub const fn new() -> Self {
        Self {
            hash: FNV_OFFSET_BASIS,
        }
    }

    /// Feeds raw bytes.
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            self.hash ^= u64::from(b);
            self.hash = self.hash.wrapping_mul(FNV_PRIME);
        }
        self
    }

    /// Feeds `str(s)`: the length of `s` in bytes as a little-endian `u32`, then its
    /// UTF-8 bytes. Strings longer than `u32::MAX` bytes cannot occur in a schema
    /// (files are limited far below that); their length is saturated.
    pub fn str(&mut self, s: &str) -> &mut Self {
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        self.bytes(&len.to_le_bytes()).bytes(s.as_bytes())
    }

    /// Feeds `u64(x)`: 8 little-endian bytes.
    pub fn u64(&mut self, x: u64) -> &mut Self {
        self.bytes(&x.to_le_bytes())
    }

    /// The hash of everything fed so far.
    pub const fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        // From the FNV reference test suite.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn encoders_prefix_lengths_and_use_little_endian() {
        let mut sut = Fingerprinter::new();
        sut.str("ab").u64(0x0102);
        let expected = fnv1a64(&[2, 0, 0, 0, b'a', b'b', 2, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(sut.finish(), expected);
    }
}
