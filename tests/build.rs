//! Generates Rust code for every valid golden schema of `idl/tests/fixtures`
//! (one directory per case in `$OUT_DIR/golden/`), plus `golden.rs`: a
//! module per case that includes the case's packages, and a table of every
//! generated type (size, fingerprint, layout) that `tests/generated.rs`
//! compares with the schema compiler.

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../idl/tests/fixtures/valid");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut cases: Vec<PathBuf> = fs::read_dir(&root)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("input.shmidl").is_file())
        .collect();
    cases.sort();

    let mut modules = String::new();
    let mut table = String::from(
        "/// Every generated type: (case, qualified name, size, fingerprint, layout).\n\
         pub fn generated_types() -> Vec<(&'static str, &'static str, usize, u64, &'static ::shmidl::layout::TypeLayout)> {\n    vec![\n",
    );
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let include = case.join("include");
        let includes: Vec<PathBuf> = if include.is_dir() {
            vec![include]
        } else {
            Vec::new()
        };
        let inputs = [case.join("input.shmidl")];
        shmidl_codegen::Config::new()
            .out_dir(out.join("golden").join(&name))
            .compile(&inputs, &includes)?;
        let schema = shmidl_idl::load_all(&inputs, &includes).map_err(|e| e.to_string())?;

        // The package tree of the case, each package including its file.
        writeln!(modules, "pub mod {name} {{")?;
        let mut packages: Vec<&shmidl_idl::Package> = schema.packages().iter().collect();
        packages.sort_by(|a, b| a.path.cmp(&b.path));
        for package in packages {
            let file = if package.path.is_empty() {
                "_".to_owned()
            } else {
                package.path.join(".")
            };
            for segment in &package.path {
                write!(modules, "pub mod {segment} {{ ")?;
            }
            write!(
                modules,
                "include!(concat!(env!(\"OUT_DIR\"), \"/golden/{name}/{file}.rs\"));"
            )?;
            for _ in &package.path {
                write!(modules, " }}")?;
            }
            writeln!(modules)?;
        }
        writeln!(modules, "}}")?;

        for def in schema.types() {
            let mut path = vec![name.clone()];
            path.extend(def.package.iter().cloned());
            path.push(def.name.clone());
            let path = format!("crate::golden::{}", path.join("::"));
            let (ty, fp) = match def.kind {
                shmidl_idl::TypeDefKind::Enum(_) => (
                    format!("::shmidl::Enum<{path}>"),
                    format!("<{path} as ::shmidl::ShmEnum>::FINGERPRINT"),
                ),
                _ => (
                    path.clone(),
                    format!("<{path} as ::shmidl::ShmSafe>::FINGERPRINT"),
                ),
            };
            writeln!(
                table,
                "        ({name:?}, {:?}, ::core::mem::size_of::<{ty}>(), {fp}, <{ty} as ::shmidl::ShmSafe>::LAYOUT),",
                def.qualified_name
            )?;
        }
    }
    table.push_str("    ]\n}\n");

    // The agreement schema, whose types tests/src/lib.rs also derives.
    let agreement = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/agreement.shmidl");
    println!("cargo:rerun-if-changed={}", agreement.display());
    shmidl_codegen::Config::new()
        .out_dir(out.join("agreement"))
        .compile(&[&agreement], &[] as &[&Path])?;
    modules.push_str(
        "pub mod agreement { pub mod agree { pub mod v1 { \
         include!(concat!(env!(\"OUT_DIR\"), \"/agreement/agree.v1.rs\")); } } }\n",
    );
    fs::write(
        out.join("golden.rs"),
        format!("/// The golden cases.\n#[allow(missing_docs, dead_code)]\npub mod golden {{\n{modules}}}\n\n{table}"),
    )?;
    Ok(())
}
