//! Property tests. The first runs the fuzz harness (`fuzz/fuzz_targets/parse.rs` runs the
//! same function under cargo-fuzz) on token soup and on random text; the others check
//! formatting and fingerprints on generated valid schemas.

use proptest::{prelude::*, test_runner::Config};
use shmidl_idl::fuzzing::check_input;

/// Tokens that the grammar knows, so random sequences often parse deep into rules.
const TOKENS: &[&str] = &[
    "package",
    "import",
    "const",
    "enum",
    "struct",
    "message",
    "topic",
    "string",
    "bytes",
    "sequence",
    "true",
    "false",
    "u8",
    "u32",
    "f64",
    "bool",
    "i16",
    "A",
    "b",
    "Vec3",
    "a.b",
    "N",
    "0",
    "1",
    "-1",
    "0x1f",
    "1.5",
    "4294967296",
    "\"t/x\"",
    "\"x.shmidl\"",
    "{",
    "}",
    "[",
    "]",
    "<",
    ">",
    ";",
    ":",
    ",",
    "=",
    "/// doc\n",
    "// c\n",
    "/* c */",
    "\n",
    " ",
    "pool",
    "pool_chunks",
    "depth",
    "overflow",
    "soft_fail",
    "é",
    "\"",
    "'",
    "/",
    "*",
    "_",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..60).prop_map(|tokens| {
        let mut out = String::new();
        for t in tokens {
            out.push_str(t);
            out.push(' ');
        }
        out
    })
}

/// A random valid schema: a few constants, enums and structs referring to earlier ones,
/// a message and a topic, with docs and comments sprinkled in.
fn valid_schema() -> impl Strategy<Value = String> {
    let field_type = prop_oneof![
        Just("u8".to_owned()),
        Just("bool".to_owned()),
        Just("f64".to_owned()),
        Just("i32".to_owned()),
        (1u32..40).prop_map(|n| format!("string<{n}>")),
        (1u32..40).prop_map(|n| format!("bytes<0x{n:x}>")),
        (1u32..5).prop_map(|n| format!("[u16; {n}]")),
        (1u32..5).prop_map(|n| format!("sequence<[f32; 2], {n}>")),
        Just("[u8; N]".to_owned()),
        Just("E".to_owned()),
    ];
    let fields = prop::collection::vec((field_type, any::<bool>(), any::<bool>()), 1..8);
    let variants = prop::collection::btree_set(-100i32..100, 1..6);
    let chunks = prop::option::of(1u32..=32);
    (fields, variants, 1u32..100, any::<bool>(), chunks).prop_map(
        |(fields, variants, n, with_package, chunks)| {
            let mut s = String::new();
            if with_package {
                s.push_str("/// Generated.\npackage generated.v1;\n");
            }
            s.push_str(&format!("const N: u32 = {n}; // bound\n"));
            s.push_str("enum E: i16 {");
            for (i, v) in variants.iter().enumerate() {
                s.push_str(&format!(" V{i} = {v},"));
            }
            s.push_str(" }\n/* the struct */ struct S {\n");
            for (i, (ty, doc, comment)) in fields.iter().enumerate() {
                if *doc {
                    s.push_str(&format!("  /// field {i}\n"));
                }
                s.push_str(&format!("f{i}: {ty},"));
                if *comment {
                    s.push_str(" // note\n");
                }
            }
            s.push_str(
                "}\nmessage M { s: S, e: E }\ntopic \"gen/m\": M { depth: 2, overflow: soft_fail",
            );
            if let Some(c) = chunks {
                s.push_str(&format!(", pool_chunks: {c}"));
            }
            s.push_str(" }\n");
            s
        },
    )
}

proptest! {
    #![proptest_config(Config { cases: 3000, failure_persistence: None, ..Config::default() })]

    #[test]
    fn harness_holds_for_token_soup(text in token_soup()) {
        check_input(text.as_bytes());
    }

    #[test]
    fn harness_holds_for_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        check_input(&bytes);
    }
}

proptest! {
    #![proptest_config(Config { cases: 500, failure_persistence: None, ..Config::default() })]

    #[test]
    fn generated_schemas_validate_and_formatting_preserves_them(text in valid_schema()) {
        let schema = shmidl_idl::parse_str("gen.shmidl", &text).map_err(|d| TestCaseError::fail(d.to_string()))?;
        let formatted = shmidl_idl::format_str("gen.shmidl", &text).map_err(|d| TestCaseError::fail(d.to_string()))?;
        let reformatted = shmidl_idl::parse_str("fmt.shmidl", &formatted).map_err(|d| TestCaseError::fail(d.to_string()))?;
        // Same types, same layouts, same fingerprints after formatting.
        let summary = |s: &shmidl_idl::Schema| s.types().iter().map(|t| (t.qualified_name.clone(), t.layout, t.fingerprint)).collect::<Vec<_>>();
        prop_assert_eq!(summary(&schema), summary(&reformatted));
        // Same topic options, `pool_chunks` included when given.
        let options = |s: &shmidl_idl::Schema| s.topics().iter().map(|t| t.options).collect::<Vec<_>>();
        prop_assert_eq!(options(&schema), options(&reformatted));
        check_input(text.as_bytes());
    }

    #[test]
    fn fingerprints_do_not_depend_on_declaration_order(text in valid_schema()) {
        // Reverse the order of the top-level lines that declare things; names resolve
        // regardless of order, so every fingerprint must stay the same.
        let forward = shmidl_idl::parse_str("a.shmidl", &text).map_err(|d| TestCaseError::fail(d.to_string()))?;
        let formatted = shmidl_idl::format_str("a.shmidl", &text).map_err(|d| TestCaseError::fail(d.to_string()))?;
        let mut paragraphs: Vec<&str> = formatted.split("\n\n").collect();
        let package = if paragraphs.first().is_some_and(|p| p.contains("package")) { paragraphs.remove(0) } else { "" };
        paragraphs.reverse();
        let reversed_text = format!("{package}\n\n{}", paragraphs.join("\n\n"));
        let reversed = shmidl_idl::parse_str("b.shmidl", &reversed_text).map_err(|d| TestCaseError::fail(format!("{d}\n{reversed_text}")))?;
        for t in forward.types() {
            let other = reversed.type_by_name(&t.qualified_name).map(|r| r.fingerprint);
            prop_assert_eq!(Some(t.fingerprint), other);
        }
    }
}

/// Inputs that the fuzzer found; each once broke an invariant.
#[test]
fn fuzzer_findings_stay_fixed() {
    let findings: &[&[u8]] = &[
        // A byte-order mark after a comment and a blank line: formatting was not
        // idempotent (the blank line depended on the dropped BOM).
        b"\n//\n\n\xEF\xBB\xBF",
        // Carriage returns at the end of a doc comment: one was stripped per round.
        b"/// A . \r\r\r\nconst LIMIT: u32 = 4;",
        // A comment before the `;` of the last declaration, then a blank line: it moved
        // to the end of the file with a blank line after it, which the next run dropped.
        b"const A: u8 = 1 // one\n\n;",
    ];
    for input in findings {
        check_input(input);
    }
}
