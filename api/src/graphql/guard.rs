//! Checks a request's document *before* the GraphQL engine walks it, for the two
//! shapes whose cost is not bounded by the document's length.
//!
//! - **Deep nesting.** The parser descends once per `{`, `[` or `(`; a body of a few
//!   hundred kilobytes of opening brackets would nest far deeper than any honest query
//!   and spend the parser's stack on it. The raw text is scanned first (strings and
//!   comments skipped) and anything nesting deeper than [`MAX_NESTING`] is refused
//!   unparsed.
//! - **Fragment bombs.** `fragment A on Query { ...B ...B } fragment B … { ...C ...C }`
//!   doubles at every level: thirty short lines expand to a billion fields, and the
//!   engine's own checks (recursion depth, complexity) expand fragments as they go, so
//!   they would do that work before refusing. Here each fragment's expanded size is
//!   computed once and reused, which costs time linear in the document, and a document
//!   that expands to more field selections than the complexity budget is refused: each
//!   selected field costs at least one unit of complexity, so it could never pass.
//!
//! - **Aliased lists.** Each alias of a list field is a separate query; a document
//!   repeating one list field thousands of times under different aliases once ran
//!   7,000 SQL statements. The cost model already charges every alias, but a cheap list
//!   repeated many times is still many statements, so one selection set may select a
//!   list field at most [`MAX_LIST_REPEATS`] times (fragments spread into it included).
//!
//! - **Depth.** Fields may nest at most `MAX_QUERY_DEPTH` levels, counted here rather
//!   than by the engine so that `ofType` chains of introspection do not count (see
//!   [`check_depth`]).
//!
//! Directives are the engine's to limit (`limit_directives`), the cost of lists the
//! cost model's (`cost`); a body-size limit in `http` bounds everything else.

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// Deepest bracket nesting accepted in a document's text; the engine's recursion limit
/// is the same, and an honest query stays far below it (the depth limit is 12).
pub const MAX_NESTING: usize = 64;

/// Refuses a document whose text nests deeper than [`MAX_NESTING`].
pub fn check_nesting(query: &str) -> Result<(), String> {
    let mut depth = 0usize;
    let mut chars = query.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' | '[' | '(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!(
                        "the document nests deeper than {MAX_NESTING} levels"
                    ));
                }
            }
            '}' | ']' | ')' => depth = depth.saturating_sub(1),
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' || c == '\r' {
                        break;
                    }
                }
            }
            '"' => skip_string(&mut chars),
            _ => {}
        }
    }
    Ok(())
}

/// Skips a string whose opening quote has been read: `"…"` with escapes, or a block
/// string `"""…"""`.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    if chars.peek() == Some(&'"') {
        chars.next();
        if chars.peek() == Some(&'"') {
            chars.next();
            // Block string: ends at the next unescaped `"""`.
            let mut quotes = 0;
            let mut escaped = false;
            for c in chars.by_ref() {
                match c {
                    '"' if !escaped => {
                        quotes += 1;
                        if quotes == 3 {
                            return;
                        }
                    }
                    '\\' => {
                        escaped = true;
                        quotes = 0;
                        continue;
                    }
                    _ => quotes = 0,
                }
                escaped = false;
            }
            return;
        }
        // `""`: an empty string.
        return;
    }
    let mut escaped = false;
    for c in chars.by_ref() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return,
            '\n' | '\r' => return,
            _ => escaped = false,
        }
    }
}

/// Refuses a document whose operations, with every fragment spread expanded, select
/// more than `max_fields` fields, or whose fragments spread each other in a cycle.
pub fn check_expansion(document: &ExecutableDocument, max_fields: usize) -> Result<(), String> {
    let mut sizes = Sizes {
        document,
        memo: HashMap::new(),
        limit: max_fields,
    };
    let mut total = 0usize;
    for (_, operation) in document.operations.iter() {
        total = total.saturating_add(sizes.of_set(&operation.node.selection_set.node, 0)?);
        if total > max_fields {
            return Err(too_large(max_fields));
        }
    }
    Ok(())
}

/// The one field that does not count towards a query's depth: `__Type.ofType`, the type
/// a list or non-null type wraps. It is a single object, never a list, so a chain of
/// them cannot fan out; the introspection query every standard client sends
/// (graphql-js' `getIntrospectionQuery()`, used by GraphiQL, `gql`, Postman, Insomnia
/// and code generators) nests nine of them under `fields { args { type } }`, fifteen
/// levels in all, which a limit meant for data (`MAX_QUERY_DEPTH`, 12) would refuse.
const DEPTH_FREE_FIELD: &str = "ofType";

/// Refuses a document whose operations nest fields deeper than `max_depth`, fragments
/// spread in place and `ofType` not counted ([`DEPTH_FREE_FIELD`]). Run after
/// [`check_expansion`], which refuses fragment cycles.
pub fn check_depth(document: &ExecutableDocument, max_depth: usize) -> Result<(), String> {
    fn depth_of<'a>(
        document: &'a ExecutableDocument,
        set: &'a SelectionSet,
        memo: &mut HashMap<&'a str, usize>,
        nesting: usize,
    ) -> usize {
        if nesting > MAX_NESTING {
            return nesting;
        }
        set.items
            .iter()
            .map(|selection| match &selection.node {
                Selection::Field(field) => {
                    let counts = usize::from(field.node.name.node != DEPTH_FREE_FIELD);
                    counts + depth_of(document, &field.node.selection_set.node, memo, nesting + 1)
                }
                Selection::InlineFragment(inline) => {
                    depth_of(document, &inline.node.selection_set.node, memo, nesting + 1)
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if let Some(known) = memo.get(name) {
                        return *known;
                    }
                    let Some(fragment) = document.fragments.get(name) else {
                        return 0;
                    };
                    // A fragment's depth does not depend on where it is spread.
                    let depth = depth_of(
                        document,
                        &fragment.node.selection_set.node,
                        memo,
                        nesting + 1,
                    );
                    memo.insert(name, depth);
                    depth
                }
            })
            .max()
            .unwrap_or(0)
    }
    let mut memo = HashMap::new();
    for (_, operation) in document.operations.iter() {
        if depth_of(document, &operation.node.selection_set.node, &mut memo, 0) > max_depth {
            return Err(format!(
                "the query nests fields deeper than {max_depth} levels (MAX_QUERY_DEPTH)"
            ));
        }
    }
    Ok(())
}

/// Most times one selection set may select the same list field (under any aliases).
pub const MAX_LIST_REPEATS: usize = 8;

/// Refuses a document in which one selection set selects a field named in
/// `list_fields` more than [`MAX_LIST_REPEATS`] times. Run after [`check_expansion`],
/// which bounds the work of following fragment spreads.
pub fn check_list_repeats(
    document: &ExecutableDocument,
    list_fields: &HashSet<String>,
) -> Result<(), String> {
    fn count<'a>(
        document: &'a ExecutableDocument,
        list_fields: &HashSet<String>,
        set: &'a SelectionSet,
        counts: &mut HashMap<&'a str, usize>,
        depth: usize,
    ) -> Result<(), String> {
        if depth > MAX_NESTING {
            return Err(format!(
                "fragments and selections nest deeper than {MAX_NESTING} levels"
            ));
        }
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    if list_fields.contains(name) {
                        let seen = counts.entry(name).or_default();
                        *seen += 1;
                        if *seen > MAX_LIST_REPEATS {
                            return Err(format!(
                                "the list field `{name}` is selected more than \
                                 {MAX_LIST_REPEATS} times in one selection set; ask for it \
                                 once with a wider filter"
                            ));
                        }
                    }
                    let mut inner = HashMap::new();
                    count(
                        document,
                        list_fields,
                        &field.node.selection_set.node,
                        &mut inner,
                        depth + 1,
                    )?;
                }
                Selection::InlineFragment(inline) => count(
                    document,
                    list_fields,
                    &inline.node.selection_set.node,
                    counts,
                    depth + 1,
                )?,
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node)
                    {
                        count(
                            document,
                            list_fields,
                            &fragment.node.selection_set.node,
                            counts,
                            depth + 1,
                        )?;
                    }
                }
            }
        }
        Ok(())
    }
    for (_, operation) in document.operations.iter() {
        let mut counts = HashMap::new();
        count(
            document,
            list_fields,
            &operation.node.selection_set.node,
            &mut counts,
            0,
        )?;
    }
    Ok(())
}

/// Whether any operation selects `__schema` or `__type` (introspection can only start
/// at the root, directly or through fragments spread there). The engine, with
/// introspection off, answers such fields with a silent `null`; the hub says why.
pub fn selects_introspection(document: &ExecutableDocument) -> bool {
    selects_at_root(document, &["__schema", "__type"])
}

/// Whether any operation selects the federation's `_service` (the subgraph SDL). The
/// engine answers it whatever the introspection setting, so the hub decides who may.
pub fn selects_service(document: &ExecutableDocument) -> bool {
    selects_at_root(document, &["_service"])
}

/// Whether any operation selects the federation's `_entities` (a router's lookups).
pub fn selects_entities(document: &ExecutableDocument) -> bool {
    selects_at_root(document, &["_entities"])
}

/// Whether any operation selects one of `names` at its root, directly or through
/// fragments spread there.
fn selects_at_root(document: &ExecutableDocument, names: &[&str]) -> bool {
    /// Each fragment is looked into once (`seen`): what it selects at the root does
    /// not depend on where it is spread, and a fragment bomb or a wide cycle would
    /// otherwise be walked along every one of its exponentially many paths.
    fn at_root<'a>(
        document: &'a ExecutableDocument,
        names: &[&str],
        set: &'a SelectionSet,
        seen: &mut HashSet<&'a str>,
        depth: usize,
    ) -> bool {
        depth <= MAX_NESTING
            && set.items.iter().any(|selection| match &selection.node {
                Selection::Field(field) => names.contains(&field.node.name.node.as_str()),
                Selection::InlineFragment(inline) => at_root(
                    document,
                    names,
                    &inline.node.selection_set.node,
                    seen,
                    depth + 1,
                ),
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    seen.insert(name)
                        && document.fragments.get(name).is_some_and(|f| {
                            at_root(document, names, &f.node.selection_set.node, seen, depth + 1)
                        })
                }
            })
    }
    let mut seen = HashSet::new();
    document.operations.iter().any(|(_, operation)| {
        at_root(
            document,
            names,
            &operation.node.selection_set.node,
            &mut seen,
            0,
        )
    })
}

fn too_large(max_fields: usize) -> String {
    format!(
        "the document expands to more than {max_fields} fields once its fragments are \
         spread; it would exceed the complexity budget"
    )
}

/// Expanded sizes of fragments, each computed once.
struct Sizes<'a> {
    document: &'a ExecutableDocument,
    /// `None` while a fragment is being measured: meeting it again is a cycle.
    memo: HashMap<&'a str, Option<usize>>,
    limit: usize,
}

impl<'a> Sizes<'a> {
    fn of_set(&mut self, set: &'a SelectionSet, depth: usize) -> Result<usize, String> {
        if depth > MAX_NESTING {
            return Err(format!(
                "fragments and selections nest deeper than {MAX_NESTING} levels"
            ));
        }
        let mut size = 0usize;
        for selection in &set.items {
            let add = match &selection.node {
                Selection::Field(field) => {
                    1 + self.of_set(&field.node.selection_set.node, depth + 1)?
                }
                Selection::InlineFragment(inline) => {
                    self.of_set(&inline.node.selection_set.node, depth + 1)?
                }
                Selection::FragmentSpread(spread) => {
                    self.of_fragment(spread.node.fragment_name.node.as_str(), depth)?
                }
            };
            size = size.saturating_add(add);
            if size > self.limit {
                return Err(too_large(self.limit));
            }
        }
        Ok(size)
    }

    fn of_fragment(&mut self, name: &'a str, depth: usize) -> Result<usize, String> {
        match self.memo.get(name) {
            Some(Some(size)) => return Ok(*size),
            Some(None) => return Err(format!("fragment {name} spreads itself")),
            None => {}
        }
        // An unknown fragment is the engine's to report, with its position.
        let Some(fragment) = self.document.fragments.get(name) else {
            return Ok(0);
        };
        self.memo.insert(name, None);
        let size = self.of_set(&fragment.node.selection_set.node, depth + 1)?;
        self.memo.insert(name, Some(size));
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn expansion(query: &str, max: usize) -> Result<(), String> {
        check_expansion(&parse_query(query).expect("valid syntax"), max)
    }

    #[test]
    fn nesting_is_counted_outside_strings_and_comments() {
        let deep = format!("{}{}", "{a".repeat(65), "}".repeat(65));
        assert!(check_nesting(&deep).is_err());
        let shallow = format!("{}{}", "{a".repeat(64), "}".repeat(64));
        assert!(check_nesting(&shallow).is_ok());
        let quoted = format!(
            "{{ a(s: \"{0}\", t: \"\"\"{0}\\\"\"\"{0}\"\"\") # {0}\n }}",
            "{".repeat(100)
        );
        assert!(check_nesting(&quoted).is_ok(), "{quoted}");
    }

    #[test]
    fn a_doubling_fragment_chain_is_refused_without_expanding_it() {
        let mut query = String::from("{ ...F0 }\n");
        for i in 0..40 {
            query.push_str(&format!(
                "fragment F{i} on Query {{ ...F{} ...F{} }}\n",
                i + 1,
                i + 1
            ));
        }
        query.push_str("fragment F40 on Query { regions { code } }\n");
        let err = expansion(&query, 20_000).unwrap_err();
        assert!(err.contains("expands to more than 20000 fields"), "{err}");
    }

    #[test]
    fn shared_fragments_are_counted_each_time_they_are_spread() {
        let query =
            "{ a: regions { ...R } b: regions { ...R } } fragment R on Region { code name }";
        assert!(expansion(query, 6).is_ok());
        assert!(expansion(query, 5).is_err());
    }

    #[test]
    fn introspection_is_found_through_root_fragments_only() {
        let found = |q: &str| selects_introspection(&parse_query(q).expect("valid syntax"));
        assert!(found("{ __schema { types { name } } }"));
        assert!(found(
            "{ ... on Query { ...T } } fragment T on Query { __type(name: \"X\") { name } }"
        ));
        assert!(!found("{ regions { __typename code } }"));
    }

    #[test]
    fn a_list_field_repeated_under_aliases_is_refused() {
        let lists: HashSet<String> = ["regions".to_owned()].into();
        let repeated = |n: usize, fragment: bool| {
            let fields: String = (0..n)
                .map(|i| format!("r{i}: regions {{ code }} "))
                .collect();
            let query = if fragment {
                format!("{{ ...F school(urn: 1) {{ name }} }} fragment F on Query {{ {fields} }}")
            } else {
                format!("{{ {fields} region(code: \"x\") {{ code }} }}")
            };
            check_list_repeats(&parse_query(query).expect("valid syntax"), &lists)
        };
        assert!(repeated(MAX_LIST_REPEATS, false).is_ok());
        let err = repeated(MAX_LIST_REPEATS + 1, false).unwrap_err();
        assert!(err.contains("`regions`"), "{err}");
        assert!(repeated(MAX_LIST_REPEATS + 1, true).is_err());
    }

    #[test]
    fn depth_counts_fields_through_fragments_but_not_of_type() {
        let depth = |q: &str, max: usize| check_depth(&parse_query(q).expect("valid syntax"), max);
        let nested = "{ a { b { c } } }";
        assert!(depth(nested, 3).is_ok());
        assert!(depth(nested, 2).is_err());
        let spread = "{ a { ...F } } fragment F on A { b { c } }";
        assert!(depth(spread, 3).is_ok());
        assert!(depth(spread, 2).is_err());
        let wrapped =
            "{ __type(name: \"X\") { ofType { ofType { ofType { ofType { name } } } } } }";
        assert!(depth(wrapped, 2).is_ok());
        let standard = include_str!("../../../tests/api/fixtures/get-introspection-query.graphql");
        assert!(depth(standard, 6).is_ok());
        assert!(depth(standard, 5).is_err());
    }

    #[test]
    fn root_fields_are_found_in_time_linear_in_a_fragment_bomb() {
        let mut query = String::from("{ ...F0 }\n");
        for i in 0..40 {
            query.push_str(&format!(
                "fragment F{i} on Query {{ ...F{} ...F{} }}\n",
                i + 1,
                i + 1
            ));
        }
        query.push_str("fragment F40 on Query { regions { code } }\n");
        let document = parse_query(query).expect("valid syntax");
        assert!(!selects_entities(&document));
        assert!(!selects_introspection(&document));
    }

    #[test]
    fn cycles_are_refused() {
        let err = expansion(
            "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
            100,
        )
        .unwrap_err();
        assert!(err.contains("spreads itself"), "{err}");
    }
}
