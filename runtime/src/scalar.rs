//! `bool` and enums as they are stored in shared memory: [`Bool`] and
//! [`Enum<E>`], integers whose every value is valid, read back through a
//! checked accessor.
//!
//! A Rust `bool` or enum with an undeclared discriminant is undefined
//! behaviour the moment it is read. Bytes in a pool slot may come from
//! another process: a bug, a program in another language, a process killed
//! mid-write. So a message field never *is* a Rust `bool` or enum; it is a
//! one-to-eight byte integer with the same layout, and the Rust value is
//! made when the field is read: [`Bool::get`] (non-zero is `true`),
//! [`Enum::get`] (`Err` for an undeclared value). The wire codec is stricter
//! and refuses anything but 0/1 and the declared values.
//!
//! ```
//! use shmidl::{Bool, Enum, ShmMessage};
//!
//! #[derive(ShmMessage, Clone, Copy, Debug, PartialEq, Eq)]
//! #[repr(u8)]
//! #[shm(name = "robot.v1.Mode")]
//! enum Mode { Idle = 0, Run = 1, Fault = 2 }
//!
//! #[derive(ShmMessage)]
//! #[repr(C)]
//! struct Status { mode: Enum<Mode>, armed: Bool }
//!
//! let mut status = Status { mode: Mode::Run.into(), armed: true.into() };
//! assert_eq!(status.mode.get(), Ok(Mode::Run));
//! match status.mode.get() {
//!     Ok(Mode::Run) => {}
//!     Ok(other) => panic!("{other:?}"),
//!     Err(undeclared) => panic!("another process wrote {}", undeclared.value()),
//! }
//! status.mode.set(Mode::Fault);
//! assert!(status.armed.get());
//! ```

use std::{fmt, hash::Hash, marker::PhantomData};

use crate::{
    layout::{Primitive, TypeKind, TypeLayout},
    ShmSafe,
};

/// A `bool` as it is stored in shared memory: one byte, `0` is `false`.
///
/// Any byte is a valid `Bool` ([`get`](Self::get) reads a non-zero byte as
/// `true`); the wire codec accepts only `0` and `1`. Its fingerprint and
/// layout are those of the schema's `bool`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct Bool(u8);

impl Bool {
    /// `false`.
    pub const FALSE: Bool = Bool(0);
    /// `true`.
    pub const TRUE: Bool = Bool(1);

    /// A `Bool` holding `value`.
    #[must_use]
    pub const fn new(value: bool) -> Self {
        Bool(value as u8)
    }

    /// The value: `true` for any non-zero byte.
    #[must_use]
    pub const fn get(self) -> bool {
        self.0 != 0
    }

    /// Stores `value`.
    pub fn set(&mut self, value: bool) {
        self.0 = u8::from(value);
    }

    /// The stored byte, exactly as written (0 and 1 when written by this
    /// crate).
    #[must_use]
    pub const fn raw(self) -> u8 {
        self.0
    }
}

impl From<bool> for Bool {
    fn from(value: bool) -> Self {
        Bool::new(value)
    }
}

impl From<Bool> for bool {
    fn from(value: Bool) -> Self {
        value.get()
    }
}

impl PartialEq<bool> for Bool {
    fn eq(&self, other: &bool) -> bool {
        self.get() == *other
    }
}

impl fmt::Debug for Bool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 | 1 => fmt::Debug::fmt(&self.get(), f),
            raw => write!(f, "true (raw {raw})"),
        }
    }
}

impl fmt::Display for Bool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.get(), f)
    }
}

// SAFETY: `#[repr(transparent)]` over `u8`: one byte, no padding, every
// byte pattern a valid value (a `u8`), no pointer, no drop. The fingerprint
// is the schema's `primitive("bool")`.
unsafe impl ShmSafe for Bool {
    const FINGERPRINT: u64 = crate::fingerprint::primitive("bool");
    const LAYOUT: &'static TypeLayout = &TypeLayout {
        size: 1,
        align: 1,
        fingerprint: Self::FINGERPRINT,
        plain: false,
        atomic: false,
        kind: TypeKind::Bool,
    };
}

mod sealed {
    pub trait Sealed {}
}

/// The integer types an enum can be stored as: `u8`…`u64`, `i8`…`i64`.
/// Sealed.
pub trait EnumRepr:
    ShmSafe + Copy + Eq + Ord + Hash + Default + fmt::Debug + fmt::Display + sealed::Sealed
{
    /// The schema primitive.
    const PRIMITIVE: Primitive;

    /// The value, sign- or zero-extended.
    fn to_i128(self) -> i128;
}

macro_rules! enum_repr {
    ($($t:ty => $p:ident),*) => {$(
        impl sealed::Sealed for $t {}
        impl EnumRepr for $t {
            const PRIMITIVE: Primitive = Primitive::$p;
            fn to_i128(self) -> i128 {
                i128::from(self)
            }
        }
    )*};
}

enum_repr!(u8 => U8, u16 => U16, u32 => U32, u64 => U64, i8 => I8, i16 => I16, i32 => I32, i64 => I64);

/// A fieldless Rust enum with an integer `#[repr]`, usable in messages as
/// [`Enum<Self>`](Enum).
///
/// Derive it with `#[derive(ShmMessage)]` on a `#[repr(u8)]` (… `i64`)
/// enum of unit variants; don't implement it by hand. The derive computes
/// the schema's enum fingerprint (name, repr, each variant's name and
/// value), so a derived enum and a schema enum with the same declaration
/// match.
pub trait ShmEnum: Copy + Send + Sync + 'static {
    /// The integer type the enum is stored as.
    type Repr: EnumRepr;

    /// The structural fingerprint (`docs/schema-language.md` §6, enum row).
    const FINGERPRINT: u64;

    /// The layout: `TypeKind::Enum` with the declared variants.
    const LAYOUT: &'static TypeLayout;

    /// The variant whose value is `raw`, if one is declared.
    fn from_repr(raw: Self::Repr) -> Option<Self>;

    /// The variant's value.
    fn to_repr(self) -> Self::Repr;
}

/// An enum as it is stored in shared memory: its integer, whatever another
/// process wrote, read back with a checked [`get`](Self::get).
///
/// Same size, alignment, fingerprint and layout as the schema enum `E`.
#[repr(transparent)]
pub struct Enum<E: ShmEnum> {
    raw: E::Repr,
    _enum: PhantomData<E>,
}

/// An [`Enum`] held a value that no variant declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{value} is not a declared value of enum `{name}`")]
pub struct UndeclaredValue {
    name: &'static str,
    value: i128,
}

impl UndeclaredValue {
    /// The value found.
    #[must_use]
    pub fn value(&self) -> i128 {
        self.value
    }

    /// The enum's qualified name.
    #[must_use]
    pub fn enum_name(&self) -> &'static str {
        self.name
    }
}

impl<E: ShmEnum> Enum<E> {
    /// Stores `value`.
    #[must_use]
    pub fn new(value: E) -> Self {
        Self::from_raw(value.to_repr())
    }

    /// Stores an arbitrary integer (a later [`get`](Self::get) fails if no
    /// variant declares it).
    #[must_use]
    pub const fn from_raw(raw: E::Repr) -> Self {
        Enum {
            raw,
            _enum: PhantomData,
        }
    }

    /// The variant, or [`UndeclaredValue`] if the stored integer is not a
    /// declared value (written by another process or another program).
    pub fn get(self) -> Result<E, UndeclaredValue> {
        E::from_repr(self.raw).ok_or_else(|| UndeclaredValue {
            name: match E::LAYOUT.kind {
                TypeKind::Enum { name, .. } => name,
                _ => "?",
            },
            value: self.raw.to_i128(),
        })
    }

    /// Stores `value`.
    pub fn set(&mut self, value: E) {
        self.raw = value.to_repr();
    }

    /// The stored integer.
    #[must_use]
    pub const fn raw(self) -> E::Repr {
        self.raw
    }
}

impl<E: ShmEnum> From<E> for Enum<E> {
    fn from(value: E) -> Self {
        Enum::new(value)
    }
}

impl<E: ShmEnum> Clone for Enum<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E: ShmEnum> Copy for Enum<E> {}

impl<E: ShmEnum> PartialEq for Enum<E> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl<E: ShmEnum> Eq for Enum<E> {}

impl<E: ShmEnum + PartialEq> PartialEq<E> for Enum<E> {
    fn eq(&self, other: &E) -> bool {
        self.get().is_ok_and(|v| v == *other)
    }
}

impl<E: ShmEnum> Hash for Enum<E> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}

/// The enum's `Default` variant (generated enums mark their first variant).
impl<E: ShmEnum + Default> Default for Enum<E> {
    fn default() -> Self {
        Enum::new(E::default())
    }
}

impl<E: ShmEnum + fmt::Debug> fmt::Debug for Enum<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            Ok(value) => fmt::Debug::fmt(&value, f),
            Err(e) => write!(f, "<undeclared {}>", e.value),
        }
    }
}

// SAFETY: `#[repr(transparent)]` over `E::Repr` (plus a zero-sized
// `PhantomData`): the layout of an integer primitive, which `EnumRepr`'s
// seal guarantees, so no padding and every byte pattern a valid value; no
// pointer; `E: Send + Sync + 'static` by `ShmEnum`'s bounds and no drop.
// The fingerprint and layout are the enum's own.
unsafe impl<E: ShmEnum> ShmSafe for Enum<E> {
    const FINGERPRINT: u64 = E::FINGERPRINT;
    const LAYOUT: &'static TypeLayout = E::LAYOUT;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::EnumVariant;

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Dir {
        Up,
        Down,
    }

    impl ShmEnum for Dir {
        type Repr = i8;
        const FINGERPRINT: u64 = 7;
        const LAYOUT: &'static TypeLayout = &TypeLayout {
            size: 1,
            align: 1,
            fingerprint: 7,
            plain: false,
            atomic: false,
            kind: TypeKind::Enum {
                name: "t.Dir",
                repr: Primitive::I8,
                variants: &[
                    EnumVariant {
                        name: "Up",
                        value: 1,
                    },
                    EnumVariant {
                        name: "Down",
                        value: -1,
                    },
                ],
            },
        };
        fn from_repr(raw: i8) -> Option<Self> {
            match raw {
                1 => Some(Dir::Up),
                -1 => Some(Dir::Down),
                _ => None,
            }
        }
        fn to_repr(self) -> i8 {
            match self {
                Dir::Up => 1,
                Dir::Down => -1,
            }
        }
    }

    #[test]
    fn an_undeclared_value_is_an_error_not_undefined_behaviour() {
        let e = Enum::<Dir>::from_raw(5);
        let err = e.get().unwrap_err();
        assert_eq!(err.value(), 5);
        assert_eq!(err.to_string(), "5 is not a declared value of enum `t.Dir`");
        assert_eq!(format!("{e:?}"), "<undeclared 5>");
        assert_eq!(Enum::new(Dir::Down).get(), Ok(Dir::Down));
        assert_eq!(Enum::new(Dir::Down).raw(), -1);
        assert!(Enum::new(Dir::Up) == Dir::Up);
    }

    #[test]
    fn any_byte_is_a_bool() {
        let b: Bool = ShmSafe::zeroed();
        assert!(!b.get());
        // What another process may have written.
        let odd = Bool(7);
        assert!(odd.get());
        assert_eq!(format!("{odd:?}"), "true (raw 7)");
        assert_eq!(format!("{:?}", Bool::TRUE), "true");
        assert!(Bool::from(true) == true);
    }
}
