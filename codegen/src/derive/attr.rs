//! The attributes the derive reads: `#[repr(...)]` and `#[shm(...)]` on the
//! struct, `#[shm(...)]` on its fields.

use syn::{
    meta::ParseNestedMeta, parenthesized, spanned::Spanned, token, Attribute, Ident, LitInt,
    LitStr, Path,
};

use super::Errors;

/// What `#[shm(...)]` on the struct says.
#[derive(Default)]
pub(super) struct StructAttrs {
    /// `name = "robot.v1.Vec3"`: the qualified name hashed into the fingerprint.
    pub(super) name: Option<String>,
    /// `crate = "path"`: where the runtime is, instead of `::shmidl`.
    pub(super) krate: Option<Path>,
    /// `default`: implement `Default` as the all-zero value (structs only).
    pub(super) default: Option<proc_macro2::Span>,
}

/// Reads every `#[shm(...)]` attribute of the struct. Unknown keys, repeated
/// keys and malformed values are errors; the rest is still read.
pub(super) fn struct_attrs(attrs: &[Attribute], errors: &mut Errors) -> StructAttrs {
    let mut out = StructAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("shm")) {
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                if out.name.is_some() {
                    errors.push(syn::Error::new(
                        meta.path.span(),
                        "duplicate `name` in `#[shm(...)]`",
                    ));
                } else if let Err(why) = check_qualified_name(&lit.value()) {
                    errors.push(syn::Error::new(lit.span(), why));
                } else {
                    out.name = Some(lit.value());
                }
                Ok(())
            } else if meta.path.is_ident("crate") {
                let lit: LitStr = meta.value()?.parse()?;
                let path = lit.parse_with(Path::parse_mod_style)?;
                if out.krate.is_some() {
                    errors.push(syn::Error::new(
                        meta.path.span(),
                        "duplicate `crate` in `#[shm(...)]`",
                    ));
                } else {
                    out.krate = Some(path);
                }
                Ok(())
            } else if meta.path.is_ident("default") {
                if out.default.is_some() {
                    errors.push(syn::Error::new(
                        meta.path.span(),
                        "duplicate `default` in `#[shm(...)]`",
                    ));
                }
                out.default = Some(meta.path.span());
                Ok(())
            } else if meta.path.is_ident("padding") {
                Err(meta.error("`padding` belongs on a field, not on the struct"))
            } else {
                Err(meta.error(
                    "unknown `shm` attribute; expected `name = \"pkg.Type\"`, \
                     `crate = \"path\"` or `default`",
                ))
            }
        });
        if let Err(e) = parsed {
            errors.push(e);
        }
    }
    out
}

/// What `#[shm(...)]` on a field says.
#[derive(Default)]
pub(super) struct FieldAttrs {
    /// `padding`: an explicit padding field.
    pub(super) padding: bool,
    /// `name = "type"`: the name hashed into the fingerprint, when the Rust
    /// identifier cannot be the schema's (`self_` for `self`).
    pub(super) name: Option<String>,
}

/// Reads the `#[shm(...)]` attributes of a field.
pub(super) fn field_attrs(attrs: &[Attribute], errors: &mut Errors) -> FieldAttrs {
    let mut out = FieldAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("shm")) {
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("padding") {
                out.padding = true;
                Ok(())
            } else if meta.path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                let name = lit.value();
                let valid = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    errors.push(syn::Error::new(
                        lit.span(),
                        format!("`{name}` is not a field name: expected an identifier"),
                    ));
                } else if out.name.replace(name).is_some() {
                    errors.push(syn::Error::new(
                        meta.path.span(),
                        "duplicate `name` in `#[shm(...)]`",
                    ));
                }
                Ok(())
            } else if meta.path.is_ident("crate") || meta.path.is_ident("default") {
                Err(meta.error(
                    "`crate` and `default` belong on the struct; a field takes \
                     `#[shm(padding)]` or `#[shm(name = \"...\")]`",
                ))
            } else {
                Err(meta.error(
                    "unknown `shm` field attribute; expected `#[shm(padding)]` or \
                     `#[shm(name = \"...\")]`",
                ))
            }
        });
        if let Err(e) = parsed {
            errors.push(e);
        }
    }
    if out.padding && out.name.is_some() {
        errors.push(syn::Error::new(
            proc_macro2::Span::call_site(),
            "a padding field has no name in the fingerprint: drop `name`",
        ));
    }
    out
}

/// Checks that the struct is `#[repr(C)]`, optionally with `align(N)`, and
/// nothing that changes the layout otherwise (`packed`, `transparent`).
pub(super) fn check_repr(attrs: &[Attribute], ident: &Ident, errors: &mut Errors) {
    let mut has_c = false;
    for attr in attrs.iter().filter(|a| a.path().is_ident("repr")) {
        let parsed = attr.parse_nested_meta(|meta| {
            let path = &meta.path;
            if path.is_ident("C") {
                has_c = true;
            } else if path.is_ident("align") {
                let content;
                parenthesized!(content in meta.input);
                content.parse::<LitInt>()?;
            } else {
                skip_parenthesized(&meta)?;
                let why = if path.is_ident("packed") {
                    "`#[repr(packed)]` is not supported: packed fields can be unaligned, \
                     and the schema's layout aligns every field; use `#[repr(C)]` and \
                     explicit `#[shm(padding)]` fields"
                } else if path.is_ident("transparent") {
                    "use `#[repr(C)]` instead of `#[repr(transparent)]`: a message's layout \
                     must follow the `#[repr(C)]` rules of the schema language"
                } else {
                    "unsupported `repr`: a message is `#[repr(C)]`, optionally with `align(N)`"
                };
                errors.push(syn::Error::new(path.span(), why));
            }
            Ok(())
        });
        if let Err(e) = parsed {
            errors.push(e);
        }
    }
    if !has_c {
        errors.push(syn::Error::new(
            ident.span(),
            "`ShmMessage` requires `#[repr(C)]`: without it, Rust may reorder fields and \
             their layout can differ between compilations and processes",
        ));
    }
}

/// Consumes a `(...)` group after a `repr` item, if there is one.
fn skip_parenthesized(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(token::Paren) {
        let content;
        parenthesized!(content in meta.input);
        content.parse::<proc_macro2::TokenStream>()?;
    }
    Ok(())
}

/// A schema qualified name: identifiers `[A-Za-z_][A-Za-z0-9_]*` joined by `.`.
fn check_qualified_name(name: &str) -> Result<(), String> {
    let valid_ident = |s: &str| {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if name.split('.').all(valid_ident) {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a qualified type name: expected identifiers joined by `.`, \
             like `robot.v1.Vec3`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_are_dot_separated_identifiers() {
        assert!(check_qualified_name("robot.v1.Vec3").is_ok());
        assert!(check_qualified_name("Vec3").is_ok());
        assert!(check_qualified_name("_a._b").is_ok());
        for bad in [
            "",
            "robot..Vec3",
            ".Vec3",
            "Vec3.",
            "1robot.Vec3",
            "robot v1",
            "a-b",
        ] {
            assert!(check_qualified_name(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
