//! A human-readable summary of a validated schema (`shmidl check -v`).

use std::fmt::Write as _;

use crate::model::{ConstValue, Schema, TypeDefKind};

impl Schema {
    /// Describes every package, constant, type (with size, alignment, field offsets,
    /// padding and fingerprint) and topic, one line per entry. The format is meant for
    /// people and snapshot tests:
    ///
    /// ```text
    /// package robot.v1
    ///   const MAX_JOINTS: u32 = 16
    ///   struct Vec3: size 24, align 8, fingerprint 0x...
    ///     x: f64 @ 0 (size 8)
    ///     canonical: struct robot.v1.Vec3 { x: f64, y: f64, z: f64 }
    /// ```
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for package in &self.packages {
            let name = package.name();
            let _ = writeln!(
                out,
                "package {}",
                if name.is_empty() { "(none)" } else { &name }
            );
            for &index in &package.consts {
                let c = &self.consts[index];
                let value = match c.value {
                    ConstValue::Float(x) => format!("{x:?}"),
                    other => other.to_string(),
                };
                let _ = writeln!(out, "  const {}: {} = {value}", c.name, c.ty);
            }
            for &id in &package.types {
                let def = self.type_def(id);
                let kind = match &def.kind {
                    TypeDefKind::Struct(s) if s.is_message => "message",
                    TypeDefKind::Struct(_) => "struct",
                    TypeDefKind::Enum(_) => "enum",
                };
                let _ = writeln!(
                    out,
                    "  {kind} {}: size {}, align {}, fingerprint {:#018x}",
                    def.name, def.layout.size, def.layout.align, def.fingerprint
                );
                match &def.kind {
                    TypeDefKind::Struct(s) => {
                        for f in &s.fields {
                            if f.padding_before > 0 {
                                let _ = writeln!(out, "    (padding {} bytes)", f.padding_before);
                            }
                            let _ = writeln!(
                                out,
                                "    {}: {} @ {} (size {}, align {})",
                                f.name,
                                self.describe(&f.ty),
                                f.offset,
                                f.layout.size,
                                f.layout.align
                            );
                        }
                        if s.trailing_padding > 0 {
                            let _ = writeln!(out, "    (padding {} bytes)", s.trailing_padding);
                        }
                    }
                    TypeDefKind::Enum(e) => {
                        for v in &e.variants {
                            let _ = writeln!(out, "    {} = {}", v.name, v.value);
                        }
                    }
                }
                let _ = writeln!(out, "    canonical: {}", self.describe_def(id));
            }
            for &index in &package.topics {
                let t = &self.topics[index];
                let o = &t.options;
                let _ = writeln!(
                    out,
                    "  topic \"{}\": {} (pool {}, pool_chunks {}, depth {}, overflow {}, max_publishers {}, max_subscribers {})",
                    t.name,
                    self.type_def(t.payload).qualified_name,
                    o.pool,
                    o.pool_chunks,
                    o.depth,
                    o.overflow.name(),
                    o.max_publishers,
                    o.max_subscribers
                );
            }
        }
        out
    }
}
