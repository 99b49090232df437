//! Generates Rust code for every valid golden schema of `idl/tests/fixtures`
//! and every case of `codegen/tests/fixtures` (one directory per case in
//! `$OUT_DIR/golden/`), plus `golden.rs`: a
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
    // The golden schemas of idl, then the generator's own snapshot cases
    // (`codegen/tests/snapshots.rs` keeps their names distinct).
    let mut cases = Vec::new();
    for root in ["../idl/tests/fixtures/valid", "../codegen/tests/fixtures"] {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(root);
        println!("cargo:rerun-if-changed={}", root.display());
        let mut found: Vec<PathBuf> = fs::read_dir(&root)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("input.shmidl").is_file())
            .collect();
        found.sort();
        cases.extend(found);
    }

    // One case straight into `$OUT_DIR`, as a user's build.rs does, for
    // `shmidl::include_schema!` in `tests/include_schema.rs`.
    let siblings =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../codegen/tests/fixtures/sibling_packages");
    shmidl_codegen::compile(
        &[siblings.join("input.shmidl")],
        &[siblings.join("include")],
    )?;

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
            // Some golden schemas carry warnings on purpose.
            .emit_warnings(false)
            .compile(&inputs, &includes)?;
        let schema = shmidl_idl::load_all(&inputs, &includes).map_err(|e| e.to_string())?;

        // The package tree of the case, each package including its file;
        // packages sorted by path, so those sharing a prefix share its
        // modules (`robot { common {..} v1 {..} }`), as include_schema! does.
        writeln!(modules, "pub mod {name} {{")?;
        let mut packages: Vec<&shmidl_idl::Package> = schema.packages().iter().collect();
        packages.sort_by(|a, b| a.path.cmp(&b.path));
        let mut open: Vec<String> = Vec::new();
        for package in packages {
            let common = open
                .iter()
                .zip(&package.path)
                .take_while(|(a, b)| a == b)
                .count();
            for _ in common..open.len() {
                writeln!(modules, "}}")?;
            }
            open.truncate(common);
            for segment in &package.path[common..] {
                writeln!(modules, "pub mod {segment} {{")?;
                open.push(segment.clone());
            }
            let file = if package.path.is_empty() {
                "_".to_owned()
            } else {
                package.path.join(".")
            };
            writeln!(
                modules,
                "include!(concat!(env!(\"OUT_DIR\"), \"/golden/{name}/{file}.rs\"));"
            )?;
        }
        for _ in &open {
            writeln!(modules, "}}")?;
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
