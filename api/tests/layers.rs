//! The server's architecture, in one table, checked on every `cargo test`.
//!
//! Every module of `api/src` sits in one layer of [`LAYERS`], and may use modules of
//! its own layer and of the layers below it, never above: the vocabulary knows nothing
//! of the database, the cache nothing of who is asking, the policy nothing of HTTP. A
//! request then reads top to bottom (README, "How a request flows"): transport →
//! admission → application → policy → infrastructure, each step naming only what is
//! beneath it.
//!
//! What counts as using a module is any path that starts at the crate root or climbs
//! from the current module — `use crate::cache::tags;`, `crate::db::organisation_by_code(…)`
//! in an expression, `use super::schools::School;` — with comments and string literals
//! left out. Within a layer, imports may go either way, but never round in a circle
//! between files ([`no_circle_between_files`]); a module's own submodules are its parts
//! and may use it freely (`graphql/mod.rs` assembles the schema from the files beside it,
//! which use its request context).
//!
//! A new module gets a row here: [`every_module_has_a_layer`] fails until it does, so
//! its place in the architecture is decided, once, where a reader finds it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The layers, bottom first: a name, what belongs there, and its modules (top-level
/// modules of the crate, or deeper paths such as `graphql::guard` where a module's
/// parts sit in different layers; the longest match decides).
const LAYERS: &[(&str, &str, &[&str])] = &[
    (
        "vocabulary",
        "domain types, the caller's identity, errors and small shared helpers: no I/O",
        &["domain", "error", "identity", "digest", "pseudonym"],
    ),
    (
        "infrastructure",
        "settings, keys, metrics, a request's work budget, the database, the response \
         cache (which knows nothing of policy), rate and concurrency limits and the \
         audit log",
        &[
            "config",
            "keys",
            "telemetry",
            "budget",
            "concurrency",
            "db",
            "cache",
            "ratelimit",
            "audit",
        ],
    ),
    (
        "policy",
        "every rule: who may see and do what (access), which tokens are good (auth), how \
         much of a figure may be shown (disclosure), and the partnership's and signals' \
         rules that do not depend on who asks",
        &["access", "auth", "disclosure", "partnership", "signals"],
    ),
    (
        "admission",
        "a verified identity turned into the caller's access, remembered between requests \
         beside the response cache",
        &["admission"],
    ),
    (
        "application",
        "the GraphQL API and data sync: what a request does",
        &["graphql", "sync"],
    ),
    (
        "transport",
        "HTTP: routing, middleware, the cache in front of execution",
        &["http"],
    ),
    (
        "wiring",
        "startup, the command line, and the demo data (never on a request's path)",
        &["startup", "cli", "seed"],
    ),
];

/// One use of another module: where it is written and the path as written.
#[derive(Clone, Debug)]
struct Use {
    line: usize,
    path: Vec<String>,
}

/// A source file: its module path (`graphql::figures`) and what its code names.
struct SourceFile {
    file: PathBuf,
    module: Vec<String>,
    uses: Vec<Use>,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every module file of the library (`main.rs` is the binary: another crate).
fn source_files() -> Vec<SourceFile> {
    let root = src_dir();
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read api/src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(&root).expect("under src");
                if rel == Path::new("main.rs") {
                    continue;
                }
                let mut module: Vec<String> = rel
                    .with_extension("")
                    .iter()
                    .map(|s| s.to_string_lossy().into_owned())
                    .collect();
                if matches!(module.last().map(String::as_str), Some("mod") | Some("lib")) {
                    module.pop();
                }
                let text = std::fs::read_to_string(&path).expect("read source");
                let uses = uses_of(&text, &module);
                files.push(SourceFile {
                    file: Path::new("api/src").join(rel),
                    module,
                    uses,
                });
            }
        }
    }
    files.sort_by(|a, b| a.file.cmp(&b.file));
    files
}

/// The layer of a module path: its index in [`LAYERS`] and the entry that placed it.
fn layer_of(module: &[String]) -> Option<(usize, String)> {
    let mut best: Option<(usize, usize, String)> = None;
    for (index, (_, _, modules)) in LAYERS.iter().enumerate() {
        for entry in *modules {
            let parts: Vec<&str> = entry.split("::").collect();
            let matches = parts.len() <= module.len()
                && parts.iter().zip(module).all(|(a, b)| *a == b.as_str());
            if matches && best.as_ref().is_none_or(|(len, _, _)| parts.len() > *len) {
                best = Some((parts.len(), index, (*entry).to_owned()));
            }
        }
    }
    best.map(|(_, index, entry)| (index, entry))
}

/// The module file a path lands in: the longest prefix of it that is a file's module.
fn target_of<'a>(path: &[String], modules: &'a BTreeSet<Vec<String>>) -> Option<&'a Vec<String>> {
    (1..=path.len())
        .rev()
        .find_map(|n| modules.get(&path[..n].to_vec()))
}

#[test]
fn every_module_has_a_layer() {
    let missing: Vec<String> = source_files()
        .iter()
        .filter(|f| !f.module.is_empty() && layer_of(&f.module).is_none())
        .map(|f| format!("  {} ({})", f.file.display(), f.module.join("::")))
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a layer; give each a row in LAYERS (api/tests/layers.rs):\n{}",
        missing.join("\n")
    );
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let files = source_files();
    let mut upward = Vec::new();
    for file in &files {
        let Some((from, from_entry)) = layer_of(&file.module) else {
            continue;
        };
        let mut seen = BTreeSet::new();
        for u in &file.uses {
            let Some((to, to_entry)) = layer_of(&u.path) else {
                continue;
            };
            if to > from && seen.insert(u.path.join("::")) {
                upward.push(format!(
                    "  {}:{}: crate::{} — {} ({}) imports {} ({})",
                    file.file.display(),
                    u.line,
                    u.path.join("::"),
                    LAYERS[from].0,
                    from_entry,
                    LAYERS[to].0,
                    to_entry,
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "{} upward import(s); move the item to the layer where it belongs (layers, bottom \
         first: {}):\n{}",
        upward.len(),
        LAYERS
            .iter()
            .map(|(name, _, _)| *name)
            .collect::<Vec<_>>()
            .join(" → "),
        upward.join("\n")
    );
}

#[test]
fn no_circle_between_files() {
    let files = source_files();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    // file → file it uses → first line naming it.
    let mut edges: BTreeMap<&Vec<String>, BTreeMap<&Vec<String>, usize>> = BTreeMap::new();
    for file in &files {
        let out = edges.entry(&file.module).or_default();
        for u in &file.uses {
            let Some(target) = target_of(&u.path, &modules) else {
                continue;
            };
            // A module's own parts (and itself) are not a dependency of it.
            if target.starts_with(&file.module) {
                continue;
            }
            out.entry(target).or_insert(u.line);
        }
    }
    let circles = strongly_connected(&edges);
    let name = |m: &Vec<String>| {
        files
            .iter()
            .find(|f| &f.module == m)
            .map(|f| f.file.display().to_string())
            .unwrap_or_default()
    };
    let mut report = String::new();
    for circle in &circles {
        let _ = writeln!(report, "  a circle of {} files:", circle.len());
        for from in circle {
            for (to, line) in &edges[from] {
                if circle.contains(to) {
                    let _ = writeln!(report, "    {}:{} → {}", name(from), line, name(to));
                }
            }
        }
    }
    assert!(
        circles.is_empty(),
        "files that import one another round a circle:\n{report}"
    );
}

/// Tarjan's algorithm: the sets of files that reach one another (more than one file).
fn strongly_connected<'a>(
    edges: &BTreeMap<&'a Vec<String>, BTreeMap<&'a Vec<String>, usize>>,
) -> Vec<Vec<&'a Vec<String>>> {
    struct State<'a> {
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        found: Vec<Vec<&'a Vec<String>>>,
    }
    fn visit<'a>(
        node: &'a Vec<String>,
        edges: &BTreeMap<&'a Vec<String>, BTreeMap<&'a Vec<String>, usize>>,
        s: &mut State<'a>,
    ) {
        let i = s.index.len();
        s.index.insert(node, i);
        s.low.insert(node, i);
        s.stack.push(node);
        s.on_stack.insert(node);
        for next in edges.get(node).into_iter().flat_map(|m| m.keys()) {
            if !s.index.contains_key(next) {
                visit(next, edges, s);
                let low = s.low[node].min(s.low[next]);
                s.low.insert(node, low);
            } else if s.on_stack.contains(next) {
                let low = s.low[node].min(s.index[next]);
                s.low.insert(node, low);
            }
        }
        if s.low[node] == s.index[node] {
            let mut component = Vec::new();
            while let Some(top) = s.stack.pop() {
                s.on_stack.remove(top);
                component.push(top);
                if top == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in edges.keys() {
        if !state.index.contains_key(node) {
            visit(node, edges, &mut state);
        }
    }
    state.found.sort();
    state.found
}

// ---------------------------------------------------------------------------------------
// Reading the paths out of Rust source. Not a parser: comments, strings and character
// literals are blanked (lines kept), then every `crate::…` and `super::…` path is read,
// `use` groups (`use crate::{a, b::{c, d}}`) expanded into one path per item.

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Other(char),
}

/// The module paths `text` names, made absolute (`super::` resolved, inline `mod`
/// blocks such as `mod tests { use super::*; }` included). A `mod.rs` is its directory's
/// module, so its `super` is the directory's parent.
fn uses_of(text: &str, module: &[String]) -> Vec<Use> {
    let tokens = tokenize(&blank(text));
    let mut uses = Vec::new();
    // Inline modules: (depth of braces at which each was opened).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let (line, token) = &tokens[i];
        match token {
            Token::Ident(word) if word == "mod" => {
                if let (Some((_, Token::Ident(name))), Some((_, Token::Open))) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                {
                    depth += 1;
                    inline.push((name.clone(), depth));
                    i += 3;
                    continue;
                }
            }
            Token::Open => depth += 1,
            Token::Close => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Token::Ident(word)
                if (word == "crate" || word == "super")
                    && tokens.get(i + 1).map(|t| &t.1) == Some(&Token::PathSep)
                    && (i == 0 || tokens[i - 1].1 != Token::PathSep)
                    && (i == 0 || tokens[i - 1].1 != Token::Other('$')) =>
            {
                let mut here: Vec<String> = module.to_vec();
                here.extend(inline.iter().map(|(name, _)| name.clone()));
                let mut base = if word == "crate" {
                    Vec::new()
                } else {
                    let mut up = here.clone();
                    up.pop();
                    up
                };
                let mut j = i + 1;
                // `super::super::…`
                while tokens.get(j).map(|t| &t.1) == Some(&Token::PathSep)
                    && matches!(tokens.get(j + 1).map(|t| &t.1), Some(Token::Ident(w)) if w == "super")
                {
                    base.pop();
                    j += 2;
                }
                let mut paths = Vec::new();
                let end = use_tree(&tokens, j, base, &mut paths);
                uses.extend(
                    paths
                        .into_iter()
                        .filter(|p| !p.is_empty())
                        .map(|path| Use { line: *line, path }),
                );
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    uses
}

/// Reads `::a::b`, `::a::{b, c::{d}}`, `::*` from `tokens[at]` on, after `prefix`;
/// pushes each full path and returns the index after the tree.
fn use_tree(
    tokens: &[(usize, Token)],
    mut at: usize,
    prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    let mut path = prefix;
    while tokens.get(at).map(|t| &t.1) == Some(&Token::PathSep) {
        match tokens.get(at + 1).map(|t| &t.1) {
            Some(Token::Ident(name)) => {
                path.push(name.clone());
                at += 2;
            }
            Some(Token::Open) => {
                at += 2;
                loop {
                    match tokens.get(at).map(|t| &t.1) {
                        Some(Token::Close) | None => {
                            at += 1;
                            break;
                        }
                        Some(Token::Comma) => at += 1,
                        Some(Token::Ident(name)) if name == "self" => {
                            out.push(path.clone());
                            at += 1;
                        }
                        Some(Token::Ident(name)) => {
                            let mut inner = path.clone();
                            inner.push(name.clone());
                            at = use_tree(tokens, at + 1, inner, out);
                            // `as alias`
                            if matches!(tokens.get(at).map(|t| &t.1), Some(Token::Ident(w)) if w == "as")
                            {
                                at += 2;
                            }
                        }
                        Some(Token::Open) => {
                            // `{ … }` nested without a name: read it as a tree here.
                            at = use_tree(tokens, at - 1, path.clone(), out);
                        }
                        Some(_) => at += 1,
                    }
                }
                return at;
            }
            _ => {
                // `::*`, `::<T>` and the like end the path.
                at += 1;
                break;
            }
        }
    }
    out.push(path);
    at
}

fn tokenize(code: &str) -> Vec<(usize, Token)> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            // Raw identifiers (`r#type`) are idents; nothing here names a module so.
            tokens.push((line, Token::Ident(word)));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push((line, Token::PathSep));
            i += 2;
        } else {
            tokens.push((
                line,
                match c {
                    '{' => Token::Open,
                    '}' => Token::Close,
                    ',' => Token::Comma,
                    other => Token::Other(other),
                },
            ));
            i += 1;
        }
    }
    tokens
}

/// `text` with comments, string and character literals replaced by spaces (newlines
/// kept, so line numbers still hold).
fn blank(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let keep_lines = |out: &mut String, from: &[char]| {
        for c in from {
            out.push(if *c == '\n' { '\n' } else { ' ' });
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            let end = chars[i..]
                .iter()
                .position(|c| *c == '\n')
                .map_or(chars.len(), |p| i + p);
            keep_lines(&mut out, &chars[i..end]);
            i = end;
        } else if c == '/' && next == Some('*') {
            let mut nesting = 0;
            let mut j = i;
            while j < chars.len() {
                if chars[j] == '/' && chars.get(j + 1) == Some(&'*') {
                    nesting += 1;
                    j += 2;
                } else if chars[j] == '*' && chars.get(j + 1) == Some(&'/') {
                    nesting -= 1;
                    j += 2;
                    if nesting == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            keep_lines(&mut out, &chars[i..j.min(chars.len())]);
            i = j;
        } else if let Some(end) = raw_string_end(&chars, i) {
            keep_lines(&mut out, &chars[i..end]);
            i = end;
        } else if c == '"' || (c == 'b' && next == Some('"') && !ident_before(&chars, i)) {
            let mut j = if c == 'b' { i + 2 } else { i + 1 };
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(chars.len());
            keep_lines(&mut out, &chars[i..end]);
            i = end;
        } else if c == '\'' {
            // A character literal (`'x'`, `'\n'`, `'\u{..}'`), else a lifetime.
            let end = if next == Some('\\') {
                chars[i + 2..]
                    .iter()
                    .position(|c| *c == '\'')
                    .map(|p| i + 2 + p + 1)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 3)
            } else {
                None
            };
            match end {
                Some(end) => {
                    keep_lines(&mut out, &chars[i..end]);
                    i = end;
                }
                None => {
                    out.push(' ');
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// The end of a raw string (`r"…"`, `r#"…"#`, `br#"…"#`) starting at `i`, if one does.
fn raw_string_end(chars: &[char], i: usize) -> Option<usize> {
    if ident_before(chars, i) {
        return None;
    }
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|c| **c == '#').count();
    j += hashes;
    if chars.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < chars.len() {
        if chars[j] == '"'
            && chars[j + 1..]
                .iter()
                .take(hashes)
                .filter(|c| **c == '#')
                .count()
                == hashes
        {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(chars.len())
}

#[test]
fn the_reader_finds_paths_in_use_trees_and_code_but_not_in_comments_or_strings() {
    let module = vec!["graphql".to_owned(), "figures".to_owned()];
    let text = r##"
        use crate::{access::{self, Access}, cache::tags};
        use super::schools::School;
        // use crate::http::Nope;
        /* crate::http::Nope */
        const S: &str = "crate::http::Nope";
        const R: &str = r#"crate::http::Nope"#;
        fn f<'a>(x: &'a str) -> char { let _ = crate::db::organisation_by_code(x); 'c' }
        pub(crate) fn g() {}
        mod tests { use super::*; }
    "##;
    let paths: Vec<String> = uses_of(text, &module)
        .into_iter()
        .map(|u| format!("{}:{}", u.line, u.path.join("::")))
        .collect();
    assert_eq!(
        paths,
        [
            "2:access",
            "2:access::Access",
            "2:cache::tags",
            "3:graphql::schools::School",
            "8:db::organisation_by_code",
            "10:graphql::figures",
        ]
    );
}
