//! The schema's bounded types as Rust types that live in shared memory:
//! [`FixedSizeString<N>`] (`string<N>`), [`FixedSizeBytes<N>`] (`bytes<N>`)
//! and [`FixedSizeVec<T, N>`] (`sequence<T, N>`).
//!
//! Each is a `u32` length followed by room for `N` items, with no padding
//! anywhere (`docs/schema-language.md` §4): the length is stored as four
//! little-endian bytes, and a sequence keeps four reserved zero bytes so its
//! items start at offset 8, aligned for any schema type. Items past the
//! length are always zero, so a value's bytes are its wire form.
//!
//! A value in a pool slot may have been written by another process, so
//! nothing trusts the stored length: every accessor clamps it to `N`, and
//! [`FixedSizeString::as_str`] stops before any invalid UTF-8. The wire
//! codec rejects such values outright.
//!
//! ```
//! use shmidl::{FixedSizeString, FixedSizeVec};
//!
//! let mut name = FixedSizeString::<8>::try_from("joint")?;
//! name.push_str("_1")?;
//! assert_eq!(name, "joint_1");
//! assert!(name.push_str("xyz").is_err()); // 10 bytes do not fit in 8
//!
//! let mut position = FixedSizeVec::<f64, 4>::new();
//! position.push(0.5)?;
//! position.extend_from_slice(&[1.0, 2.0])?;
//! assert_eq!(position.iter().sum::<f64>(), 3.5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bytes;
mod string;
mod vec;

use std::fmt;

pub use self::{bytes::FixedSizeBytes, string::FixedSizeString, vec::FixedSizeVec};

/// A value did not fit into a bounded type. Holds what was refused
/// ([`into_inner`](Self::into_inner)).
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("capacity exceeded: {needed} items needed, {capacity} fit")]
pub struct CapacityError<T = ()> {
    value: T,
    capacity: usize,
    needed: usize,
}

impl<T> CapacityError<T> {
    pub(crate) fn new(value: T, capacity: usize, needed: usize) -> Self {
        CapacityError {
            value,
            capacity,
            needed,
        }
    }

    /// The capacity of the bounded type (`N`).
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many items (bytes for strings) the operation needed.
    #[must_use]
    pub fn needed(&self) -> usize {
        self.needed
    }

    /// The value that did not fit.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> fmt::Debug for CapacityError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CapacityError")
            .field("capacity", &self.capacity)
            .field("needed", &self.needed)
            .finish_non_exhaustive()
    }
}

/// The stored length, clamped to `capacity`: another process may have
/// written anything.
#[inline]
fn clamp_len(raw: [u8; 4], capacity: usize) -> usize {
    (u32::from_le_bytes(raw) as usize).min(capacity)
}

/// `len` as the stored four bytes. Callers keep `len ≤ N ≤ u32::MAX`.
#[inline]
fn store_len(len: usize) -> [u8; 4] {
    debug_assert!(u32::try_from(len).is_ok());
    (len as u32).to_le_bytes()
}

/// Checked at compile time (post-monomorphisation) by every bounded type.
const fn check_capacity(n: usize) {
    assert!(
        n <= u32::MAX as usize,
        "a bounded type holds at most u32::MAX items (its length is a u32)"
    );
}
