//! The wire codec: a message's bytes for the network, and back, fully
//! validated.
//!
//! The wire form of a `ShmSafe` type is its memory: little-endian, the
//! `#[repr(C)]` layout of the type, padding and unused tails zero
//! (`docs/wire-format.md` gives it byte by byte). Since shmidl's types have
//! no implicit padding and every byte pattern is a valid value in memory,
//! [`encode`] is one copy and [`decode`] is one copy plus a validation pass
//! that walks the type's [`TypeLayout`]; for a type with nothing to check
//! (integers and floats only: [`TypeLayout::plain`]) the pass is skipped.
//!
//! Validation refuses, each with its own [`WireError`]: a `bool` other than
//! 0 or 1, an enum value no variant declares, a length past a bounded type's
//! capacity, a string that is not UTF-8, a non-zero byte in padding, in a
//! sequence's reserved bytes or past a bounded type's length, and a buffer
//! of the wrong size. Nothing in the input can make it panic.
//!
//! ```
//! use shmidl::{wire, FixedSizeString, ShmMessage};
//!
//! #[derive(ShmMessage, Debug, PartialEq)]
//! #[repr(C)]
//! struct Hello { id: u32, name: FixedSizeString<12> }
//!
//! let hello = Hello { id: 7, name: "world".try_into()? };
//! let bytes = hello.encode_to_vec()?;
//! assert_eq!(bytes.len(), 20);
//! assert_eq!(&bytes[..9], &[7, 0, 0, 0, 5, 0, 0, 0, b'w']);
//! assert_eq!(Hello::decode(&bytes)?, hello);
//!
//! let mut bad = bytes.clone();
//! bad[4] = 13; // a length past the capacity of 12
//! assert!(matches!(Hello::decode(&bad), Err(wire::WireError::TooLong { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(target_endian = "big")]
compile_error!("shmidl supports little-endian targets only: its wire form is the in-memory layout");

use std::mem::size_of;

use crate::{
    dynamic::DynType,
    layout::{TypeKind, TypeLayout},
    pool::DynMessage,
    ShmSafe,
};

/// Bytes that are not a valid wire form of the expected type, or a buffer
/// that cannot hold one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The input is not exactly the type's size.
    #[error("wrong length: `{type_name}` is {expected} bytes on the wire, got {found}")]
    Length {
        /// The Rust type expected.
        type_name: &'static str,
        /// Its size.
        expected: usize,
        /// The input's size.
        found: usize,
    },
    /// The output buffer is smaller than the type.
    #[error("buffer too small: encoding needs {needed} bytes, the buffer has {found}")]
    BufferTooSmall {
        /// The type's size.
        needed: usize,
        /// The buffer's size.
        found: usize,
    },
    /// The type contains atomics, which live in shared memory only.
    #[error("`{type_name}` contains atomics and has no wire form")]
    NoWireForm {
        /// The Rust type.
        type_name: &'static str,
    },
    /// A `bool` byte other than 0 or 1.
    #[error("`{field}` at byte {offset}: a bool must be 0 or 1, found {value}")]
    Bool {
        /// The innermost field's name.
        field: &'static str,
        /// Offset in the input.
        offset: usize,
        /// The byte found.
        value: u8,
    },
    /// An enum value that no variant declares.
    #[error("`{field}` at byte {offset}: {value} is not a value of enum `{enum_name}`")]
    Enum {
        /// The innermost field's name.
        field: &'static str,
        /// Offset in the input.
        offset: usize,
        /// The enum's qualified name.
        enum_name: &'static str,
        /// The value found.
        value: i128,
    },
    /// A bounded type's length past its capacity.
    #[error("`{field}` at byte {offset}: length {len} exceeds the capacity {capacity}")]
    TooLong {
        /// The innermost field's name.
        field: &'static str,
        /// Offset of the length in the input.
        offset: usize,
        /// The length found.
        len: u32,
        /// The capacity.
        capacity: usize,
    },
    /// A string that is not UTF-8.
    #[error("`{field}` at byte {offset}: invalid UTF-8")]
    Utf8 {
        /// The innermost field's name.
        field: &'static str,
        /// Offset of the first invalid byte in the input.
        offset: usize,
    },
    /// A non-zero byte in a padding field.
    #[error("`{field}` at byte {offset}: padding must be zero")]
    Padding {
        /// The padding field's name.
        field: &'static str,
        /// Offset of the non-zero byte.
        offset: usize,
    },
    /// A non-zero byte in a sequence's reserved bytes.
    #[error("`{field}` at byte {offset}: a sequence's reserved bytes must be zero")]
    Reserved {
        /// The innermost field's name.
        field: &'static str,
        /// Offset of the non-zero byte.
        offset: usize,
    },
    /// A non-zero byte past a bounded type's length.
    #[error("`{field}` at byte {offset}: bytes past the length must be zero")]
    Tail {
        /// The innermost field's name.
        field: &'static str,
        /// Offset of the non-zero byte.
        offset: usize,
    },
    /// The type's [`TypeLayout`] contradicts its size (a hand-written
    /// `ShmSafe` impl; derived ones are always consistent).
    #[error("the layout description of `{type_name}` does not match its size")]
    Layout {
        /// The Rust type.
        type_name: &'static str,
    },
}

/// Writes `value`'s wire form into the start of `buf`; returns the number
/// of bytes written (`size_of::<T>()`).
///
/// One copy. A value that another process left broken (a length past the
/// capacity, say) is copied as it is, and refused by the decoder.
pub fn encode<T: ShmSafe>(value: &T, buf: &mut [u8]) -> Result<usize, WireError> {
    let bytes = as_bytes(value)?;
    let found = buf.len();
    let out = buf
        .get_mut(..bytes.len())
        .ok_or(WireError::BufferTooSmall {
            needed: bytes.len(),
            found,
        })?;
    out.copy_from_slice(bytes);
    Ok(bytes.len())
}

/// `value`'s wire form, borrowed: a fixed-layout message's wire form is
/// its bytes, so encoding copies nothing until the caller does (the
/// websocket publisher writes them once into the frame).
///
/// # Errors
///
/// [`WireError::NoWireForm`] for a type with an atomic field.
pub fn encode_ref<T: ShmSafe>(value: &T) -> Result<&[u8], WireError> {
    as_bytes(value)
}

/// `value`'s wire form in a new `Vec`.
pub fn encode_to_vec<T: ShmSafe>(value: &T) -> Result<Vec<u8>, WireError> {
    Ok(as_bytes(value)?.to_vec())
}

/// Appends `value`'s wire form to `out`.
pub fn encode_extend<T: ShmSafe>(value: &T, out: &mut Vec<u8>) -> Result<(), WireError> {
    out.extend_from_slice(as_bytes(value)?);
    Ok(())
}

/// The bytes of `value`, which are its wire form.
fn as_bytes<T: ShmSafe>(value: &T) -> Result<&[u8], WireError> {
    if T::LAYOUT.atomic {
        return Err(WireError::NoWireForm {
            type_name: std::any::type_name::<T>(),
        });
    }
    let ptr = (value as *const T).cast::<u8>();
    // SAFETY: `ptr` points to a live `T` of `size_of::<T>()` bytes, borrowed
    // for the returned lifetime. Every byte is initialised: `ShmSafe`
    // promises "no byte is padding". Nothing writes the bytes while they are
    // borrowed: `T` has no atomic (checked above; `ShmSafe` types have no
    // other interior mutability), so `&T` makes them immutable.
    Ok(unsafe { std::slice::from_raw_parts(ptr, size_of::<T>()) })
}

/// Checks that `bytes` is a valid wire form of `T`, rule by rule.
pub fn validate<T: ShmSafe>(bytes: &[u8]) -> Result<(), WireError> {
    if T::LAYOUT.atomic {
        return Err(WireError::NoWireForm {
            type_name: std::any::type_name::<T>(),
        });
    }
    if bytes.len() != size_of::<T>() {
        return Err(WireError::Length {
            type_name: std::any::type_name::<T>(),
            expected: size_of::<T>(),
            found: bytes.len(),
        });
    }
    check(T::LAYOUT, bytes, 0, "").map_err(|e| match *e {
        Invalid::Wire(e) => e,
        Invalid::Layout => WireError::Layout {
            type_name: std::any::type_name::<T>(),
        },
    })
}

/// Decodes a `T` from exactly `size_of::<T>()` bytes: validation, then one
/// copy.
pub fn decode<T: ShmSafe>(bytes: &[u8]) -> Result<T, WireError> {
    validate::<T>(bytes)?;
    let mut out = std::mem::MaybeUninit::<T>::uninit();
    // SAFETY: `validate` checked `bytes.len() == size_of::<T>()`, the size
    // of `out`; a local cannot overlap a borrowed slice.
    unsafe {
        out.as_mut_ptr()
            .cast::<u8>()
            .copy_from_nonoverlapping(bytes.as_ptr(), bytes.len())
    };
    // SAFETY: every byte of `out` was just written, and every byte pattern
    // is a valid `T` (`ShmSafe`).
    Ok(unsafe { out.assume_init() })
}

/// Decodes over an existing value: validation, then one copy (no
/// temporary, which a 4 KiB `decode` by value may cost several of). On
/// error `dst` is unchanged.
pub fn decode_in_place<T: ShmSafe>(bytes: &[u8], dst: &mut T) -> Result<(), WireError> {
    if std::mem::needs_drop::<T>() {
        // Run the old value's destructor, as an assignment does.
        *dst = decode(bytes)?;
        return Ok(());
    }
    validate::<T>(bytes)?;
    let dst = (dst as *mut T).cast::<u8>();
    // SAFETY: `dst` is a live, exclusively borrowed `T` of `size_of::<T>()`
    // bytes, which `validate` checked `bytes` has; a shared and an exclusive
    // borrow cannot overlap. Every byte pattern is a valid `T` (`ShmSafe`),
    // and `T` needs no drop, so overwriting loses nothing.
    unsafe { dst.copy_from_nonoverlapping(bytes.as_ptr(), bytes.len()) };
    Ok(())
}

/// Decodes `bytes` straight into a pool slot: validation, then one copy
/// into shared memory (no copy on the heap). On error the slot goes back to
/// its pool.
pub fn decode_into<T: ShmSafe>(
    bytes: &[u8],
    mut slot: crate::UninitSample<T>,
) -> Result<crate::SampleMut<T>, WireError> {
    validate::<T>(bytes)?;
    let dst = slot.as_mut_ptr().cast::<u8>();
    // SAFETY: `dst` is the slot, valid for `size_of::<T>()` bytes and ours
    // alone (an `UninitSample` is the only handle to it); `bytes` has that
    // length (checked by `validate`) and cannot overlap a slot we own
    // exclusively.
    unsafe {
        dst.as_ptr()
            .copy_from_nonoverlapping(bytes.as_ptr(), bytes.len())
    };
    // SAFETY: every byte of the slot was just written, and every byte
    // pattern is a valid `T` (`ShmSafe`).
    Ok(unsafe { slot.assume_init() })
}

/// The name a [`WireError`] gives a type known at run time: its qualified
/// name for a struct or enum.
fn dyn_name(ty: &DynType) -> &'static str {
    match ty.layout().kind {
        TypeKind::Struct { name, .. } | TypeKind::Enum { name, .. } => name,
        _ => "DynMessage",
    }
}

/// Checks that `bytes` is a valid wire form of `ty`, a type known at run
/// time, rule by rule: what [`validate`] does for a Rust type.
pub fn validate_dyn(ty: &DynType, bytes: &[u8]) -> Result<(), WireError> {
    let layout = ty.layout();
    if layout.atomic {
        return Err(WireError::NoWireForm {
            type_name: dyn_name(ty),
        });
    }
    if bytes.len() != layout.size {
        return Err(WireError::Length {
            type_name: dyn_name(ty),
            expected: layout.size,
            found: bytes.len(),
        });
    }
    check(layout, bytes, 0, "").map_err(|e| match *e {
        Invalid::Wire(e) => e,
        Invalid::Layout => WireError::Layout {
            type_name: dyn_name(ty),
        },
    })
}

/// The wire form of `message`, a message of `ty`: its bytes, refused for a
/// type with an atomic (no wire form) or bytes of another size.
pub fn encode_dyn<'m>(ty: &DynType, message: &'m DynMessage) -> Result<&'m [u8], WireError> {
    if ty.layout().atomic {
        return Err(WireError::NoWireForm {
            type_name: dyn_name(ty),
        });
    }
    if message.len() != ty.size() {
        return Err(WireError::Length {
            type_name: dyn_name(ty),
            expected: ty.size(),
            found: message.len(),
        });
    }
    Ok(message.as_bytes())
}

/// Decodes `bytes`, the wire form of a message of `ty`, straight into a
/// pool slot: validation, then one copy into shared memory. The slot must
/// be of a pool of `ty` ([`Publisher::loan_uninit`](crate::Publisher)); on
/// error it goes back to its pool.
pub fn decode_dyn_into(
    ty: &DynType,
    bytes: &[u8],
    mut slot: crate::UninitSample<DynMessage>,
) -> Result<crate::SampleMut<DynMessage>, WireError> {
    validate_dyn(ty, bytes)?;
    let dst = slot.as_mut_ptr().as_ptr() as *mut [u8];
    if dst.len() != bytes.len() {
        return Err(WireError::Length {
            type_name: dyn_name(ty),
            expected: dst.len(),
            found: bytes.len(),
        });
    }
    // SAFETY: `dst` is the slot, valid for `dst.len()` bytes and ours alone
    // (an `UninitSample` is the only handle to it); `bytes` has that length
    // (checked above) and cannot overlap a slot we own exclusively.
    unsafe {
        dst.cast::<u8>()
            .copy_from_nonoverlapping(bytes.as_ptr(), bytes.len())
    };
    // SAFETY: every byte of the slot was just written; a `DynMessage` is
    // bytes, any of which are valid.
    Ok(unsafe { slot.assume_init() })
}

/// Why `check` failed: bad input, or a layout that contradicts itself.
enum Invalid {
    Wire(WireError),
    Layout,
}

/// `check`'s result. The error is boxed so that the success path, taken once
/// per field, returns one register instead of a large enum through memory
/// (measured: a third of the validation time of a message of strings).
type Checked<T = ()> = Result<T, Box<Invalid>>;

impl From<WireError> for Box<Invalid> {
    #[cold]
    fn from(e: WireError) -> Self {
        Box::new(Invalid::Wire(e))
    }
}

#[cold]
fn bad_layout() -> Box<Invalid> {
    Box::new(Invalid::Layout)
}

/// `bytes[range]`, or `Invalid::Layout` if the layout points outside.
fn sub(bytes: &[u8], start: usize, len: usize) -> Checked<&[u8]> {
    start
        .checked_add(len)
        .and_then(|end| bytes.get(start..end))
        .ok_or_else(bad_layout)
}

/// The offset of the first non-zero byte of `bytes`, if any.
fn first_nonzero(bytes: &[u8]) -> Option<usize> {
    // Compare eight bytes at a time: tails of bounded types can be long.
    let mut chunks = bytes.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes(chunk.try_into().unwrap_or([0; 8]));
        if word != 0 {
            return chunk.iter().position(|&b| b != 0).map(|i| base + i);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b != 0)
        .map(|i| base + i)
}

/// Validates `bytes` (exactly `layout.size` of them) found at offset `at`
/// of the input, inside field `field`.
fn check(layout: &TypeLayout, bytes: &[u8], at: usize, field: &'static str) -> Checked {
    if bytes.len() != layout.size {
        return Err(bad_layout());
    }
    if layout.plain {
        return Ok(());
    }
    match layout.kind {
        TypeKind::Primitive(_) | TypeKind::Atomic(_) => Ok(()),
        TypeKind::Bool => match bytes.first() {
            Some(0 | 1) => Ok(()),
            Some(&value) => Err(WireError::Bool {
                field,
                offset: at,
                value,
            }
            .into()),
            None => Err(bad_layout()),
        },
        TypeKind::Enum {
            name,
            repr,
            variants,
        } => {
            let value = repr.read_int(bytes).ok_or_else(bad_layout)?;
            if variants.iter().any(|v| v.value == value) {
                Ok(())
            } else {
                Err(WireError::Enum {
                    field,
                    offset: at,
                    enum_name: name,
                    value,
                }
                .into())
            }
        }
        TypeKind::Array { element, len } => check_elements(element, bytes, 0, len, at, field),
        TypeKind::String { capacity } | TypeKind::Bytes { capacity } => {
            let len = bounded_len(bytes, capacity, at, field)?;
            let content = sub(bytes, 4, len)?;
            if matches!(layout.kind, TypeKind::String { .. }) && !content.is_ascii() {
                if let Err(e) = std::str::from_utf8(content) {
                    return Err(WireError::Utf8 {
                        field,
                        offset: at + 4 + e.valid_up_to(),
                    }
                    .into());
                }
            }
            all_zero(bytes, 4 + len, at, field, tail)
        }
        TypeKind::Sequence { element, capacity } => {
            let len = bounded_len(bytes, capacity, at, field)?;
            all_zero(sub(bytes, 0, 8)?, 4, at, field, reserved)?;
            check_elements(element, bytes, 8, len, at, field)?;
            all_zero(bytes, 8 + len * element.size, at, field, tail)
        }
        TypeKind::Struct { fields, .. } => {
            for f in fields {
                let part = sub(bytes, f.offset, f.ty.size)?;
                if f.padding {
                    all_zero(part, 0, at + f.offset, f.name, padding)?;
                } else {
                    check(f.ty, part, at + f.offset, f.name)?;
                }
            }
            Ok(())
        }
    }
}

/// Checks `count` elements of `element` laid out from `start` of `bytes`
/// (nothing to do for plain elements).
fn check_elements(
    element: &TypeLayout,
    bytes: &[u8],
    start: usize,
    count: usize,
    at: usize,
    field: &'static str,
) -> Checked {
    if element.plain {
        return Ok(());
    }
    for i in 0..count {
        let offset = start + i * element.size;
        check(
            element,
            sub(bytes, offset, element.size)?,
            at + offset,
            field,
        )?;
    }
    Ok(())
}

/// Checks that `bytes[from..]` are all zero; `error` names the rule a
/// non-zero byte breaks, given the field and its offset in the input.
fn all_zero(
    bytes: &[u8],
    from: usize,
    at: usize,
    field: &'static str,
    error: fn(&'static str, usize) -> WireError,
) -> Checked {
    let rest = bytes.get(from..).ok_or_else(bad_layout)?;
    match first_nonzero(rest) {
        None => Ok(()),
        Some(i) => Err(error(field, at + from + i).into()),
    }
}

fn tail(field: &'static str, offset: usize) -> WireError {
    WireError::Tail { field, offset }
}

fn reserved(field: &'static str, offset: usize) -> WireError {
    WireError::Reserved { field, offset }
}

fn padding(field: &'static str, offset: usize) -> WireError {
    WireError::Padding { field, offset }
}

/// The length of a bounded type at the start of `bytes`, checked against
/// its capacity.
fn bounded_len(bytes: &[u8], capacity: usize, at: usize, field: &'static str) -> Checked<usize> {
    let raw: [u8; 4] = sub(bytes, 0, 4)?.try_into().map_err(|_| bad_layout())?;
    let len = u32::from_le_bytes(raw);
    if len as usize > capacity {
        return Err(WireError::TooLong {
            field,
            offset: at,
            len,
            capacity,
        }
        .into());
    }
    Ok(len as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bool, FixedSizeBytes, FixedSizeString, FixedSizeVec};

    #[test]
    fn first_nonzero_finds_the_first_byte_in_any_position() {
        for len in 0..40 {
            for hot in 0..len {
                let mut b = vec![0u8; len];
                b[hot] = 1;
                if hot + 1 < len {
                    b[len - 1] = 2;
                }
                assert_eq!(first_nonzero(&b), Some(hot));
            }
            assert_eq!(first_nonzero(&vec![0u8; len]), None);
        }
    }

    #[test]
    fn plain_types_round_trip_and_check_their_length() {
        let v = [1.5f64, -2.0, 3.25];
        let bytes = encode_to_vec(&v).unwrap();
        assert_eq!(decode::<[f64; 3]>(&bytes).unwrap(), v);
        assert!(matches!(
            decode::<[f64; 3]>(&bytes[1..]),
            Err(WireError::Length {
                expected: 24,
                found: 23,
                ..
            })
        ));
        let mut small = [0u8; 4];
        assert_eq!(
            encode(&v, &mut small),
            Err(WireError::BufferTooSmall {
                needed: 24,
                found: 4
            })
        );
    }

    #[test]
    fn bounded_types_reject_each_broken_rule() {
        let s = FixedSizeString::<4>::try_from("hé").unwrap();
        let good = encode_to_vec(&s).unwrap();
        assert_eq!(good, [3, 0, 0, 0, b'h', 0xc3, 0xa9, 0]);
        decode::<FixedSizeString<4>>(&good).unwrap();
        let mut long = good.clone();
        long[0] = 5;
        assert!(matches!(
            decode::<FixedSizeString<4>>(&long),
            Err(WireError::TooLong { len: 5, .. })
        ));
        let mut utf8 = good.clone();
        utf8[6] = 0x41; // breaks the two-byte `é`
        assert!(matches!(
            decode::<FixedSizeString<4>>(&utf8),
            Err(WireError::Utf8 { offset: 5, .. })
        ));
        let mut tail = good.clone();
        tail[7] = 1;
        assert!(matches!(
            decode::<FixedSizeString<4>>(&tail),
            Err(WireError::Tail { offset: 7, .. })
        ));

        let b = FixedSizeBytes::<2>::try_from(&[0xff][..]).unwrap();
        let bytes = encode_to_vec(&b).unwrap();
        assert_eq!(decode::<FixedSizeBytes<2>>(&bytes).unwrap(), b);

        let v = FixedSizeVec::<Bool, 3>::try_from(&[Bool::TRUE][..]).unwrap();
        let good = encode_to_vec(&v).unwrap();
        assert_eq!(good, [1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
        let mut reserved = good.clone();
        reserved[6] = 9;
        assert!(matches!(
            decode::<FixedSizeVec<Bool, 3>>(&reserved),
            Err(WireError::Reserved { offset: 6, .. })
        ));
        let mut bool2 = good.clone();
        bool2[8] = 2;
        assert!(matches!(
            decode::<FixedSizeVec<Bool, 3>>(&bool2),
            Err(WireError::Bool {
                offset: 8,
                value: 2,
                ..
            })
        ));
        let mut item_tail = good;
        item_tail[10] = 1;
        assert!(matches!(
            decode::<FixedSizeVec<Bool, 3>>(&item_tail),
            Err(WireError::Tail { offset: 10, .. })
        ));
    }

    #[test]
    fn atomics_have_no_wire_form() {
        let a = std::sync::atomic::AtomicU32::new(1);
        assert!(matches!(
            encode_to_vec(&a),
            Err(WireError::NoWireForm { .. })
        ));
        assert!(matches!(
            validate::<std::sync::atomic::AtomicU32>(&[0; 4]),
            Err(WireError::NoWireForm { .. })
        ));
    }
}
