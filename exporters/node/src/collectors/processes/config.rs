//! process-exporter's config file (`process_names:` with `comm`, `exe`,
//! `cmdline` selectors and a `name` template), compiled once at start.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use regex::Regex;
use serde::Deserialize;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    process_names: Vec<MatcherConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatcherConfig {
    name: Option<String>,
    comm: Option<Vec<String>>,
    exe: Option<Vec<String>>,
    cmdline: Option<Vec<String>>,
}

/// What a process is matched on and named from.
#[derive(Debug, Default, Clone)]
pub struct ProcInfo {
    pub pid: u32,
    pub comm: String,
    pub argv: Vec<String>,
    pub username: String,
    /// process-exporter's `{{.StartTime}}` text (Go's time.Time format).
    pub start_time: String,
    pub cgroups: Vec<String>,
}

/// The compiled config: first matching item wins.
#[derive(Debug)]
pub struct Matchers {
    items: Vec<Matcher>,
    /// True when a template needs the cgroups (read only then).
    pub needs_cgroups: bool,
}

#[derive(Debug)]
struct Matcher {
    name: Template,
    comm: Option<HashSet<String>>,
    exe: Option<Vec<String>>,
    cmdline: Vec<Regex>,
}

/// The config shipped with Debian's package: every process with a
/// command line, grouped by comm.
pub const DEFAULT_CONFIG: &str =
    "process_names:\n  - name: \"{{.Comm}}\"\n    cmdline:\n    - '.+'\n";

impl Matchers {
    pub fn load(path: &Path) -> Result<Self, String> {
        let cfg: FileConfig =
            vigie_common::config::load_yaml_file(path).map_err(|e| e.to_string())?;
        Self::compile(cfg).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, String> {
        let cfg: FileConfig =
            vigie_common::config::parse_yaml(path, text).map_err(|e| e.to_string())?;
        Self::compile(cfg).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn compile(cfg: FileConfig) -> Result<Self, String> {
        let mut items = Vec::new();
        for (i, m) in cfg.process_names.into_iter().enumerate() {
            let at = format!("process_names[{i}]");
            if m.comm.is_none() && m.exe.is_none() && m.cmdline.is_none() {
                return Err(format!("{at}: no selector (comm, exe or cmdline)"));
            }
            let name = Template::parse(m.name.as_deref().unwrap_or("{{.ExeBase}}"))
                .map_err(|e| format!("{at}.name: {e}"))?;
            let cmdline = m
                .cmdline
                .unwrap_or_default()
                .iter()
                .map(|r| Regex::new(r).map_err(|e| format!("{at}.cmdline {r:?}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            items.push(Matcher {
                name,
                comm: m.comm.map(|v| v.into_iter().collect()),
                exe: m.exe,
                cmdline,
            });
        }
        let needs_cgroups = items
            .iter()
            .any(|m| m.name.parts.iter().any(|p| matches!(p, Part::Cgroups)));
        Ok(Matchers {
            items,
            needs_cgroups,
        })
    }

    /// The group name of the first matching item, if any.
    pub fn match_and_name(&self, p: &ProcInfo) -> Option<String> {
        let mut matches = HashMap::new();
        let mut joined: Option<String> = None;
        'items: for m in &self.items {
            if let Some(c) = &m.comm {
                if !c.contains(&p.comm) {
                    continue;
                }
            }
            if let Some(exes) = &m.exe {
                let Some(argv0) = p.argv.first() else {
                    continue;
                };
                let base = basename(argv0);
                let ok = exes.iter().any(|e| {
                    if e.contains('/') {
                        e == argv0
                    } else {
                        e == base
                    }
                });
                if !ok {
                    continue;
                }
            }
            matches.clear();
            if !m.cmdline.is_empty() {
                let line = joined.get_or_insert_with(|| p.argv.join(" "));
                for re in &m.cmdline {
                    let Some(caps) = re.captures(line) else {
                        continue 'items;
                    };
                    for name in re.capture_names().flatten() {
                        if let Some(v) = caps.name(name) {
                            matches.insert(name.to_owned(), v.as_str().to_owned());
                        }
                    }
                }
            }
            return Some(m.name.render(p, &matches));
        }
        None
    }
}

fn basename(s: &str) -> &str {
    let t = s.trim_end_matches('/');
    if t.is_empty() {
        return if s.is_empty() { "." } else { "/" };
    }
    t.rsplit('/').next().unwrap_or(t)
}

/// A `name` template: literal text and `{{.Field}}` references.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Comm,
    ExeBase,
    ExeFull,
    Username,
    Pid,
    StartTime,
    Cgroups,
    Match(String),
}

impl Template {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Lit(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("unclosed action in template {s:?}"))?;
            let action = after[..close]
                .trim()
                .trim_start_matches('-')
                .trim_end_matches('-')
                .trim();
            parts.push(match action {
                ".Comm" => Part::Comm,
                ".ExeBase" => Part::ExeBase,
                ".ExeFull" => Part::ExeFull,
                ".Username" => Part::Username,
                ".PID" => Part::Pid,
                ".StartTime" => Part::StartTime,
                ".Cgroups" => Part::Cgroups,
                a => match a.strip_prefix(".Matches.") {
                    Some(k)
                        if !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_') =>
                    {
                        Part::Match(k.to_owned())
                    }
                    _ => return Err(format!("unsupported template action {{{{{a}}}}} in {s:?}")),
                },
            });
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    pub fn render(&self, p: &ProcInfo, matches: &HashMap<String, String>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Comm => out.push_str(&p.comm),
                // Kernel threads have no argv: process-exporter names them by comm.
                Part::ExeBase => {
                    out.push_str(p.argv.first().map(|a| basename(a)).unwrap_or(&p.comm))
                }
                Part::ExeFull => {
                    out.push_str(p.argv.first().map(String::as_str).unwrap_or(&p.comm))
                }
                Part::Username => out.push_str(&p.username),
                Part::Pid => out.push_str(&p.pid.to_string()),
                Part::StartTime => out.push_str(&p.start_time),
                Part::Cgroups => {
                    // Go prints a []string as [a b c].
                    out.push('[');
                    out.push_str(&p.cgroups.join(" "));
                    out.push(']');
                }
                // A missing map key prints as Go's "<no value>".
                Part::Match(k) => {
                    out.push_str(matches.get(k).map(String::as_str).unwrap_or("<no value>"))
                }
            }
        }
        out
    }
}

/// Go's `time.Time.String()` for a UTC instant: `2006-01-02 15:04:05.87 +0000 UTC`
/// (fraction without trailing zeros, left out when zero).
pub fn go_time_string(secs: u64, centis: u64) -> String {
    let mut s = vigie_common::timefmt::utc_date_time(secs as i64, ' ');
    if centis > 0 {
        let frac = format!("{centis:02}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ProcInfo {
        ProcInfo {
            pid: 42,
            comm: "java".into(),
            argv: vec![
                "/usr/bin/java".into(),
                "-jar".into(),
                "/opt/jvb/jvb.jar".into(),
            ],
            username: "jvb".into(),
            start_time: go_time_string(1_796_113_846, 87),
            cgroups: vec!["/".into(), "/system.slice/jvb.service".into()],
        }
    }

    fn m(yaml: &str) -> Matchers {
        Matchers::parse(Path::new("t.yml"), yaml).unwrap()
    }

    #[test]
    fn selectors_and_templates() {
        let p = info();
        assert_eq!(
            m("process_names:\n- comm: [java]\n")
                .match_and_name(&p)
                .as_deref(),
            Some("java")
        );
        assert_eq!(
            m("process_names:\n- comm: [jav]\n").match_and_name(&p),
            None
        );
        assert_eq!(
            m("process_names:\n- exe: [/usr/bin/java]\n  name: x\n")
                .match_and_name(&p)
                .as_deref(),
            Some("x")
        );
        assert_eq!(
            m("process_names:\n- exe: [/bin/java]\n").match_and_name(&p),
            None
        );
        let t = "process_names:\n- name: '{{.Comm}}:{{.Matches.Jar}}:{{.Matches.No}}:{{.ExeFull}}:{{.Username}}:{{.PID}}:{{.Cgroups}}:{{ .StartTime }}'\n  exe: [java]\n  cmdline: ['-jar\\s+\\S*/(?P<Jar>[^/]+)\\.jar', 'opt']\n";
        assert_eq!(
            m(t).match_and_name(&p).as_deref(),
            Some("java:jvb:<no value>:/usr/bin/java:jvb:42:[/ /system.slice/jvb.service]:2026-12-01 08:30:46.87 +0000 UTC")
        );
        // No argv (kernel thread): exe and cmdline never match, names use comm.
        let k = ProcInfo {
            comm: "kthreadd".into(),
            ..Default::default()
        };
        assert_eq!(
            m("process_names:\n- exe: [kthreadd]\n").match_and_name(&k),
            None
        );
        assert_eq!(
            m("process_names:\n- cmdline: ['^kthreadd$']\n").match_and_name(&k),
            None
        );
        assert_eq!(
            m("process_names:\n- comm: [kthreadd]\n  name: '{{.ExeFull}}:{{.ExeBase}}'\n")
                .match_and_name(&k)
                .as_deref(),
            Some("kthreadd:kthreadd")
        );
        // All cmdline regexes must match; first item wins.
        let t2 = "process_names:\n- cmdline: ['-jar', 'nomatch']\n  name: a\n- cmdline: ['-jar']\n  name: b\n- comm: [java]\n  name: c\n";
        assert_eq!(m(t2).match_and_name(&p).as_deref(), Some("b"));
    }

    #[test]
    fn bad_configs() {
        let p = Path::new("t.yml");
        assert!(Matchers::parse(p, "process_names:\n- name: x\n").is_err());
        assert!(Matchers::parse(p, "process_names:\n- comm: [a]\n  name: '{{.Nope}}'\n").is_err());
        assert!(Matchers::parse(p, "process_names:\n- cmdline: ['(']\n").is_err());
        assert!(Matchers::parse(p, "process_names:\n- comm: [a]\n  bogus: 1\n").is_err());
        assert!(Matchers::parse(p, "process_names:\n- comm: [a]\n  name: '{{.Comm'\n").is_err());
        assert!(Matchers::parse(p, DEFAULT_CONFIG).is_ok());
    }

    #[test]
    fn go_time() {
        assert_eq!(go_time_string(0, 0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            go_time_string(1_796_113_846, 50),
            "2026-12-01 08:30:46.5 +0000 UTC"
        );
        assert_eq!(
            go_time_string(951_782_400, 7),
            "2000-02-29 00:00:00.07 +0000 UTC"
        );
    }
}
