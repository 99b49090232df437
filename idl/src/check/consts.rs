//! Pass 3: constant values, their types, and references between constants.

use super::*;
use crate::ast::{ConstExprKind, TypeExprKind};

impl<'a> Checker<'a> {
    // -- 3. constants ---------------------------------------------------------------------

    pub(super) fn consts_pass(&mut self) {
        #[derive(Clone, Copy)]
        enum State {
            Pending,
            Active,
            Done(Option<(Primitive, ConstValue)>),
        }
        let mut state = vec![State::Pending; self.consts.len()];
        for start in 0..self.consts.len() {
            // Follow `const A: T = B;` references iteratively; `chain` holds the constants
            // that wait for the value of the next one.
            let mut chain: Vec<usize> = Vec::new();
            let mut current = start;
            let mut inner: Option<(Primitive, ConstValue)> = None;
            loop {
                match state[current] {
                    State::Done(value) => {
                        inner = value;
                        break;
                    }
                    State::Active => {
                        self.report_const_cycle(&chain, current);
                        break;
                    }
                    State::Pending => {
                        state[current] = State::Active;
                        chain.push(current);
                        let c = &self.consts[current];
                        let (file, decl) = (c.file, c.decl);
                        let ConstExprKind::Path(path) = &decl.value.kind else {
                            break;
                        };
                        match self.lookup(file, path, Want::Const) {
                            Some(Decl::Const(next)) => current = next,
                            _ => break,
                        }
                    }
                }
            }
            // Unwind: evaluate from the innermost constant outwards.
            while let Some(index) = chain.pop() {
                inner = self.eval_const(index, inner);
                state[index] = State::Done(inner);
            }
        }
        self.const_values = state
            .into_iter()
            .map(|s| match s {
                State::Done(v) => v,
                State::Pending | State::Active => None,
            })
            .collect();
    }

    fn report_const_cycle(&mut self, chain: &[usize], again: usize) {
        let from = chain.iter().position(|&c| c == again).unwrap_or(0);
        let mut names: Vec<String> = chain[from..]
            .iter()
            .map(|&c| self.consts[c].decl.name.name.clone())
            .collect();
        names.push(self.consts[again].decl.name.name.clone());
        let c = &self.consts[again];
        let (file, span) = (c.file, c.decl.value.span);
        self.error(
            file,
            span,
            format!(
                "constant `{}` depends on itself: {}",
                names[0],
                names.join(" → ")
            ),
        );
    }

    /// Evaluates constant `index`; `referenced` is the value of the constant it names
    /// (when its value is a name) or a placeholder for literals.
    fn eval_const(
        &mut self,
        index: usize,
        referenced: Option<(Primitive, ConstValue)>,
    ) -> Option<(Primitive, ConstValue)> {
        let c = &self.consts[index];
        let (file, decl) = (c.file, c.decl);
        let ty = match &decl.ty.kind {
            TypeExprKind::Named(p) if p.segments.len() == 1 => {
                match Primitive::from_name(&p.segments[0]) {
                    Some(prim) => prim,
                    None => {
                        self.error_help(
                            file,
                            decl.ty.span,
                            format!("a constant must have a built-in type, not `{}`", p.text()),
                            "use `bool`, an integer type, `f32` or `f64`".to_owned(),
                        );
                        return None;
                    }
                }
            }
            _ => {
                self.error_help(
                    file,
                    decl.ty.span,
                    "a constant must have a built-in type",
                    "use `bool`, an integer type, `f32` or `f64`".to_owned(),
                );
                return None;
            }
        };
        let span = decl.value.span;
        let value = match &decl.value.kind {
            ConstExprKind::Bool(b) => ConstValue::Bool(*b),
            ConstExprKind::Int(lit) => match lit.value() {
                Some(v) => ConstValue::Int(v),
                None => {
                    self.error(
                        file,
                        span,
                        format!("integer literal `{}` is too large", lit.text),
                    );
                    return None;
                }
            },
            ConstExprKind::Float(text) => match text.replace('_', "").parse::<f64>() {
                Ok(v) if v.is_finite() => ConstValue::Float(v),
                _ => {
                    self.error(file, span, format!("`{text}` is not a finite number"));
                    return None;
                }
            },
            ConstExprKind::Path(_) => referenced?.1,
        };
        let converted = match (ty, value) {
            (Primitive::Bool, ConstValue::Bool(b)) => Some(ConstValue::Bool(b)),
            (p, ConstValue::Int(v)) if p.is_integer() => {
                let (min, max) = p.int_range().unwrap_or((0, 0));
                if v < min || v > max {
                    self.error_help(
                        file,
                        span,
                        format!("value {v} does not fit in `{p}` (range {min}..={max})"),
                        format!("`{}` needs a wider type", decl.name.name),
                    );
                    return None;
                }
                Some(ConstValue::Int(v))
            }
            (p, ConstValue::Int(v)) if p.is_float() => Some(ConstValue::Float(v as f64)),
            (Primitive::F64, ConstValue::Float(v)) => Some(ConstValue::Float(v)),
            (Primitive::F32, ConstValue::Float(v)) => {
                let narrow = v as f32;
                if !narrow.is_finite() {
                    self.error(
                        file,
                        span,
                        format!(
                            "value {v:e} does not fit in `f32` (its largest value is {:e})",
                            f32::MAX
                        ),
                    );
                    return None;
                }
                Some(ConstValue::Float(f64::from(narrow)))
            }
            _ => None,
        };
        match converted {
            Some(v) => Some((ty, v)),
            None => {
                let kind = match value {
                    ConstValue::Bool(_) => "a boolean",
                    ConstValue::Int(_) => "an integer",
                    ConstValue::Float(_) => "a floating-point number",
                };
                self.error(
                    file,
                    span,
                    format!(
                        "mismatched types: `{}` is `{ty}` but its value is {kind}",
                        decl.name.name
                    ),
                );
                None
            }
        }
    }
}
