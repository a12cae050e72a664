//! Exposition: a per-scrape metric set and its encoders.
//!
//! Output must be byte-compatible with what the Go client library writes, so
//! that golden comparisons against the Go exporters hold:
//! families sorted by name, labels sorted by name, samples sorted by label
//! values, floats formatted like Go's `strconv.FormatFloat(v, 'g', -1, 64)`.
//! Text format 0.0.4 is the default; OpenMetrics 1.0 is opt-in.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Content type of the Prometheus text format, as the Go exporters send it.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics 1.0.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The type of a metric family, as written on its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Untyped,
    Histogram,
    Summary,
}

impl MetricType {
    /// Name used in the text format 0.0.4.
    pub fn text_name(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Untyped => "untyped",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
        }
    }

    fn openmetrics_name(self) -> &'static str {
        match self {
            MetricType::Untyped => "unknown",
            other => other.text_name(),
        }
    }
}

/// The value of one sample (or one histogram/summary series).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    /// Cumulative buckets `(upper bound, count)`; `+Inf` is added when missing.
    Histogram {
        buckets: Vec<(f64, f64)>,
        sum: f64,
        count: f64,
    },
    /// Quantiles `(quantile, value)`.
    Summary {
        quantiles: Vec<(f64, f64)>,
        sum: f64,
        count: f64,
    },
}

/// One series of a family: its labels (sorted by name) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<(String, String)>,
    pub value: Value,
}

/// A metric family: name, help, type and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: MetricType,
    pub samples: Vec<Sample>,
}

impl Family {
    pub fn new(name: impl Into<String>, help: impl Into<String>, kind: MetricType) -> Self {
        Family {
            name: name.into(),
            help: help.into(),
            kind,
            samples: Vec::new(),
        }
    }

    /// Adds a scalar sample. Labels may come in any order.
    pub fn add(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.add_owned(labels, value)
    }

    /// Adds a scalar sample with owned labels.
    pub fn add_owned(&mut self, labels: Vec<(String, String)>, value: f64) -> &mut Self {
        self.push(labels, Value::Scalar(value))
    }

    /// Adds a histogram series (cumulative bucket counts).
    pub fn add_histogram(
        &mut self,
        labels: Vec<(String, String)>,
        buckets: Vec<(f64, f64)>,
        sum: f64,
        count: f64,
    ) -> &mut Self {
        self.push(
            labels,
            Value::Histogram {
                buckets,
                sum,
                count,
            },
        )
    }

    /// Adds a summary series.
    pub fn add_summary(
        &mut self,
        labels: Vec<(String, String)>,
        quantiles: Vec<(f64, f64)>,
        sum: f64,
        count: f64,
    ) -> &mut Self {
        self.push(
            labels,
            Value::Summary {
                quantiles,
                sum,
                count,
            },
        )
    }

    fn push(&mut self, mut labels: Vec<(String, String)>, value: Value) -> &mut Self {
        if labels.len() > 1 {
            labels.sort_by(|a, b| a.0.cmp(&b.0));
        }
        self.samples.push(Sample { labels, value });
        self
    }

    /// Samples in output order, without series that repeat an earlier label set.
    fn sorted_samples(&self) -> Vec<&Sample> {
        let mut samples: Vec<&Sample> = self.samples.iter().collect();
        // Stable, so that the first of two duplicates is the one kept.
        samples.sort_by(|a, b| compare_label_values(&a.labels, &b.labels));
        let before = samples.len();
        samples.dedup_by(|later, earlier| later.labels == earlier.labels);
        if samples.len() != before {
            tracing::debug!(
                family = %self.name,
                dropped = before - samples.len(),
                "dropped series that repeat a label set"
            );
        }
        samples
    }
}

/// Compares two label sets as the Go client sorts metrics: value by value.
fn compare_label_values(a: &[(String, String)], b: &[(String, String)]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b.iter()) {
        match x.1.cmp(&y.1) {
            std::cmp::Ordering::Equal => {}
            other => return other,
        }
    }
    a.len().cmp(&b.len())
}

/// All the families of one scrape, kept sorted by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricSet {
    families: BTreeMap<String, Family>,
}

impl MetricSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the family `name`, creating it when absent. When it exists with
    /// another type the existing one is returned unchanged (first writer wins).
    pub fn family(&mut self, name: &str, help: &str, kind: MetricType) -> &mut Family {
        if !self.families.contains_key(name) {
            self.families
                .insert(name.to_owned(), Family::new(name, help, kind));
        }
        let fam = self
            .families
            .get_mut(name)
            .unwrap_or_else(|| unreachable!("family inserted above"));
        if fam.kind != kind {
            tracing::debug!(family = name, "family requested with two different types");
        }
        fam
    }

    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.family(name, help, MetricType::Gauge)
            .add(labels, value);
    }

    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.family(name, help, MetricType::Counter)
            .add(labels, value);
    }

    pub fn untyped(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.family(name, help, MetricType::Untyped)
            .add(labels, value);
    }

    /// Inserts a whole family, merging its samples into an existing one of the same name.
    pub fn insert(&mut self, family: Family) {
        match self.families.get_mut(&family.name) {
            Some(existing) => existing.samples.extend(family.samples),
            None => {
                self.families.insert(family.name.clone(), family);
            }
        }
    }

    /// Moves every family of `other` into `self`.
    pub fn merge(&mut self, other: MetricSet) {
        for (_, fam) in other.families {
            self.insert(fam);
        }
    }

    pub fn get(&self, name: &str) -> Option<&Family> {
        self.families.get(name)
    }

    pub fn remove(&mut self, name: &str) -> Option<Family> {
        self.families.remove(name)
    }

    pub fn families(&self) -> impl Iterator<Item = &Family> {
        self.families.values()
    }

    pub fn len(&self) -> usize {
        self.families.len()
    }

    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }

    /// Encodes in the Prometheus text format 0.0.4.
    pub fn encode_text(&self) -> String {
        let mut out = String::with_capacity(self.families.len() * 256);
        for fam in self.families.values() {
            write_text_family(&mut out, fam);
        }
        out
    }

    /// Encodes in OpenMetrics 1.0, ending with `# EOF`.
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::with_capacity(self.families.len() * 256);
        for fam in self.families.values() {
            write_openmetrics_family(&mut out, fam);
        }
        out.push_str("# EOF\n");
        out
    }
}

fn write_text_family(out: &mut String, fam: &Family) {
    let samples = fam.sorted_samples();
    if samples.is_empty() {
        return;
    }
    out.push_str("# HELP ");
    out.push_str(&fam.name);
    out.push(' ');
    escape_help(out, &fam.help);
    out.push_str("\n# TYPE ");
    out.push_str(&fam.name);
    out.push(' ');
    out.push_str(fam.kind.text_name());
    out.push('\n');
    for s in samples {
        write_series(out, &fam.name, s);
    }
}

fn write_openmetrics_family(out: &mut String, fam: &Family) {
    let samples = fam.sorted_samples();
    if samples.is_empty() {
        return;
    }
    let base = match fam.kind {
        MetricType::Counter => fam.name.strip_suffix("_total").unwrap_or(&fam.name),
        _ => fam.name.as_str(),
    };
    out.push_str("# TYPE ");
    out.push_str(base);
    out.push(' ');
    out.push_str(fam.kind.openmetrics_name());
    out.push_str("\n# HELP ");
    out.push_str(base);
    out.push(' ');
    escape_label_value(out, &fam.help);
    out.push('\n');
    let sample_name = if fam.kind == MetricType::Counter {
        format!("{base}_total")
    } else {
        fam.name.clone()
    };
    for s in samples {
        write_series(out, &sample_name, s);
    }
}

fn write_series(out: &mut String, name: &str, s: &Sample) {
    match &s.value {
        Value::Scalar(v) => write_line(out, name, "", &s.labels, None, *v),
        Value::Histogram {
            buckets,
            sum,
            count,
        } => {
            let mut has_inf = false;
            for (le, c) in buckets {
                has_inf |= le.is_infinite() && *le > 0.0;
                write_line(out, name, "_bucket", &s.labels, Some(("le", *le)), *c);
            }
            if !has_inf {
                write_line(
                    out,
                    name,
                    "_bucket",
                    &s.labels,
                    Some(("le", f64::INFINITY)),
                    *count,
                );
            }
            write_line(out, name, "_sum", &s.labels, None, *sum);
            write_line(out, name, "_count", &s.labels, None, *count);
        }
        Value::Summary {
            quantiles,
            sum,
            count,
        } => {
            for (q, v) in quantiles {
                write_line(out, name, "", &s.labels, Some(("quantile", *q)), *v);
            }
            write_line(out, name, "_sum", &s.labels, None, *sum);
            write_line(out, name, "_count", &s.labels, None, *count);
        }
    }
}

fn write_line(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[(String, String)],
    extra: Option<(&str, f64)>,
    value: f64,
) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        let mut first = true;
        for (k, v) in labels {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(k);
            out.push_str("=\"");
            escape_label_value(out, v);
            out.push('"');
        }
        if let Some((k, v)) = extra {
            if !first {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            write_go_float(out, v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    write_go_float(out, value);
    out.push('\n');
}

/// Escapes a HELP text for the text format: backslash and newline.
fn escape_help(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn escape_label_value(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Formats a float as Go's `strconv.FormatFloat(f, 'g', -1, 64)`, with the
/// exposition format's spelling of infinities.
pub fn go_float(f: f64) -> String {
    let mut s = String::new();
    write_go_float(&mut s, f);
    s
}

/// Appends `f` formatted as [`go_float`] does.
pub fn write_go_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if f == 0.0 {
        out.push('0');
        return;
    }
    // Fast path: integers below 1e6 print as plain integers in Go too.
    if f.fract() == 0.0 && f.abs() < 1e6 {
        let _ = write!(out, "{}", f as i64);
        return;
    }
    let e = format!("{f:e}");
    let (mant, exp) = match e.split_once('e') {
        Some((m, x)) => (m, x.parse::<i32>().unwrap_or(0)),
        None => (e.as_str(), 0),
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "{mant}e{sign}{:02}", exp.abs());
    } else {
        let _ = write!(out, "{f}");
    }
}

/// Turns an arbitrary string into a valid metric or label name: characters
/// outside `[a-zA-Z0-9_:]` become `_`, and a leading digit gets a `_` prefix.
pub fn sanitize_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for (i, c) in s.chars().enumerate() {
        if i == 0 && c.is_ascii_digit() {
            out.push('_');
        }
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// True when `s` is a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// True when `s` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_matches_go() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (0.1, "0.1"),
            (329204.0, "329204"),
            (808960.0, "808960"),
            (1e6, "1e+06"),
            (1150976.0, "1.150976e+06"),
            (2.189426688e10, "2.189426688e+10"),
            (1.305e-6, "1.305e-06"),
            (0.0001, "0.0001"),
            (1e-5, "1e-05"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (123456.5, "123456.5"),
            (-2.5e-7, "-2.5e-07"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (999999.0, "999999"),
            (0.00012345, "0.00012345"),
        ];
        for (v, want) in cases {
            assert_eq!(go_float(*v), *want, "formatting {v:?}");
        }
    }

    #[test]
    fn text_encoding_sorts_and_escapes() {
        let mut set = MetricSet::new();
        set.gauge("b_metric", "B help", &[("z", "1"), ("a", "x")], 2.0);
        set.gauge("b_metric", "B help", &[("z", "0"), ("a", "x")], 1.0);
        set.counter("a_total", "line\none \\ back", &[("v", "q\"uo\nte\\")], 1e6);
        let text = set.encode_text();
        assert_eq!(
            text,
            "# HELP a_total line\\none \\\\ back\n# TYPE a_total counter\n\
             a_total{v=\"q\\\"uo\\nte\\\\\"} 1e+06\n\
             # HELP b_metric B help\n# TYPE b_metric gauge\n\
             b_metric{a=\"x\",z=\"0\"} 1\nb_metric{a=\"x\",z=\"1\"} 2\n"
        );
    }

    #[test]
    fn duplicates_are_dropped_first_kept() {
        let mut set = MetricSet::new();
        set.gauge("g", "h", &[("a", "1")], 1.0);
        set.gauge("g", "h", &[("a", "1")], 2.0);
        assert_eq!(
            set.encode_text(),
            "# HELP g h\n# TYPE g gauge\ng{a=\"1\"} 1\n"
        );
    }

    #[test]
    fn openmetrics_counter_names() {
        let mut set = MetricSet::new();
        set.counter("x_seconds_total", "h", &[], 3.0);
        set.counter("jitsi_total_conferences_created", "h", &[], 4.0);
        set.untyped("u", "h", &[], 1.0);
        let om = set.encode_openmetrics();
        assert!(om.contains("# TYPE x_seconds counter\n"));
        assert!(om.contains("x_seconds_total 3\n"));
        assert!(om.contains("jitsi_total_conferences_created_total 4\n"));
        assert!(om.contains("# TYPE u unknown\n"));
        assert!(om.ends_with("# EOF\n"));
    }

    #[test]
    fn histogram_and_summary_layout() {
        let mut set = MetricSet::new();
        set.family("h", "help", MetricType::Histogram)
            .add_histogram(
                vec![("l".into(), "v".into())],
                vec![(0.5, 1.0), (1.0, 2.0)],
                1.5,
                3.0,
            );
        set.family("s", "help", MetricType::Summary).add_summary(
            vec![],
            vec![(0.5, 0.25)],
            2.0,
            4.0,
        );
        let text = set.encode_text();
        assert!(text.contains(
            "h_bucket{l=\"v\",le=\"0.5\"} 1\nh_bucket{l=\"v\",le=\"1\"} 2\n\
             h_bucket{l=\"v\",le=\"+Inf\"} 3\nh_sum{l=\"v\"} 1.5\nh_count{l=\"v\"} 3\n"
        ));
        assert!(text.contains("s{quantile=\"0.5\"} 0.25\ns_sum 2\ns_count 4\n"));
    }

    #[test]
    fn names() {
        assert_eq!(sanitize_name("1a-b.c"), "_1a_b_c");
        assert_eq!(sanitize_name(""), "_");
        assert!(is_valid_metric_name("a:b_c1"));
        assert!(!is_valid_metric_name("1a"));
        assert!(!is_valid_label_name("a:b"));
    }
}
