//! The validated, typed model of a set of schema files: what code generators consume.
//!
//! Every name is resolved, every bound is a number, every type has its [`Layout`] and
//! fingerprint. A [`Schema`] only exists if validation found no errors.

use std::{collections::HashMap, fmt, sync::Arc};

use crate::{
    diagnostic::Diagnostics,
    fingerprint::Fingerprinter,
    source::{FileId, SourceFile, SourceMap, Span},
};

/// The built-in scalar types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Primitive {
    /// `bool`: one byte, 0 or 1.
    Bool,
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
    /// `f32` (IEEE 754 binary32)
    F32,
    /// `f64` (IEEE 754 binary64)
    F64,
}

impl Primitive {
    /// Every primitive, in the order of the reference documentation.
    pub const ALL: [Primitive; 11] = [
        Primitive::Bool,
        Primitive::U8,
        Primitive::U16,
        Primitive::U32,
        Primitive::U64,
        Primitive::I8,
        Primitive::I16,
        Primitive::I32,
        Primitive::I64,
        Primitive::F32,
        Primitive::F64,
    ];

    /// The schema spelling (`"u32"`), which is also the Rust type name.
    pub const fn name(self) -> &'static str {
        match self {
            Primitive::Bool => "bool",
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

    /// The primitive spelled `name`, if any.
    pub fn from_name(name: &str) -> Option<Primitive> {
        Primitive::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Size in bytes, which is also the alignment.
    pub const fn size(self) -> u64 {
        match self {
            Primitive::Bool | Primitive::U8 | Primitive::I8 => 1,
            Primitive::U16 | Primitive::I16 => 2,
            Primitive::U32 | Primitive::I32 | Primitive::F32 => 4,
            Primitive::U64 | Primitive::I64 | Primitive::F64 => 8,
        }
    }

    /// Whether this is one of the eight integer types.
    pub const fn is_integer(self) -> bool {
        self.int_range().is_some()
    }

    /// Whether this is `f32` or `f64`.
    pub const fn is_float(self) -> bool {
        matches!(self, Primitive::F32 | Primitive::F64)
    }

    /// The inclusive value range of an integer type; `None` for `bool` and floats.
    pub const fn int_range(self) -> Option<(i128, i128)> {
        match self {
            Primitive::U8 => Some((0, u8::MAX as i128)),
            Primitive::U16 => Some((0, u16::MAX as i128)),
            Primitive::U32 => Some((0, u32::MAX as i128)),
            Primitive::U64 => Some((0, u64::MAX as i128)),
            Primitive::I8 => Some((i8::MIN as i128, i8::MAX as i128)),
            Primitive::I16 => Some((i16::MIN as i128, i16::MAX as i128)),
            Primitive::I32 => Some((i32::MIN as i128, i32::MAX as i128)),
            Primitive::I64 => Some((i64::MIN as i128, i64::MAX as i128)),
            Primitive::Bool | Primitive::F32 | Primitive::F64 => None,
        }
    }

    /// Its layout: size and alignment are equal.
    pub const fn layout(self) -> Layout {
        Layout {
            size: self.size(),
            align: self.size(),
        }
    }

    /// `FNV-1a(str("prim") str(name))`.
    pub fn fingerprint(self) -> u64 {
        Fingerprinter::new().str("prim").str(self.name()).finish()
    }
}

impl fmt::Display for Primitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Size and alignment in bytes, following `#[repr(C)]` rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    /// Size in bytes, a multiple of `align`.
    pub size: u64,
    /// Alignment in bytes, a power of two.
    pub align: u64,
}

impl Layout {
    /// Layout of `[T; len]`, or `None` on overflow.
    pub fn array(element: Layout, len: u64) -> Option<Layout> {
        Some(Layout {
            size: element.size.checked_mul(len)?,
            align: element.align,
        })
    }

    /// Layout of `string<capacity>` and `bytes<capacity>`: `{ len: u32 as 4
    /// little-endian bytes, bytes: [u8; N] }`, size `4 + N`, alignment 1 (no padding
    /// anywhere, so every byte of a message is initialised and its memory is its wire
    /// form).
    pub fn string(capacity: u64) -> Option<Layout> {
        Some(Layout {
            size: capacity.checked_add(4)?,
            align: 1,
        })
    }

    /// Layout of `sequence<T, capacity>`: `{ len: u32 as 4 little-endian bytes,
    /// reserved: 4 zero bytes, items: [T; N] }`, items at offset 8 (aligned for every
    /// schema type), size `8 + N × size(T)`, the alignment of `T`.
    pub fn sequence(element: Layout, capacity: u64) -> Option<Layout> {
        let items = Self::sequence_items_offset(element);
        let size = items.checked_add(element.size.checked_mul(capacity)?)?;
        Some(Layout {
            size: round_up(size, element.align)?,
            align: element.align,
        })
    }

    /// Offset of the `items` array inside a sequence: always 8.
    pub fn sequence_items_offset(_element: Layout) -> u64 {
        8
    }
}

/// `value` rounded up to a multiple of `align` (a power of two), or `None` on overflow.
pub(crate) fn round_up(value: u64, align: u64) -> Option<u64> {
    let mask = align.checked_sub(1)?;
    Some(value.checked_add(mask)? & !mask)
}

/// Index of a [`TypeDef`] in [`Schema::types`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub(crate) u32);

impl TypeId {
    /// The position in [`Schema::types`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A resolved type, as used by a field or an array element.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    /// A primitive.
    Primitive(Primitive),
    /// `[element; len]`
    Array {
        /// The element type.
        element: Box<Type>,
        /// The number of elements (at least 1).
        len: u64,
    },
    /// `string<capacity>`: UTF-8 text of at most `capacity` bytes.
    String {
        /// Maximum length in bytes (at least 1).
        capacity: u64,
    },
    /// `bytes<capacity>`: at most `capacity` bytes.
    Bytes {
        /// Maximum length in bytes (at least 1).
        capacity: u64,
    },
    /// `sequence<element, capacity>`: at most `capacity` elements.
    Sequence {
        /// The element type.
        element: Box<Type>,
        /// Maximum number of elements (at least 1).
        capacity: u64,
    },
    /// A struct, message or enum declared in the schema.
    Named(TypeId),
}

/// A declared struct, message or enum.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TypeDef {
    /// Its id: its index in [`Schema::types`].
    pub id: TypeId,
    /// The name as declared (`Vec3`).
    pub name: String,
    /// The package path (`["robot", "v1"]`); empty without a `package` declaration.
    pub package: Vec<String>,
    /// Package and name joined with `.` (`robot.v1.Vec3`), as hashed in fingerprints.
    pub qualified_name: String,
    /// Doc comment lines, without the `///` marker.
    pub docs: Vec<String>,
    /// Struct or enum details.
    pub kind: TypeDefKind,
    /// Size and alignment.
    pub layout: Layout,
    /// The 64-bit fingerprint.
    pub fingerprint: u64,
    /// The file that declares it.
    pub file: FileId,
    /// The declared name in that file.
    pub span: Span,
}

/// Struct or enum.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeDefKind {
    /// `struct` or `message`.
    Struct(StructDef),
    /// `enum`.
    Enum(EnumDef),
}

/// The fields of a struct or message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StructDef {
    /// Declared with `message` (may be a topic payload).
    pub is_message: bool,
    /// The fields in declaration order, with offsets.
    pub fields: Vec<Field>,
    /// Padding bytes after the last field, up to the struct's size.
    pub trailing_padding: u64,
}

/// One field with its place in the struct.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Field {
    /// The name as written (may be a Rust keyword; generators escape it).
    pub name: String,
    /// Doc comment lines.
    pub docs: Vec<String>,
    /// The resolved type.
    pub ty: Type,
    /// Size and alignment of the type.
    pub layout: Layout,
    /// Byte offset from the start of the struct.
    pub offset: u64,
    /// Padding bytes inserted before this field to align it.
    pub padding_before: u64,
    /// The field's name in its file.
    pub span: Span,
}

/// An enum's representation and variants.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EnumDef {
    /// The integer type that stores it.
    pub repr: Primitive,
    /// The variants in declaration order.
    pub variants: Vec<Variant>,
}

/// One enum variant.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Variant {
    /// Its name.
    pub name: String,
    /// Doc comment lines.
    pub docs: Vec<String>,
    /// Its value, within the range of the repr.
    pub value: i128,
    /// Its name in its file.
    pub span: Span,
}

impl Variant {
    /// The value as hashed in fingerprints: two's complement in 64 bits.
    pub fn value_bits(&self) -> u64 {
        // Values are within the range of an integer repr (at most 64 bits), so the
        // truncation keeps exactly the two's complement bits.
        self.value as u64
    }
}

/// A constant.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Const {
    /// Its name.
    pub name: String,
    /// Its package path.
    pub package: Vec<String>,
    /// Package and name joined with `.`.
    pub qualified_name: String,
    /// Doc comment lines.
    pub docs: Vec<String>,
    /// Its type.
    pub ty: Primitive,
    /// Its value, checked to fit `ty`.
    pub value: ConstValue,
    /// The file that declares it.
    pub file: FileId,
    /// Its name in that file.
    pub span: Span,
}

/// The value of a constant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConstValue {
    /// For `bool`.
    Bool(bool),
    /// For integer types.
    Int(i128),
    /// For `f32` and `f64` (an `f32` value is exactly representable as `f32`).
    Float(f64),
}

impl fmt::Display for ConstValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConstValue::Bool(b) => write!(f, "{b}"),
            ConstValue::Int(i) => write!(f, "{i}"),
            ConstValue::Float(x) => write!(f, "{x:?}"),
        }
    }
}

/// What `send` does when a subscriber's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// `overwrite_oldest`: drop the oldest queued sample.
    OverwriteOldest,
    /// `wait_if_full`: block until there is room (the default).
    WaitIfFull,
    /// `soft_fail`: skip that subscriber and count the failure.
    SoftFail,
}

impl Overflow {
    /// The schema spelling.
    pub const fn name(self) -> &'static str {
        match self {
            Overflow::OverwriteOldest => "overwrite_oldest",
            Overflow::WaitIfFull => "wait_if_full",
            Overflow::SoftFail => "soft_fail",
        }
    }

    /// All policies.
    pub const ALL: [Overflow; 3] = [
        Overflow::OverwriteOldest,
        Overflow::WaitIfFull,
        Overflow::SoftFail,
    ];
}

/// The options of a topic, with defaults filled in. Bounds are in
/// [`TopicOptions::LIMITS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TopicOptions {
    /// Slots in the topic's sample pool; per chunk if the pool can grow. Default 64.
    pub pool: u32,
    /// Chunks of `pool` slots the topic's pool may grow to, the first included; 1 is a
    /// fixed-size pool. Each further chunk is a shared-memory segment of its own, added
    /// when every slot of the existing chunks is in use (the runtime's
    /// `PoolBuilder::growable`). `pool × pool_chunks` is at most
    /// [`TopicOptions::MAX_POOL_SLOTS`]. Default 1.
    pub pool_chunks: u32,
    /// Capacity of each publisher→subscriber queue. Default 8.
    pub depth: u32,
    /// What to do when a queue is full. Default `wait_if_full`.
    pub overflow: Overflow,
    /// Most publishers at once. Default 8.
    pub max_publishers: u32,
    /// Most subscribers at once. Default 8.
    pub max_subscribers: u32,
}

impl Default for TopicOptions {
    fn default() -> Self {
        Self {
            pool: 64,
            pool_chunks: 1,
            depth: 8,
            overflow: Overflow::WaitIfFull,
            max_publishers: 8,
            max_subscribers: 8,
        }
    }
}

impl TopicOptions {
    /// The integer options with their inclusive `(min, max)` bounds.
    pub const LIMITS: [(&'static str, u32, u32); 5] = [
        ("pool", 1, 1 << 20),
        ("pool_chunks", 1, 32),
        ("depth", 1, 1 << 16),
        ("max_publishers", 1, 1024),
        ("max_subscribers", 1, 1024),
    ];

    /// The most slots a topic's pool may grow to, `pool × pool_chunks`: the runtime
    /// numbers slots `chunk · pool + slot` below 2^30 (its `MAX_POOL_CAPACITY`).
    pub const MAX_POOL_SLOTS: u64 = 1 << 30;
}

/// The longest topic name, in bytes.
pub const MAX_TOPIC_NAME_LEN: usize = 128;

/// A topic: a name, a message type and queueing options.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Topic {
    /// The name (`robot/joint_states`).
    pub name: String,
    /// The package the topic is declared in.
    pub package: Vec<String>,
    /// Doc comment lines.
    pub docs: Vec<String>,
    /// The payload; always a `message`.
    pub payload: TypeId,
    /// The options, defaults filled in.
    pub options: TopicOptions,
    /// The file that declares it.
    pub file: FileId,
    /// The topic name literal in that file.
    pub span: Span,
}

/// A package and what the loaded files declare in it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Package {
    /// The path (`["robot", "v1"]`); empty for files without `package`.
    pub path: Vec<String>,
    /// Doc comment lines of the `package` declarations.
    pub docs: Vec<String>,
    /// The files that declare this package.
    pub files: Vec<FileId>,
    /// Its types in declaration order.
    pub types: Vec<TypeId>,
    /// Indices into [`Schema::consts`].
    pub consts: Vec<usize>,
    /// Indices into [`Schema::topics`].
    pub topics: Vec<usize>,
}

impl Package {
    /// The path joined with `.` (`robot.v1`); empty for the root package.
    pub fn name(&self) -> String {
        self.path.join(".")
    }
}

/// A validated set of schema files: packages, types with layouts and fingerprints,
/// constants and topics.
#[derive(Debug, Clone)]
pub struct Schema {
    pub(crate) sources: SourceMap,
    pub(crate) root_files: Vec<FileId>,
    pub(crate) packages: Vec<Package>,
    pub(crate) types: Vec<TypeDef>,
    pub(crate) consts: Vec<Const>,
    pub(crate) topics: Vec<Topic>,
    pub(crate) warnings: Diagnostics,
    pub(crate) by_name: HashMap<String, TypeId>,
}

impl Schema {
    /// Every loaded file: the files asked for and everything they import.
    pub fn files(&self) -> &[Arc<SourceFile>] {
        &self.sources.files
    }

    /// The files that were asked for (not reached only through imports).
    pub fn root_files(&self) -> &[FileId] {
        &self.root_files
    }

    /// The file with id `id`.
    pub fn file(&self, id: FileId) -> Option<&Arc<SourceFile>> {
        self.sources.get(id)
    }

    /// The packages, in the order they were first seen.
    pub fn packages(&self) -> &[Package] {
        &self.packages
    }

    /// All declared types; a [`TypeId`] indexes this slice.
    pub fn types(&self) -> &[TypeDef] {
        &self.types
    }

    /// The type with id `id`.
    ///
    /// # Panics
    ///
    /// If `id` does not come from this schema (ids index [`Schema::types`]).
    pub fn type_def(&self, id: TypeId) -> &TypeDef {
        &self.types[id.index()]
    }

    /// The type with qualified name `name` (`robot.v1.Vec3`).
    pub fn type_by_name(&self, name: &str) -> Option<&TypeDef> {
        self.by_name.get(name).map(|id| self.type_def(*id))
    }

    /// All constants.
    pub fn consts(&self) -> &[Const] {
        &self.consts
    }

    /// All topics.
    pub fn topics(&self) -> &[Topic] {
        &self.topics
    }

    /// The warnings found while validating (style problems). Render them with
    /// `Display`.
    pub fn warnings(&self) -> &Diagnostics {
        &self.warnings
    }

    /// Size and alignment of `ty`.
    pub fn layout_of(&self, ty: &Type) -> Layout {
        // Validation rejected every type larger than `MAX_TYPE_SIZE`, so none of these
        // computations can overflow; the fallbacks are never taken.
        match ty {
            Type::Primitive(p) => p.layout(),
            Type::Array { element, len } => {
                Layout::array(self.layout_of(element), *len).unwrap_or(Layout {
                    size: u64::MAX,
                    align: 1,
                })
            }
            Type::String { capacity } | Type::Bytes { capacity } => Layout::string(*capacity)
                .unwrap_or(Layout {
                    size: u64::MAX,
                    align: 1,
                }),
            Type::Sequence { element, capacity } => {
                Layout::sequence(self.layout_of(element), *capacity).unwrap_or(Layout {
                    size: u64::MAX,
                    align: 1,
                })
            }
            Type::Named(id) => self.type_def(*id).layout,
        }
    }

    /// The fingerprint of `ty` (see `docs/schema-language.md`).
    pub fn fingerprint_of(&self, ty: &Type) -> u64 {
        type_fingerprint(ty, &|id| self.type_def(id).fingerprint)
    }

    /// The canonical description of `ty`: `u8`, `[u32; 4]`, `string<32>`, `bytes<16>`,
    /// `sequence<f64, 16>`, or a declared type's qualified name (`robot.v1.Vec3`).
    pub fn describe(&self, ty: &Type) -> String {
        let mut out = String::new();
        describe_type(
            ty,
            &|id| self.type_def(id).qualified_name.as_str(),
            &mut out,
        );
        out
    }

    /// The canonical description of a declared type: its kind, qualified name and
    /// fingerprinted content, on one line, for example
    /// `struct robot.v1.Vec3 { x: f64, y: f64, z: f64 }` or
    /// `enum robot.v1.Mode: u8 { Idle = 0, Run = 1, Fault = 2 }`. Messages are described
    /// as `struct`, as they are fingerprinted. Two types with the same description have
    /// the same fingerprint.
    pub fn describe_def(&self, id: TypeId) -> String {
        let def = self.type_def(id);
        match &def.kind {
            TypeDefKind::Struct(s) => {
                let fields: Vec<String> = s
                    .fields
                    .iter()
                    .map(|f| format!("{}: {}", f.name, self.describe(&f.ty)))
                    .collect();
                format!("struct {} {{ {} }}", def.qualified_name, fields.join(", "))
            }
            TypeDefKind::Enum(e) => {
                let variants: Vec<String> = e
                    .variants
                    .iter()
                    .map(|v| format!("{} = {}", v.name, v.value))
                    .collect();
                format!(
                    "enum {}: {} {{ {} }}",
                    def.qualified_name,
                    e.repr,
                    variants.join(", ")
                )
            }
        }
    }
}

/// The fingerprint of a type expression, given the fingerprints of declared types.
pub(crate) fn type_fingerprint(ty: &Type, named: &dyn Fn(TypeId) -> u64) -> u64 {
    let mut h = Fingerprinter::new();
    match ty {
        Type::Primitive(p) => return p.fingerprint(),
        Type::Array { element, len } => h
            .str("array")
            .u64(type_fingerprint(element, named))
            .u64(*len),
        Type::String { capacity } => h.str("string").u64(*capacity),
        Type::Bytes { capacity } => h.str("bytes").u64(*capacity),
        Type::Sequence { element, capacity } => h
            .str("sequence")
            .u64(type_fingerprint(element, named))
            .u64(*capacity),
        Type::Named(id) => return named(*id),
    };
    h.finish()
}

pub(crate) fn describe_type<'a>(ty: &Type, name: &dyn Fn(TypeId) -> &'a str, out: &mut String) {
    use fmt::Write as _;
    match ty {
        Type::Primitive(p) => out.push_str(p.name()),
        Type::Array { element, len } => {
            out.push('[');
            describe_type(element, name, out);
            let _ = write!(out, "; {len}]");
        }
        Type::String { capacity } => {
            let _ = write!(out, "string<{capacity}>");
        }
        Type::Bytes { capacity } => {
            let _ = write!(out, "bytes<{capacity}>");
        }
        Type::Sequence { element, capacity } => {
            out.push_str("sequence<");
            describe_type(element, name, out);
            let _ = write!(out, ", {capacity}>");
        }
        Type::Named(id) => out.push_str(name(*id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_layout_is_a_four_byte_length_then_the_bytes_without_padding() {
        assert_eq!(Layout::string(32), Some(Layout { size: 36, align: 1 }));
        assert_eq!(Layout::string(1), Some(Layout { size: 5, align: 1 }));
        assert_eq!(Layout::string(5), Some(Layout { size: 9, align: 1 }));
    }

    #[test]
    fn sequence_items_start_at_eight_without_padding() {
        // len and reserved bytes, then 16 f64 items.
        assert_eq!(
            Layout::sequence(Primitive::F64.layout(), 16),
            Some(Layout {
                size: 136,
                align: 8
            })
        );
        // u8 items: no rounding, alignment 1.
        assert_eq!(
            Layout::sequence(Primitive::U8.layout(), 3),
            Some(Layout { size: 11, align: 1 })
        );
        assert_eq!(Layout::sequence_items_offset(Primitive::U16.layout()), 8);
    }

    #[test]
    fn array_layout_overflow_is_detected() {
        assert_eq!(Layout::array(Primitive::U64.layout(), u64::MAX), None);
        assert_eq!(
            Layout::array(Primitive::U32.layout(), 4),
            Some(Layout { size: 16, align: 4 })
        );
    }

    #[test]
    fn default_topic_options_are_within_their_limits() {
        let o = TopicOptions::default();
        assert_eq!(o.pool_chunks, 1);
        for (name, min, max) in TopicOptions::LIMITS {
            let value = match name {
                "pool" => o.pool,
                "pool_chunks" => o.pool_chunks,
                "depth" => o.depth,
                "max_publishers" => o.max_publishers,
                "max_subscribers" => o.max_subscribers,
                other => panic!("no field for `{other}`"),
            };
            assert!((min..=max).contains(&value), "{name}");
        }
        assert!(TopicOptions::LIMITS.contains(&("pool_chunks", 1, 32)));
    }

    #[test]
    fn primitives_round_trip_through_their_names() {
        for p in Primitive::ALL {
            assert_eq!(Primitive::from_name(p.name()), Some(p));
        }
        assert_eq!(Primitive::from_name("usize"), None);
    }
}
