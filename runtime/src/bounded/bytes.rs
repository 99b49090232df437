//! `bytes<N>`: [`FixedSizeBytes`].

use std::{
    fmt,
    hash::Hash,
    ops::{Deref, DerefMut},
};

use super::{check_capacity, clamp_len, store_len, CapacityError};
use crate::{
    layout::{TypeKind, TypeLayout},
    ShmSafe,
};

/// At most `N` bytes stored inline: the schema's `bytes<N>`.
///
/// Layout: the length as a little-endian `u32` (4 bytes, unaligned), then
/// `N` bytes; size `4 + N`, alignment 1, bytes past the length zero.
/// Dereferences to `[u8]`.
///
/// ```
/// use shmidl::FixedSizeBytes;
///
/// let mut b = FixedSizeBytes::<4>::try_from(&[1u8, 2][..])?;
/// b.push(3)?;
/// b[0] = 9;
/// assert_eq!(b.as_slice(), &[9, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FixedSizeBytes<const N: usize> {
    // INVARIANTS (kept by every method, never trusted when read): len ≤ N,
    // bytes[len..] are zero.
    pub(super) len: [u8; 4],
    pub(super) bytes: [u8; N],
}

impl<const N: usize> FixedSizeBytes<N> {
    /// No bytes.
    #[must_use]
    pub const fn new() -> Self {
        const { check_capacity(N) };
        FixedSizeBytes {
            len: [0; 4],
            bytes: [0; N],
        }
    }

    /// The most bytes it holds, `N`.
    #[must_use]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The bytes, up to the length (clamped to `N`).
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..clamp_len(self.len, N)]
    }

    /// The bytes, mutable (the length stays).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let len = clamp_len(self.len, N);
        &mut self.bytes[..len]
    }

    /// Appends `byte`, or hands it back if it is full.
    pub fn push(&mut self, byte: u8) -> Result<(), CapacityError<u8>> {
        self.extend_from_slice(&[byte])
            .map_err(|e| CapacityError::new(byte, N, e.needed()))
    }

    /// Appends `bytes`, or hands them back if they do not fit.
    pub fn extend_from_slice<'a>(
        &mut self,
        bytes: &'a [u8],
    ) -> Result<(), CapacityError<&'a [u8]>> {
        let len = self.normalized_len();
        let needed = len + bytes.len();
        if needed > N {
            return Err(CapacityError::new(bytes, N, needed));
        }
        self.bytes[len..needed].copy_from_slice(bytes);
        self.len = store_len(needed);
        Ok(())
    }

    /// Shortens to `len` bytes (no effect if it is shorter).
    pub fn truncate(&mut self, len: usize) {
        let current = self.normalized_len();
        if len < current {
            self.bytes[len..current].fill(0);
            self.len = store_len(len);
        }
    }

    /// Empties it (and zeroes its bytes).
    pub fn clear(&mut self) {
        self.bytes.fill(0);
        self.len = [0; 4];
    }

    /// Restores the invariants another process may have broken; returns
    /// the length.
    fn normalized_len(&mut self) -> usize {
        let len = clamp_len(self.len, N);
        self.len = store_len(len);
        if self.bytes[len..].iter().any(|&b| b != 0) {
            self.bytes[len..].fill(0);
        }
        len
    }
}

impl<const N: usize> Default for FixedSizeBytes<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Deref for FixedSizeBytes<N> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl<const N: usize> DerefMut for FixedSizeBytes<N> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl<const N: usize> AsRef<[u8]> for FixedSizeBytes<N> {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl<'a, const N: usize> TryFrom<&'a [u8]> for FixedSizeBytes<N> {
    type Error = CapacityError;
    fn try_from(bytes: &'a [u8]) -> Result<Self, CapacityError> {
        let mut out = Self::new();
        out.extend_from_slice(bytes)
            .map_err(|e| CapacityError::new((), e.capacity(), e.needed()))?;
        Ok(out)
    }
}

impl<'a, const N: usize> IntoIterator for &'a FixedSizeBytes<N> {
    type Item = &'a u8;
    type IntoIter = std::slice::Iter<'a, u8>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl<const N: usize> fmt::Debug for FixedSizeBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

impl<const N: usize> PartialEq for FixedSizeBytes<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<const N: usize> Eq for FixedSizeBytes<N> {}

impl<const N: usize> PartialEq<[u8]> for FixedSizeBytes<N> {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl<const N: usize> Hash for FixedSizeBytes<N> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

// SAFETY: `#[repr(C)]` of `[u8; 4]` and `[u8; N]`, both alignment 1: size
// `4 + N`, no padding. Every byte pattern is a valid value (plain bytes; the
// length is clamped wherever it is used). No pointer, no drop. The
// fingerprint is the schema's `bytes(N)`.
unsafe impl<const N: usize> ShmSafe for FixedSizeBytes<N> {
    const FINGERPRINT: u64 = {
        check_capacity(N);
        crate::fingerprint::bytes(N as u64)
    };
    const LAYOUT: &'static TypeLayout = &TypeLayout {
        size: 4 + N,
        align: 1,
        fingerprint: Self::FINGERPRINT,
        plain: false,
        atomic: false,
        kind: TypeKind::Bytes { capacity: N },
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_behave_like_a_bounded_vec() {
        assert_eq!(std::mem::size_of::<FixedSizeBytes<3>>(), 7);
        let mut b = FixedSizeBytes::<3>::new();
        b.extend_from_slice(&[1, 2, 3]).unwrap();
        assert_eq!(b.push(4).unwrap_err().into_inner(), 4);
        b.truncate(1);
        assert_eq!(&*b, &[1]);
        assert_eq!(b.bytes, [1, 0, 0]);
        let mut dirty: FixedSizeBytes<3> = ShmSafe::zeroed();
        dirty.len = 9u32.to_le_bytes();
        assert_eq!(dirty.len(), 3);
        assert!(dirty.push(1).is_err());
    }
}
