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

/// One comment or blank between two members or declarations, numbered so that a moved
/// comment shows: `kind` picks nothing, a space or a line break, or a comment of either
/// kind, alone on its line or at the end (or start) of a line with tokens.
fn gap(kind: u8, number: &mut usize) -> String {
    *number += 1;
    let n = *number;
    match kind % 7 {
        0 => String::new(),
        1 => " ".to_owned(),
        2 => "\n".to_owned(),
        3 => format!(" /* c{n} */ "),
        4 => format!(" // c{n}\n"),
        5 => format!("\n// c{n}\n\n"),
        _ => format!("\n/* c{n}\n   more */\n"),
    }
}

/// `template` with each `@` replaced by a [`gap`] of `kind` (at least a space: it may
/// stand between two words).
fn fill(template: &str, kind: u8, number: &mut usize) -> String {
    let mut out = String::new();
    for (k, part) in template.split('@').enumerate() {
        if k > 0 {
            out.push_str(&gap(kind.max(1), number));
        }
        out.push_str(part);
    }
    out
}

/// A schema with comments in all the places where one may stand: between declarations,
/// doc lines and members, after `{` and before `}`, inside declaration headers and
/// types; on lines of their own, after tokens and before tokens on the same line.
fn schema_with_comments() -> impl Strategy<Value = String> {
    // (documented, gap between its doc lines, gap inside it, gap after it, its type)
    let member = (any::<bool>(), 0u8..7, 0u8..7, 0u8..7, 0usize..5);
    // (kind, members, gap before, gap inside the header, gap after `{`, trailing comma)
    let item = (
        0u8..4,
        prop::collection::vec(member, 0..5),
        0u8..7,
        0u8..7,
        0u8..7,
        any::<bool>(),
    );
    prop::collection::vec(item, 1..5).prop_map(|items| {
        const TYPES: [&str; 5] = [
            "u8",
            "[u16;@3]",
            "string<@4>",
            "sequence<a.B,@2>",
            "@[u8; N]",
        ];
        let mut n = 0;
        let mut s = String::new();
        for (i, (kind, members, before, inside_head, after_open, trailing_comma)) in
            items.into_iter().enumerate()
        {
            s.push_str(&gap(before, &mut n));
            if kind == 0 {
                s.push_str(&fill(
                    &format!("const C{i}:@u32 =@{i};"),
                    inside_head,
                    &mut n,
                ));
                continue;
            }
            let (head, member_text): (String, fn(usize, usize) -> String) = match kind {
                1 => (format!("enum@E{i}: u8 {{"), |j, _| format!("V{j} =@{j}")),
                2 => (format!("message M{i}@{{"), |j, t| {
                    format!("f{j}:@{}", TYPES[t])
                }),
                _ => (format!("topic \"t/{i}\":@M {{"), |j, _| {
                    format!("pool:@{j}")
                }),
            };
            s.push_str(&fill(&head, inside_head, &mut n));
            s.push_str(&gap(after_open, &mut n));
            let count = members.len();
            for (j, (doc, between_docs, inside, after, ty)) in members.into_iter().enumerate() {
                if doc && kind != 3 {
                    s.push_str("\n/// doc\n");
                    s.push_str(&gap(between_docs, &mut n));
                    s.push_str("\n/// more\n");
                }
                s.push_str(&fill(&member_text(j, ty), inside, &mut n));
                if j + 1 < count || trailing_comma {
                    s.push(',');
                }
                s.push_str(&gap(after, &mut n));
            }
            s.push('}');
        }
        s.push('\n');
        s
    })
}

/// The comments of `text` in order, each with the number of words (names, keywords,
/// literals, doc lines) before it: punctuation is left out, as formatting adds and
/// removes trailing commas.
fn comments_among_words(text: &str) -> Vec<(String, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut words = 0;
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("///") && !rest.starts_with("////") {
            words += 1;
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            out.push((rest[..end].trim_end().to_owned(), words));
            i += end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            out.push((rest[..end].to_owned(), words));
            i += end;
        } else if bytes[i] == b'"' {
            words += 1;
            i += 1 + rest[1..].find('"').map_or(rest.len() - 1, |e| e + 1);
        } else if bytes[i].is_ascii_alphanumeric() || b"_.-".contains(&bytes[i]) {
            words += 1;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || b"_.-".contains(&bytes[i]))
            {
                i += 1;
            }
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

proptest! {
    #![proptest_config(Config { cases: 1000, failure_persistence: None, ..Config::default() })]

    #[test]
    fn formatting_keeps_every_comment_in_its_place_among_the_tokens(text in schema_with_comments()) {
        let formatted = shmidl_idl::format_str("gen.shmidl", &text).map_err(|d| TestCaseError::fail(format!("{d}\n{text}")))?;
        prop_assert_eq!(
            comments_among_words(&formatted),
            comments_among_words(&text),
            "--- input\n{}\n--- formatted\n{}", text, formatted
        );
        let again = shmidl_idl::format_str("fmt.shmidl", &formatted).map_err(|d| TestCaseError::fail(d.to_string()))?;
        prop_assert_eq!(&again, &formatted, "formatting is not idempotent");
        check_input(text.as_bytes());
    }
}

#[test]
fn a_comment_before_a_member_on_the_same_line_stays_before_that_member() {
    let text = "message Cmd { mode: Mode, target: Vec3, /* inline */ names: [string<8>; 2] }\n";
    let sut = shmidl_idl::format_str("cmd.shmidl", text).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        sut,
        "message Cmd {\n    mode: Mode,\n    target: Vec3,\n    /* inline */\n    names: [string<8>; 2],\n}\n"
    );
}

#[test]
fn a_comment_between_doc_lines_stays_between_them() {
    let text =
        "/// One.\n// plain\n/// Two.\nstruct A {\n    /// x.\n    /* c */\n    x: u8, // end\n}\n";
    let sut = shmidl_idl::format_str("docs.shmidl", text).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(sut, text);
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
