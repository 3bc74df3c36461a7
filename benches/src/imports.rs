//! The module import graph of a crate, read from its sources, and the cycles in it.
//!
//! The rule it checks (see `ARCHITECTURE.md`): no file of a crate imports a file that
//! imports it back, directly or around a circle. A file *imports* another when it names
//! an item through a path that resolves into that file: `use crate::a::b::Item;`,
//! `crate::a::f()`, `super::Item` (to the parent module's file), `child::f()` (in a
//! parent, to a child's file). A folder presenting its own children is not an import:
//! `mod child;` and a re-export of a direct child (`pub use child::Item;`) make no
//! edge, so a child may use what its parent defines. Any other re-export is an import.
//! Paths resolve to the longest module prefix that has a file, so `crate::Foo` (a
//! re-export at the root) is an import of `lib.rs`.
//!
//! The reader is textual: comments, strings and character literals are blanked first;
//! `#[path]` attributes and macros that build paths are not followed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One source file of a crate and the module path it defines.
#[derive(Debug, Clone)]
struct ModuleFile {
    /// Module path from the crate root (`[]` for `lib.rs` / `main.rs`).
    module: Vec<String>,
    path: PathBuf,
}

/// The file-level import graph of one crate: for each file (relative to the crate
/// directory), the files it imports.
#[derive(Debug, Clone, Default)]
pub struct ImportGraph {
    /// Edges, file → imported files, both relative to the crate directory.
    pub edges: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
}

impl ImportGraph {
    /// Reads every `.rs` file under `crate_dir/src` (library and binary roots).
    ///
    /// # Errors
    ///
    /// An I/O error reading the sources.
    pub fn of_crate(crate_dir: &Path) -> std::io::Result<Self> {
        let src = crate_dir.join("src");
        let mut files = Vec::new();
        collect_rs(&src, &mut files)?;
        let modules: Vec<ModuleFile> = files
            .iter()
            .filter_map(|p| {
                module_of(&src, p).map(|module| ModuleFile {
                    module,
                    path: p.clone(),
                })
            })
            .collect();
        let by_module: BTreeMap<Vec<String>, PathBuf> = modules
            .iter()
            .map(|m| (m.module.clone(), m.path.clone()))
            .collect();
        let mut graph = Self::default();
        for m in &modules {
            let text = blank_comments_and_strings(&std::fs::read_to_string(&m.path)?);
            let rel = |p: &Path| p.strip_prefix(crate_dir).unwrap_or(p).to_path_buf();
            let entry = graph.edges.entry(rel(&m.path)).or_default();
            for target in references(&text, &m.module) {
                if let Some(file) = resolve(&by_module, &target)
                    && file != &m.path
                {
                    entry.insert(rel(file));
                }
            }
        }
        Ok(graph)
    }

    /// Every cycle, each as the files around it (the first file repeated at the end),
    /// one per strongly connected component of more than one file.
    pub fn cycles(&self) -> Vec<Vec<PathBuf>> {
        let nodes: Vec<&PathBuf> = self.edges.keys().collect();
        let mut out = Vec::new();
        let mut seen: BTreeSet<&PathBuf> = BTreeSet::new();
        for start in nodes {
            if seen.contains(start) {
                continue;
            }
            // The component of `start`: files reachable from it that reach it back.
            let forward = self.reachable(start);
            let component: Vec<&PathBuf> = forward
                .iter()
                .copied()
                .filter(|n| self.reachable(n).contains(start))
                .collect();
            if !component.is_empty() {
                seen.extend(component.iter().copied());
                out.push(self.path_around(start, &component));
            }
        }
        out
    }

    fn reachable<'a>(&'a self, from: &'a PathBuf) -> BTreeSet<&'a PathBuf> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from];
        while let Some(n) = stack.pop() {
            for m in self.edges.get(n).into_iter().flatten() {
                if seen.insert(m) {
                    stack.push(m);
                }
            }
        }
        seen
    }

    /// One circle through `start` inside `component`, found breadth first.
    fn path_around(&self, start: &PathBuf, component: &[&PathBuf]) -> Vec<PathBuf> {
        let inside: BTreeSet<&PathBuf> = component.iter().copied().collect();
        let mut parent: BTreeMap<&PathBuf, &PathBuf> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            for m in self.edges.get(n).into_iter().flatten() {
                if m == start {
                    let mut back = Vec::new();
                    let mut at = n;
                    while at != start {
                        back.push(at.clone());
                        at = parent[at];
                    }
                    back.reverse();
                    let mut path = vec![start.clone()];
                    path.extend(back);
                    path.push(start.clone());
                    return path;
                }
                if inside.contains(m) && !parent.contains_key(m) {
                    parent.insert(m, n);
                    queue.push_back(m);
                }
            }
        }
        vec![start.clone()]
    }
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            collect_rs(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    Ok(())
}

/// The module path a file under `src` defines, or `None` for a file that is not a
/// module of the library or the main binary (`src/bin/*` is skipped).
fn module_of(src: &Path, file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?.to_string();
    match stem.as_str() {
        "lib" | "main" if parts.is_empty() => {}
        "mod" => {}
        _ => parts.push(stem),
    }
    Some(parts)
}

/// The file of the longest module prefix of `path`.
fn resolve<'a>(
    by_module: &'a BTreeMap<Vec<String>, PathBuf>,
    path: &[String],
) -> Option<&'a PathBuf> {
    (0..=path.len())
        .rev()
        .find_map(|n| by_module.get(&path[..n]))
}

/// Replaces comments, string and character literals by spaces (keeping line breaks).
fn blank_comments_and_strings(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !prev_is_ident(&b, i) {
            // Raw string r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.extend(b[i..j.min(b.len())].iter().map(|c| blank(*c)));
            i = j;
        } else if c == '"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != '"' {
                j += if b[j] == '\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(b.len());
            out.extend(b[i..end].iter().map(|c| blank(*c)));
            i = end;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}'), not a lifetime ('a).
            let close = if next == Some('\\') {
                (i + 2..b.len().min(i + 12)).find(|&j| b[j] == '\'')
            } else if b.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match close {
                Some(j) => {
                    out.extend(std::iter::repeat_n(' ', j + 1 - i));
                    i = j + 1;
                }
                None => {
                    out.push(c);
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

fn prev_is_ident(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The absolute module paths (crate-rooted segment lists, possibly ending in an item
/// name) that `text`, the file of `module`, refers to.
fn references(text: &str, module: &[String]) -> Vec<Vec<String>> {
    let inline = inline_module_spans(text);
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    // Every `use` tree, with relative first segments (children of this module).
    let children = declared_children(text);
    for (start, public, tree) in use_statements(&chars) {
        let depth = inline
            .iter()
            .filter(|(a, b)| *a <= start && start < *b)
            .count();
        for path in expand_use_tree(&tree) {
            let first = path.iter().find(|s| *s != "self");
            let own_child = depth == 0
                && (path.first().is_some_and(|s| s == "self") || children.contains(&path[0]))
                && first.is_some_and(|s| children.contains(s));
            if public && own_child {
                continue;
            }
            if let Some(abs) = absolute(&path, module, depth, &children) {
                out.push(abs);
            }
        }
    }
    // Paths in expressions and types: `crate::…`, `super::…`, `self::…`, `child::…`.
    let mut prefixes: Vec<String> = ["crate::", "super::", "self::"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    prefixes.extend(children.iter().map(|c| format!("{c}::")));
    let mut i = 0;
    while i < chars.len() {
        if (i == 0 || !is_ident_char(chars[i - 1]) && chars[i - 1] != ':')
            && prefixes.iter().any(|p| starts_with(&chars, i, p))
            && !in_use_statement(&chars, i)
        {
            let start = i;
            let mut segs = Vec::new();
            loop {
                let s = i;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                if s == i {
                    break;
                }
                segs.push(chars[s..i].iter().collect::<String>());
                if starts_with(&chars, i, "::") {
                    i += 2;
                } else {
                    break;
                }
            }
            let depth = inline
                .iter()
                .filter(|(a, b)| *a <= start && start < *b)
                .count();
            if let Some(abs) = absolute(&segs, module, depth, &children) {
                out.push(abs);
            }
        }
        i += 1;
    }
    out
}

fn starts_with(chars: &[char], i: usize, pat: &str) -> bool {
    pat.chars()
        .enumerate()
        .all(|(k, c)| chars.get(i + k) == Some(&c))
}

/// The spans (char offsets) of inline `mod name { … }` blocks.
fn inline_module_spans(text: &str) -> Vec<(usize, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if starts_with(&chars, i, "mod ") && (i == 0 || !is_ident_char(chars[i - 1])) {
            let mut j = i + 4;
            while j < chars.len() && (is_ident_char(chars[j]) || chars[j] == ' ') {
                j += 1;
            }
            if chars.get(j) == Some(&'{') {
                let mut depth = 0;
                let mut k = j;
                while k < chars.len() {
                    match chars[k] {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    k += 1;
                }
                spans.push((j, k));
            }
        }
        i += 1;
    }
    spans
}

/// Names of child modules declared in the file (`mod x;`), for relative `use x::…`.
fn declared_children(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let t = line.trim();
        let t = t
            .strip_prefix("pub(crate) ")
            .or_else(|| t.strip_prefix("pub "))
            .unwrap_or(t);
        if let Some(rest) = t.strip_prefix("mod ")
            && let Some(name) = rest.strip_suffix(';')
        {
            out.insert(name.trim().to_string());
        }
    }
    out
}

/// Whether offset `i` lies inside a `use …;` statement (from `use` to its `;`).
fn in_use_statement(chars: &[char], i: usize) -> bool {
    let mut k = i;
    while k > 0 {
        k -= 1;
        match chars[k] {
            ';' | '}' if k + 1 < i && !inside_braces_of_use(chars, k, i) => return false,
            _ => {}
        }
        if starts_with(chars, k, "use ") && (k == 0 || !is_ident_char(chars[k - 1])) {
            return chars[k..i].iter().all(|c| *c != ';');
        }
    }
    false
}

/// Whether the `}` or `;` at `k` closes a group of a `use` tree that is still open at `i`.
fn inside_braces_of_use(chars: &[char], k: usize, i: usize) -> bool {
    chars[k] == '}' && chars[k..i].iter().all(|c| *c != ';')
}

/// Each `use …;` statement: its offset, whether it is a re-export (`pub use`,
/// `pub(crate) use`) and its tree text (without `use` and `;`).
fn use_statements(chars: &[char]) -> Vec<(usize, bool, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 4 < chars.len() {
        if starts_with(chars, i, "use ") && (i == 0 || !is_ident_char(chars[i - 1])) {
            let start = i;
            let mut j = i + 4;
            while j < chars.len() && chars[j] != ';' {
                j += 1;
            }
            let tree: String = chars[i + 4..j.min(chars.len())]
                .iter()
                .filter(|c| !c.is_whitespace())
                .collect();
            let before: String = chars[start.saturating_sub(16)..start].iter().collect();
            let before = before.trim_end();
            let public =
                before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
            out.push((start, public, tree));
            i = j;
        }
        i += 1;
    }
    out
}

/// Expands `a::{b, c::{d, e}}` into `[a, b]`, `[a, c, d]`, `[a, c, e]` (a `self` or
/// `*` leaf stands for its prefix; `as` renames are dropped).
fn expand_use_tree(tree: &str) -> Vec<Vec<String>> {
    fn split_top(s: &str) -> Vec<&str> {
        let mut parts = Vec::new();
        let mut depth = 0;
        let mut last = 0;
        for (k, c) in s.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&s[last..k]);
                    last = k + 1;
                }
                _ => {}
            }
        }
        parts.push(&s[last..]);
        parts.into_iter().filter(|p| !p.is_empty()).collect()
    }
    fn go(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
        let tree = tree.split("as").next().unwrap_or(tree);
        if let Some(open) = tree.find('{') {
            let head = &tree[..open];
            let inner = tree[open + 1..]
                .strip_suffix('}')
                .unwrap_or(&tree[open + 1..]);
            let mut p = prefix.to_vec();
            p.extend(
                head.split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
            for part in split_top(inner) {
                go(&p, part, out);
            }
        } else {
            let mut p = prefix.to_vec();
            p.extend(
                tree.split("::")
                    .filter(|s| !s.is_empty() && *s != "*" && *s != "self")
                    .map(str::to_string),
            );
            out.push(p);
        }
    }
    let mut out = Vec::new();
    go(&[], tree.trim_start_matches("::"), &mut out);
    out
}

/// A path as written in `module` (inside `depth` inline modules) made crate-rooted, or
/// `None` for a path outside the crate.
fn absolute(
    path: &[String],
    module: &[String],
    depth: usize,
    children: &BTreeSet<String>,
) -> Option<Vec<String>> {
    let first = path.first()?;
    let mut here: Vec<String> = module.to_vec();
    // Inline modules are part of this file: `super` inside one still points into it.
    let mut inline_depth = depth;
    let mut rest = &path[1..];
    match first.as_str() {
        "crate" => return Some(rest.to_vec()),
        "self" => {}
        "super" => {
            let mut p = path;
            while p.first().is_some_and(|s| s == "super") {
                if inline_depth > 0 {
                    inline_depth -= 1;
                } else {
                    here.pop()?;
                }
                p = &p[1..];
            }
            rest = p;
        }
        name if depth == 0 && children.contains(name) => rest = path,
        _ => return None,
    }
    here.extend(rest.iter().cloned());
    Some(here)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_trees_expand_to_every_leaf() {
        let paths = expand_use_tree("crate::{a::X,b::{c::Y,self},d}");
        let want: Vec<Vec<String>> = [
            vec!["crate", "a", "X"],
            vec!["crate", "b", "c", "Y"],
            vec!["crate", "b"],
            vec!["crate", "d"],
        ]
        .iter()
        .map(|v| v.iter().map(|s| s.to_string()).collect())
        .collect();
        assert_eq!(paths, want);
    }

    #[test]
    fn comments_and_strings_hide_their_paths() {
        let text = "// use crate::a;\nlet s = \"crate::b\"; let c = 'x'; use crate::c::D;";
        let module: Vec<String> = Vec::new();
        let refs = references(&blank_comments_and_strings(text), &module);
        assert!(
            refs.iter()
                .all(|r| r.first().map(String::as_str) == Some("c")),
            "{refs:?}"
        );
        assert!(!refs.is_empty());
    }

    #[test]
    fn super_inside_an_inline_test_module_stays_in_the_file() {
        let text = "mod tests { use super::*; }";
        let module = vec!["a".to_string()];
        let refs = references(text, &module);
        assert_eq!(refs, vec![vec!["a".to_string()]]);
    }

    #[test]
    fn a_cycle_between_two_files_is_found() {
        let dir = std::env::temp_dir().join(format!("dex-imports-{}", std::process::id()));
        let src = dir.join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\n").unwrap();
        std::fs::write(src.join("a.rs"), "use crate::b::B;\npub struct A;\n").unwrap();
        std::fs::write(src.join("b.rs"), "pub struct B(crate::a::A);\n").unwrap();
        let graph = ImportGraph::of_crate(&dir).unwrap();
        let cycles = graph.cycles();
        std::fs::write(src.join("b.rs"), "pub struct B;\n").unwrap();
        let fixed = ImportGraph::of_crate(&dir).unwrap().cycles();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert_eq!(cycles[0].len(), 3);
        assert!(fixed.is_empty(), "{fixed:?}");
    }
}
