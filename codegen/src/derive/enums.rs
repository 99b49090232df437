//! `#[derive(ShmMessage)]` on a fieldless enum with an integer `#[repr]`:
//! an `impl ShmEnum` with the schema's enum fingerprint, its layout and the
//! checked conversion from the stored integer.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{
    ext::IdentExt, parse_quote, spanned::Spanned, DataEnum, DeriveInput, Fields, Ident, Path,
};

use super::{attr, Errors};

/// The integer reprs an enum may have, with the runtime's `Primitive` name.
const REPRS: [(&str, &str); 8] = [
    ("u8", "U8"),
    ("u16", "U16"),
    ("u32", "U32"),
    ("u64", "U64"),
    ("i8", "I8"),
    ("i16", "I16"),
    ("i32", "I32"),
    ("i64", "I64"),
];

/// A checked enum, ready to generate.
pub(super) struct Enum<'a> {
    ident: &'a Ident,
    name: String,
    krate: Path,
    /// `u8` … `i64`.
    repr: Ident,
    /// The runtime's `Primitive` variant for `repr`.
    primitive: Ident,
    variants: Vec<(&'a Ident, String)>,
}

impl<'a> Enum<'a> {
    pub(super) fn parse(input: &'a DeriveInput, data: &'a DataEnum) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let attrs = attr::struct_attrs(&input.attrs, &mut errors);
        if let Some(span) = attrs.default {
            errors.push(syn::Error::new(
                span,
                "`#[shm(default)]` is for structs; on an enum, `#[derive(Default)]` with \
                 `#[default]` on a variant",
            ));
        }
        let repr = enum_repr(input, &mut errors);
        if !input.generics.params.is_empty() {
            errors.push(syn::Error::new_spanned(
                &input.generics,
                "`ShmMessage` enums cannot have generic parameters",
            ));
        }
        if data.variants.is_empty() {
            errors.push(syn::Error::new(
                input.ident.span(),
                "an enum needs at least one variant (the schema language requires this too)",
            ));
        }
        let mut variants = Vec::new();
        for variant in &data.variants {
            if !matches!(variant.fields, Fields::Unit) {
                errors.push(syn::Error::new(
                    variant.fields.span(),
                    "`ShmMessage` enums have unit variants only: a schema enum is an \
                     integer with named values",
                ));
            }
            for a in variant.attrs.iter().filter(|a| a.path().is_ident("shm")) {
                errors.push(syn::Error::new_spanned(
                    a,
                    "enum variants take no `#[shm(...)]` attributes",
                ));
            }
            variants.push((&variant.ident, variant.ident.unraw().to_string()));
        }
        errors.finish()?;
        let (repr, primitive) = repr
            .ok_or_else(|| syn::Error::new(input.ident.span(), "internal: repr checked above"))?;
        Ok(Enum {
            ident: &input.ident,
            name: attrs
                .name
                .unwrap_or_else(|| input.ident.unraw().to_string()),
            krate: attrs.krate.unwrap_or_else(|| parse_quote!(::shmidl)),
            repr,
            primitive,
            variants,
        })
    }

    pub(super) fn generate(&self) -> TokenStream {
        let Enum {
            ident,
            name,
            krate,
            repr,
            primitive,
            ..
        } = self;
        let repr_name = repr.to_string();
        let count = self.variants.len() as u64;
        let steps = self.variants.iter().map(|(variant, variant_name)| {
            quote!(.str(#variant_name).u64(#ident::#variant as #repr as i128 as u64))
        });
        let variant_layouts = self.variants.iter().map(|(variant, variant_name)| {
            quote! {
                #krate::layout::EnumVariant {
                    name: #variant_name,
                    value: #ident::#variant as #repr as i128,
                }
            }
        });
        let consts: Vec<Ident> = (0..self.variants.len())
            .map(|i| format_ident!("__SHM_VARIANT_{}", i))
            .collect();
        let const_items = self
            .variants
            .iter()
            .zip(&consts)
            .map(|((variant, _), c)| quote!(const #c: #repr = #ident::#variant as #repr;));
        let arms =
            self.variants.iter().zip(&consts).map(
                |((variant, _), c)| quote!(#c => ::core::option::Option::Some(#ident::#variant),),
            );

        quote! {
            #[allow(
                deprecated,
                non_local_definitions,
                unused_qualifications,
                clippy::undocumented_unsafe_blocks
            )]
            const _: () = {
                impl #krate::ShmEnum for #ident {
                    type Repr = #repr;
                    const FINGERPRINT: u64 =
                        #krate::fingerprint::enum_start(#name, #repr_name, #count)
                            #(#steps)*
                            .finish();
                    const LAYOUT: &'static #krate::layout::TypeLayout = &#krate::layout::TypeLayout {
                        size: ::core::mem::size_of::<#repr>(),
                        align: ::core::mem::align_of::<#repr>(),
                        fingerprint: <#ident as #krate::ShmEnum>::FINGERPRINT,
                        plain: false,
                        atomic: false,
                        kind: #krate::layout::TypeKind::Enum {
                            name: #name,
                            repr: #krate::layout::Primitive::#primitive,
                            variants: &[#(#variant_layouts),*],
                        },
                    };
                    fn from_repr(raw: #repr) -> ::core::option::Option<Self> {
                        #(#const_items)*
                        match raw {
                            #(#arms)*
                            _ => ::core::option::Option::None,
                        }
                    }
                    fn to_repr(self) -> #repr {
                        self as #repr
                    }
                }
            };
        }
    }
}

/// The enum's `#[repr(u8 … i64)]`: exactly one integer repr, nothing else.
fn enum_repr(input: &DeriveInput, errors: &mut Errors) -> Option<(Ident, Ident)> {
    let mut found: Option<(Ident, Ident)> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("repr")) {
        let parsed =
            attr.parse_nested_meta(|meta| {
                let known = REPRS.iter().find(|(name, _)| meta.path.is_ident(name)).map(
                    |(name, primitive)| {
                        (
                            Ident::new(name, meta.path.span()),
                            Ident::new(primitive, Span::call_site()),
                        )
                    },
                );
                match known {
                    Some(repr) if found.is_none() => found = Some(repr),
                    Some(_) => errors.push(syn::Error::new(
                        meta.path.span(),
                        "more than one integer `repr`",
                    )),
                    None => errors.push(syn::Error::new(
                        meta.path.span(),
                        "a `ShmMessage` enum is stored as a fixed-size integer: use \
                     `#[repr(u8)]`, `u16`, `u32`, `u64`, `i8`, `i16`, `i32` or `i64` \
                     (not `C`, `usize` or `isize`, whose size depends on the target)",
                    )),
                }
                Ok(())
            });
        if let Err(e) = parsed {
            errors.push(e);
        }
    }
    if found.is_none() {
        errors.push(syn::Error::new(
            input.ident.span(),
            "`ShmMessage` on an enum needs an integer repr, such as `#[repr(u8)]`: it \
             is stored as that integer in shared memory and on the wire",
        ));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::super::expand;
    use syn::parse_quote;

    #[test]
    fn an_enum_gets_a_checked_conversion_and_the_schema_fingerprint() {
        let out = expand(parse_quote! {
            #[repr(u8)]
            #[shm(name = "robot.v1.Mode")]
            enum Mode { Idle = 0, Run, Fault = 5 }
        })
        .to_string();
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("impl :: shmidl :: ShmEnum for Mode"), "{out}");
        assert!(
            out.contains("enum_start (\"robot.v1.Mode\" , \"u8\" , 3u64)"),
            "{out}"
        );
        assert!(
            out.contains(". str (\"Run\") . u64 (Mode :: Run as u8 as i128 as u64)"),
            "{out}"
        );
        assert!(
            out.contains("__SHM_VARIANT_2 => :: core :: option :: Option :: Some (Mode :: Fault)"),
            "{out}"
        );
    }

    #[test]
    fn bad_enums_get_one_error_each() {
        let count =
            |input: syn::DeriveInput| expand(input).to_string().matches("compile_error").count();
        assert_eq!(
            count(parse_quote!(
                enum E {
                    A,
                }
            )),
            1
        );
        assert_eq!(
            count(parse_quote!(
                #[repr(C)]
                enum E {
                    A,
                }
            )),
            2
        );
        assert_eq!(
            count(parse_quote!(
                #[repr(usize)]
                enum E {
                    A,
                }
            )),
            2
        );
        assert_eq!(
            count(parse_quote!(
                #[repr(u8)]
                enum E {
                    A(u8),
                }
            )),
            1
        );
        assert_eq!(
            count(parse_quote!(
                #[repr(u8)]
                enum E {}
            )),
            1
        );
        assert_eq!(
            count(parse_quote!(
                #[repr(u8)]
                #[shm(default)]
                enum E {
                    A,
                }
            )),
            1
        );
    }
}
