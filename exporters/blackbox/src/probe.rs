//! What every prober shares: the per-probe metric registry, the per-probe
//! log buffer shown by `debug=true` and `/logs`, and the failure reason.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use vigie_common::expo::{MetricSet, MetricType};

/// One gauge sample.
#[derive(Debug, Clone)]
struct Sample {
    name: &'static str,
    help: &'static str,
    labels: Vec<(String, String)>,
    value: f64,
}

/// The state of one probe while it runs.
#[derive(Debug)]
pub struct Probe {
    pub module: String,
    pub target: String,
    samples: Vec<Sample>,
    log: String,
    /// The phase the prober is in (for `probe_failure_info` on timeout).
    pub phase: &'static str,
    /// The first failure: `(phase, reason)`.
    pub failure: Option<(String, String)>,
}

impl Probe {
    pub fn new(module: &str, target: &str) -> Self {
        Probe {
            module: module.to_owned(),
            target: target.to_owned(),
            samples: Vec::with_capacity(24),
            log: String::new(),
            phase: "resolve",
            failure: None,
        }
    }

    /// Sets a gauge without labels (replacing an earlier value).
    pub fn gauge(&mut self, name: &'static str, help: &'static str, value: f64) {
        self.gauge_l(name, help, &[], value);
    }

    /// Sets a gauge with labels (replacing an earlier value of the same series).
    pub fn gauge_l(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        if let Some(s) = self.samples.iter_mut().find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && s.labels
                    .iter()
                    .zip(labels)
                    .all(|((a, b), (c, d))| a == c && b == d)
        }) {
            s.value = value;
            return;
        }
        self.samples.push(Sample {
            name,
            help,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            value,
        });
    }

    /// Adds to a gauge without labels.
    pub fn add(&mut self, name: &'static str, help: &'static str, delta: f64) {
        let cur = self.value(name).unwrap_or(0.0);
        self.gauge(name, help, cur + delta);
    }

    /// Adds to a labelled gauge.
    pub fn add_l(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        delta: f64,
    ) {
        let cur = self
            .samples
            .iter()
            .find(|s| {
                s.name == name
                    && s.labels
                        .iter()
                        .zip(labels)
                        .all(|((a, b), (c, d))| a == c && b == d)
            })
            .map_or(0.0, |s| s.value);
        self.gauge_l(name, help, labels, cur + delta);
    }

    /// The value of an unlabelled gauge.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels.is_empty())
            .map(|s| s.value)
    }

    /// Removes every series of a family.
    pub fn remove(&mut self, name: &str) {
        self.samples.retain(|s| s.name != name);
    }

    /// The registry as a metric set.
    pub fn metric_set(&self) -> MetricSet {
        let mut set = MetricSet::new();
        for s in &self.samples {
            set.family(s.name, s.help, MetricType::Gauge)
                .add_owned(s.labels.clone(), s.value);
        }
        set
    }

    pub fn log_text(&self) -> &str {
        &self.log
    }

    fn line(
        &mut self,
        level: &str,
        caller: &str,
        msg: &str,
        kv: &[(&str, &dyn std::fmt::Display)],
    ) {
        let mut l = String::with_capacity(160);
        let _ = write!(l, "ts={} caller={caller} module=", rfc3339_now());
        logfmt_value(&mut l, &self.module);
        l.push_str(" target=");
        logfmt_value(&mut l, &self.target);
        let _ = write!(l, " level={level} msg=");
        logfmt_value(&mut l, msg);
        for (k, v) in kv {
            let _ = write!(l, " {k}=");
            logfmt_value(&mut l, &v.to_string());
        }
        // The main log gets probe lines at debug level, as in blackbox_exporter.
        tracing::debug!(target: "probe", "{}", l);
        self.log.push_str(&l);
        self.log.push('\n');
    }

    pub fn info(&mut self, caller: &str, msg: &str, kv: &[(&str, &dyn std::fmt::Display)]) {
        self.line("info", caller, msg, kv);
    }

    pub fn debug(&mut self, caller: &str, msg: &str, kv: &[(&str, &dyn std::fmt::Display)]) {
        self.line("debug", caller, msg, kv);
    }

    pub fn error(&mut self, caller: &str, msg: &str, kv: &[(&str, &dyn std::fmt::Display)]) {
        self.line("error", caller, msg, kv);
    }

    /// Records why the probe failed (the first reason wins) and returns false.
    pub fn fail(&mut self, phase: &str, reason: impl Into<String>) -> bool {
        if self.failure.is_none() {
            let mut r: String = reason.into();
            // Keep the label short and bounded.
            if r.len() > 200 {
                let mut cut = 200;
                while !r.is_char_boundary(cut) {
                    cut -= 1;
                }
                r.truncate(cut);
            }
            self.failure = Some((phase.to_owned(), r));
        }
        false
    }
}

pub use vigie_common::log::logfmt_value;

/// Now as Go's RFC3339Nano in UTC (`2026-11-23T07:34:40.908773828Z`).
pub fn rfc3339_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let mut s = vigie_common::timefmt::utc_date_time(secs, 'T');
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Seconds as Go formats a float in logs (`0.001802205`).
pub fn secs(d: std::time::Duration) -> String {
    vigie_common::expo::go_float(d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(1_795_419_256, 908_773_800),
            "2026-11-23T07:34:16.9087738Z"
        );
    }

    #[test]
    fn logfmt_quoting() {
        let mut s = String::new();
        logfmt_value(&mut s, "a b\"c");
        assert_eq!(s, "\"a b\\\"c\"");
    }

    #[test]
    fn gauges_replace() {
        let mut p = Probe::new("m", "t");
        p.gauge_l("x", "h", &[("phase", "a")], 1.0);
        p.add_l("x", "h", &[("phase", "a")], 2.0);
        p.gauge("y", "h", 1.0);
        p.gauge("y", "h", 5.0);
        let text = p.metric_set().encode_text();
        assert!(text.contains("x{phase=\"a\"} 3"), "{text}");
        assert!(text.contains("y 5"), "{text}");
    }
}
