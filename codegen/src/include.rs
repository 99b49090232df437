//! The expansion behind `shmidl::include_schema!`: nested modules that
//! mirror package paths around `include!` of the files `build.rs`
//! generated (`$OUT_DIR/<package>.rs`).
//!
//! It lives here, next to the generator, so that the module names it writes
//! and the relative paths the generator writes (`super::common::Vec3`) come
//! from the same `ident.rs`; the proc-macro crate only forwards tokens.
//!
//! ```
//! let tokens = shmidl_codegen::include::expand(quote::quote!("robot.v1", "robot.common"));
//! let code = tokens.to_string();
//! assert!(code.starts_with("# [doc"));
//! assert_eq!(code.matches("pub mod robot").count(), 1);
//! assert!(code.contains("\"/robot.v1.rs\"") && code.contains("\"/robot.common.rs\""));
//! ```

use std::collections::BTreeMap;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{parse::Parser, punctuated::Punctuated, LitStr, Token};

use crate::ident::ident;

/// The module tree: children by package segment, and the packages whose
/// files are included at this level.
#[derive(Default)]
struct Tree {
    children: BTreeMap<String, Tree>,
    files: Vec<String>,
}

/// Expands `include_schema!("robot.v1", ...)`; errors become
/// `compile_error!`s spanned on the offending literal.
pub fn expand(input: TokenStream) -> TokenStream {
    match try_expand(input) {
        Ok(tokens) => tokens,
        Err(e) => e.into_compile_error(),
    }
}

/// Whether `segment` is a package segment the schema language accepts:
/// an identifier (`[A-Za-z_][A-Za-z0-9_]*`) other than `_`.
fn is_segment(segment: &str) -> bool {
    segment != "_"
        && segment
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn try_expand(input: TokenStream) -> syn::Result<TokenStream> {
    let packages = Punctuated::<LitStr, Token![,]>::parse_terminated.parse2(input)?;
    if packages.is_empty() {
        return Err(syn::Error::new(
            Span::call_site(),
            "name the packages to include, e.g. `include_schema!(\"robot.v1\")`",
        ));
    }
    let mut tree = Tree::default();
    let mut errors: Option<syn::Error> = None;
    let mut seen = BTreeMap::new();
    for lit in &packages {
        let package = lit.value();
        let mut error = |message: String| {
            let e = syn::Error::new(lit.span(), message);
            match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            }
        };
        if seen.insert(package.clone(), ()).is_some() {
            error(format!("package `{package}` is named twice"));
            continue;
        }
        if package != "_" && !package.split('.').all(is_segment) {
            error(format!(
                "`{package}` is not a package path: expected identifiers joined by `.` \
                 (as in the schema's `package robot.v1;`), or `_` for the root package"
            ));
            continue;
        }
        // The including crate's OUT_DIR, when it has a build script: a
        // package build.rs did not generate is named here, with those it
        // did, rather than as a file `include!` cannot read.
        if let Some(dir) = std::env::var_os("OUT_DIR") {
            if let Err(message) = generated(std::path::Path::new(&dir), &package) {
                error(message);
                continue;
            }
        }
        if package == "_" {
            tree.files.push(package);
            continue;
        }
        let mut node = &mut tree;
        for segment in package.split('.') {
            node = node.children.entry(segment.to_owned()).or_default();
        }
        node.files.push(package);
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(emit(&tree, "")),
    }
}

/// Whether `out_dir` holds the code generated for `package`; if not, the
/// error names the packages it holds.
fn generated(out_dir: &std::path::Path, package: &str) -> Result<(), String> {
    if out_dir.join(format!("{package}.rs")).is_file() {
        return Ok(());
    }
    let mut there: Vec<String> = std::fs::read_dir(out_dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    name.strip_suffix(".rs").map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    there.sort();
    let found = if there.is_empty() {
        "none".to_owned()
    } else {
        there
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(format!(
        "build.rs generated no code for package `{package}` (it generated: {found}); \
         check the schema's `package` line, and that build.rs compiles that schema"
    ))
}

fn emit(tree: &Tree, prefix: &str) -> TokenStream {
    let mut out = TokenStream::new();
    for file in &tree.files {
        let path = format!("/{file}.rs");
        out.extend(quote! {
            include!(concat!(env!("OUT_DIR"), #path));
        });
    }
    for (name, child) in &tree.children {
        let package = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let module = ident(name);
        let inner = emit(child, &package);
        let doc = format!(" Generated from the schema package `{package}` and below.");
        out.extend(quote! {
            #[doc = #doc]
            pub mod #module {
                #inner
            }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(input: &str) -> String {
        expand(input.parse().unwrap()).to_string()
    }

    #[test]
    fn packages_share_their_common_module_prefixes() {
        let sut = expand_str(r#""robot.v1", "robot.common", "geo""#);
        assert_eq!(sut.matches("pub mod robot").count(), 1, "{sut}");
        assert!(sut.contains("pub mod v1 {"), "{sut}");
        assert!(sut.contains("pub mod common {"), "{sut}");
        assert!(sut.contains("pub mod geo {"), "{sut}");
        assert!(sut.contains("package `robot.common` and below"), "{sut}");
        assert!(sut.contains(r#""/robot.common.rs""#), "{sut}");
    }

    #[test]
    fn the_root_package_is_included_in_place() {
        let sut = expand_str(r#""_""#);
        assert!(!sut.contains("mod"), "{sut}");
        assert!(sut.contains(r#""/_.rs""#), "{sut}");
    }

    #[test]
    fn module_names_are_escaped_like_the_generator_escapes_them() {
        // Not valid schema packages, but no panic: the same names as
        // `ident.rs` gives the generator's relative paths.
        let sut = expand_str(r#""a.type", "a.self", "_private""#);
        assert!(sut.contains("pub mod r#type"), "{sut}");
        assert!(sut.contains("pub mod self_"), "{sut}");
        assert!(sut.contains("pub mod _private"), "{sut}");
    }

    #[test]
    fn a_package_build_rs_did_not_generate_is_named_with_those_it_did() {
        let dir = std::env::temp_dir().join(format!("shmidl-include-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("robot.v1.rs"), "").unwrap();
        std::fs::write(dir.join("quickstart.rs"), "").unwrap();
        assert_eq!(generated(&dir, "robot.v1"), Ok(()));
        let e = generated(&dir, "robot.v2").unwrap_err();
        assert!(
            e.contains("`robot.v2`") && e.contains("`quickstart`, `robot.v1`"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_bad_package_is_a_spanned_compile_error() {
        let sut = expand_str(r#""robot..v1", "a", "a", "9x", "_.b""#);
        assert_eq!(sut.matches("compile_error").count(), 4, "{sut}");
        assert!(sut.contains("`robot..v1` is not a package path"), "{sut}");
        assert!(sut.contains("package `a` is named twice"), "{sut}");
        assert!(expand_str("").contains("name the packages to include"));
        assert!(expand_str("robot").contains("compile_error"));
    }
}
