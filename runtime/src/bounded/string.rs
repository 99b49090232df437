//! `string<N>`: [`FixedSizeString`].

use std::{borrow::Borrow, cmp::Ordering, fmt, hash::Hash, ops::Deref};

use super::{check_capacity, CapacityError, FixedSizeBytes};
use crate::{
    layout::{TypeKind, TypeLayout},
    ShmSafe,
};

/// A UTF-8 string of at most `N` bytes stored inline: the schema's
/// `string<N>`.
///
/// Layout: the length as a little-endian `u32` (4 bytes, unaligned), then
/// `N` bytes; size `4 + N`, alignment 1, bytes past the length zero.
/// Dereferences to `str`.
///
/// ```
/// use shmidl::FixedSizeString;
///
/// let s = FixedSizeString::<16>::try_from("left_wrist")?;
/// assert_eq!(s.len(), 10);
/// assert!(s.starts_with("left")); // any `str` method
/// assert!(FixedSizeString::<4>::try_from("too long").is_err());
/// # Ok::<(), shmidl::CapacityError>(())
/// ```
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct FixedSizeString<const N: usize> {
    // INVARIANTS (kept by every method; never trusted when read, since
    // another process may have written the slot): the bytes' invariants,
    // and bytes[..len] is UTF-8.
    bytes: FixedSizeBytes<N>,
}

impl<const N: usize> FixedSizeString<N> {
    /// The empty string.
    #[must_use]
    pub const fn new() -> Self {
        FixedSizeString {
            bytes: FixedSizeBytes::new(),
        }
    }

    /// The most bytes it holds, `N`.
    #[must_use]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The string. If the bytes are not valid UTF-8 (possible only when
    /// another process wrote them), the longest valid prefix.
    #[must_use]
    pub fn as_str(&self) -> &str {
        let bytes = self.as_bytes();
        match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => {
                // `valid_up_to` bytes are valid UTF-8 (Utf8Error docs), so
                // this second call cannot fail.
                std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default()
            }
        }
    }

    /// The stored bytes, up to the length (clamped to `N`).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    /// Appends `s`, or hands it back if it does not fit.
    pub fn push_str<'a>(&mut self, s: &'a str) -> Result<(), CapacityError<&'a str>> {
        self.normalize();
        self.bytes
            .extend_from_slice(s.as_bytes())
            .map_err(|e| CapacityError::new(s, N, e.needed()))
    }

    /// Appends `c`, or hands it back if it does not fit.
    pub fn push(&mut self, c: char) -> Result<(), CapacityError<char>> {
        let mut buf = [0u8; 4];
        self.push_str(c.encode_utf8(&mut buf))
            .map_err(|e| CapacityError::new(c, N, e.needed()))
    }

    /// Shortens the string to `len` bytes (no effect if it is shorter).
    ///
    /// # Panics
    /// If `len` does not lie on a `char` boundary, as `String::truncate`.
    pub fn truncate(&mut self, len: usize) {
        self.normalize();
        assert!(
            self.as_str().is_char_boundary(len) || len > self.as_str().len(),
            "truncate: {len} is not a char boundary"
        );
        self.bytes.truncate(len);
    }

    /// Empties the string (and zeroes its bytes).
    pub fn clear(&mut self) {
        self.bytes.clear();
    }

    /// Restores the invariants after another process may have broken them:
    /// cuts the bytes at the longest valid UTF-8 prefix (which also clamps
    /// the length and zeroes the tail).
    fn normalize(&mut self) {
        let valid = self.as_str().len();
        self.bytes.truncate(valid);
    }
}

impl<const N: usize> Default for FixedSizeString<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Deref for FixedSizeString<N> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> AsRef<str> for FixedSizeString<N> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> Borrow<str> for FixedSizeString<N> {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl<'a, const N: usize> TryFrom<&'a str> for FixedSizeString<N> {
    type Error = CapacityError;
    fn try_from(s: &'a str) -> Result<Self, CapacityError> {
        let mut out = Self::new();
        out.push_str(s)
            .map_err(|e| CapacityError::new((), e.capacity(), e.needed()))?;
        Ok(out)
    }
}

impl<const N: usize> std::str::FromStr for FixedSizeString<N> {
    type Err = CapacityError;
    fn from_str(s: &str) -> Result<Self, CapacityError> {
        Self::try_from(s)
    }
}

impl<const N: usize> fmt::Debug for FixedSizeString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> fmt::Display for FixedSizeString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl<const N: usize> PartialEq for FixedSizeString<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl<const N: usize> Eq for FixedSizeString<N> {}

impl<const N: usize> PartialEq<str> for FixedSizeString<N> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl<const N: usize> PartialEq<&str> for FixedSizeString<N> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl<const N: usize> PartialOrd for FixedSizeString<N> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<const N: usize> Ord for FixedSizeString<N> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl<const N: usize> Hash for FixedSizeString<N> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

// SAFETY: `#[repr(transparent)]` over `FixedSizeBytes<N>` ("has the same
// layout and ABI as its single non-zero-sized field", Reference), which is
// `ShmSafe`: no padding, every byte pattern valid. No method relies on the
// UTF-8 invariant without checking it (`as_str` validates). No pointer, no
// drop. The fingerprint is the schema's `string(N)`.
unsafe impl<const N: usize> ShmSafe for FixedSizeString<N> {
    const FINGERPRINT: u64 = {
        check_capacity(N);
        crate::fingerprint::string(N as u64)
    };
    const LAYOUT: &'static TypeLayout = &TypeLayout {
        size: 4 + N,
        align: 1,
        fingerprint: Self::FINGERPRINT,
        plain: false,
        atomic: false,
        kind: TypeKind::String { capacity: N },
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    type S8 = FixedSizeString<8>;

    #[test]
    fn layout_has_no_padding() {
        assert_eq!(std::mem::size_of::<FixedSizeString<5>>(), 9);
        assert_eq!(std::mem::align_of::<FixedSizeString<5>>(), 1);
        assert_eq!(
            S8::FINGERPRINT,
            crate::fingerprint::Hasher::new()
                .str("string")
                .u64(8)
                .finish()
        );
    }

    #[test]
    fn pushes_stop_at_capacity_and_hand_the_value_back() {
        let mut s = S8::try_from("héllo").unwrap(); // 6 bytes
        assert_eq!(s.len(), 6);
        assert_eq!(s.push('€').unwrap_err().into_inner(), '€'); // 3 more
        s.push('!').unwrap();
        let err = s.push_str("ab").unwrap_err();
        assert_eq!(
            (err.capacity(), err.needed(), err.into_inner()),
            (8, 9, "ab")
        );
        assert_eq!(s, "héllo!");
        s.truncate(1);
        assert_eq!(s, "h");
        s.clear();
        assert!(s.is_empty());
        assert_eq!(s, S8::default());
    }

    #[test]
    fn bytes_from_another_process_are_never_trusted() {
        // A length past N, invalid UTF-8, a dirty tail.
        let mut s: S8 = ShmSafe::zeroed();
        s.bytes.len = 200u32.to_le_bytes();
        s.bytes.bytes = *b"ab\xffcdefg";
        assert_eq!(s.as_bytes().len(), 8);
        assert_eq!(s.as_str(), "ab");
        s.push('z').unwrap();
        assert_eq!(s.as_str(), "abz");
        assert_eq!(&s.bytes.bytes, b"abz\0\0\0\0\0");
    }
}
