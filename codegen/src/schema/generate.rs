//! Schema → Rust tokens, one package at a time.
//!
//! Every struct and message becomes a `#[repr(C)]` struct with
//! `#[derive(ShmMessage)]` and explicit zeroed padding fields; the derive
//! writes every impl. Enums become plain Rust enums (derive `ShmMessage`
//! gives them `ShmEnum`); fields of an enum type are `Enum<E>`, of `bool`
//! `Bool`. References between packages are relative (`super::common::Vec3`),
//! so the generated files must sit in modules that mirror the packages,
//! which `shmidl::include_schema!` builds.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};
use shmidl_idl::{
    ConstValue, Overflow, Package, Primitive, Schema, StructDef, Topic, Type, TypeDef, TypeDefKind,
};

use super::Config;
use crate::ident::{ident, topic_module};

/// Lints that schema names can trip in generated code, allowed on every
/// generated item (a fixed list, so users' `deny`s apply to their own code).
fn allow() -> TokenStream {
    quote! {
        #[allow(
            non_camel_case_types,
            non_snake_case,
            non_upper_case_globals,
            clippy::all,
            clippy::pedantic,
            unused_qualifications
        )]
    }
}

/// `/// text` for each doc line, or a fallback line when there is none
/// (generated items are documented, so `missing_docs` holds).
///
/// Code in a schema doc stays text: a fenced block opens as ```` ```text ````
/// and an indented block (4 spaces deeper than the text, after a blank
/// line) is fenced as one. The generated code is part of the user's crate,
/// where rustdoc would otherwise compile and run the schema's snippets as
/// doctests.
fn docs(lines: &[String], fallback: &str) -> TokenStream {
    if lines.is_empty() {
        let text = format!(" {fallback}");
        return quote!(#[doc = #text]);
    }
    let lines: Vec<String> = lines
        .iter()
        .map(|l| {
            if l.is_empty() || l.starts_with(' ') {
                l.clone()
            } else {
                format!(" {l}")
            }
        })
        .collect();
    let indent_of = |l: &str| l.len() - l.trim_start().len();
    // rustdoc removes the indentation common to all lines.
    let base = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| indent_of(l))
        .min()
        .unwrap_or(1);
    let pad = " ".repeat(base);
    let mut out = Vec::with_capacity(lines.len() + 2);
    let (mut in_fence, mut in_indented, mut after_blank) = (false, false, true);
    for mut text in lines {
        let blank = text.trim().is_empty();
        let body = text.trim_start();
        let fence = ["```", "~~~"].into_iter().find(|f| body.starts_with(f));
        if in_indented && !blank && indent_of(&text) < base + 4 {
            out.push(format!("{pad}```"));
            in_indented = false;
        }
        if let Some(fence) = fence.filter(|_| !in_indented) {
            if !in_fence {
                let indent = &text[..text.len() - body.len()];
                text = format!("{indent}{fence}text");
            }
            in_fence = !in_fence;
        } else if !in_fence && !in_indented && !blank && after_blank && indent_of(&text) >= base + 4
        {
            out.push(format!("{pad}```text"));
            in_indented = true;
        }
        after_blank = blank;
        out.push(text);
    }
    if in_indented {
        out.push(format!("{pad}```"));
    }
    quote!(#(#[doc = #out])*)
}

pub(crate) struct PackageGen<'a> {
    pub(crate) schema: &'a Schema,
    pub(crate) package: &'a Package,
    pub(crate) config: &'a Config,
}

impl PackageGen<'_> {
    fn rt(&self) -> TokenStream {
        self.config.runtime_path_tokens()
    }

    /// All items of the package.
    pub(crate) fn items(&self) -> Result<TokenStream, String> {
        let mut out = TokenStream::new();
        for &i in &self.package.consts {
            out.extend(self.constant(&self.schema.consts()[i]));
        }
        for &id in &self.package.types {
            let def = self.schema.type_def(id);
            out.extend(match &def.kind {
                TypeDefKind::Struct(s) => self.structure(def, s)?,
                TypeDefKind::Enum(_) => self.enumeration(def)?,
            });
        }
        if self.config.topics && !self.package.topics.is_empty() {
            let topics = self
                .package
                .topics
                .iter()
                .map(|&i| self.topic(&self.schema.topics()[i]));
            let allow = allow();
            let doc = format!(
                " Typed publishers and subscribers for the topics of package `{}`.",
                self.package_name()
            );
            out.extend(quote! {
                #[doc = #doc]
                #allow
                pub mod topics {
                    #(#topics)*
                }
            });
        }
        Ok(out)
    }

    fn package_name(&self) -> String {
        if self.package.path.is_empty() {
            "(root)".to_owned()
        } else {
            self.package.path.join(".")
        }
    }

    fn constant(&self, c: &shmidl_idl::Const) -> TokenStream {
        let name = ident(&c.name);
        let ty = format_ident!("{}", c.ty.name());
        let value = match c.value {
            ConstValue::Bool(b) => quote!(#b),
            ConstValue::Int(v) => int_literal(v),
            ConstValue::Float(x) => {
                let lit = if c.ty == Primitive::F32 {
                    Literal::f32_unsuffixed(x as f32)
                } else {
                    Literal::f64_unsuffixed(x)
                };
                quote!(#lit)
            }
        };
        let doc = docs(&c.docs, &format!("`{}` from the schema.", c.qualified_name));
        let allow = allow();
        quote! {
            #doc
            #allow
            pub const #name: #ty = #value;
        }
    }

    /// Extra attributes configured for `qualified`.
    fn extra_attributes(&self, qualified: &str) -> Result<TokenStream, String> {
        let mut out = TokenStream::new();
        for attr in self.config.attributes_for(qualified) {
            out.extend(attr?);
        }
        Ok(out)
    }

    fn structure(&self, def: &TypeDef, s: &StructDef) -> Result<TokenStream, String> {
        let name = ident(&def.name);
        let rt = self.rt();
        let qualified = &def.qualified_name;
        let mut fields = Vec::new();
        let mut pad = 0usize;
        let pad_field = |pad: &mut usize, bytes: u64| {
            let field = format_ident!("__pad{}", *pad);
            *pad += 1;
            let bytes = Literal::u64_unsuffixed(bytes);
            quote! {
                #[doc(hidden)]
                #[shm(padding)]
                pub #field: [u8; #bytes],
            }
        };
        for f in &s.fields {
            if f.padding_before > 0 {
                fields.push(pad_field(&mut pad, f.padding_before));
            }
            let field = ident(&f.name);
            let ty = self.field_type(&f.ty, &self.package.path);
            let doc = docs(&f.docs, &format!("`{}` of `{}`.", f.name, qualified));
            // The fingerprint hashes the schema's name: say it when the
            // identifier had to differ (`self_` for `self`).
            let unraw = field.to_string();
            let rename = if unraw.trim_start_matches("r#") == f.name {
                quote!()
            } else {
                let schema_name = &f.name;
                quote!(#[shm(name = #schema_name)])
            };
            fields.push(quote! {
                #doc
                #rename
                pub #field: #ty,
            });
        }
        if s.trailing_padding > 0 {
            fields.push(pad_field(&mut pad, s.trailing_padding));
        }
        let eq = if self.has_float_struct(s) {
            quote!()
        } else {
            quote!(::core::cmp::Eq, ::core::hash::Hash,)
        };
        let kind = if s.is_message { "message" } else { "struct" };
        let doc = docs(
            &def.docs,
            &format!("The {kind} `{qualified}` of the schema."),
        );
        let krate = self.config.runtime.as_str();
        let extra = self.extra_attributes(qualified)?;
        let allow = allow();
        Ok(quote! {
            #doc
            #[derive(
                ::core::clone::Clone,
                ::core::marker::Copy,
                ::core::fmt::Debug,
                ::core::cmp::PartialEq,
                #eq
                #rt::ShmMessage
            )]
            #[repr(C)]
            #[shm(name = #qualified, crate = #krate, default)]
            #extra
            #allow
            pub struct #name {
                #(#fields)*
            }
        })
    }

    fn enumeration(&self, def: &TypeDef) -> Result<TokenStream, String> {
        let TypeDefKind::Enum(e) = &def.kind else {
            return Err(format!("{} is not an enum", def.qualified_name));
        };
        let name = ident(&def.name);
        let rt = self.rt();
        let repr = format_ident!("{}", e.repr.name());
        let qualified = &def.qualified_name;
        // The variant `Default` gives is the one a message's default holds
        // (the runtime's `#[shm(default)]`): value 0 if declared, else the
        // first variant. So `Mode::default()` is what `Pose::default().mode`
        // reads.
        let default_index = e.variants.iter().position(|v| v.value == 0).unwrap_or(0);
        let variants = e.variants.iter().enumerate().map(|(i, v)| {
            let variant = ident(&v.name);
            let value = int_literal(v.value);
            let doc = docs(&v.docs, &format!("`{}` = {}.", v.name, v.value));
            let default = if i == default_index {
                quote!(#[default])
            } else {
                quote!()
            };
            quote! {
                #doc
                #default
                #variant = #value,
            }
        });
        let doc = docs(&def.docs, &format!("The enum `{qualified}` of the schema."));
        let krate = self.config.runtime.as_str();
        let extra = self.extra_attributes(qualified)?;
        let allow = allow();
        Ok(quote! {
            #doc
            #[derive(
                ::core::clone::Clone,
                ::core::marker::Copy,
                ::core::fmt::Debug,
                ::core::default::Default,
                ::core::cmp::PartialEq,
                ::core::cmp::Eq,
                ::core::hash::Hash,
                ::core::cmp::PartialOrd,
                ::core::cmp::Ord,
                #rt::ShmMessage
            )]
            #[repr(#repr)]
            #[shm(name = #qualified, crate = #krate)]
            #extra
            #allow
            pub enum #name {
                #(#variants)*
            }
        })
    }

    /// The Rust type of a field of `ty`, as seen from module `from`.
    fn field_type(&self, ty: &Type, from: &[String]) -> TokenStream {
        let rt = self.rt();
        match ty {
            Type::Primitive(Primitive::Bool) => quote!(#rt::Bool),
            Type::Primitive(p) => {
                let p = format_ident!("{}", p.name());
                quote!(#p)
            }
            Type::Array { element, len } => {
                let element = self.field_type(element, from);
                let len = Literal::u64_unsuffixed(*len);
                quote!([#element; #len])
            }
            Type::String { capacity } => {
                let n = Literal::u64_unsuffixed(*capacity);
                quote!(#rt::FixedSizeString<#n>)
            }
            Type::Bytes { capacity } => {
                let n = Literal::u64_unsuffixed(*capacity);
                quote!(#rt::FixedSizeBytes<#n>)
            }
            Type::Sequence { element, capacity } => {
                let element = self.field_type(element, from);
                let n = Literal::u64_unsuffixed(*capacity);
                quote!(#rt::FixedSizeVec<#element, #n>)
            }
            Type::Named(id) => {
                let def = self.schema.type_def(*id);
                let path = relative_path(from, &def.package, &def.name);
                match def.kind {
                    TypeDefKind::Enum(_) => quote!(#rt::Enum<#path>),
                    TypeDefKind::Struct(_) => path,
                }
            }
        }
    }

    fn has_float(&self, ty: &Type) -> bool {
        match ty {
            Type::Primitive(p) => matches!(p, Primitive::F32 | Primitive::F64),
            Type::Array { element, .. } | Type::Sequence { element, .. } => self.has_float(element),
            Type::String { .. } | Type::Bytes { .. } => false,
            Type::Named(id) => match &self.schema.type_def(*id).kind {
                TypeDefKind::Struct(s) => self.has_float_struct(s),
                TypeDefKind::Enum(_) => false,
            },
        }
    }

    fn has_float_struct(&self, s: &StructDef) -> bool {
        s.fields.iter().any(|f| self.has_float(&f.ty))
    }

    fn topic(&self, t: &Topic) -> TokenStream {
        let module = topic_module(&t.name);
        let rt = self.rt();
        let name = &t.name;
        let payload = self.schema.type_def(t.payload);
        let mut from = self.package.path.clone();
        from.push("topics".to_owned());
        from.push(module.to_string());
        let message = relative_path(&from, &payload.package, &payload.name);
        let o = &t.options;
        let (pool, chunks, depth, pubs, subs) = (
            Literal::u32_unsuffixed(o.pool),
            Literal::u32_unsuffixed(o.pool_chunks),
            Literal::u32_unsuffixed(o.depth),
            Literal::u32_unsuffixed(o.max_publishers),
            Literal::u32_unsuffixed(o.max_subscribers),
        );
        let overflow = match o.overflow {
            Overflow::OverwriteOldest => quote!(#rt::SendMode::OverwriteOldest),
            Overflow::SoftFail => quote!(#rt::SendMode::SoftFailIfFull),
            Overflow::WaitIfFull => {
                quote!(#rt::SendMode::WaitIfFull(::core::time::Duration::from_secs(1)))
            }
        };
        let doc = docs(
            &t.docs,
            &format!("The topic `{name}`, carrying `{}`.", payload.qualified_name),
        );
        let options = format!(
            " `pool: {pool}, pool_chunks: {chunks}, depth: {depth}, overflow: {}, \
             max_publishers: {pubs}, max_subscribers: {subs}`",
            o.overflow.name()
        );
        quote! {
            #doc
            pub mod #module {
                /// The topic's name.
                pub const NAME: &str = #name;

                /// The message type the topic carries.
                pub type Message = #message;

                /// The topic's options from the schema:
                #[doc = #options]
                pub fn config() -> #rt::TopicConfig {
                    #rt::TopicConfig {
                        pool: #pool,
                        pool_chunks: #chunks,
                        depth: #depth,
                        overflow: #overflow,
                        max_publishers: #pubs,
                        max_subscribers: #subs,
                        elements: 0,
                    }
                }

                /// A publisher on the topic in `node`'s domain, with the
                /// schema's options (see [`config`]).
                pub fn publisher(
                    node: &#rt::Node,
                ) -> ::core::result::Result<#rt::Publisher<Message>, #rt::TopicError> {
                    node.publisher::<Message>(NAME, config())
                }

                /// A subscriber on the topic in `node`'s domain, with the
                /// schema's options (see [`config`]).
                pub fn subscriber(
                    node: &#rt::Node,
                ) -> ::core::result::Result<#rt::Subscriber<Message>, #rt::TopicError> {
                    node.subscriber::<Message>(NAME, config())
                }

                // `net_publisher` and `net_subscriber` when the runtime has
                // its `net` feature; nothing otherwise.
                #rt::__net_topic_functions!();
            }
        }
    }
}

/// An integer literal, negative ones included.
fn int_literal(v: i128) -> TokenStream {
    let lit = Literal::u128_unsuffixed(v.unsigned_abs());
    if v < 0 {
        quote!(-#lit)
    } else {
        quote!(#lit)
    }
}

/// The path of `name` in package `to`, from inside module path `from`:
/// up to the common prefix with `super::`, then down.
pub(crate) fn relative_path(from: &[String], to: &[String], name: &str) -> TokenStream {
    let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    let ups = (common..from.len()).map(|_| quote!(super::));
    let downs = to[common..].iter().map(|s| {
        let s = ident(s);
        quote!(#s::)
    });
    let name = ident(name);
    quote!(#(#ups)* #(#downs)* #name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn paths_between_packages_are_relative() {
        let p = |from: &[&str], to: &[&str]| relative_path(&v(from), &v(to), "T").to_string();
        assert_eq!(p(&["robot", "v1"], &["robot", "v1"]), "T");
        assert_eq!(
            p(&["robot", "v1"], &["robot", "common"]),
            "super :: common :: T"
        );
        assert_eq!(p(&["robot", "v1"], &[]), "super :: super :: T");
        assert_eq!(p(&[], &["geo"]), "geo :: T");
        assert_eq!(
            p(&["robot", "v1", "topics", "x"], &["robot", "v1"]),
            "super :: super :: T"
        );
    }

    #[test]
    fn code_blocks_in_schema_docs_do_not_become_doctests() {
        let lines = v(&[
            "Example:",
            "```",
            "let x = 1;",
            "```",
            "  ~~~rust",
            "y",
            "  ~~~",
        ]);
        let sut = docs(&lines, "").to_string();
        assert!(sut.contains(r#"" ```text""#), "{sut}");
        assert!(sut.contains(r#"" ```""#), "{sut}");
        assert!(sut.contains(r#""  ~~~text""#), "{sut}");
        assert!(!sut.contains("~~~rust"), "{sut}");

        let lines = v(&[
            "Text",
            "",
            "     let y = 2;",
            "     y",
            "",
            "More",
            "     not code",
        ]);
        let sut: Vec<String> = docs(&lines, "")
            .to_string()
            .split("# [doc = ")
            .skip(1)
            .map(|d| d.trim().trim_end_matches(']').trim().to_owned())
            .collect();
        assert_eq!(
            sut,
            [
                r#"" Text""#,
                r#""""#,
                r#"" ```text""#,
                r#""     let y = 2;""#,
                r#""     y""#,
                r#""""#,
                r#"" ```""#,
                r#"" More""#,
                r#""     not code""#,
            ]
        );
    }

    #[test]
    fn negative_literals_keep_their_sign() {
        assert_eq!(int_literal(-5).to_string(), "- 5");
        assert_eq!(
            int_literal(u64::MAX.into()).to_string(),
            "18446744073709551615"
        );
    }
}
