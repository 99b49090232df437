//! Rules for names: reserved words, naming style, and "did you mean" suggestions.

/// Words of the schema language itself.
pub(crate) const SCHEMA_KEYWORDS: &[&str] = &[
    "package", "import", "const", "enum", "struct", "message", "topic", "true", "false", "string",
    "bytes", "sequence",
];

/// Rust's strict and reserved keywords (2021 edition, plus `gen` from 2024).
pub(crate) const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// Names that a declared type, constant, variant or package segment may not take, and
/// why; `None` if the name is allowed. Field names are exempt: generated code escapes
/// them.
pub(crate) fn reserved_reason(name: &str) -> Option<&'static str> {
    if name == "_" {
        return Some("`_` is not a name");
    }
    if crate::Primitive::from_name(name).is_some() {
        return Some("it is a built-in type");
    }
    if SCHEMA_KEYWORDS.contains(&name) {
        return Some("it is a keyword of the schema language");
    }
    if RUST_KEYWORDS.contains(&name) {
        return Some("it is a Rust keyword");
    }
    if name.starts_with("__") {
        return Some("names starting with `__` are reserved for generated code");
    }
    None
}

/// `CamelCase`: starts with an uppercase letter, no underscores.
pub(crate) fn is_camel_case(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase()) && !name.contains('_')
}

/// `snake_case`: lowercase letters, digits and underscores.
pub(crate) fn is_snake_case(name: &str) -> bool {
    !name.trim_start_matches('_').is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `SCREAMING_SNAKE_CASE`: uppercase letters, digits and underscores.
pub(crate) fn is_screaming_snake_case(name: &str) -> bool {
    name.chars().any(|c| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// `name` in `CamelCase`, for a suggestion.
pub(crate) fn to_camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `name` in `snake_case`, for a suggestion.
pub(crate) fn to_snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

/// Names longer than this get no suggestion (the comparison would be slow and the
/// suggestion useless).
const MAX_SUGGEST_LEN: usize = 64;
/// At most this many candidates are compared.
const MAX_SUGGEST_CANDIDATES: usize = 5_000;

/// The candidate closest to `name` by edit distance, if one is close enough: at most
/// one edit for short names, a third of the length for longer ones. Case differences are
/// cheap (a name that differs only in case is always suggested).
pub(crate) fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    if name.len() > MAX_SUGGEST_LEN {
        return None;
    }
    let limit = (name.chars().count() / 3).max(1);
    let lower = name.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates.into_iter().take(MAX_SUGGEST_CANDIDATES) {
        if candidate == name || candidate.len() > MAX_SUGGEST_LEN {
            continue;
        }
        if candidate.len().abs_diff(name.len()) > limit {
            continue;
        }
        let distance = if candidate.to_ascii_lowercase() == lower {
            0
        } else {
            match bounded_levenshtein(name, candidate, limit) {
                Some(d) => d,
                None => continue,
            }
        };
        if best.is_none_or(|(d, c)| distance < d || (distance == d && candidate < c)) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Edit distance between `a` and `b` counting insertions, deletions, substitutions and
/// swaps of two adjacent characters (optimal string alignment), or `None` if it
/// exceeds `limit`. Stops as soon as a whole row exceeds the limit.
fn bounded_levenshtein(a: &str, b: &str, limit: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    // Three rows: i-2, i-1, i.
    let mut before: Vec<usize> = vec![0; width];
    let mut prev: Vec<usize> = (0..width).collect();
    let mut cur: Vec<usize> = vec![0; width];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..width {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j - 1] + cost).min(prev[j] + 1).min(cur[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            cur[j] = d;
            row_min = row_min.min(d);
        }
        if row_min > limit {
            return None;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    let d = prev[b.len()];
    (d <= limit).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_name_within_the_limit() {
        let names = ["Vec3", "JointState", "Mode"];
        assert_eq!(suggest("Vec4", names), Some("Vec3"));
        assert_eq!(suggest("JointStat", names), Some("JointState"));
        assert_eq!(suggest("mode", names), Some("Mode"));
        assert_eq!(suggest("f46", ["f64", "f32"]), Some("f64"));
        assert_eq!(suggest("dmeo", ["demo"]), Some("demo"));
        assert_eq!(suggest("Quaternion", names), None);
    }

    #[test]
    fn huge_names_get_no_suggestion_quickly() {
        let huge = "A".repeat(1_000_000);
        assert_eq!(suggest(&huge, [huge.as_str()]), None);
    }

    #[test]
    fn naming_styles_are_recognised() {
        assert!(is_camel_case("JointState"));
        assert!(!is_camel_case("joint_state"));
        assert!(is_snake_case("stamp_ns"));
        assert!(!is_snake_case("stampNs"));
        assert!(is_screaming_snake_case("MAX_JOINTS"));
        assert!(!is_screaming_snake_case("MaxJoints"));
        assert_eq!(to_camel_case("joint_state"), "JointState");
        assert_eq!(to_snake_case("stampNs"), "stamp_ns");
    }

    #[test]
    fn reserved_words_are_explained() {
        assert_eq!(reserved_reason("u8"), Some("it is a built-in type"));
        assert_eq!(reserved_reason("type"), Some("it is a Rust keyword"));
        assert_eq!(
            reserved_reason("topic"),
            Some("it is a keyword of the schema language")
        );
        assert_eq!(reserved_reason("Vec3"), None);
    }
}
