//! Static descriptions of type layouts: what a tool needs to walk, print or
//! validate a message it has no Rust type for.
//!
//! Every [`ShmSafe`](crate::ShmSafe) type has one, as
//! [`ShmSafe::LAYOUT`](crate::ShmSafe::LAYOUT): the runtime's own types
//! describe themselves, and `#[derive(ShmMessage)]` writes the description
//! of a struct (each field's name, offset and type) and of an enum (its
//! repr and variants). The wire codec ([`crate::wire`]) validates bytes by
//! walking this description, so a program in another language that follows
//! `docs/wire-format.md` decodes exactly what this crate accepts.
//!
//! ```
//! use shmidl::{layout::TypeKind, FixedSizeString, ShmSafe};
//!
//! let layout = <[FixedSizeString<32>; 4]>::LAYOUT;
//! assert_eq!(layout.size, 4 * 36);
//! assert_eq!(layout.describe(), "[string<32>; 4]");
//! assert!(matches!(layout.kind, TypeKind::Array { len: 4, .. }));
//! ```

use std::fmt::Write as _;

/// A primitive type of the schema language (besides `bool`, see
/// [`TypeKind::Bool`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Primitive {
    /// `u8`
    U8,
    /// `u16`
    U16,
    /// `u32`
    U32,
    /// `u64`
    U64,
    /// `i8`
    I8,
    /// `i16`
    I16,
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `f32`
    F32,
    /// `f64`
    F64,
}

impl Primitive {
    /// The schema spelling, which is also the Rust type's name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Primitive::U8 => "u8",
            Primitive::U16 => "u16",
            Primitive::U32 => "u32",
            Primitive::U64 => "u64",
            Primitive::I8 => "i8",
            Primitive::I16 => "i16",
            Primitive::I32 => "i32",
            Primitive::I64 => "i64",
            Primitive::F32 => "f32",
            Primitive::F64 => "f64",
        }
    }

    /// Size in bytes.
    #[must_use]
    pub const fn size(self) -> usize {
        match self {
            Primitive::U8 | Primitive::I8 => 1,
            Primitive::U16 | Primitive::I16 => 2,
            Primitive::U32 | Primitive::I32 | Primitive::F32 => 4,
            Primitive::U64 | Primitive::I64 | Primitive::F64 => 8,
        }
    }

    /// Whether this is a signed integer.
    #[must_use]
    pub const fn is_signed(self) -> bool {
        matches!(
            self,
            Primitive::I8 | Primitive::I16 | Primitive::I32 | Primitive::I64
        )
    }

    /// Reads an integer of this type from the first [`size`](Self::size)
    /// bytes of `bytes` (little-endian), sign- or zero-extended; `None` for
    /// floats or too few bytes.
    #[must_use]
    pub fn read_int(self, bytes: &[u8]) -> Option<i128> {
        let raw = bytes.get(..self.size())?;
        let mut buf = [0u8; 8];
        buf[..raw.len()].copy_from_slice(raw);
        let unsigned = u64::from_le_bytes(buf);
        Some(match self {
            Primitive::U8 | Primitive::U16 | Primitive::U32 | Primitive::U64 => {
                i128::from(unsigned)
            }
            Primitive::I8 => i128::from(unsigned as u8 as i8),
            Primitive::I16 => i128::from(unsigned as u16 as i16),
            Primitive::I32 => i128::from(unsigned as u32 as i32),
            Primitive::I64 => i128::from(unsigned as i64),
            Primitive::F32 | Primitive::F64 => return None,
        })
    }
}

/// The layout of one type: size, alignment, fingerprint and structure.
#[derive(Debug, Clone, Copy)]
pub struct TypeLayout {
    /// `size_of` the type, in bytes: also its size on the wire.
    pub size: usize,
    /// `align_of` the type.
    pub align: usize,
    /// The type's structural fingerprint (`ShmSafe::FINGERPRINT`).
    pub fingerprint: u64,
    /// Every byte pattern of `size` bytes is a valid value *on the wire*:
    /// no `bool`, enum, bounded type or padding anywhere inside, so
    /// decoding needs no validation pass.
    pub plain: bool,
    /// Contains an atomic somewhere: such a type lives in shared memory but
    /// has no wire form (its bytes cannot be copied while another thread may
    /// write them).
    pub atomic: bool,
    /// What the type is.
    pub kind: TypeKind,
}

/// The structure of a type.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum TypeKind {
    /// An integer or float.
    Primitive(Primitive),
    /// `bool` (`shmidl::Bool`): one byte, 0 or 1 on the wire.
    Bool,
    /// An atomic integer (`AtomicU32`…), only in shared memory.
    Atomic(Primitive),
    /// `[T; len]`.
    Array {
        /// The element type.
        element: &'static TypeLayout,
        /// The element count.
        len: usize,
    },
    /// `string<capacity>`: `u32` length, then `capacity` bytes of UTF-8.
    String {
        /// The most bytes it holds.
        capacity: usize,
    },
    /// `bytes<capacity>`: `u32` length, then `capacity` bytes.
    Bytes {
        /// The most bytes it holds.
        capacity: usize,
    },
    /// `sequence<T, capacity>`: `u32` length, 4 reserved bytes, then
    /// `capacity` elements.
    Sequence {
        /// The element type.
        element: &'static TypeLayout,
        /// The most elements it holds.
        capacity: usize,
    },
    /// An enum stored as its integer (`shmidl::Enum<E>`).
    Enum {
        /// The qualified name (`robot.v1.Mode`).
        name: &'static str,
        /// The integer type it is stored as.
        repr: Primitive,
        /// The declared variants; no other value is valid.
        variants: &'static [EnumVariant],
    },
    /// A `#[repr(C)]` struct or message.
    Struct {
        /// The qualified name (`robot.v1.JointState`).
        name: &'static str,
        /// Every field, explicit padding included, in declaration order.
        fields: &'static [FieldLayout],
    },
}

/// One field of a struct.
#[derive(Debug, Clone, Copy)]
pub struct FieldLayout {
    /// The field's name as hashed into the fingerprint (`type`, not
    /// `r#type`; `0`, `1`… for tuple fields).
    pub name: &'static str,
    /// Byte offset from the start of the struct.
    pub offset: usize,
    /// The field's type.
    pub ty: &'static TypeLayout,
    /// An explicit padding field (`#[shm(padding)]`): zero on the wire, not
    /// part of the fingerprint.
    pub padding: bool,
}

/// One variant of an enum.
#[derive(Debug, Clone, Copy)]
pub struct EnumVariant {
    /// The variant's name.
    pub name: &'static str,
    /// Its value.
    pub value: i128,
}

impl TypeLayout {
    /// The layout of a primitive.
    #[must_use]
    pub const fn primitive(primitive: Primitive, fingerprint: u64) -> Self {
        TypeLayout {
            size: primitive.size(),
            align: primitive.size(),
            fingerprint,
            plain: true,
            atomic: false,
            kind: TypeKind::Primitive(primitive),
        }
    }

    /// The canonical description, as `shmidl check -v` and
    /// `shmidl_idl::Schema::describe` print it: `u8`, `[string<32>; 16]`,
    /// `sequence<robot.v1.Vec3, 8>`; a struct or enum by its qualified name.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut out = String::new();
        self.describe_into(&mut out);
        out
    }

    fn describe_into(&self, out: &mut String) {
        // Writing to a `String` cannot fail.
        let _ = match self.kind {
            TypeKind::Primitive(p) => write!(out, "{}", p.name()),
            TypeKind::Bool => write!(out, "bool"),
            TypeKind::Atomic(p) => write!(out, "atomic<{}>", p.name()),
            TypeKind::Array { element, len } => {
                out.push('[');
                element.describe_into(out);
                write!(out, "; {len}]")
            }
            TypeKind::String { capacity } => write!(out, "string<{capacity}>"),
            TypeKind::Bytes { capacity } => write!(out, "bytes<{capacity}>"),
            TypeKind::Sequence { element, capacity } => {
                out.push_str("sequence<");
                element.describe_into(out);
                write!(out, ", {capacity}>")
            }
            TypeKind::Enum { name, .. } | TypeKind::Struct { name, .. } => write!(out, "{name}"),
        };
    }

    /// The definition of a struct or enum in the schema's canonical form
    /// (`struct robot.v1.Vec3 { x: f64, y: f64, z: f64 }`), padding fields
    /// left out; for other types the same as [`describe`](Self::describe).
    #[must_use]
    pub fn describe_def(&self) -> String {
        match self.kind {
            TypeKind::Struct { name, fields } => {
                let fields: Vec<String> = fields
                    .iter()
                    .filter(|f| !f.padding)
                    .map(|f| format!("{}: {}", f.name, f.ty.describe()))
                    .collect();
                format!("struct {name} {{ {} }}", fields.join(", "))
            }
            TypeKind::Enum {
                name,
                repr,
                variants,
            } => {
                let variants: Vec<String> = variants
                    .iter()
                    .map(|v| format!("{} = {}", v.name, v.value))
                    .collect();
                format!("enum {name}: {} {{ {} }}", repr.name(), variants.join(", "))
            }
            _ => self.describe(),
        }
    }
}

/// `a && b` for `const` contexts over a list (used by derived layouts).
#[doc(hidden)]
#[must_use]
pub const fn all(flags: &[bool]) -> bool {
    let mut i = 0;
    while i < flags.len() {
        if !flags[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `a || b` for `const` contexts over a list (used by derived layouts).
#[doc(hidden)]
#[must_use]
pub const fn any(flags: &[bool]) -> bool {
    let mut i = 0;
    while i < flags.len() {
        if flags[i] {
            return true;
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_read_sign_extended() {
        assert_eq!(Primitive::I8.read_int(&[0xff]), Some(-1));
        assert_eq!(Primitive::U8.read_int(&[0xff]), Some(255));
        assert_eq!(Primitive::I64.read_int(&[0xff; 8]), Some(-1));
        assert_eq!(
            Primitive::U64.read_int(&[0xff; 8]),
            Some(i128::from(u64::MAX))
        );
        assert_eq!(Primitive::U32.read_int(&[1, 0]), None);
        assert_eq!(Primitive::F32.read_int(&[0; 4]), None);
    }
}
