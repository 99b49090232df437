//! Message types of a schema at run time: the [`TypeLayout`] a program
//! compiled from the schema has as `T::LAYOUT`, built from `shmidl-idl`'s
//! model, and wrapped in a [`DynType`]. `shmidl bridge` opens topics with
//! them, so a topic it bridges is the one typed programs use.
//!
//! Layouts are leaked: a tool builds one per type, once, and keeps it for
//! its whole run (`TypeLayout` holds `&'static` references).

use std::collections::HashMap;

use shmidl::{
    layout::{EnumVariant, FieldLayout, Primitive, TypeKind, TypeLayout},
    DynType,
};
use shmidl_idl::{Schema, Type, TypeDefKind, TypeId};

/// Builds run-time layouts of one schema's types, sharing each declared
/// type's layout between its uses.
pub struct Layouts<'s> {
    schema: &'s Schema,
    named: HashMap<TypeId, &'static TypeLayout>,
}

impl<'s> Layouts<'s> {
    /// Layouts of `schema`'s types.
    pub fn new(schema: &'s Schema) -> Self {
        Self {
            schema,
            named: HashMap::new(),
        }
    }

    /// The run-time type of the declared type `id`.
    pub fn dyn_type(&mut self, id: TypeId) -> Result<DynType, String> {
        let layout = self.named(id);
        DynType::new(layout).map_err(|e| e.to_string())
    }

    fn named(&mut self, id: TypeId) -> &'static TypeLayout {
        if let Some(layout) = self.named.get(&id) {
            return layout;
        }
        let def = self.schema.type_def(id);
        let name: &'static str = leak_str(&def.qualified_name);
        let kind = match &def.kind {
            TypeDefKind::Struct(s) => {
                let mut fields = Vec::with_capacity(s.fields.len());
                let mut pads = 0;
                let mut pad = |fields: &mut Vec<FieldLayout>, offset: u64, len: u64| {
                    fields.push(FieldLayout {
                        name: leak_str(&format!("__pad{pads}")),
                        offset: offset as usize,
                        ty: leak(bytes_array(len as usize)),
                        padding: true,
                    });
                    pads += 1;
                };
                let mut plain = true;
                for f in &s.fields {
                    if f.padding_before > 0 {
                        pad(&mut fields, f.offset - f.padding_before, f.padding_before);
                        plain = false;
                    }
                    let ty = self.of(&f.ty);
                    plain &= ty.plain;
                    fields.push(FieldLayout {
                        name: leak_str(&f.name),
                        offset: f.offset as usize,
                        ty,
                        padding: false,
                    });
                }
                if s.trailing_padding > 0 {
                    pad(
                        &mut fields,
                        def.layout.size - s.trailing_padding,
                        s.trailing_padding,
                    );
                    plain = false;
                }
                let layout = leak(TypeLayout {
                    size: def.layout.size as usize,
                    align: def.layout.align as usize,
                    fingerprint: def.fingerprint,
                    plain,
                    atomic: false,
                    kind: TypeKind::Struct {
                        name,
                        fields: Box::leak(fields.into_boxed_slice()),
                    },
                });
                self.named.insert(id, layout);
                return layout;
            }
            TypeDefKind::Enum(e) => TypeKind::Enum {
                name,
                repr: primitive(e.repr).unwrap_or(Primitive::U8),
                variants: Box::leak(
                    e.variants
                        .iter()
                        .map(|v| EnumVariant {
                            name: leak_str(&v.name),
                            value: v.value,
                        })
                        .collect::<Vec<_>>()
                        .into_boxed_slice(),
                ),
            },
        };
        let layout = leak(TypeLayout {
            size: def.layout.size as usize,
            align: def.layout.align as usize,
            fingerprint: def.fingerprint,
            plain: false,
            atomic: false,
            kind,
        });
        self.named.insert(id, layout);
        layout
    }

    /// The layout of a field's or element's type.
    fn of(&mut self, ty: &Type) -> &'static TypeLayout {
        let fingerprint = self.schema.fingerprint_of(ty);
        let layout = self.schema.layout_of(ty);
        let (size, align) = (layout.size as usize, layout.align as usize);
        match ty {
            Type::Named(id) => self.named(*id),
            Type::Primitive(p) => match primitive(*p) {
                Some(p) => leak(TypeLayout::primitive(p, fingerprint)),
                None => leak(TypeLayout {
                    size: 1,
                    align: 1,
                    fingerprint,
                    plain: false,
                    atomic: false,
                    kind: TypeKind::Bool,
                }),
            },
            Type::Array { element, len } => {
                let element = self.of(element);
                leak(TypeLayout {
                    size,
                    align,
                    fingerprint,
                    plain: element.plain,
                    atomic: false,
                    kind: TypeKind::Array {
                        element,
                        len: *len as usize,
                    },
                })
            }
            Type::String { capacity } => leak(TypeLayout {
                size,
                align,
                fingerprint,
                plain: false,
                atomic: false,
                kind: TypeKind::String {
                    capacity: *capacity as usize,
                },
            }),
            Type::Bytes { capacity } => leak(TypeLayout {
                size,
                align,
                fingerprint,
                plain: false,
                atomic: false,
                kind: TypeKind::Bytes {
                    capacity: *capacity as usize,
                },
            }),
            Type::Sequence { element, capacity } => {
                let element = self.of(element);
                leak(TypeLayout {
                    size,
                    align,
                    fingerprint,
                    plain: false,
                    atomic: false,
                    kind: TypeKind::Sequence {
                        element,
                        capacity: *capacity as usize,
                    },
                })
            }
        }
    }
}

/// The runtime's primitive for the schema's; `None` for `bool`, which the
/// runtime stores as `Bool`.
fn primitive(p: shmidl_idl::Primitive) -> Option<Primitive> {
    use shmidl_idl::Primitive as P;
    Some(match p {
        P::Bool => return None,
        P::U8 => Primitive::U8,
        P::U16 => Primitive::U16,
        P::U32 => Primitive::U32,
        P::U64 => Primitive::U64,
        P::I8 => Primitive::I8,
        P::I16 => Primitive::I16,
        P::I32 => Primitive::I32,
        P::I64 => Primitive::I64,
        P::F32 => Primitive::F32,
        P::F64 => Primitive::F64,
    })
}

/// `[u8; len]`, as explicit padding is declared.
fn bytes_array(len: usize) -> TypeLayout {
    TypeLayout {
        size: len,
        align: 1,
        fingerprint: 0,
        plain: true,
        atomic: false,
        kind: TypeKind::Array {
            element: leak(TypeLayout::primitive(
                Primitive::U8,
                shmidl::fingerprint::primitive("u8"),
            )),
            len,
        },
    }
}

fn leak(layout: TypeLayout) -> &'static TypeLayout {
    Box::leak(Box::new(layout))
}

fn leak_str(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"
package robot.v1;

enum Mode: u8 { Idle = 0, Run = 1 }

struct Vec3 { x: f64, y: f64, z: f64 }

message Status {
    id: u32,
    ok: bool,
    mode: Mode,
    name: string<10>,
    where: Vec3,
    path: sequence<Vec3, 4>,
    blob: bytes<3>,
    counts: [u16; 3],
}

topic "robot/status": Status;
"#;

    fn status() -> (Schema, TypeId) {
        let schema = shmidl_idl::parse_str("t.shmidl", SCHEMA).unwrap();
        let id = schema.type_by_name("robot.v1.Status").unwrap().id;
        (schema, id)
    }

    #[test]
    fn layouts_follow_the_schema() {
        let (schema, id) = status();
        let ty = Layouts::new(&schema).dyn_type(id).unwrap();
        let def = schema.type_def(id);
        assert_eq!(ty.name(), "robot.v1.Status");
        assert_eq!(ty.fingerprint(), def.fingerprint);
        assert_eq!(ty.size() as u64, def.layout.size);
        assert_eq!(ty.align() as u64, def.layout.align);
        assert_eq!(
            ty.layout().describe_def(),
            schema.describe_def(id),
            "the same canonical description"
        );
        assert!(!ty.layout().plain);
    }

    #[test]
    fn validation_walks_the_built_layout() {
        let (schema, id) = status();
        let ty = Layouts::new(&schema).dyn_type(id).unwrap();
        let zero = vec![0u8; ty.size()];
        shmidl::wire::validate_dyn(&ty, &zero).expect("zero bytes are a valid message");
        let TypeKind::Struct { fields, .. } = ty.layout().kind else {
            panic!("a struct")
        };
        let at = |name: &str| fields.iter().find(|f| f.name == name).unwrap().offset;
        let mut bad = zero.clone();
        bad[at("ok")] = 2;
        assert!(shmidl::wire::validate_dyn(&ty, &bad).is_err(), "bool 2");
        let mut bad = zero.clone();
        bad[at("mode")] = 9;
        assert!(
            shmidl::wire::validate_dyn(&ty, &bad).is_err(),
            "no such variant"
        );
        let mut bad = zero.clone();
        bad[at("name")] = 11;
        assert!(
            shmidl::wire::validate_dyn(&ty, &bad).is_err(),
            "string too long"
        );
        for pad in fields.iter().filter(|f| f.padding) {
            let mut bad = zero.clone();
            bad[pad.offset] = 1;
            assert!(
                shmidl::wire::validate_dyn(&ty, &bad).is_err(),
                "padding {} must be zero",
                pad.name
            );
        }
        assert!(
            fields.iter().any(|f| f.padding),
            "the schema places padding"
        );
    }
}
