//! Hostile input: each of these must finish quickly with a clean error, never a panic or
//! a stack overflow. (Speed itself is measured by the benchmark, not asserted here.)

use shmidl_idl::{parse_str, MAX_ERRORS, MAX_NESTING};

fn errors_of(text: &str) -> shmidl_idl::Diagnostics {
    match parse_str("hostile.shmidl", text) {
        Ok(_) => panic!("hostile input validated"),
        Err(d) => d,
    }
}

#[test]
fn a_five_megabyte_line_of_duplicate_fields_reports_a_bounded_number_of_errors() {
    let fields = "field_with_a_rather_long_name: bool, ".repeat(140_000);
    let text = format!("struct A {{ {fields}}}");
    assert!(text.len() > 5_000_000);
    let sut = errors_of(&text);
    assert_eq!(sut.error_count(), 139_999);
    assert_eq!(sut.iter().count(), MAX_ERRORS);
    let rendered = sut.to_string();
    // Excerpts of the long line are cut, so the report stays small.
    assert!(rendered.len() < 200_000, "{} bytes", rendered.len());
}

#[test]
fn a_five_megabyte_line_of_garbage_is_one_syntax_error() {
    let text = "@".repeat(5_000_000);
    let sut = errors_of(&text);
    assert_eq!(sut.error_count(), 1);
    assert!(sut.to_string().contains("expected a declaration"));
}

#[test]
fn ten_thousand_nesting_levels_are_rejected_before_parsing() {
    for (open, close) in [("[", "; 1]"), ("sequence<", ", 1>"), ("{", "}"), ("<", ">")] {
        let text = format!(
            "struct A {{ x: {}u8{} }}",
            open.repeat(10_000),
            close.repeat(10_000)
        );
        let sut = errors_of(&text);
        let rendered = sut.to_string();
        assert!(
            rendered.contains(&format!("more than {MAX_NESTING} levels")),
            "{rendered}"
        );
    }
}

#[test]
fn nesting_just_under_the_limit_is_accepted() {
    let depth = MAX_NESTING - 1;
    let text = format!(
        "struct A {{ x: {}u8{} }}",
        "[".repeat(depth),
        "; 1]".repeat(depth)
    );
    let schema = parse_str("deep.shmidl", &text).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(schema.types()[0].layout.size, 1);
}

#[test]
fn fifty_thousand_semantic_errors_are_counted_and_the_first_ones_shown() {
    let mut text = String::from("struct A {\n");
    for i in 0..50_000 {
        text.push_str(&format!("    f{i}: Missing{i},\n"));
    }
    text.push_str("}\n");
    let sut = errors_of(&text);
    assert_eq!(sut.error_count(), 50_000);
    assert!(sut.to_string().contains("49800 more errors not shown"));
}

#[test]
fn fifty_thousand_syntax_errors_stop_at_the_error_limit() {
    let text = "struct A { x u8 }\n".repeat(50_000);
    let sut = errors_of(&text);
    assert_eq!(sut.error_count(), MAX_ERRORS);
}

#[test]
fn a_huge_misspelled_name_gets_no_suggestion_and_a_cut_excerpt() {
    let name = "Vec".repeat(400_000);
    let text = format!("struct Vec3 {{ x: f64 }}\nstruct A {{ v: {name} }}\n");
    let sut = errors_of(&text);
    let rendered = sut.to_string();
    assert!(rendered.contains("unknown type"));
    assert!(!rendered.contains("did you mean"));
    assert!(rendered.len() < 10_000);
}

#[test]
fn a_chain_of_ten_thousand_structs_and_constants_is_resolved_without_recursion() {
    let mut text = String::from("const C0: u32 = 1;\nstruct S0 { x: u8 }\n");
    for i in 1..10_000 {
        text.push_str(&format!(
            "const C{i}: u32 = C{};\nstruct S{i} {{ inner: S{}, n: [u8; C{i}] }}\n",
            i - 1,
            i - 1
        ));
    }
    let schema = parse_str("chain.shmidl", &text).unwrap_or_else(|d| panic!("{d}"));
    let last = schema.type_by_name("S9999").map(|t| t.layout.size);
    assert_eq!(last, Some(10_000));
}

#[test]
fn a_cycle_through_ten_thousand_structs_is_one_error() {
    let mut text = String::new();
    for i in 0..10_000 {
        text.push_str(&format!("struct S{i} {{ next: S{} }}\n", (i + 1) % 10_000));
    }
    let sut = errors_of(&text);
    assert_eq!(sut.error_count(), 1);
    assert!(sut.to_string().contains("contains itself"));
}

#[test]
fn control_characters_and_invalid_tokens_are_syntax_errors() {
    for text in [
        "\0",
        "struct \u{202e}A { x: u8 }",
        "struct A { x: u8 }\u{7f}",
        "\"",
        "/*",
        "'",
        "struct A { x: u8 } }",
    ] {
        let sut = errors_of(text);
        assert!(sut.has_errors());
        let _ = sut.to_string();
    }
}

#[test]
fn many_declarations_on_one_line_parse_like_one_per_line() {
    // Each declaration once scanned the rest of its line for the next one:
    // quadratic in the line's length (a 5 MB line of 195,000 declarations
    // took 52 s against 4 s one per line; now 2.6 s, `shmidl check` in
    // release). The schema must come out the same either way.
    let decls: Vec<String> = (0..10_000)
        .map(|i| format!("struct S{i} {{ a: u32, b: [u8; 4] }}"))
        .collect();
    let one_line = format!("package big; {}\n", decls.join(" "));
    let many_lines = format!("package big;\n{}\n", decls.join("\n"));
    let a = parse_str("one.shmidl", &one_line).expect("valid");
    let b = parse_str("many.shmidl", &many_lines).expect("valid");
    assert_eq!(a.types().len(), 10_000);
    assert_eq!(b.types().len(), 10_000);
    assert_eq!(
        a.type_by_name("big.S9999").map(|t| t.fingerprint),
        b.type_by_name("big.S9999").map(|t| t.fingerprint)
    );
}
