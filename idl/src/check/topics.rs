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
        const KNOWN: [&str; 5] = [
            "pool",
            "depth",
            "overflow",
            "max_publishers",
            "max_subscribers",
        ];
        let mut out = TopicOptions::default();
        let mut ok = true;
        let mut seen: HashMap<&str, Span> = HashMap::new();
        // Where `pool` and `depth` were given, for the depth > pool warning.
        let mut pool_span: Option<Span> = None;
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
                        "depth" => {
                            out.depth = v;
                            depth_span = Some(option.value.span());
                        }
                        "max_publishers" => out.max_publishers = v,
                        _ => out.max_subscribers = v,
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
        if ok && out.depth > out.pool {
            let span = depth_span.or(pool_span).unwrap_or_default();
            self.push(
                Diagnostic::warning(
                    file,
                    span,
                    format!(
                        "queue depth {} is larger than the pool of {} samples",
                        out.depth, out.pool
                    ),
                )
                .with_note("every queued sample holds a pool slot, so the queues can never fill up")
                .with_help("make `pool` at least `depth`"),
            );
        }
        ok.then_some(out)
    }
}
