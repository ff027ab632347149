//! Rewrites a parsed query (and the standard library's definitions) so that every operation
//! that can build a large value in one step goes through a size-capped native
//! ([`super::natives`]): jaq compiles `+`, `*` and string interpolation into arithmetic that it
//! runs without any hook, and `[f]` into a collection that takes no steps.
//!
//! | written | becomes |
//! |---|---|
//! | `l + r`, `l * r` | `_hydrant_add(l; r)`, `_hydrant_mul(l; r)` |
//! | `l += r`, `l *= r` | `r as $__hydrant | l \|= _hydrant_add(.; $__hydrant)` (jq's definition of `+=`) |
//! | `"a\(f)b"` | `_hydrant_add("a"; _hydrant_add(f \| _hydrant_tostring; "b"))` |
//! | `@fmt "a\(f)"` | the same with `f \| @fmt` |
//! | `[f]` | `_hydrant_array(f)` |
//!
//! The natives take their arguments in the order jaq's operators evaluate them (left operand
//! outermost), so a query's outputs and their order are unchanged.

use jaq_core::load::lex::StrPart;
use jaq_core::load::parse::{BinaryOp, Def, Pattern, Term};
use jaq_core::ops::Math;
use jaq_core::path::{Part, Path};

/// Variable the `+=` / `*=` rewrite binds (users cannot write `$__hydrant` by accident).
const UPDATE_VAR: &str = "$__hydrant";

/// Rewrites one definition's body.
pub fn def(d: Def<&str>) -> Def<&str> {
    Def { name: d.name, args: d.args, body: term(d.body) }
}

/// Rewrites a term (recursively: run it where the stack has room for the query's nesting).
pub fn term<'s>(t: Term<&'s str>) -> Term<&'s str> {
    let boxed = |t: Box<Term<&'s str>>| Box::new(term(*t));
    match t {
        Term::BinOp(l, BinaryOp::Math(op @ (Math::Add | Math::Mul)), r) => {
            call(native(op), vec![term(*l), term(*r)])
        }
        Term::BinOp(l, BinaryOp::UpdateMath(op @ (Math::Add | Math::Mul)), r) => {
            let update = call(native(op), vec![Term::Id, Term::Var(UPDATE_VAR)]);
            Term::BinOp(
                boxed(r),
                BinaryOp::Pipe(Some(Pattern::Var(UPDATE_VAR))),
                Box::new(Term::BinOp(boxed(l), BinaryOp::Update, Box::new(update))),
            )
        }
        Term::BinOp(l, op, r) => Term::BinOp(boxed(l), binary_op(op), boxed(r)),
        Term::Str(fmt, parts) if parts.iter().any(|p| matches!(p, StrPart::Term(_))) => {
            interpolation(fmt, parts)
        }
        Term::Arr(Some(t)) => call("_hydrant_array", vec![term(*t)]),
        Term::Obj(entries) => {
            Term::Obj(entries.into_iter().map(|(k, v)| (term(k), v.map(term))).collect())
        }
        Term::Neg(t) => Term::Neg(boxed(t)),
        Term::Label(name, t) => Term::Label(name, boxed(t)),
        Term::Fold(kind, xs, pattern, args) => {
            Term::Fold(kind, boxed(xs), pattern_(pattern), args.into_iter().map(term).collect())
        }
        Term::TryCatch(t, catch) => Term::TryCatch(boxed(t), catch.map(boxed)),
        Term::IfThenElse(branches, otherwise) => Term::IfThenElse(
            branches.into_iter().map(|(c, t)| (term(c), term(t))).collect(),
            otherwise.map(boxed),
        ),
        Term::Def(defs, t) => Term::Def(defs.into_iter().map(def).collect(), boxed(t)),
        Term::Call(name, args) => Term::Call(name, args.into_iter().map(term).collect()),
        Term::Path(t, path) => Term::Path(boxed(t), path_(path)),
        // Leaves, and literal strings (no interpolation): nothing to build.
        t @ (Term::Id
        | Term::Recurse
        | Term::Num(_)
        | Term::Str(..)
        | Term::Arr(None)
        | Term::Break(_)
        | Term::Var(_)) => t,
    }
}

fn native(op: Math) -> &'static str {
    match op {
        Math::Mul => "_hydrant_mul",
        _ => "_hydrant_add",
    }
}

fn call<'s>(name: &'s str, args: Vec<Term<&'s str>>) -> Term<&'s str> {
    Term::Call(name, args)
}

fn binary_op(op: BinaryOp<&str>) -> BinaryOp<&str> {
    match op {
        BinaryOp::Pipe(Some(p)) => BinaryOp::Pipe(Some(pattern_(p))),
        other => other,
    }
}

fn pattern_(p: Pattern<&str>) -> Pattern<&str> {
    match p {
        Pattern::Var(v) => Pattern::Var(v),
        Pattern::Arr(ps) => Pattern::Arr(ps.into_iter().map(pattern_).collect()),
        Pattern::Obj(entries) => {
            Pattern::Obj(entries.into_iter().map(|(k, p)| (term(k), pattern_(p))).collect())
        }
    }
}

fn path_(path: Path<Term<&str>>) -> Path<Term<&str>> {
    Path(
        path.0
            .into_iter()
            .map(|(part, opt)| {
                let part = match part {
                    Part::Index(t) => Part::Index(term(t)),
                    Part::Range(from, to) => Part::Range(from.map(term), to.map(term)),
                };
                (part, opt)
            })
            .collect(),
    )
}

/// `"a\(f)b"`: each interpolated term through `tostring` (or the format), then the parts
/// joined right to left, as jaq's compiler joins them.
fn interpolation<'s>(
    fmt: Option<&'s str>,
    parts: Vec<StrPart<&'s str, Term<&'s str>>>,
) -> Term<&'s str> {
    let convert = fmt.unwrap_or("_hydrant_tostring");
    let mut terms: Vec<Term<&'s str>> = parts
        .into_iter()
        .map(|part| match part {
            StrPart::Term(t) => Term::BinOp(
                Box::new(term(t)),
                BinaryOp::Pipe(None),
                Box::new(Term::Call(convert, Vec::new())),
            ),
            literal => Term::Str(None, vec![literal]),
        })
        .collect();
    let last = terms.pop().unwrap_or_else(|| Term::Str(None, Vec::new()));
    terms.into_iter().rev().fold(last, |acc, t| call("_hydrant_add", vec![t, acc]))
}
