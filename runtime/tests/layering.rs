//! The runtime's modules form layers, as ARCHITECTURE.md states under
//! "Layers of `runtime/src`": each module imports only modules of its own
//! layer or below. This test reads every `crate::` path of every file of
//! `runtime/src` (in `use` lines and inline), resolves names the crate root
//! re-exports to the module that defines them, and fails on any path that
//! reaches up a layer, or on a module the layering does not place.

use std::{
    collections::{BTreeSet, HashMap},
    fs,
    path::{Path, PathBuf},
};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Module → layer, from ARCHITECTURE.md.
fn layers() -> HashMap<String, usize> {
    let doc = fs::read_to_string(Path::new(ROOT).join("../ARCHITECTURE.md")).unwrap();
    let section = doc
        .split("### Layers of `runtime/src`")
        .nth(1)
        .expect("ARCHITECTURE.md has no \"Layers of `runtime/src`\" section");
    let block = section
        .split("```text")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the layers section has a ```text block");
    let mut out = HashMap::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let (n, mods) = line.split_once(':').expect("layer lines are `N: modules`");
        let n: usize = n.trim().parse().expect("a layer number");
        for m in mods.split_whitespace() {
            assert!(out.insert(m.to_owned(), n).is_none(), "{m} is placed twice");
        }
    }
    out
}

/// Names the crate root re-exports (`pub use crate::pool::{Pool, …}`) →
/// the module they come from.
fn reexports(lib: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let code = strip_comments(lib);
    for (module, names) in use_groups(&code) {
        for name in names {
            out.insert(name, module.clone());
        }
    }
    out
}

/// For each `crate::module::{a, b::c, D}` or `crate::module::Name` in
/// `code`: (module, the names it brings in, as written at the top level of
/// the group).
fn use_groups(code: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for (module, rest) in crate_paths(code) {
        let Some(rest) = rest.strip_prefix("::") else {
            continue;
        };
        if let Some(group) = rest.strip_prefix('{') {
            out.push((module, top_level_heads(group)));
        } else {
            out.push((module, vec![ident(rest).to_owned()]));
        }
    }
    out
}

/// Every `crate::X…` in `code` (not `$crate::`): `X` and what follows it.
fn crate_paths(code: &str) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("crate::") {
        let start = from + at;
        from = start + "crate::".len();
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| c == '$' || c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[from..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::…, b::…}`: every head is a module or a root name.
            for head in top_level_heads(group) {
                let tail = group
                    .find(&format!("{head}::"))
                    .map_or("", |i| &group[i + head.len()..]);
                out.push((head, tail));
            }
        } else {
            let head = ident(rest);
            out.push((head.to_owned(), &rest[head.len()..]));
        }
    }
    out
}

/// The identifiers that start each comma-separated item at depth 0 of a
/// brace group (`a::b, C, d::{e, f}` → a, C, d).
fn top_level_heads(group: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut at_item_start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_item_start = true,
            c if at_item_start && depth == 0 && (c.is_alphanumeric() || c == '_') => {
                out.push(ident(&group[i..]).to_owned());
                at_item_start = false;
            }
            _ => {}
        }
    }
    out
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// `code` without `//` comments (doc comments included: a doc link is not
/// an import).
fn strip_comments(code: &str) -> String {
    code.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `runtime/src` belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_str()
        .unwrap();
    first.trim_end_matches(".rs").to_owned()
}

#[test]
fn no_module_imports_a_layer_above_its_own() {
    let layers = layers();
    let src = Path::new(ROOT).join("src");
    let lib = fs::read_to_string(src.join("lib.rs")).unwrap();
    let roots = reexports(&lib);
    let layer_of = |module: &str| -> Option<usize> {
        let module = if module == "__private" {
            "private"
        } else {
            module
        };
        layers.get(module).copied()
    };
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut violations = BTreeSet::new();
    let mut unplaced = BTreeSet::new();
    let mut checked = 0;
    for file in files.iter().filter(|f| !f.ends_with("lib.rs")) {
        let module = module_of(&src, file);
        let Some(own) = layer_of(&module) else {
            unplaced.insert(module);
            continue;
        };
        let code = strip_comments(&fs::read_to_string(file).unwrap());
        for (head, _) in crate_paths(&code) {
            let target = if head.starts_with(|c: char| c.is_ascii_lowercase()) {
                head.clone()
            } else {
                match roots.get(&head) {
                    Some(m) => m.clone(),
                    None => continue, // a macro or a name defined in lib.rs
                }
            };
            checked += 1;
            match layer_of(&target) {
                Some(layer) if layer > own => {
                    violations.insert(format!(
                        "{} (`{module}`, layer {own}) uses `crate::{head}` from `{target}`, layer {layer}",
                        file.strip_prefix(&src).unwrap().display()
                    ));
                }
                Some(_) => {}
                None => {
                    unplaced.insert(target);
                }
            }
        }
    }
    assert!(
        checked > 50,
        "found only {checked} crate paths: is the parser broken?"
    );
    assert!(
        unplaced.is_empty(),
        "modules missing from ARCHITECTURE.md's layering: {unplaced:?}"
    );
    assert!(
        violations.is_empty(),
        "imports that reach up a layer:\n{}",
        violations.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_checker_sees_an_upward_import() {
    // The parser finds modules in groups, nested groups and inline paths,
    // and ignores comments and `$crate`.
    let code = strip_comments(
        "use crate::{pool::{Pool, Sample}, segment::Segment};\n\
         // use crate::router::Router;\n\
         let x = crate::router::reclaim_owner(a);\n\
         $crate::node::Node::new();",
    );
    let heads: Vec<String> = crate_paths(&code).into_iter().map(|(h, _)| h).collect();
    assert_eq!(heads, ["pool", "segment", "router"]);
    let roots = reexports("pub use crate::pool::{\n    ArrayPool, Pool,\n};\npub use crate::{name::{SegmentName}, shm_safe::ShmSafe};");
    assert_eq!(roots.get("Pool").map(String::as_str), Some("pool"));
    assert_eq!(roots.get("ShmSafe").map(String::as_str), Some("shm_safe"));
}
