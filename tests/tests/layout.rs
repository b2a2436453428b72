//! The rooms stay small enough to hold: no source file of shared/, cli/ or
//! functions/ over FILE_LIMIT lines and no function over FUNCTION_LIMIT
//! lines, unit tests aside (a `#[cfg(test)]` module, a file of tests, the
//! integration tests). `LAYOUT_REPORT=1` prints the longest of each.

use std::path::{Path, PathBuf};

use eks_private_dns_tests::workspace_root;

const FILE_LIMIT: usize = 600;
const FUNCTION_LIMIT: usize = 100;
const ROOTS: &[&str] = &["shared/src", "cli/src", "functions"];

/// A measured file: its lines outside tests, and each function's.
struct Measured {
    path: String,
    lines: usize,
    functions: Vec<(String, usize)>,
}

/// The source with comments, strings and character literals blanked out
/// (newlines kept), so that braces and `fn` are only the code's.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                match chars.get(j) {
                    None => break,
                    Some('"') if (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    _ => j += 1,
                }
            }
            for &ch in &chars[i..j.min(chars.len())] {
                out.push(blank(ch));
            }
            i = j;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A character literal ('{', '\n', '\u{7f}'), not a lifetime.
            let end = if next == Some('\\') {
                (i + 2..chars.len().min(i + 12)).find(|&k| chars[k] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    for _ in i..=end {
                        out.push(' ');
                    }
                    i = end + 1;
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

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// The line of the brace that closes the block opened at or after `line`.
fn block_end(lines: &[&str], line: usize) -> usize {
    let mut depth = 0i64;
    let mut opened = false;
    for (n, text) in lines.iter().enumerate().skip(line) {
        for c in text.chars() {
            match c {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth -= 1,
                ';' if !opened && depth == 0 => return n,
                _ => {}
            }
            if opened && depth == 0 {
                return n;
            }
        }
    }
    lines.len() - 1
}

fn function_name(text: &str) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "fn")?;
    let before_ok = words[..at].iter().all(|w| {
        matches!(*w, "pub" | "async" | "const" | "unsafe" | "extern") || w.starts_with("pub(")
    });
    if !before_ok {
        return None;
    }
    let name = words.get(at + 1)?;
    let name: String = name
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

fn measure(path: &Path, shown: String) -> Measured {
    let source = std::fs::read_to_string(path).unwrap();
    let code = code_only(&source);
    let lines: Vec<&str> = code.lines().collect();
    let mut in_tests = vec![false; lines.len()];
    let mut n = 0;
    while n < lines.len() {
        if lines[n].trim() == "#[cfg(test)]" {
            let end = block_end(&lines, n + 1);
            for flag in &mut in_tests[n..=end] {
                *flag = true;
            }
            n = end + 1;
        } else {
            n += 1;
        }
    }
    let mut functions = Vec::new();
    for (n, text) in lines.iter().enumerate() {
        if in_tests[n] {
            continue;
        }
        if let Some(name) = function_name(text) {
            let end = block_end(&lines, n);
            functions.push((name, end - n + 1));
        }
    }
    let lines = in_tests.iter().filter(|t| !**t).count();
    Measured {
        path: shown,
        lines,
        functions,
    }
}

fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    name == "tests.rs"
        || name.ends_with("_tests.rs")
        || path.components().any(|c| c.as_os_str() == "tests")
}

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                sources(&path, found);
            }
        } else if name.ends_with(".rs") && !is_test_file(&path) {
            found.push(path);
        }
    }
}

fn measured() -> Vec<Measured> {
    let root = workspace_root();
    let mut paths = Vec::new();
    for dir in ROOTS {
        sources(&root.join(dir), &mut paths);
    }
    paths
        .iter()
        .map(|p| {
            let shown = p.strip_prefix(&root).unwrap().display().to_string();
            measure(p, shown)
        })
        .collect()
}

#[test]
fn no_room_outgrows_what_one_person_can_hold() {
    let all = measured();
    assert!(all.len() > 10, "found only {} source files", all.len());
    let mut over = Vec::new();
    for file in &all {
        if file.lines > FILE_LIMIT {
            over.push(format!("{}: {} lines", file.path, file.lines));
        }
        for (name, lines) in &file.functions {
            if *lines > FUNCTION_LIMIT {
                over.push(format!("{}: fn {name}: {lines} lines", file.path));
            }
        }
    }
    if std::env::var_os("LAYOUT_REPORT").is_some() {
        let mut files: Vec<_> = all.iter().map(|f| (f.lines, f.path.clone())).collect();
        files.sort_by(|a, b| b.cmp(a));
        let mut functions: Vec<_> = all
            .iter()
            .flat_map(|f| {
                f.functions
                    .iter()
                    .map(move |(name, n)| (*n, format!("{}::{name}", f.path)))
            })
            .collect();
        functions.sort_by(|a, b| b.cmp(a));
        for (n, path) in files.iter().take(5) {
            println!("file {n:5} {path}");
        }
        for (n, name) in functions.iter().take(5) {
            println!("fn   {n:5} {name}");
        }
    }
    assert!(
        over.is_empty(),
        "over the limits of {FILE_LIMIT} lines a file and {FUNCTION_LIMIT} a function \
         (unit tests aside):\n{}",
        over.join("\n")
    );
}

#[test]
fn the_measure_sees_functions_and_skips_tests_and_strings() {
    let dir = std::env::temp_dir().join(format!("layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sample.rs");
    std::fs::write(
        &path,
        "pub fn a() {\n    let s = \"}}}\";\n    let c = '}';\n    // }\n}\n\
         async fn b<'x>(v: &'x str) -> usize {\n    v.len()\n}\n\
         #[cfg(test)]\nmod tests {\n    fn t() {\n    }\n}\n",
    )
    .unwrap();
    let m = measure(&path, "sample.rs".into());
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(m.functions, vec![("a".into(), 5), ("b".into(), 3)]);
    assert_eq!(m.lines, 8);
}
