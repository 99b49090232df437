//! `sequence<T, N>`: [`FixedSizeVec`].

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

/// At most `N` elements stored inline: the schema's `sequence<T, N>`.
///
/// Layout: the length as a little-endian `u32` (4 bytes, unaligned), 4
/// reserved zero bytes, then `N` elements at offset 8; size `8 + N ×
/// size_of::<T>()`, the alignment of `T` (at most 8). Elements past the
/// length are all-zero bytes. Dereferences to `[T]`.
///
/// Elements are `Copy` (every schema type is): a vector is a value that is
/// copied in and out of slots, and no element ever needs dropping.
///
/// ```
/// use shmidl::FixedSizeVec;
///
/// let mut v = FixedSizeVec::<u32, 3>::try_from(&[1, 2][..])?;
/// v.push(3)?;
/// assert_eq!(v.push(4).unwrap_err().into_inner(), 4);
/// assert_eq!(v.pop(), Some(3));
/// v[0] = 10;
/// assert_eq!(v.iter().copied().collect::<Vec<_>>(), [10, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FixedSizeVec<T: ShmSafe + Copy, const N: usize> {
    // INVARIANTS (kept by every method, never trusted when read): len ≤ N,
    // reserved is zero, items[len..] are all-zero bytes.
    len: [u8; 4],
    reserved: [u8; 4],
    items: [T; N],
}

impl<T: ShmSafe + Copy, const N: usize> FixedSizeVec<T, N> {
    /// No elements (every byte zero).
    #[must_use]
    pub const fn new() -> Self {
        const {
            check_capacity(N);
            check_align::<T>();
        };
        // SAFETY: `Self` is `[u8; 4]`, `[u8; 4]` and `[T; N]` with `T:
        // ShmSafe`, which promises that every byte pattern, all-zero
        // included, is a valid `T`; zero bytes are valid `[u8; 4]`.
        unsafe { std::mem::zeroed() }
    }

    /// The most elements it holds, `N`.
    #[must_use]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The elements, up to the length (clamped to `N`).
    #[must_use]
    pub fn as_slice(&self) -> &[T] {
        &self.items[..clamp_len(self.len, N)]
    }

    /// The elements, mutable (the length stays).
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        let len = clamp_len(self.len, N);
        &mut self.items[..len]
    }

    /// Appends `value`, or hands it back if it is full.
    pub fn push(&mut self, value: T) -> Result<(), CapacityError<T>> {
        let len = self.normalized_len();
        if len == N {
            return Err(CapacityError::new(value, N, N + 1));
        }
        self.items[len] = value;
        self.len = store_len(len + 1);
        Ok(())
    }

    /// Appends every element of `values`, or none if they do not all fit
    /// (handing the slice back).
    pub fn extend_from_slice<'a>(&mut self, values: &'a [T]) -> Result<(), CapacityError<&'a [T]>> {
        let len = self.normalized_len();
        let needed = len + values.len();
        if needed > N {
            return Err(CapacityError::new(values, N, needed));
        }
        self.items[len..needed].copy_from_slice(values);
        self.len = store_len(needed);
        Ok(())
    }

    /// Removes and returns the last element.
    pub fn pop(&mut self) -> Option<T> {
        let len = self.normalized_len();
        let last = len.checked_sub(1)?;
        let value = self.items[last];
        self.items[last] = T::zeroed();
        self.len = store_len(last);
        Some(value)
    }

    /// Shortens to `len` elements (no effect if it is shorter).
    pub fn truncate(&mut self, len: usize) {
        let current = self.normalized_len();
        if len < current {
            for item in &mut self.items[len..current] {
                *item = T::zeroed();
            }
            self.len = store_len(len);
        }
    }

    /// Removes every element (and zeroes them).
    pub fn clear(&mut self) {
        *self = Self::new();
    }

    /// Restores the invariants another process may have broken; returns
    /// the length. Elements past the length are left as they are: only the
    /// wire codec cares about their bytes, and it checks them.
    fn normalized_len(&mut self) -> usize {
        let len = clamp_len(self.len, N);
        self.len = store_len(len);
        self.reserved = [0; 4];
        len
    }
}

/// Elements start at offset 8: alignment above 8 would need padding.
const fn check_align<T>() {
    assert!(
        std::mem::align_of::<T>() <= 8,
        "FixedSizeVec elements may be aligned to at most 8 bytes"
    );
}

impl<T: ShmSafe + Copy, const N: usize> Default for FixedSizeVec<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: ShmSafe + Copy, const N: usize> Deref for FixedSizeVec<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: ShmSafe + Copy, const N: usize> DerefMut for FixedSizeVec<T, N> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

impl<T: ShmSafe + Copy, const N: usize> AsRef<[T]> for FixedSizeVec<T, N> {
    fn as_ref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<'a, T: ShmSafe + Copy, const N: usize> TryFrom<&'a [T]> for FixedSizeVec<T, N> {
    type Error = CapacityError;
    fn try_from(values: &'a [T]) -> Result<Self, CapacityError> {
        let mut out = Self::new();
        out.extend_from_slice(values)
            .map_err(|e| CapacityError::new((), e.capacity(), e.needed()))?;
        Ok(out)
    }
}

impl<'a, T: ShmSafe + Copy, const N: usize> IntoIterator for &'a FixedSizeVec<T, N> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl<'a, T: ShmSafe + Copy, const N: usize> IntoIterator for &'a mut FixedSizeVec<T, N> {
    type Item = &'a mut T;
    type IntoIter = std::slice::IterMut<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_mut_slice().iter_mut()
    }
}

impl<T: ShmSafe + Copy + fmt::Debug, const N: usize> fmt::Debug for FixedSizeVec<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

impl<T: ShmSafe + Copy + PartialEq, const N: usize> PartialEq for FixedSizeVec<T, N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: ShmSafe + Copy + Eq, const N: usize> Eq for FixedSizeVec<T, N> {}

impl<T: ShmSafe + Copy + PartialEq, const N: usize> PartialEq<[T]> for FixedSizeVec<T, N> {
    fn eq(&self, other: &[T]) -> bool {
        self.as_slice() == other
    }
}

impl<T: ShmSafe + Copy + Hash, const N: usize> Hash for FixedSizeVec<T, N> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

// SAFETY: `#[repr(C)]` of `[u8; 4]`, `[u8; 4]` and `[T; N]`: the items start
// at offset 8, a multiple of `align_of::<T>()` because `check_align` (run
// when `FINGERPRINT` is evaluated, which every use as `ShmSafe` does) bounds
// it by 8, and the size `8 + N × size_of::<T>()` is a multiple of that
// alignment, so there is no padding. Every byte pattern is valid: the
// header is plain bytes (the length is clamped wherever it is used) and
// every element is a `T: ShmSafe`. No pointer; `T: Copy`, so no drop.
// The fingerprint is the schema's `sequence(fp(T), N)`.
unsafe impl<T: ShmSafe + Copy, const N: usize> ShmSafe for FixedSizeVec<T, N> {
    const FINGERPRINT: u64 = {
        check_capacity(N);
        check_align::<T>();
        crate::fingerprint::sequence(T::FINGERPRINT, N as u64)
    };
    const LAYOUT: &'static TypeLayout = &TypeLayout {
        size: std::mem::size_of::<Self>(),
        align: std::mem::align_of::<Self>(),
        fingerprint: Self::FINGERPRINT,
        plain: false,
        atomic: T::LAYOUT.atomic,
        kind: TypeKind::Sequence {
            element: T::LAYOUT,
            capacity: N,
        },
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_start_at_offset_8_with_no_padding() {
        assert_eq!(std::mem::size_of::<FixedSizeVec<u8, 3>>(), 11);
        assert_eq!(std::mem::align_of::<FixedSizeVec<u8, 3>>(), 1);
        assert_eq!(std::mem::size_of::<FixedSizeVec<f64, 3>>(), 32);
        assert_eq!(std::mem::align_of::<FixedSizeVec<f64, 3>>(), 8);
        assert_eq!(std::mem::offset_of!(FixedSizeVec<f64, 3>, items), 8);
    }

    #[test]
    fn pop_truncate_and_clear_zero_what_they_remove() {
        let mut v = FixedSizeVec::<u16, 4>::try_from(&[1, 2, 3][..]).unwrap();
        assert_eq!(v.pop(), Some(3));
        assert_eq!(v.items, [1, 2, 0, 0]);
        v.truncate(1);
        assert_eq!(v.items, [1, 0, 0, 0]);
        v.clear();
        assert_eq!(v.pop(), None);
        assert!(v.is_empty());
    }

    #[test]
    fn a_length_from_another_process_is_clamped() {
        let mut v: FixedSizeVec<u8, 2> = ShmSafe::zeroed();
        v.len = u32::MAX.to_le_bytes();
        v.reserved = [1; 4];
        assert_eq!(v.len(), 2);
        assert!(v.push(1).is_err());
        assert_eq!(v.reserved, [0; 4]);
    }
}
