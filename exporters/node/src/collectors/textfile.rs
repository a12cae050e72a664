//! textfile: `*.prom` files in `--collector.textfile.directory`, parsed as
//! the Prometheus text format and re-exported, plus
//! `node_textfile_mtime_seconds{file}` per file read and
//! `node_textfile_scrape_error`.
//!
//! A file with a syntax error or client-side timestamps is skipped whole
//! (error 1); a family that a later file redeclares with another type or
//! help is dropped from that file (error 1); non-regular files (a FIFO
//! would block the reader forever) are refused (error 1).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use vigie_common::{Family, MetricSet, MetricType};

use super::{read_file, str_arg, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

const DIR: &str = "collector.textfile.directory";

pub fn spec() -> Spec {
    Spec {
        name: "textfile",
        default_enabled: true,
        args: || {
            // Debian's default (upstream: "").
            vec![str_arg(
                DIR,
                Some("/var/lib/prometheus/node-exporter"),
                "Directory to read text files with metrics from.",
            )]
        },
        build: |ctx: &BuildCtx| {
            Ok(Box::new(Textfile {
                dir: ctx.string(DIR).unwrap_or_default(),
            }))
        },
    }
}

struct Textfile {
    dir: String,
}

type Labels = Vec<(String, String)>;
/// Points (bucket bound or quantile, value), sum, count of one series.
type Points = (Vec<(f64, f64)>, f64, f64);

/// A parsed family before label union: name, help, type, samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub name: String,
    pub help: Option<String>,
    pub kind: MetricType,
    /// `(sample name, labels, value)`; the sample name may carry a
    /// histogram/summary suffix.
    pub samples: Vec<(String, Labels, f64)>,
}

fn kind_of(s: &str) -> Option<MetricType> {
    Some(match s {
        "counter" => MetricType::Counter,
        "gauge" => MetricType::Gauge,
        "untyped" => MetricType::Untyped,
        "histogram" => MetricType::Histogram,
        "summary" => MetricType::Summary,
        _ => return None,
    })
}

fn unescape(s: &str, quote: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some('"') if quote => out.push('"'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn valid_name(s: &str) -> bool {
    vigie_common::expo::is_valid_metric_name(s)
}

/// Parses `{a="1",b="2"}`; returns labels and the rest of the line.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    let mut rest = s.trim_start();
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("expected '=' after label name")?;
        let name = rest[..eq].trim();
        if !vigie_common::expo::is_valid_label_name(name) {
            return Err(format!("invalid label name {name:?}"));
        }
        rest = rest[eq + 1..].trim_start();
        rest = rest
            .strip_prefix('"')
            .ok_or("expected '\"' to start label value")?;
        let mut end = None;
        let mut esc = false;
        for (i, c) in rest.char_indices() {
            match (esc, c) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.ok_or("unexpected end of label value")?;
        if labels.iter().any(|(n, _): &(String, String)| n == name) {
            return Err(format!("duplicate label name {name:?}"));
        }
        labels.push((name.to_owned(), unescape(&rest[..end], true)));
        rest = rest[end + 1..].trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("expected ',' or '}' after label value".into());
        }
    }
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse::<f64>().ok().filter(|_| {
            !s.chars()
                .any(|c| c.is_ascii_alphabetic() && !matches!(c, 'e' | 'E'))
        }),
    }
}

/// The family a sample belongs to, given declared histogram/summary names.
fn family_for<'a>(name: &'a str, fams: &BTreeMap<String, Parsed>) -> &'a str {
    for suf in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suf) {
            if fams
                .get(base)
                .is_some_and(|f| matches!(f.kind, MetricType::Histogram | MetricType::Summary))
            {
                return base;
            }
        }
    }
    name
}

/// Parses a whole text-format file. Errors carry the line number.
pub fn parse(text: &str) -> Result<Vec<Parsed>, String> {
    let mut fams: BTreeMap<String, Parsed> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let new = |name: &str| Parsed {
        name: name.to_owned(),
        help: None,
        kind: MetricType::Untyped,
        samples: Vec::new(),
    };
    for (i, line) in text.lines().enumerate() {
        let err = |m: &str| format!("text format parsing error in line {}: {m}", i + 1);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            let c = c.trim_start();
            let (kw, rest) = c.split_once(char::is_whitespace).unwrap_or((c, ""));
            if kw != "HELP" && kw != "TYPE" {
                continue;
            }
            let rest = rest.trim_start();
            let (name, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if !valid_name(name) {
                return Err(err(&format!("invalid metric name {name:?}")));
            }
            if !fams.contains_key(name) {
                fams.insert(name.to_owned(), new(name));
                order.push(name.to_owned());
            }
            let f = fams.get_mut(name).ok_or_else(|| err("internal"))?;
            if kw == "HELP" {
                if f.help.is_some() {
                    return Err(err(&format!("second HELP line for metric name {name:?}")));
                }
                f.help = Some(unescape(arg, false));
            } else {
                if !f.samples.is_empty() {
                    return Err(err(&format!("TYPE line for {name:?} after its samples")));
                }
                f.kind = kind_of(arg.trim())
                    .ok_or_else(|| err(&format!("unknown metric type {:?}", arg.trim())))?;
            }
            continue;
        }
        let name_end = line
            .find(|c: char| c == '{' || c.is_whitespace())
            .unwrap_or(line.len());
        let name = &line[..name_end];
        if !valid_name(name) {
            return Err(err(&format!("invalid metric name {name:?}")));
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            let (l, r) = parse_labels(r).map_err(|m| err(&m))?;
            labels = l;
            rest = r;
        }
        let mut parts = rest.split_ascii_whitespace();
        let v = parts.next().ok_or_else(|| err("expected float as value"))?;
        let v =
            parse_value(v).ok_or_else(|| err(&format!("expected float as value, got {v:?}")))?;
        if parts.next().is_some() {
            return Err("contains unsupported client-side timestamps".into());
        }
        let fam = family_for(name, &fams).to_owned();
        if !fams.contains_key(&fam) {
            fams.insert(fam.clone(), new(&fam));
            order.push(fam.clone());
        }
        if let Some(f) = fams.get_mut(&fam) {
            f.samples.push((name.to_owned(), labels, v));
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|n| fams.remove(&n))
        .filter(|f| !f.samples.is_empty())
        .collect())
}

/// Builds the output family: every sample gets the union of label names
/// (missing ones empty), histograms/summaries are assembled.
fn to_family(p: Parsed, help: String) -> Family {
    let mut fam = Family::new(p.name.clone(), help, p.kind);
    let special = |l: &str| {
        matches!(
            (p.kind, l),
            (MetricType::Histogram, "le") | (MetricType::Summary, "quantile")
        )
    };
    let names: BTreeSet<String> = p
        .samples
        .iter()
        .flat_map(|(_, l, _)| l.iter().map(|(k, _)| k.clone()))
        .filter(|k| !special(k))
        .collect();
    let fill = |l: &[(String, String)]| -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    l.iter()
                        .find(|(k, _)| k == n)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default(),
                )
            })
            .collect()
    };
    match p.kind {
        MetricType::Histogram | MetricType::Summary => {
            // (labels) -> (points, sum, count)
            let mut groups: BTreeMap<Labels, Points> = BTreeMap::new();
            let key = if p.kind == MetricType::Histogram {
                "le"
            } else {
                "quantile"
            };
            for (sname, l, v) in &p.samples {
                let g = groups.entry(fill(l)).or_default();
                if sname.ends_with("_sum") && *sname != p.name {
                    g.1 = *v;
                } else if sname.ends_with("_count") && *sname != p.name {
                    g.2 = *v;
                } else if let Some(b) = l
                    .iter()
                    .find(|(k, _)| k == key)
                    .and_then(|(_, b)| parse_value(b))
                {
                    g.0.push((b, *v));
                }
            }
            for (labels, (mut pts, sum, count)) in groups {
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                if p.kind == MetricType::Histogram {
                    fam.add_histogram(labels, pts, sum, count);
                } else {
                    fam.add_summary(labels, pts, sum, count);
                }
            }
        }
        _ => {
            for (_, l, v) in &p.samples {
                fam.add_owned(fill(l), *v);
            }
        }
    }
    fam
}

impl Textfile {
    fn read_one(&self, path: &Path) -> Result<(Vec<Parsed>, f64), String> {
        let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
        if !meta.is_file() {
            return Err("not a regular file".into());
        }
        let text = read_file(path).map_err(|e| e.to_string())?;
        let fams = parse(&text).map_err(|e| {
            format!(
                "failed to parse textfile data from {:?}: {e}",
                path.display().to_string()
            )
        })?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as f64)
            .unwrap_or(0.0);
        Ok((fams, mtime))
    }
}

impl Collector for Textfile {
    fn update(&self, _ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let mut errored = false;
        let mut files: Vec<PathBuf> = Vec::new();
        if !self.dir.is_empty() {
            match std::fs::read_dir(&self.dir) {
                Ok(rd) => {
                    files = rd
                        .filter_map(|e| e.ok())
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|e| e == "prom"))
                        .collect();
                    files.sort();
                }
                Err(e) => {
                    errored = true;
                    tracing::error!(path = self.dir, err = %e, "failed to read textfile collector directory");
                }
            }
        }
        let mut declared: BTreeMap<String, (MetricType, String)> = BTreeMap::new();
        let mut mtimes: Vec<(String, f64)> = Vec::new();
        for path in files {
            let shown = path.display().to_string();
            let (fams, mtime) = match self.read_one(&path) {
                Ok(r) => r,
                Err(e) => {
                    errored = true;
                    tracing::error!(file = shown, err = e, "failed to collect textfile data");
                    continue;
                }
            };
            for p in fams {
                let help = p
                    .help
                    .clone()
                    .unwrap_or_else(|| format!("Metric read from {shown}"));
                match declared.get(&p.name) {
                    Some((k, h)) if *k != p.kind || *h != help => {
                        errored = true;
                        tracing::error!(file = shown, metric = p.name, "metric declared with another type or help text in an earlier file; dropped");
                        continue;
                    }
                    Some(_) => {}
                    None => {
                        declared.insert(p.name.clone(), (p.kind, help.clone()));
                    }
                }
                out.insert(to_family(p, help));
            }
            mtimes.push((shown, mtime));
        }
        for (file, t) in mtimes {
            out.gauge(
                "node_textfile_mtime_seconds",
                "Unixtime mtime of textfiles successfully read.",
                &[("file", &file)],
                t,
            );
        }
        out.gauge(
            "node_textfile_scrape_error",
            "1 if there was an error opening or reading a file, 0 otherwise",
            &[],
            if errored { 1.0 } else { 0.0 },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_format() {
        let f = parse("# HELP a Help \\n x\n# TYPE a counter\na{x=\"1\",y=\"q\\\"\"} 3\na 4\n# other comment\nb 1e3\n").unwrap();
        assert_eq!(f[0].kind, MetricType::Counter);
        assert_eq!(f[0].help.as_deref(), Some("Help \n x"));
        assert_eq!(f[0].samples[0].1[1].1, "q\"");
        assert_eq!(f[1].samples[0].2, 1000.0);
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "metric\n",
            "a{x=\"1\" 2\n",
            "a{x=1} 2\n",
            "a x\n",
            "# TYPE a nonsense\n",
            "a 1 1234\n",
            "1a 2\n",
            "# HELP a x\n# HELP a y\na 1\n",
            "a{x=\"1\",x=\"2\"} 1\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn histogram_is_assembled() {
        let f = parse("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n").unwrap();
        assert_eq!(f.len(), 1);
        let fam = to_family(f[0].clone(), "x".into());
        assert_eq!(fam.samples.len(), 1);
    }

    #[test]
    fn label_union() {
        let f = parse("m{a=\"1\"} 1\nm{b=\"2\"} 2\n").unwrap();
        let fam = to_family(f[0].clone(), "x".into());
        assert_eq!(fam.samples[0].labels.len(), 2);
    }
}
