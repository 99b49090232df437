//! Building the [`Schema`] once every check has passed.

use super::types::type_layout;
use super::*;

impl<'a> Checker<'a> {
    // -- building the model -----------------------------------------------------------------

    pub(super) fn build(
        mut self,
        resolved: Vec<Resolved>,
        layouts: &[Option<Layout>],
        fingerprints: &[u64],
        topics: Vec<Topic>,
    ) -> Schema {
        let mut types = Vec::with_capacity(resolved.len());
        let mut by_name = HashMap::new();
        for (index, r) in resolved.into_iter().enumerate() {
            let decl = &self.types[index];
            let layout = layouts
                .get(index)
                .copied()
                .flatten()
                .unwrap_or(Layout { size: 0, align: 1 });
            let kind = match r {
                Resolved::Struct(fields) => {
                    let mut offset = 0u64;
                    let mut out = Vec::with_capacity(fields.len());
                    for (name, docs, ty, span) in fields {
                        let ty = ty.unwrap_or(Type::Primitive(Primitive::U8));
                        let field_layout =
                            type_layout(&ty, layouts).unwrap_or(Primitive::U8.layout());
                        let aligned = round_up(offset, field_layout.align).unwrap_or(offset);
                        out.push(Field {
                            name,
                            docs,
                            ty,
                            layout: field_layout,
                            offset: aligned,
                            padding_before: aligned - offset,
                            span,
                        });
                        offset = aligned + field_layout.size;
                    }
                    TypeDefKind::Struct(StructDef {
                        is_message: matches!(decl.kind, TypeDeclKind::Struct(s) if s.is_message),
                        fields: out,
                        trailing_padding: layout.size.saturating_sub(offset),
                    })
                }
                Resolved::Enum(repr, variants) => TypeDefKind::Enum(EnumDef { repr, variants }),
                Resolved::Invalid => TypeDefKind::Enum(EnumDef {
                    repr: Primitive::U8,
                    variants: Vec::new(),
                }),
            };
            let package = self.packages[decl.package].path.clone();
            let qualified_name = self.qualified(decl.package, &decl.name.name);
            let id = TypeId(u32::try_from(index).unwrap_or(u32::MAX));
            by_name.insert(qualified_name.clone(), id);
            self.packages[decl.package].types.push(id);
            types.push(TypeDef {
                id,
                name: decl.name.name.clone(),
                package,
                qualified_name,
                docs: decl.docs.to_vec(),
                kind,
                layout,
                fingerprint: fingerprints.get(index).copied().unwrap_or(0),
                file: decl.file,
                span: decl.name.span,
            });
        }
        let mut consts = Vec::with_capacity(self.consts.len());
        for (index, c) in self.consts.iter().enumerate() {
            let (ty, value) =
                self.const_values[index].unwrap_or((Primitive::Bool, ConstValue::Bool(false)));
            self.packages[c.package].consts.push(index);
            consts.push(Const {
                name: c.decl.name.name.clone(),
                package: self.packages[c.package].path.clone(),
                qualified_name: self.qualified(c.package, &c.decl.name.name),
                docs: c.docs.to_vec(),
                ty,
                value,
                file: c.file,
                span: c.decl.name.span,
            });
        }
        for (index, t) in topics.iter().enumerate() {
            if let Some(&p) = self.package_index.get(&t.package) {
                self.packages[p].topics.push(index);
            }
        }
        Schema {
            sources: self.loaded.sources.clone(),
            root_files: self.loaded.roots.clone(),
            packages: self.packages,
            types,
            consts,
            topics,
            warnings: self.diags,
            by_name,
        }
    }
}
