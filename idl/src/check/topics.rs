//! Pass 6: topic names, payloads and options.

use super::*;
use crate::ast::OptionValue;

impl<'a> Checker<'a> {
    // -- 6. topics ---------------------------------------------------------------------------

    pub(super) fn topics_pass(&mut self) -> Vec<Topic> {
        let mut topics = Vec::new();
        let mut seen: HashMap<String, (FileId, Span)> = HashMap::new();
        for (file, unit) in self.units() {
            for item in &unit.ast.items {
                let ItemKind::Topic(t) = &item.kind else {
                    continue;
                };
                let name_ok = self.check_topic_name(file, &t.name);
                if name_ok {
                    if let Some(&(pfile, pspan)) = seen.get(&t.name.value) {
                        self.push(
                            Diagnostic::error(
                                file,
                                t.name.span,
                                format!("topic `{}` is declared more than once", t.name.value),
                            )
                            .with_note_at(
                                pfile,
                                pspan,
                                "first declared here",
                            ),
                        );
                    } else {
                        seen.insert(t.name.value.clone(), (file, t.name.span));
                    }
                }
                let payload = self.topic_payload(file, &t.payload);
                let options = self.topic_options(file, t.options.as_deref().unwrap_or(&[]));
                if let (true, Some(payload), Some(options)) = (name_ok, payload, options) {
                    topics.push(Topic {
                        name: t.name.value.clone(),
                        package: self.packages[self.file_package[file.index()]].path.clone(),
                        docs: item.docs.clone(),
                        payload,
                        options,
                        file,
                        span: t.name.span,
                    });
                }
            }
        }
        topics
    }

    fn check_topic_name(&mut self, file: FileId, lit: &ast::StringLit) -> bool {
        let name = lit.value.as_str();
        let inner = lit.span.start + 1;
        let help = "a topic name is made of segments of `A-Z a-z 0-9 _` separated by `/`, like \"robot/joint_states\"";
        if name.is_empty() {
            self.error_help(
                file,
                lit.span,
                "a topic name cannot be empty",
                help.to_owned(),
            );
            return false;
        }
        if name.len() > MAX_TOPIC_NAME_LEN {
            self.error(
                file,
                lit.span,
                format!(
                    "topic name is too long: {} bytes (the limit is {MAX_TOPIC_NAME_LEN})",
                    name.len()
                ),
            );
            return false;
        }
        if let Some((i, c)) = name
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_' || c == '/'))
        {
            let span = Span::new(inner + i, inner + i + c.len_utf8());
            self.error_help(
                file,
                span,
                format!("invalid character `{}` in topic name", c.escape_debug()),
                help.to_owned(),
            );
            return false;
        }
        let mut offset = 0;
        for segment in name.split('/') {
            if segment.is_empty() {
                let span = Span::point(inner + offset);
                self.error_help(
                    file,
                    span,
                    "topic name has an empty segment",
                    "names cannot start or end with `/`, or contain `//`",
                );
                return false;
            }
            offset += segment.len() + 1;
        }
        true
    }

    fn topic_payload(&mut self, file: FileId, path: &ast::Path) -> Option<TypeId> {
        let Decl::Type(i) = self.lookup(file, path, Want::Type)? else {
            return None;
        };
        let (dfile, dspan) = self.decl_location(Decl::Type(i));
        match self.types[i].kind {
            TypeDeclKind::Struct(s) if s.is_message => {
                Some(TypeId(u32::try_from(i).unwrap_or(u32::MAX)))
            }
            TypeDeclKind::Struct(_) => {
                self.push(
                    Diagnostic::error(
                        file,
                        path.span,
                        format!("topic payload `{}` is a struct, not a message", path.text()),
                    )
                    .with_note_at(dfile, dspan, "declared here")
                    .with_help("declare it with `message` instead of `struct`"),
                );
                None
            }
            TypeDeclKind::Enum(_) => {
                self.push(
                    Diagnostic::error(
                        file,
                        path.span,
                        format!("topic payload `{}` is an enum, not a message", path.text()),
                    )
                    .with_note_at(dfile, dspan, "declared here")
                    .with_help("wrap it in a `message`"),
                );
                None
            }
        }
    }

    fn topic_options(
        &mut self,
        file: FileId,
        options: &[ast::TopicOptionDecl],
    ) -> Option<TopicOptions> {
        const KNOWN: [&str; 6] = [
            "pool",
            "pool_chunks",
            "depth",
            "overflow",
            "max_publishers",
            "max_subscribers",
        ];
        let mut out = TopicOptions::default();
        let mut ok = true;
        let mut seen: HashMap<&str, Span> = HashMap::new();
        // Where `pool`, `pool_chunks` and `depth` were given, for the depth > pool slots
        // warning and the pool growth error.
        let mut pool_span: Option<Span> = None;
        let mut chunks_span: Option<Span> = None;
        let mut depth_span: Option<Span> = None;
        for option in options {
            let name = option.name.name.as_str();
            if !KNOWN.contains(&name) {
                let mut d = Diagnostic::error(
                    file,
                    option.name.span,
                    format!("unknown topic option `{name}`"),
                );
                d = match names::suggest(name, KNOWN) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_note(format!(
                        "the options are {}",
                        KNOWN.map(|k| format!("`{k}`")).join(", ")
                    )),
                };
                self.push(d);
                ok = false;
                continue;
            }
            if let Some(&first) = seen.get(name) {
                self.push(
                    Diagnostic::error(
                        file,
                        option.name.span,
                        format!("topic option `{name}` is given more than once"),
                    )
                    .with_note_at(file, first, "first given here"),
                );
                ok = false;
                continue;
            }
            seen.insert(name, option.name.span);
            if name == "overflow" {
                let policy = match &option.value {
                    OptionValue::Path(p) if p.segments.len() == 1 => Overflow::ALL
                        .into_iter()
                        .find(|o| o.name() == p.segments[0]),
                    _ => None,
                };
                match policy {
                    Some(p) => out.overflow = p,
                    None if matches!(option.value, OptionValue::Int(_)) => {
                        self.error(
                            file,
                            option.value.span(),
                            "topic option `overflow` expects a policy (`overwrite_oldest`, \
                             `wait_if_full` or `soft_fail`), not an integer"
                                .to_owned(),
                        );
                        ok = false;
                    }
                    None => {
                        let text = match &option.value {
                            OptionValue::Path(p) => p.text(),
                            OptionValue::Int(i) => i.text.clone(),
                        };
                        let mut d = Diagnostic::error(
                            file,
                            option.value.span(),
                            format!("unknown overflow policy `{text}`"),
                        );
                        d = match names::suggest(&text, Overflow::ALL.map(Overflow::name)) {
                            Some(s) => d.with_help(format!("did you mean `{s}`?")),
                            None => d.with_note("the policies are `overwrite_oldest`, `wait_if_full` and `soft_fail`"),
                        };
                        self.push(d);
                        ok = false;
                    }
                }
                continue;
            }
            let (min, max) = TopicOptions::LIMITS
                .iter()
                .find(|l| l.0 == name)
                .map_or((1, 1), |l| (l.1, l.2));
            let value = match &option.value {
                OptionValue::Int(lit) => lit.value(),
                OptionValue::Path(p)
                    if p.segments.len() == 1
                        && Overflow::ALL.iter().any(|o| o.name() == p.segments[0]) =>
                {
                    self.error(
                        file,
                        p.span,
                        format!(
                            "topic option `{name}` expects an integer (a literal or an integer \
                             constant), not the overflow policy `{}`",
                            p.text()
                        ),
                    );
                    ok = false;
                    continue;
                }
                OptionValue::Path(p) => {
                    match self.lookup(file, p, Want::Const) {
                        Some(Decl::Const(i)) => match self.const_values[i] {
                            Some((_, ConstValue::Int(v))) => Some(v),
                            Some((ty, _)) => {
                                self.error(file, p.span, format!("topic option `{name}` must be an integer, but `{}` is `{ty}`", p.text()));
                                ok = false;
                                continue;
                            }
                            None => {
                                ok = false;
                                continue;
                            }
                        },
                        _ => {
                            ok = false;
                            continue;
                        }
                    }
                }
            };
            match value.filter(|v| (i128::from(min)..=i128::from(max)).contains(v)) {
                Some(v) => {
                    let v = u32::try_from(v).unwrap_or(max);
                    match name {
                        "pool" => {
                            out.pool = v;
                            pool_span = Some(option.value.span());
                        }
                        "pool_chunks" => {
                            out.pool_chunks = v;
                            chunks_span = Some(option.value.span());
                        }
                        "depth" => {
                            out.depth = v;
                            depth_span = Some(option.value.span());
                        }
                        "max_publishers" => out.max_publishers = v,
                        "max_subscribers" => out.max_subscribers = v,
                        // Every name of `LIMITS` has an arm above (a unit test sets
                        // each one); `overflow` was handled before.
                        _ => {}
                    }
                }
                None => {
                    let shown = value.map_or_else(|| "the value".to_owned(), |v| v.to_string());
                    self.error(
                        file,
                        option.value.span(),
                        format!(
                            "topic option `{name}` must be between {min} and {max}, not {shown}"
                        ),
                    );
                    ok = false;
                }
            }
        }
        if ok {
            if let Some(d) = pool_growth_error(file, &out, pool_span, chunks_span) {
                self.push(d);
                ok = false;
            }
        }
        // A growable pool holds up to `pool × pool_chunks` samples (within 2^30 here).
        let slots = u64::from(out.pool) * u64::from(out.pool_chunks);
        if ok && u64::from(out.depth) > slots {
            let span = depth_span.or(pool_span).unwrap_or_default();
            let (pool, help) = if out.pool_chunks == 1 {
                (
                    format!("the pool of {slots} samples"),
                    "make `pool` at least `depth`",
                )
            } else {
                (
                    format!(
                        "the pool of {slots} samples ({} × {} chunks)",
                        out.pool, out.pool_chunks
                    ),
                    "make `pool × pool_chunks` at least `depth`",
                )
            };
            self.push(
                Diagnostic::warning(
                    file,
                    span,
                    format!("queue depth {} is larger than {pool}", out.depth),
                )
                .with_note("every queued sample holds a pool slot, so the queues can never fill up")
                .with_help(help),
            );
        }
        ok.then_some(out)
    }
}

/// The error for a pool that could grow past [`TopicOptions::MAX_POOL_SLOTS`] slots
/// (`pool × pool_chunks`), or `None` if it stays within. Pointed at `pool_chunks` (or
/// `pool`) where given. The option limits keep the product within today (at most
/// 2^20 × 32 = 2^25); the check keeps the runtime's bound if the limits change.
fn pool_growth_error(
    file: FileId,
    options: &TopicOptions,
    pool_span: Option<Span>,
    chunks_span: Option<Span>,
) -> Option<Diagnostic> {
    let slots = u64::from(options.pool) * u64::from(options.pool_chunks);
    if slots <= TopicOptions::MAX_POOL_SLOTS {
        return None;
    }
    let span = chunks_span.or(pool_span).unwrap_or_default();
    let mut d = Diagnostic::error(
        file,
        span,
        format!(
            "the pool can grow to {slots} slots ({} × {} chunks), more than the limit of {}",
            options.pool,
            options.pool_chunks,
            TopicOptions::MAX_POOL_SLOTS
        ),
    );
    if let (Some(pool), Some(_)) = (pool_span, chunks_span) {
        d = d.with_note_at(file, pool, "slots per chunk given here");
    }
    Some(
        d.with_note(
            "slots are numbered across chunks, so `pool × pool_chunks` must not exceed 2^30",
        )
        .with_help("lower `pool` or `pool_chunks`"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Severity;

    fn limit(name: &str) -> u32 {
        TopicOptions::LIMITS
            .iter()
            .find(|l| l.0 == name)
            .map_or(0, |l| l.2)
    }

    fn options(body: &str) -> Result<TopicOptions, Vec<String>> {
        let text = format!("message M {{ x: u8 }}\ntopic \"t\": M {{ {body} }}\n");
        crate::parse_str("t.shmidl", &text)
            .map(|s| s.topics()[0].options)
            .map_err(|d| d.iter().map(|d| d.message.clone()).collect())
    }

    fn warnings(body: &str) -> Vec<String> {
        let text = format!("message M {{ x: u8 }}\ntopic \"t\": M {{ {body} }}\n");
        crate::parse_str("t.shmidl", &text)
            .map(|s| s.warnings().iter().map(|d| d.message.clone()).collect())
            .unwrap_or_else(|d| panic!("{d}"))
    }

    #[test]
    fn pool_chunks_defaults_to_one_and_takes_literals_and_constants() {
        assert_eq!(options("").map(|o| o.pool_chunks), Ok(1));
        assert_eq!(options("pool_chunks: 4").map(|o| o.pool_chunks), Ok(4));
        assert_eq!(options("pool_chunks: 0x20").map(|o| o.pool_chunks), Ok(32));
        let text =
            "const CHUNKS: u8 = 3;\nmessage M { x: u8 }\ntopic \"t\": M { pool_chunks: CHUNKS }\n";
        let schema = crate::parse_str("t.shmidl", text).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(schema.topics()[0].options.pool_chunks, 3);
    }

    #[test]
    fn every_integer_option_is_stored_in_its_field() {
        for (name, min, max) in TopicOptions::LIMITS {
            for value in [min, max] {
                let o = options(&format!("{name}: {value}")).unwrap_or_else(|e| panic!("{e:?}"));
                let stored = match name {
                    "pool" => o.pool,
                    "pool_chunks" => o.pool_chunks,
                    "depth" => o.depth,
                    "max_publishers" => o.max_publishers,
                    "max_subscribers" => o.max_subscribers,
                    other => panic!("no field for `{other}`"),
                };
                assert_eq!(stored, value, "{name}");
            }
        }
    }

    #[test]
    fn pool_chunks_outside_its_range_is_an_error() {
        for value in ["0", "33", "-1", "4294967296"] {
            assert_eq!(
                options(&format!("pool_chunks: {value}")),
                Err(vec![format!(
                    "topic option `pool_chunks` must be between 1 and 32, not {value}"
                )])
            );
        }
        let text = "const F: f32 = 1.0;\nmessage M { x: u8 }\ntopic \"t\": M { pool_chunks: F }\n";
        let err = crate::parse_str("t.shmidl", text)
            .err()
            .map(|d| d.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e
                    .contains("topic option `pool_chunks` must be an integer, but `F` is `f32`")),
            "{err:?}"
        );
    }

    #[test]
    fn pool_chunks_duplicates_and_misspellings_are_errors() {
        assert_eq!(
            options("pool_chunks: 2, pool_chunks: 3"),
            Err(vec![
                "topic option `pool_chunks` is given more than once".to_owned()
            ])
        );
        let text = "message M { x: u8 }\ntopic \"t\": M { pool_chunk: 2 }\n";
        let err = crate::parse_str("t.shmidl", text)
            .err()
            .map(|d| d.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("unknown topic option `pool_chunk`")
                    && e.contains("did you mean `pool_chunks`?")),
            "{err:?}"
        );
    }

    #[test]
    fn the_largest_pool_may_grow_to_the_most_chunks() {
        // Within the option limits `pool × pool_chunks` stays below 2^30 ...
        let (pool, chunks) = (limit("pool"), limit("pool_chunks"));
        assert!(u64::from(pool) * u64::from(chunks) <= TopicOptions::MAX_POOL_SLOTS);
        let o = options(&format!("pool: {pool}, pool_chunks: {chunks}"));
        assert_eq!(o.map(|o| (o.pool, o.pool_chunks)), Ok((1 << 20, 32)));
    }

    #[test]
    fn a_pool_that_could_grow_past_two_to_the_thirty_slots_is_an_error() {
        // ... so the growth check is reached only through its helper.
        let file = FileId(0);
        let (pool, chunks) = (Span::new(10, 12), Span::new(20, 22));
        let at = |p: u32, c: u32| TopicOptions {
            pool: p,
            pool_chunks: c,
            ..TopicOptions::default()
        };
        assert_eq!(
            pool_growth_error(file, &at(1 << 25, 32), Some(pool), Some(chunks)),
            None
        );
        assert_eq!(
            pool_growth_error(file, &at(1 << 30, 1), Some(pool), None),
            None
        );

        let d = pool_growth_error(file, &at(1 << 25, 33), Some(pool), Some(chunks))
            .unwrap_or_else(|| panic!("no error"));
        assert_eq!(d.severity, Severity::Error);
        assert_eq!(
            d.message,
            "the pool can grow to 1107296256 slots (33554432 × 33 chunks), more than the limit of 1073741824"
        );
        assert_eq!(d.location.map(|l| l.span), Some(chunks));
        assert_eq!(d.notes[0].location.map(|l| l.span), Some(pool));
        assert_eq!(d.help.as_deref(), Some("lower `pool` or `pool_chunks`"));

        // Without `pool_chunks` in the source, the error points at `pool`.
        let d = pool_growth_error(file, &at(u32::MAX, 1), Some(pool), None);
        assert_eq!(d.and_then(|d| d.location).map(|l| l.span), Some(pool));
    }

    #[test]
    fn depth_is_compared_with_every_slot_the_pool_can_grow_to() {
        assert_eq!(
            warnings("pool: 4, pool_chunks: 4, depth: 16"),
            Vec::<String>::new()
        );
        assert_eq!(
            warnings("pool: 4, pool_chunks: 4, depth: 17"),
            ["queue depth 17 is larger than the pool of 16 samples (4 × 4 chunks)"]
        );
        assert_eq!(
            warnings("pool: 4, depth: 5"),
            ["queue depth 5 is larger than the pool of 4 samples"]
        );
    }
}
