//! `#[derive(ShmMessage)]`: a `#[repr(C)]` struct → an `unsafe impl ShmSafe`
//! with its structural fingerprint, guarded by compile-time checks.
//!
//! [`expand`] is the whole derive; `shmidl-macros` only parses the input and
//! calls it. It checks the struct (attr.rs: `#[repr]`, `#[shm]`; field.rs:
//! field types), then emits, inside `const _: () = { ... };`:
//!
//! - `unsafe impl ShmSafe for T where Field: ShmSafe, ...` whose
//!   `FINGERPRINT` follows the struct row of the algorithm in
//!   `docs/schema-language.md` §6, with each field's own `FINGERPRINT`;
//! - a `const` assertion that `size_of::<T>()` is the sum of the field sizes,
//!   so `T` has no implicit padding (uninitialised bytes that another process
//!   would read).

mod attr;
mod enums;
mod field;

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::{
    ext::IdentExt, parse_quote, spanned::Spanned, Data, DeriveInput, Fields, Ident, Path, Type,
};

/// Expands `#[derive(ShmMessage)]` on `input`.
///
/// Returns the generated items, or, if the type breaks any rule, one
/// `compile_error!` per problem (all of them, each spanned at its cause).
/// Never panics.
///
/// ```
/// let input: syn::DeriveInput = syn::parse_quote! {
///     #[repr(C)]
///     #[shm(name = "robot.v1.Vec3")]
///     struct Vec3 { x: f64, y: f64, z: f64 }
/// };
/// let tokens = shmidl_codegen::derive::expand(input).to_string();
/// assert!(tokens.contains("unsafe impl :: shmidl :: ShmSafe for Vec3"));
/// assert!(tokens.contains("impl :: shmidl :: ShmMessage for Vec3"));
/// assert!(tokens.contains("\"robot.v1.Vec3\""));
///
/// // Without `#[repr(C)]` and with a `String` field: two errors.
/// let input: syn::DeriveInput = syn::parse_quote! {
///     struct Bad { name: String }
/// };
/// let tokens = shmidl_codegen::derive::expand(input).to_string();
/// assert_eq!(tokens.matches("compile_error").count(), 2);
/// ```
pub fn expand(input: DeriveInput) -> TokenStream {
    let result = match &input.data {
        Data::Enum(data) => enums::Enum::parse(&input, data).map(|e| e.generate()),
        _ => Message::parse(&input).map(|m| m.generate()),
    };
    result.unwrap_or_else(syn::Error::into_compile_error)
}

/// Errors collected along the way, merged with [`syn::Error::combine`].
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// All errors so far plus `error`, which ends the expansion.
    fn fail_with(self, error: syn::Error) -> syn::Error {
        match self.0 {
            Some(mut all) => {
                all.combine(error);
                all
            }
            None => error,
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }

    #[cfg(test)]
    fn count(&self) -> usize {
        self.0.as_ref().map_or(0, |e| e.into_iter().count())
    }
}

/// A checked struct, ready to generate.
struct Message<'a> {
    ident: &'a Ident,
    /// The name hashed into the fingerprint.
    name: String,
    /// The runtime crate's path (`::shmidl` unless `#[shm(crate = "...")]`).
    krate: Path,
    fields: Vec<MessageField<'a>>,
    /// The predicates of the struct's own `where` clause, kept as written.
    where_predicates: Option<&'a syn::WhereClause>,
    /// `#[shm(default)]`: implement `Default` as the all-zero value.
    default: Option<proc_macro2::Span>,
}

struct MessageField<'a> {
    /// The name hashed into the fingerprint: the identifier without `r#`, or
    /// the position of a tuple field.
    name: String,
    /// The member, as `offset_of!` takes it.
    member: syn::Member,
    ty: &'a Type,
    /// `#[shm(padding)]`: counted in the size check, not in the fingerprint.
    padding: bool,
    /// Where errors about the field point.
    span: proc_macro2::Span,
}

impl<'a> Message<'a> {
    /// Checks every rule, reporting all violations together.
    fn parse(input: &'a DeriveInput) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let attrs = attr::struct_attrs(&input.attrs, &mut errors);
        let data = match &input.data {
            Data::Struct(data) => data,
            Data::Enum(data) => {
                return Err(errors.fail_with(syn::Error::new(
                    data.enum_token.span(),
                    "internal: enums are expanded by `enums.rs`",
                )));
            }
            Data::Union(data) => {
                return Err(errors.fail_with(syn::Error::new(
                    data.union_token.span(),
                    "`ShmMessage` cannot be derived for unions: which field is valid \
                     cannot be checked; use a `#[repr(C)]` struct",
                )));
            }
        };
        attr::check_repr(&input.attrs, &input.ident, &mut errors);
        if !input.generics.params.is_empty() {
            errors.push(syn::Error::new_spanned(
                &input.generics,
                "`ShmMessage` does not support generic parameters yet: every message \
                 has one fixed layout and fingerprint; use a concrete type",
            ));
        }

        let mut fields = Vec::new();
        for (index, field) in data.fields.iter().enumerate() {
            let field_attrs = attr::field_attrs(&field.attrs, &mut errors);
            let padding = field_attrs.padding;
            if padding {
                check_padding_type(&field.ty, &mut errors);
            } else {
                field::check_type(&field.ty, &mut errors);
            }
            let (name, member, span) = match &field.ident {
                Some(ident) => (
                    field_attrs
                        .name
                        .clone()
                        .unwrap_or_else(|| ident.unraw().to_string()),
                    syn::Member::Named(ident.clone()),
                    ident.span(),
                ),
                None => (
                    field_attrs
                        .name
                        .clone()
                        .unwrap_or_else(|| index.to_string()),
                    syn::Member::Unnamed(syn::Index::from(index)),
                    field.ty.span(),
                ),
            };
            fields.push(MessageField {
                name,
                member,
                ty: &field.ty,
                padding,
                span,
            });
        }
        if fields.iter().all(|f| f.padding) {
            let span = match &data.fields {
                Fields::Unit => input.ident.span(),
                fields => fields.span(),
            };
            errors.push(syn::Error::new(
                span,
                "a message needs at least one field that is not padding (the schema \
                 language requires this too)",
            ));
        }

        errors.finish()?;
        Ok(Message {
            ident: &input.ident,
            name: attrs
                .name
                .unwrap_or_else(|| input.ident.unraw().to_string()),
            krate: attrs.krate.unwrap_or_else(|| parse_quote!(::shmidl)),
            fields,
            where_predicates: input.generics.where_clause.as_ref(),
            default: attrs.default,
        })
    }

    /// The generated items.
    fn generate(&self) -> TokenStream {
        let Message {
            ident, name, krate, ..
        } = self;

        // One bound per distinct field type, spanned at the field type so an
        // unsupported type is blamed where it is written.
        let mut seen = std::collections::HashSet::new();
        let bounds: Vec<_> = self
            .fields
            .iter()
            .filter(|f| seen.insert(f.ty.to_token_stream().to_string()))
            .map(|f| {
                let ty = f.ty;
                // The whole bound, the runtime's path included, carries the
                // field type's span: rustc blames a bound at its trait path.
                let krate = respan(krate.to_token_stream(), ty.span());
                quote_spanned!(ty.span()=> #ty: #krate::ShmSafe)
            })
            .collect();
        let own_predicates: Vec<_> = self
            .where_predicates
            .map(|w| w.predicates.iter())
            .into_iter()
            .flatten()
            .collect();

        let data_fields: Vec<_> = self.fields.iter().filter(|f| !f.padding).collect();
        let count = data_fields.len() as u64;
        let steps = data_fields.iter().map(|f| {
            let (field_name, ty) = (&f.name, f.ty);
            quote_spanned!(ty.span()=> .str(#field_name).u64(<#ty as #krate::ShmSafe>::FINGERPRINT))
        });

        let field_layouts = self.fields.iter().map(|f| {
            let (field_name, ty, member, padding) = (&f.name, f.ty, &f.member, f.padding);
            quote! {
                #krate::layout::FieldLayout {
                    name: #field_name,
                    offset: ::core::mem::offset_of!(#ident, #member),
                    ty: <#ty as #krate::ShmSafe>::LAYOUT,
                    padding: #padding,
                }
            }
        });
        let has_padding = self.fields.iter().any(|f| f.padding);
        let plain_flags = self.fields.iter().map(|f| {
            let ty = f.ty;
            quote!(<#ty as #krate::ShmSafe>::LAYOUT.plain)
        });
        let atomic_flags = self.fields.iter().map(|f| {
            let ty = f.ty;
            quote!(<#ty as #krate::ShmSafe>::LAYOUT.atomic)
        });

        let padding_checks = self.padding_checks();
        let default_impl = self.default.map(|span| {
            quote_spanned! {span=>
                impl ::core::default::Default for #ident {
                    /// All zero, except enums whose 0 is undeclared: their
                    /// first variant (`#[shm(default)]`).
                    fn default() -> Self {
                        #krate::__private::default_value::<Self>()
                    }
                }
            }
        });

        quote! {
            #[allow(
                deprecated,
                non_local_definitions,
                unused_qualifications,
                clippy::assertions_on_constants,
                clippy::undocumented_unsafe_blocks
            )]
            const _: () = {
                // SAFETY: (generated by `#[derive(ShmMessage)]`)
                // - layout: the derive refused the struct unless it is
                //   `#[repr(C)]` (optionally `align(N)`), so its layout is
                //   fixed by its field types ("the order, size, and alignment
                //   of fields is exactly what you would expect from C",
                //   Reference, type layout);
                // - contents: the `where` clause requires every field type to
                //   be `ShmSafe`, so no field holds a pointer, a reference or a
                //   process-local handle, every field accepts every byte
                //   pattern (hence so does the struct), and the struct is
                //   `Send + Sync + 'static` because all its fields are; no
                //   generic parameters or lifetimes are accepted;
                // - no padding: the assertions below prove that each field
                //   starts where the previous one ends and the last one ends
                //   at the struct's size, and fields have no padding of their
                //   own (`ShmSafe`);
                // - `FINGERPRINT` is the struct row of `shmidl::fingerprint`
                //   over the name, the field names in order and each field
                //   type's own fingerprint; `LAYOUT` lists each field with the
                //   offset `offset_of!` gives.
                unsafe impl #krate::ShmSafe for #ident
                where
                    #(#own_predicates,)*
                    #(#bounds,)*
                {
                    const FINGERPRINT: u64 =
                        #krate::fingerprint::struct_start(#name, #count)
                            #(#steps)*
                            .finish();
                    const LAYOUT: &'static #krate::layout::TypeLayout = &#krate::layout::TypeLayout {
                        size: ::core::mem::size_of::<#ident>(),
                        align: ::core::mem::align_of::<#ident>(),
                        fingerprint: <#ident as #krate::ShmSafe>::FINGERPRINT,
                        plain: !#has_padding && #krate::layout::all(&[#(#plain_flags),*]),
                        atomic: #krate::layout::any(&[#(#atomic_flags),*]),
                        kind: #krate::layout::TypeKind::Struct {
                            name: #name,
                            fields: &[#(#field_layouts),*],
                        },
                    };
                }

                impl #krate::ShmMessage for #ident
                where
                    #(#own_predicates,)*
                    #(#bounds,)*
                {
                    const TYPE_NAME: &'static str = #name;
                }

                #default_impl

                #padding_checks
            };
        }
    }

    /// One compile-time check per field that the next field (or the end of
    /// the struct) starts where it ends, spanned at the field, naming the
    /// field, the offsets and the padding field to add.
    fn padding_checks(&self) -> TokenStream {
        let Message { ident, krate, .. } = self;
        let type_name = ident.unraw().to_string();
        let checks = self.fields.iter().enumerate().map(|(i, f)| {
            let (ty, member, field_name) = (f.ty, &f.member, &f.name);
            let next = match self.fields.get(i + 1) {
                Some(next) => {
                    let next_member = &next.member;
                    quote!(::core::mem::offset_of!(#ident, #next_member))
                }
                None => quote!(::core::mem::size_of::<#ident>()),
            };
            let padding_index = self.fields[..=i].iter().filter(|f| f.padding).count();
            // Every token at the field, so the error points there.
            let krate = respan(krate.to_token_stream(), f.span);
            quote_spanned! {f.span=>
                const _: () = #krate::__private::check_padding(
                    #type_name,
                    #field_name,
                    #padding_index,
                    ::core::mem::offset_of!(#ident, #member) + ::core::mem::size_of::<#ty>(),
                    #next,
                );
            }
        });
        quote!(#(#checks)*)
    }
}

/// `tokens` with every token's span set to `span`.
fn respan(tokens: TokenStream, span: proc_macro2::Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let proc_macro2::TokenTree::Group(group) = &token {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = proc_macro2::TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

/// Explicit padding must be plain bytes, `[u8; N]`.
fn check_padding_type(ty: &Type, errors: &mut Errors) {
    let is_byte_array = match ty {
        Type::Array(array) => {
            matches!(&*array.elem, Type::Path(p) if p.qself.is_none() && p.path.is_ident("u8"))
        }
        _ => false,
    };
    if !is_byte_array {
        errors.push(syn::Error::new_spanned(
            ty,
            "a `#[shm(padding)]` field must be a byte array `[u8; N]`",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(input: DeriveInput) -> String {
        expand(input).to_string()
    }

    fn error_count(input: DeriveInput) -> usize {
        expand_str(input).matches("compile_error").count()
    }

    #[test]
    fn a_plain_struct_gets_an_impl_and_a_padding_check() {
        let out = expand_str(parse_quote! {
            #[repr(C)]
            struct Vec3 { x: f64, y: f64, z: f64 }
        });
        assert!(!out.contains("compile_error"), "{out}");
        assert!(
            out.contains("unsafe impl :: shmidl :: ShmSafe for Vec3"),
            "{out}"
        );
        assert!(out.contains("struct_start (\"Vec3\" , 3u64)"), "{out}");
        assert!(
            out.contains(". str (\"x\") . u64 (< f64 as :: shmidl :: ShmSafe > :: FINGERPRINT)"),
            "{out}"
        );
        // Each field must end where the next starts; the last, at the end.
        assert!(
            out.contains(
                "check_padding (\"Vec3\" , \"x\" , 0usize , :: core :: mem :: offset_of ! \
                 (Vec3 , x) + :: core :: mem :: size_of :: < f64 > () , :: core :: mem :: \
                 offset_of ! (Vec3 , y) ,)"
            ),
            "{out}"
        );
        assert!(
            out.contains("size_of :: < f64 > () , :: core :: mem :: size_of :: < Vec3 > () ,)"),
            "{out}"
        );
        assert!(
            out.contains("impl :: shmidl :: ShmMessage for Vec3"),
            "{out}"
        );
        assert!(out.contains("plain : ! false"), "{out}");
        // One bound for the three `f64` fields, on each of the two impls.
        assert_eq!(
            out.matches("f64 : :: shmidl :: ShmSafe").count(),
            2,
            "{out}"
        );
    }

    #[test]
    fn the_schema_name_and_crate_path_are_honoured() {
        let out = expand_str(parse_quote! {
            #[repr(C, align(8))]
            #[shm(name = "robot.v1.Vec3", crate = "crate::rt")]
            struct Vec3 { x: f64 }
        });
        assert!(
            out.contains("struct_start (\"robot.v1.Vec3\" , 1u64)"),
            "{out}"
        );
        assert!(
            out.contains("unsafe impl crate :: rt :: ShmSafe for Vec3"),
            "{out}"
        );
        assert!(!out.contains(":: shmidl ::"), "{out}");
    }

    #[test]
    fn a_field_name_can_be_given_for_the_fingerprint() {
        let out = expand_str(parse_quote! {
            #[repr(C)]
            struct K { #[shm(name = "self")] self_: u32 }
        });
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains(". str (\"self\")"), "{out}");
        assert!(out.contains("name : \"self\""), "{out}");
        assert!(out.contains("offset_of ! (K , self_)"), "{out}");
    }

    #[test]
    fn raw_identifiers_and_tuple_fields_are_named_as_in_the_schema() {
        let out = expand_str(parse_quote! {
            #[repr(C)]
            struct r#Kw { r#type: u8 }
        });
        assert!(
            out.contains("struct_start (\"Kw\" , 1u64) . str (\"type\")"),
            "{out}"
        );
        let out = expand_str(parse_quote! {
            #[repr(C)]
            struct Pair(u32, u32);
        });
        assert!(out.contains(". str (\"0\")"), "{out}");
        assert!(out.contains(". str (\"1\")"), "{out}");
    }

    #[test]
    fn padding_fields_are_sized_but_not_hashed() {
        let out = expand_str(parse_quote! {
            #[repr(C)]
            struct P { a: u8, #[shm(padding)] __pad0: [u8; 3], b: u32 }
        });
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("struct_start (\"P\" , 2u64)"), "{out}");
        assert!(!out.contains(". str (\"__pad0\")"), "{out}");
        assert!(out.contains("size_of :: < [u8 ; 3] > ()"), "{out}");
        assert!(out.contains("name : \"__pad0\""), "{out}");
        assert!(out.contains("padding : true"), "{out}");
        assert!(out.contains("plain : ! true"), "{out}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        // No repr(C), generics, two bad fields, an unknown attribute.
        let input = parse_quote! {
            #[shm(nmae = "x")]
            struct Bad<T> { a: &'static T, b: usize, c: u8 }
        };
        assert_eq!(error_count(input), 5);
    }

    #[test]
    fn unions_are_refused() {
        assert_eq!(error_count(parse_quote!(#[repr(C)] union U { a: u8 })), 1);
    }

    #[test]
    fn layout_changing_reprs_are_refused() {
        for input in [
            parse_quote!(
                #[repr(C, packed)]
                struct S {
                    a: u8,
                }
            ),
            parse_quote!(
                #[repr(C)]
                #[repr(packed(2))]
                struct S {
                    a: u8,
                }
            ),
            parse_quote!(
                #[repr(transparent)]
                struct S {
                    a: u8,
                }
            ),
        ] {
            assert!(error_count(input) >= 1);
        }
        // `transparent` alone is also missing `C`.
        assert_eq!(
            error_count(parse_quote!(
                #[repr(transparent)]
                struct S {
                    a: u8,
                }
            )),
            2
        );
    }

    #[test]
    fn empty_and_padding_only_structs_are_refused() {
        assert_eq!(
            error_count(parse_quote!(
                #[repr(C)]
                struct S;
            )),
            1
        );
        assert_eq!(
            error_count(parse_quote!(
                #[repr(C)]
                struct S {}
            )),
            1
        );
        assert_eq!(
            error_count(parse_quote!(
                #[repr(C)]
                struct S {
                    #[shm(padding)]
                    p: [u8; 4],
                }
            )),
            1
        );
    }

    #[test]
    fn bad_attributes_are_refused() {
        for input in [
            parse_quote!(
                #[repr(C)]
                #[shm(name = "not a name")]
                struct S {
                    a: u8,
                }
            ),
            parse_quote!(
                #[repr(C)]
                #[shm(name = "A", name = "B")]
                struct S {
                    a: u8,
                }
            ),
            parse_quote!(
                #[repr(C)]
                #[shm(crate = "not a path!")]
                struct S {
                    a: u8,
                }
            ),
            parse_quote!(
                #[repr(C)]
                #[shm(padding)]
                struct S {
                    a: u8,
                }
            ),
            parse_quote!(
                #[repr(C)]
                struct S {
                    #[shm(crate = "x")]
                    a: u8,
                }
            ),
            parse_quote!(
                #[repr(C)]
                struct S {
                    #[shm(name = "not a name")]
                    a: u8,
                }
            ),
            parse_quote!(
                #[repr(C)]
                struct S {
                    a: u8,
                    #[shm(padding)]
                    p: [u16; 2],
                }
            ),
        ] {
            assert_eq!(error_count(input), 1);
        }
    }
}
