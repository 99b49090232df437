//! Field types that can never live in shared memory, rejected by their
//! syntax with an error on the type itself.
//!
//! This is a courtesy, not the safety net: every field type also gets a
//! `ShmSafe` bound, which catches every other type that does not implement the
//! trait. What this pass adds is a message that says *why* a common type is
//! refused and what to use instead, instead of only "trait bound not satisfied".

use syn::{GenericArgument, PathArguments, Type, TypePath};

use super::Errors;

/// Reports every part of `ty` that cannot live in shared memory.
pub(super) fn check_type(ty: &Type, errors: &mut Errors) {
    let why = match ty {
        Type::Array(array) => return check_type(&array.elem, errors),
        Type::Group(group) => return check_type(&group.elem, errors),
        Type::Paren(paren) => return check_type(&paren.elem, errors),
        Type::Path(path) => return check_path(path, errors),
        Type::Reference(_) => {
            "references cannot live in shared memory: they are addresses in one \
             process; store the value itself"
        }
        Type::Ptr(_) => {
            "raw pointers cannot live in shared memory: each process maps a segment \
             at its own address; store an offset instead"
        }
        Type::BareFn(_) => {
            "function pointers cannot live in shared memory: code addresses differ \
             between processes"
        }
        Type::TraitObject(_) | Type::ImplTrait(_) => {
            "trait objects cannot live in shared memory: they carry a pointer to a \
             vtable in one process"
        }
        Type::Slice(_) => {
            "slices have no fixed size; use a fixed array `[T; N]` or \
             `shmidl::FixedSizeVec<T, N>`"
        }
        Type::Tuple(_) => {
            "tuples have no fixed layout (Rust may reorder their fields); use a \
             `#[repr(C)]` struct that derives `ShmMessage`"
        }
        Type::Never(_) => "`!` has no values, so a message with it cannot be built",
        // Macros, `_` and anything newer than this code: the `ShmSafe` bound
        // decides.
        _ => return,
    };
    errors.push(syn::Error::new_spanned(ty, why));
}

/// Checks a named type: its last segment against the known refusals, and
/// its type arguments (so `Option<Box<T>>` blames the `Box`).
fn check_path(ty: &TypePath, errors: &mut Errors) {
    if let Some(qself) = &ty.qself {
        check_type(&qself.ty, errors);
    }
    let Some(last) = ty.path.segments.last() else {
        return;
    };
    if let Some(why) = refusal(&last.ident.to_string()) {
        errors.push(syn::Error::new_spanned(ty, why));
        return;
    }
    for segment in &ty.path.segments {
        if let PathArguments::AngleBracketed(args) = &segment.arguments {
            for arg in &args.args {
                if let GenericArgument::Type(inner) = arg {
                    check_type(inner, errors);
                }
            }
        }
    }
}

/// Why a type named `name` (the last segment of its path) is refused.
///
/// Matching on the name alone means a user type called `Vec` is refused too;
/// such a type would be confusing in a message anyway.
fn refusal(name: &str) -> Option<&'static str> {
    Some(match name {
        "Box" | "Rc" | "Arc" | "Weak" => {
            "`Box`, `Rc`, `Arc` and `Weak` point into one process's heap, so they \
             cannot live in shared memory; store the value inline"
        }
        "String" => {
            "`String` points into one process's heap, so it cannot live in shared \
             memory; use `shmidl::FixedSizeString<N>` (the schema's `string<N>`)"
        }
        "Vec" => {
            "`Vec` points into one process's heap, so it cannot live in shared \
             memory; use `shmidl::FixedSizeVec<T, N>` (the schema's `sequence<T, N>`)"
        }
        "NonNull" => {
            "`NonNull` is a pointer: each process maps a segment at its own \
             address; store an offset instead"
        }
        "usize" | "isize" => {
            "`usize` and `isize` change size with the target, so two processes may \
             disagree on the layout; use `u64`/`i64` or `u32`/`i32`"
        }
        "char" => {
            "`char` has invalid bit patterns another process could write, and the \
             schema language has no `char`; use `u32`"
        }
        "str" => "`str` has no fixed size; use `shmidl::FixedSizeString<N>`",
        "bool" | "AtomicBool" => {
            "a Rust `bool` is undefined behaviour for any byte but 0 and 1, and \
             another process may write any byte; use `shmidl::Bool` (the schema's \
             `bool`: `.get()` reads it, `true.into()` writes it)"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    fn errors_for(ty: Type) -> usize {
        let mut errors = Errors::default();
        check_type(&ty, &mut errors);
        errors.count()
    }

    #[test]
    fn plain_data_passes() {
        assert_eq!(errors_for(parse_quote!(u64)), 0);
        assert_eq!(errors_for(parse_quote!([[f32; 3]; 4])), 0);
        assert_eq!(errors_for(parse_quote!(::core::sync::atomic::AtomicU32)), 0);
        assert_eq!(errors_for(parse_quote!(crate::Vec3)), 0);
    }

    #[test]
    fn every_refused_kind_is_reported() {
        let refused: [Type; 18] = [
            parse_quote!(bool),
            parse_quote!(std::sync::atomic::AtomicBool),
            parse_quote!(&'static u8),
            parse_quote!(*const u8),
            parse_quote!(*mut u8),
            parse_quote!(Box<u8>),
            parse_quote!(std::string::String),
            parse_quote!(Vec<u8>),
            parse_quote!(std::rc::Rc<u8>),
            parse_quote!(Arc<u8>),
            parse_quote!(usize),
            parse_quote!(isize),
            parse_quote!(char),
            parse_quote!(fn(u8) -> u8),
            parse_quote!(dyn Send),
            parse_quote!([u8]),
            parse_quote!((u8, u16)),
            parse_quote!(()),
        ];
        for ty in refused {
            let shown = quote::quote!(#ty).to_string();
            assert_eq!(errors_for(ty), 1, "{shown}");
        }
    }

    #[test]
    fn refusals_are_found_inside_arrays_and_type_arguments() {
        assert_eq!(errors_for(parse_quote!([usize; 4])), 1);
        assert_eq!(errors_for(parse_quote!([[&'static u8; 2]; 2])), 1);
        assert_eq!(errors_for(parse_quote!(Option<Box<u8>>)), 1);
        assert_eq!(errors_for(parse_quote!(Wrapper<char, usize>)), 2);
    }
}
