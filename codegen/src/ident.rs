//! Every identifier the schema generator and `include_schema!` write goes
//! through here: Rust
//! keywords become raw identifiers (`r#type`), and the four that cannot be
//! raw (`self`, `Self`, `super`, `crate`) get a trailing `_`, as does `_`
//! (only a topic can be named so); a name starting with a digit (only a
//! topic's) gets a leading `_`. Names that meet after this mapping are
//! refused by `names.rs`.

use proc_macro2::{Ident, Span};

/// Rust's strict and reserved keywords (2021 edition, plus `gen` of 2024).
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// The identifier for a schema name.
pub(crate) fn ident(name: &str) -> Ident {
    match name {
        "self" | "Self" | "super" | "crate" | "_" => {
            Ident::new(&format!("{name}_"), Span::call_site())
        }
        _ if KEYWORDS.contains(&name) => Ident::new_raw(name, Span::call_site()),
        _ if name.starts_with(|c: char| c.is_ascii_digit()) => {
            Ident::new(&format!("_{name}"), Span::call_site())
        }
        _ => Ident::new(name, Span::call_site()),
    }
}

#[cfg_attr(not(feature = "schema"), allow(dead_code))]
/// The module name of a topic: its name with `/` as `_`, lowercased
/// (`robot/JointStates` → `robot_jointstates`).
pub(crate) fn topic_module(topic: &str) -> Ident {
    ident(&topic.replace('/', "_").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_escaped() {
        assert_eq!(ident("type").to_string(), "r#type");
        assert_eq!(ident("gen").to_string(), "r#gen");
        assert_eq!(ident("self").to_string(), "self_");
        assert_eq!(ident("Self").to_string(), "Self_");
        assert_eq!(ident("crate").to_string(), "crate_");
        assert_eq!(ident("super").to_string(), "super_");
        assert_eq!(ident("position").to_string(), "position");
        assert_eq!(
            topic_module("robot/joint_states").to_string(),
            "robot_joint_states"
        );
        assert_eq!(topic_module("type").to_string(), "r#type");
        assert_eq!(topic_module("2d/scan").to_string(), "_2d_scan");
        assert_eq!(topic_module("_").to_string(), "__");
        assert_eq!(topic_module("Robot/Scan").to_string(), "robot_scan");
    }
}
