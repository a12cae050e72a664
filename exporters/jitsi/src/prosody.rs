//! Prosody's `/metrics` (OpenMetrics from mod_http_openmetrics),
//! re-exported in the exporter's own format.
//!
//! Sample names, labels and values are kept; `_created` series are dropped
//! (Prometheus' text format has no place for them). Family types map as:
//! counter → counter named `<family>_total`; gauge → gauge; unknown →
//! untyped; info → gauge `<family>_info`; stateset → gauge; histogram and
//! summary → histogram and summary (series without `_sum`/`_count` fall
//! back to untyped samples under their own names); gaugehistogram → gauges
//! under the sample names (`_bucket`, `_gsum`, `_gcount`). Samples of no
//! declared family are untyped. Timestamps and exemplars are dropped.
//!
//! The parser is strict on syntax, as Prometheus is: a malformed line, or
//! an OpenMetrics document without its final `# EOF` (truncated), fails the
//! whole document.

use std::collections::HashMap;

use vigie_common::expo::{
    is_valid_label_name, is_valid_metric_name, sanitize_name, MetricSet, MetricType,
};

/// Why a document did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prosody metrics line {line}: {what}")]
pub struct ParseError {
    pub line: usize,
    pub what: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Unknown,
    Info,
    StateSet,
    Histogram,
    GaugeHistogram,
    Summary,
}

impl Kind {
    fn parse(s: &str) -> Kind {
        match s {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            "info" => Kind::Info,
            "stateset" => Kind::StateSet,
            "histogram" => Kind::Histogram,
            "gaugehistogram" => Kind::GaugeHistogram,
            "summary" => Kind::Summary,
            // "unknown", and "untyped" from the Prometheus text format.
            _ => Kind::Unknown,
        }
    }

    /// Sample name suffixes a family of this kind may use.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            Kind::Counter => &["_total", "_created", ""],
            Kind::Gauge | Kind::Unknown | Kind::StateSet => &[""],
            Kind::Info => &["_info"],
            Kind::Histogram => &["_bucket", "_sum", "_count", "_created"],
            Kind::GaugeHistogram => &["_bucket", "_gsum", "_gcount"],
            Kind::Summary => &["", "_sum", "_count", "_created"],
        }
    }
}

type Labels = Vec<(String, String)>;

struct RawSample {
    suffix: &'static str,
    labels: Labels,
    value: f64,
}

struct Fam {
    name: String,
    kind: Kind,
    help: Option<String>,
    samples: Vec<RawSample>,
}

/// Parses `text` and adds its families to `out`. `require_eof`: the document
/// is OpenMetrics, so it must end with `# EOF` (a missing one means it was
/// truncated).
pub fn parse(text: &str, require_eof: bool, out: &mut MetricSet) -> Result<(), ParseError> {
    let mut fams: Vec<Fam> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut current: Option<usize> = None;
    let mut eof = false;
    for (n, line) in text.lines().enumerate() {
        let lineno = n + 1;
        let err = |what: &str| ParseError {
            line: lineno,
            what: what.to_owned(),
        };
        if eof {
            if line.trim().is_empty() {
                continue;
            }
            return Err(err("content after # EOF"));
        }
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.trim_start();
            if rest.trim_end() == "EOF" {
                eof = true;
                continue;
            }
            let mut parts = rest.splitn(3, ' ');
            let (Some(keyword), Some(name)) = (parts.next(), parts.next()) else {
                continue; // a plain comment
            };
            let arg = parts.next().unwrap_or("");
            match keyword {
                "HELP" | "TYPE" | "UNIT" => {}
                _ => continue,
            }
            if !is_valid_metric_name(name) {
                return Err(err("invalid metric name in metadata"));
            }
            let i = match index.get(name) {
                Some(i) => *i,
                None => {
                    fams.push(Fam {
                        name: name.to_owned(),
                        kind: Kind::Unknown,
                        help: None,
                        samples: Vec::new(),
                    });
                    index.insert(name.to_owned(), fams.len() - 1);
                    fams.len() - 1
                }
            };
            match keyword {
                "HELP" => fams[i].help = Some(unescape(arg)),
                "TYPE" => fams[i].kind = Kind::parse(arg.trim()),
                _ => {}
            }
            current = Some(i);
            continue;
        }
        let (name, labels, value) = parse_sample(line).map_err(err)?;
        let (i, suffix) = match find_family(&fams, &index, current, name) {
            Some(found) => found,
            None if index.contains_key(name) => {
                tracing::debug!(
                    sample = name,
                    "sample named like a family of another type, skipped"
                );
                continue;
            }
            None => {
                fams.push(Fam {
                    name: name.to_owned(),
                    kind: Kind::Unknown,
                    help: None,
                    samples: Vec::new(),
                });
                index.insert(name.to_owned(), fams.len() - 1);
                (fams.len() - 1, "")
            }
        };
        fams[i].samples.push(RawSample {
            suffix,
            labels,
            value,
        });
    }
    if require_eof && !eof {
        return Err(ParseError {
            line: text.lines().count(),
            what: "no # EOF: the document is truncated".to_owned(),
        });
    }
    for fam in fams {
        emit(fam, out);
    }
    Ok(())
}

/// The family a sample belongs to and its suffix: the current family first
/// (OpenMetrics keeps a family's samples together), then any declared one.
fn find_family(
    fams: &[Fam],
    index: &HashMap<String, usize>,
    current: Option<usize>,
    name: &str,
) -> Option<(usize, &'static str)> {
    let matches = |f: &Fam| -> Option<&'static str> {
        let rest = name.strip_prefix(f.name.as_str())?;
        f.kind.suffixes().iter().copied().find(|s| *s == rest)
    };
    if let Some(i) = current {
        if let Some(s) = matches(&fams[i]) {
            return Some((i, s));
        }
    }
    for suffix in [
        "", "_total", "_created", "_bucket", "_sum", "_count", "_info", "_gsum", "_gcount",
    ] {
        let Some(base) = name.strip_suffix(suffix) else {
            continue;
        };
        if let Some(&i) = index.get(base) {
            if let Some(s) = matches(&fams[i]) {
                return Some((i, s));
            }
        }
    }
    None
}

fn emit(fam: Fam, out: &mut MetricSet) {
    let help = fam
        .help
        .clone()
        .unwrap_or_else(|| format!("Prosody metric {}.", fam.name));
    match fam.kind {
        Kind::Counter => {
            for s in fam.samples {
                match s.suffix {
                    "_created" => {}
                    suffix => add(
                        out,
                        &format!("{}{suffix}", fam.name),
                        &help,
                        MetricType::Counter,
                        s.labels,
                        s.value,
                    ),
                }
            }
        }
        Kind::Gauge | Kind::StateSet | Kind::Info => {
            for s in fam.samples {
                add(
                    out,
                    &format!("{}{}", fam.name, s.suffix),
                    &help,
                    MetricType::Gauge,
                    s.labels,
                    s.value,
                );
            }
        }
        Kind::Unknown => {
            for s in fam.samples {
                add(
                    out,
                    &format!("{}{}", fam.name, s.suffix),
                    &help,
                    MetricType::Untyped,
                    s.labels,
                    s.value,
                );
            }
        }
        Kind::GaugeHistogram => {
            for s in fam.samples {
                add(
                    out,
                    &format!("{}{}", fam.name, s.suffix),
                    &help,
                    MetricType::Gauge,
                    s.labels,
                    s.value,
                );
            }
        }
        Kind::Histogram => {
            if let Err(fam) = emit_grouped(fam, &help, "le", "_bucket", MetricType::Histogram, out)
            {
                emit_untyped(fam, &help, out);
            }
        }
        Kind::Summary => {
            if let Err(fam) = emit_grouped(fam, &help, "quantile", "", MetricType::Summary, out) {
                emit_untyped(fam, &help, out);
            }
        }
    }
}

fn add(out: &mut MetricSet, name: &str, help: &str, kind: MetricType, labels: Labels, value: f64) {
    let name = sanitize_name(name);
    if !kind_fits(out, &name, kind) {
        return;
    }
    out.family(&name, help, kind).add_owned(labels, value);
}

/// False (with a debug log) when `name` already exists with another type:
/// two families of one name would not be valid exposition.
fn kind_fits(out: &MetricSet, name: &str, kind: MetricType) -> bool {
    match out.get(name) {
        Some(f) if f.kind != kind => {
            tracing::debug!(
                family = name,
                "a family of this name exists with another type, skipped"
            );
            false
        }
        _ => true,
    }
}

fn emit_untyped(fam: Fam, help: &str, out: &mut MetricSet) {
    tracing::debug!(family = %fam.name, "incomplete histogram/summary, re-exported as untyped samples");
    for s in fam.samples {
        if s.suffix != "_created" {
            add(
                out,
                &format!("{}{}", fam.name, s.suffix),
                help,
                MetricType::Untyped,
                s.labels,
                s.value,
            );
        }
    }
}

#[derive(Default)]
struct Series {
    points: Vec<(f64, f64)>,
    sum: Option<f64>,
    count: Option<f64>,
}

/// Rebuilds histogram (`le`) or summary (`quantile`) series. Gives the
/// family back when a series lacks `_sum`/`_count` or a bound does not parse.
fn emit_grouped(
    fam: Fam,
    help: &str,
    bound_label: &str,
    point_suffix: &str,
    kind: MetricType,
    out: &mut MetricSet,
) -> Result<(), Fam> {
    let mut series: Vec<(Labels, Series)> = Vec::new();
    for s in &fam.samples {
        let mut labels = s.labels.clone();
        let bound = if s.suffix == point_suffix {
            let Some(pos) = labels.iter().position(|(k, _)| k == bound_label) else {
                return Err(fam);
            };
            let (_, v) = labels.remove(pos);
            match parse_value(&v) {
                Some(b) => Some(b),
                None => return Err(fam),
            }
        } else {
            None
        };
        let i = match series.iter().position(|(l, _)| *l == labels) {
            Some(i) => i,
            None => {
                series.push((labels, Series::default()));
                series.len() - 1
            }
        };
        let entry = &mut series[i].1;
        match (s.suffix, bound) {
            (_, Some(b)) => entry.points.push((b, s.value)),
            ("_sum", _) => entry.sum = Some(s.value),
            ("_count", _) => entry.count = Some(s.value),
            _ => {} // _created
        }
    }
    if series
        .iter()
        .any(|(_, s)| s.sum.is_none() || s.count.is_none())
    {
        return Err(fam);
    }
    let name = sanitize_name(&fam.name);
    if !kind_fits(out, &name, kind) {
        return Ok(());
    }
    let f = out.family(&name, help, kind);
    for (labels, s) in series {
        let (sum, count) = (s.sum.unwrap_or(0.0), s.count.unwrap_or(0.0));
        if kind == MetricType::Histogram {
            f.add_histogram(labels, s.points, sum, count);
        } else {
            f.add_summary(labels, s.points, sum, count);
        }
    }
    Ok(())
}

/// Parses `name{labels} value [timestamp] [# exemplar]`.
fn parse_sample(line: &str) -> Result<(&str, Labels, f64), &'static str> {
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = &line[..name_end];
    if !is_valid_metric_name(name) {
        return Err("invalid metric name");
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if rest.starts_with('{') {
        let (l, after) = parse_labels(&rest[1..])?;
        labels = l;
        rest = after;
    }
    let rest = rest.trim_start();
    // Drop an exemplar, then the timestamp.
    let rest = rest.split(" # ").next().unwrap_or(rest);
    let mut tokens = rest.split_whitespace();
    let value = tokens.next().ok_or("missing value")?;
    let value = parse_value(value).ok_or("invalid value")?;
    if let Some(ts) = tokens.next() {
        parse_value(ts).ok_or("invalid timestamp")?;
    }
    if tokens.next().is_some() {
        return Err("unexpected text after the value");
    }
    Ok((name, labels, value))
}

/// Parses labels after `{` up to and including `}`; returns them and the rest.
fn parse_labels(mut s: &str) -> Result<(Labels, &str), &'static str> {
    let mut labels: Labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = s.find('=').ok_or("label without '='")?;
        let name = s[..eq].trim();
        if !is_valid_label_name(name) {
            return Err("invalid label name");
        }
        s = s[eq + 1..].trim_start();
        let body = s.strip_prefix('"').ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = body.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value"),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated label value"),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.iter().any(|(k, _)| k == name) {
            return Err("duplicate label name");
        }
        labels.push((name.to_owned(), value));
        s = body[end + 1..].trim_start();
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err("expected ',' or '}' after a label");
        }
    }
}

/// A sample value: a float, `+Inf`, `-Inf` or `NaN`.
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ if s
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

/// Unescapes HELP text (`\\`, `\n`, `\"`).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(c) => out.push(c),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn render(text: &str) -> String {
        let mut set = MetricSet::new();
        parse(text, true, &mut set).unwrap();
        set.encode_text()
    }

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn real_capture_keeps_names_labels_values() {
        let t = render(&fixture("prosody_0.12_openmetrics_sessions.txt"));
        for line in [
            "# TYPE prosody_mod_bosh__bad_host_total counter",
            "prosody_mod_bosh__bad_host_total 0",
            "# TYPE prosody_mod_bosh__inactive_sessions gauge",
            "prosody_mod_muc__live_room{host=\"conference.localhost\"} 1",
            "prosody_mod_muc__room_hit_total{host=\"conference.localhost\"} 3",
            "prosody_mod_c2s__connections{host=\"localhost\",ip_family=\"ipv4\",type=\"c2s\"} 2",
            "# TYPE prosody_stats_collection_seconds histogram",
            "prosody_stats_collection_seconds_bucket{le=\"0.001\"} 4",
            "prosody_stats_collection_seconds_bucket{le=\"+Inf\"} 4",
            "prosody_stats_collection_seconds_sum 7.581710815429688e-05",
            "prosody_stats_collection_seconds_count 4",
            "prosody_mod_muc_mam__cleanup_seconds_bucket{host=\"conference.localhost\",le=\"100\"} 0",
        ] {
            assert!(t.contains(&format!("{line}\n")), "{line}:\n{t}");
        }
        assert!(!t.contains("_created"), "{t}");
        assert!(!t.contains("prosody_mod_s2s_auth_certs__checked"), "{t}");
        assert_eq!(
            t.matches("prosody_stats_collection_seconds_bucket{le=\"+Inf\"}")
                .count(),
            1
        );
    }

    #[test]
    fn truncated_or_malformed_documents_fail() {
        let full = fixture("prosody_0.12_openmetrics.txt");
        let cut = &full[..full.len() / 2];
        let mut set = MetricSet::new();
        assert!(parse(cut, true, &mut set).is_err());
        for bad in [
            "x{a=\"b\" 1\n# EOF\n",
            "x 1 2 3\n# EOF\n",
            "x abc\n# EOF\n",
            "1x 1\n# EOF\n",
            "x{a=b} 1\n# EOF\n",
            "x{a=\"1\",a=\"2\"} 1\n# EOF\n",
            "x 1\n# EOF\ny 2\n",
            "x{1a=\"b\"} 1\n# EOF\n",
        ] {
            assert!(parse(bad, true, &mut MetricSet::new()).is_err(), "{bad}");
        }
        // Text 0.0.4 has no # EOF.
        assert!(parse("x 1\n", false, &mut MetricSet::new()).is_ok());
    }

    #[test]
    fn other_types() {
        let t = render(concat!(
            "# TYPE s summary\n# HELP s A \\\"summary\\\"\ns{quantile=\"0.5\"} 1\ns_sum 3\ns_count 2\ns_created 5\n",
            "# TYPE i info\ni_info{v=\"1\"} 1\n",
            "# TYPE st stateset\nst{st=\"a\"} 1\nst{st=\"b\"} 0\n",
            "# TYPE u unknown\nu 7 123\n",
            "# TYPE gh gaugehistogram\ngh_bucket{le=\"1\"} 1\ngh_bucket{le=\"+Inf\"} 2\ngh_gsum 3\ngh_gcount 2\n",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n",
            "orphan{a=\"x\\\\y\\n\"} 1 # {trace=\"1\"} 1\n",
            "# EOF\n"
        ));
        assert!(t.contains("# HELP s A \"summary\"\n# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 3\ns_count 2\n"), "{t}");
        assert!(
            t.contains("# TYPE i_info gauge\ni_info{v=\"1\"} 1\n"),
            "{t}"
        );
        assert!(
            t.contains("# TYPE st gauge\nst{st=\"a\"} 1\nst{st=\"b\"} 0\n"),
            "{t}"
        );
        assert!(t.contains("# TYPE u untyped\nu 7\n"), "{t}");
        assert!(t.contains("# TYPE gh_gsum gauge\ngh_gsum 3\n"), "{t}");
        assert!(t.contains("# TYPE gh_bucket gauge\n"), "{t}");
        // A histogram without _sum/_count falls back to untyped samples.
        assert!(
            t.contains("# TYPE h_bucket untyped\nh_bucket{le=\"+Inf\"} 2\nh_bucket{le=\"1\"} 1\n"),
            "{t}"
        );
        assert!(t.contains("orphan{a=\"x\\\\y\\n\"} 1\n"), "{t}");
        assert!(!t.contains("s_created"), "{t}");
    }

    #[test]
    fn special_values() {
        let t = render("# TYPE g gauge\ng{a=\"1\"} NaN\ng{a=\"2\"} +Inf\ng{a=\"3\"} -Inf\ng{a=\"4\"} 1.5e3\n# EOF\n");
        assert!(
            t.contains("g{a=\"1\"} NaN\ng{a=\"2\"} +Inf\ng{a=\"3\"} -Inf\ng{a=\"4\"} 1500\n"),
            "{t}"
        );
    }
}
