//! `--config.file` patterns, matched as Go's `filepath.Glob` matches them
//! (`*`, `?`, `[a-z]`, `[^a-z]`, `\` escapes; per path component, sorted,
//! a leading dot is not special), so `--config.file='snmp.d/*.yml'` picks
//! the same files as snmp_exporter 0.23+.
//!
//! One difference on purpose: a path without pattern characters is kept
//! even when it does not exist, so a mistyped file is an error instead of
//! silently contributing nothing (Go's Glob drops it).

use std::path::PathBuf;

/// True when `s` has a character that makes it a pattern.
pub fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

/// The files `pattern` names, sorted within each directory.
pub fn glob(pattern: &str) -> Result<Vec<PathBuf>, String> {
    if !has_meta(pattern) {
        return Ok(vec![PathBuf::from(pattern)]);
    }
    let (dir, file) = match pattern.rfind('/') {
        Some(i) => (&pattern[..=i], &pattern[i + 1..]),
        None => ("", pattern),
    };
    validate(file).map_err(|e| format!("{e} in pattern {pattern:?}"))?;
    let dirs: Vec<PathBuf> = if has_meta(dir) {
        glob(dir.trim_end_matches('/'))?
            .into_iter()
            .filter(|d| d.is_dir())
            .collect()
    } else {
        vec![PathBuf::from(dir)]
    };
    let file: Vec<char> = file.chars().collect();
    let mut out = Vec::new();
    for d in dirs {
        let read_from = if d.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            d.clone()
        };
        // An unreadable or missing directory matches nothing, as in Go.
        let Ok(entries) = std::fs::read_dir(&read_from) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| matches(&file, &n.chars().collect::<Vec<_>>()))
            .collect();
        names.sort();
        out.extend(names.into_iter().map(|n| d.join(n)));
    }
    Ok(out)
}

/// Rejects what Go calls a bad pattern: an unclosed or empty class, a
/// trailing backslash.
fn validate(p: &str) -> Result<(), String> {
    let p: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' if i + 1 >= p.len() => return Err("trailing backslash".into()),
            '\\' => i += 2,
            '[' => {
                class(&p, i, 'a').ok_or("malformed character class")?;
                i = class_end(&p, i).ok_or("malformed character class")?;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Index just past the `]` closing the class that opens at `start`.
fn class_end(p: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if p.get(i) == Some(&'^') {
        i += 1;
    }
    let mut ranges = 0;
    loop {
        match p.get(i)? {
            ']' if ranges > 0 => return Some(i + 1),
            '\\' => i += 2,
            _ => i += 1,
        }
        ranges += 1;
    }
}

/// Whether `c` is in the class opening at `start`; None when malformed.
fn class(p: &[char], start: usize, c: char) -> Option<bool> {
    let mut i = start + 1;
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut ranges = 0;
    loop {
        if p.get(i)? == &']' && ranges > 0 {
            return Some(matched != negated);
        }
        let (lo, next) = class_char(p, i)?;
        i = next;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            let (h, next) = class_char(p, i + 1)?;
            hi = h;
            i = next;
        }
        if lo <= c && c <= hi {
            matched = true;
        }
        ranges += 1;
    }
}

fn class_char(p: &[char], i: usize) -> Option<(char, usize)> {
    match p.get(i)? {
        '-' | ']' => None,
        '\\' => p.get(i + 1).map(|c| (*c, i + 2)),
        c => Some((*c, i + 1)),
    }
}

/// Go's `filepath.Match` for one path component (no `/` in `s`).
fn matches(p: &[char], s: &[char]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if let Some(next) = step(p, pi, s[si]) {
            if p[pi] == '*' {
                star = Some((pi, si));
                pi += 1;
                continue;
            }
            pi = next;
            si += 1;
            continue;
        }
        match star {
            Some((sp, ss)) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    while p.get(pi) == Some(&'*') {
        pi += 1;
    }
    pi == p.len()
}

/// Where the pattern continues when `p[pi]` accepts `c`; for `*`, `pi + 1`.
fn step(p: &[char], pi: usize, c: char) -> Option<usize> {
    match p.get(pi)? {
        '*' => Some(pi + 1),
        '?' => Some(pi + 1),
        '[' => class(p, pi, c)
            .filter(|ok| *ok)
            .and_then(|_| class_end(p, pi)),
        '\\' => p.get(pi + 1).filter(|x| **x == c).map(|_| pi + 2),
        x => (*x == c).then_some(pi + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        validate(p).unwrap();
        matches(
            &p.chars().collect::<Vec<_>>(),
            &s.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn go_match_cases() {
        // Cases from Go's filepath.Match tests.
        assert!(m("abc", "abc"));
        assert!(m("*", "abc"));
        assert!(m("*c", "abc"));
        assert!(m("a*b*c*d*e*", "axbxcxdxe"));
        assert!(!m("a*b?c*x", "abxbbxdbxebxczzy"));
        assert!(m("a*b?c*x", "abxbbxdbxebxczzx"));
        assert!(m("ab[c]", "abc"));
        assert!(m("ab[b-d]", "abc"));
        assert!(!m("ab[e-g]", "abc"));
        assert!(!m("ab[^c]", "abc"));
        assert!(m("ab[^e-g]", "abc"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "ab"));
        assert!(m("a?b", "a☺b"));
        assert!(m("[a-ζ]*", "α"));
        assert!(m("*.yml", ".hidden.yml"));
        assert!(!m("*.yml", "snmp.yaml"));
        for bad in ["[", "[^", "[]a]", "[-]", "a\\", "[x-]"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn globs_a_directory() {
        let d = tempfile::tempdir().unwrap();
        for f in ["b.yml", "a.yml", "c.yaml", ".h.yml"] {
            std::fs::write(d.path().join(f), "").unwrap();
        }
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/x.yml"), "").unwrap();
        let root = d.path().display().to_string();
        let names = |p: &str| -> Vec<String> {
            glob(p)
                .unwrap()
                .iter()
                .map(|x| x.strip_prefix(d.path()).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(
            names(&format!("{root}/*.yml")),
            [".h.yml", "a.yml", "b.yml"]
        );
        assert_eq!(names(&format!("{root}/[ab].y*")), ["a.yml", "b.yml"]);
        assert_eq!(names(&format!("{root}/s*/*.yml")), ["sub/x.yml"]);
        assert!(names(&format!("{root}/none*.yml")).is_empty());
        // A literal path is kept even when missing, so reading it fails loudly.
        assert_eq!(glob("/nonexistent/snmp.yml").unwrap().len(), 1);
        assert!(glob(&format!("{root}/[.yml")).is_err());
    }
}
