//! The fuzz harness, shared by the cargo-fuzz target (`fuzz/`) and the property tests, so
//! CI on stable Rust exercises exactly what the nightly fuzzer runs.
//!
//! Not part of the stable API.

use crate::ast::ClearSpans as _;

/// Feeds `data` to every entry point and checks the invariants that must hold for any
/// input. Returns normally when they hold; panics (the fuzzer's signal) when one is
/// broken:
///
/// * parsing, validating, rendering diagnostics and summarising never panic;
/// * text that parses formats to text that parses to the same syntax tree;
/// * formatting is idempotent;
/// * formatting keeps every comment, in order.
pub fn check_input(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match crate::parse_str("fuzz.shmidl", text) {
        Ok(schema) => {
            let _ = schema.summary();
            let _ = schema.warnings().to_string();
        }
        Err(diagnostics) => {
            assert!(
                diagnostics.has_errors(),
                "a failed check must report an error"
            );
            let _ = diagnostics.to_string();
        }
    }
    let Ok(mut tree) = crate::parse_ast("fuzz.shmidl", text) else {
        return;
    };
    let formatted = crate::format_file(&tree, text);
    let mut reparsed = match crate::parse_ast("formatted.shmidl", &formatted) {
        Ok(t) => t,
        Err(d) => panic!(
            "formatted output does not parse:\n{d}\n--- input\n{text}\n--- formatted\n{formatted}"
        ),
    };
    let again = crate::format_file(&reparsed, &formatted);
    assert_eq!(formatted, again, "formatting is not idempotent");
    let comments = |file: &crate::ast::File, text: &str| -> Vec<String> {
        file.comments
            .iter()
            .map(|c| text.get(c.start..c.end).unwrap_or("").trim_end().to_owned())
            .collect()
    };
    assert_eq!(
        comments(&tree, text),
        comments(&reparsed, &formatted),
        "formatting lost or reordered a comment\n--- input\n{text}\n--- formatted\n{formatted}"
    );
    tree.clear_spans();
    reparsed.clear_spans();
    assert_eq!(
        tree, reparsed,
        "formatting changed the syntax tree\n--- input\n{text}\n--- formatted\n{formatted}"
    );
}
