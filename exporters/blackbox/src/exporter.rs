//! The HTTP side: `/probe`, `/config`, `/logs`, the landing page's recent
//! probes, reload, and the exporter's own metrics.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::StatusCode;
use vigie_common::config::ConfigCell;
use vigie_common::expo::MetricSet;
use vigie_common::serve::html_escape;
use vigie_common::{Exporter, Reply, Request};

use crate::allow::AllowList;
use crate::config::{Config, Module};
use crate::probe::Probe;
use crate::probers;

/// Options that apply to every probe.
#[derive(Debug, Clone)]
pub struct Options {
    pub config_file: PathBuf,
    pub timeout_offset: f64,
    pub history_limit: usize,
    pub allow: AllowList,
    /// Body size limit applied when a module sets none (0 = none).
    pub default_body_limit: u64,
}

/// One finished probe in the history.
#[derive(Debug)]
struct Entry {
    id: u64,
    module: String,
    target: String,
    success: bool,
    debug: String,
}

/// Per-request options a prober may need.
#[derive(Debug, Clone, Default)]
pub struct ProbeParams {
    /// `hostname` query parameter (HTTP: Host header and SNI).
    pub hostname: Option<String>,
    pub allow: AllowList,
    pub default_body_limit: u64,
}

/// A loaded config with what is derived from it once (YAML texts).
struct Loaded {
    config: Config,
    yaml: String,
    module_yaml: std::collections::BTreeMap<String, String>,
}

impl Loaded {
    fn new(config: Config) -> Self {
        let module_yaml = config
            .modules
            .iter()
            .map(|(k, m)| (k.clone(), m.to_yaml()))
            .collect();
        Loaded {
            yaml: config.to_yaml(),
            module_yaml,
            config,
        }
    }
}

pub struct Blackbox {
    opts: Options,
    config: ConfigCell<Loaded>,
    history: Mutex<VecDeque<Entry>>,
    next_id: AtomicU64,
    unknown_modules: AtomicU64,
}

const H_SUCCESS: &str = "Displays whether or not the probe was a success";
const H_DURATION: &str = "Returns how long the probe took to complete in seconds";
const H_FAILURE: &str = "Why the probe failed (Vigie addition): the phase and a short reason";

impl Blackbox {
    pub fn new(opts: Options, config: Config) -> Self {
        Blackbox {
            opts,
            config: ConfigCell::new(Loaded::new(config)),
            history: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(0),
            unknown_modules: AtomicU64::new(0),
        }
    }

    /// blackbox_exporter's timeout rule.
    pub fn timeout(module: &Module, header: Option<f64>, offset: f64) -> Duration {
        let mut t = header.unwrap_or(0.0);
        if t == 0.0 {
            t = 120.0;
        }
        let max = t - offset;
        let m = module.timeout.0.as_secs_f64();
        let secs = if (m > 0.0 && m < max) || max < 0.0 {
            m
        } else {
            max
        };
        // Bounded: a huge header value must not overflow the deadline.
        Duration::try_from_secs_f64(secs.clamp(0.0, 86_400.0)).unwrap_or(Duration::ZERO)
    }

    async fn probe(&self, req: &Request) -> Reply {
        let loaded = self.config.get();
        let cfg = &loaded.config;
        let module_name = req.param("module").unwrap_or("http_2xx").to_owned();
        let Some(module) = cfg.modules.get(&module_name) else {
            self.unknown_modules.fetch_add(1, Ordering::Relaxed);
            return Reply::bad_request(format!("Unknown module {module_name:?}\n"));
        };
        let header = match req.header("X-Prometheus-Scrape-Timeout-Seconds") {
            None => None,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => Some(f),
                _ => {
                    return Reply::text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("Failed to parse timeout from Prometheus header: strconv.ParseFloat: parsing {v:?}: invalid syntax\n"),
                    )
                }
            },
        };
        let timeout = Self::timeout(module, header, self.opts.timeout_offset);
        let Some(raw_target) = req.param("target").filter(|t| !t.is_empty()) else {
            return Reply::bad_request("Target parameter is missing\n");
        };
        // blackbox_exporter unescapes the target once more.
        let target = match query_unescape(raw_target) {
            Some(t) => t,
            None => {
                return Reply::bad_request(format!("Unable to unescape target {raw_target:?}\n"))
            }
        };
        if !["http", "tcp", "icmp", "dns", "grpc"].contains(&module.prober.as_str()) {
            return Reply::bad_request(format!("Unknown prober {:?}\n", module.prober));
        }
        if !self.opts.allow.is_empty() && !self.opts.allow.allows_target(&module.prober, &target) {
            return Reply::text(
                StatusCode::FORBIDDEN,
                format!("Target {target:?} is not allowed by --probe.allow-target\n"),
            );
        }
        let hostname = req
            .param("hostname")
            .filter(|h| !h.is_empty())
            .map(str::to_owned);
        if let Some(h) = &hostname {
            if module.prober == "http" {
                if let Some((_, v)) = module
                    .http
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("host"))
                {
                    if v != h {
                        return Reply::bad_request(format!(
                            "Invalid configuration: 'hostname' query parameter {h:?} conflicts with 'Host' header in module config"
                        ));
                    }
                }
            }
        }
        let params = ProbeParams {
            hostname,
            allow: self.opts.allow.clone(),
            default_body_limit: self.opts.default_body_limit,
        };
        let mut probe = Probe::new(&module_name, &target);
        let success = run_probe(&mut probe, module, &params, timeout).await;
        let metrics = probe.metric_set();
        let module_yaml = loaded
            .module_yaml
            .get(&module_name)
            .map_or("", String::as_str);
        let debug = debug_output(&probe, &metrics, module_yaml);
        let want_debug = req.param("debug").is_some_and(|d| d == "true");
        self.remember(&module_name, &target, success, debug.clone());
        if want_debug {
            Reply::text(StatusCode::OK, debug)
        } else {
            Reply::Metrics(metrics)
        }
    }

    fn remember(&self, module: &str, target: &str, success: bool, debug: String) {
        if self.opts.history_limit == 0 {
            return;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut h) = self.history.lock() {
            h.push_back(Entry {
                id,
                module: module.to_owned(),
                target: target.to_owned(),
                success,
                debug,
            });
            while h.len() > self.opts.history_limit {
                h.pop_front();
            }
        }
    }

    fn logs(&self, req: &Request) -> Reply {
        let Some(id) = req.param("id").and_then(|i| i.parse::<u64>().ok()) else {
            return Reply::text(StatusCode::INTERNAL_SERVER_ERROR, "Invalid probe id\n");
        };
        let h = match self.history.lock() {
            Ok(h) => h,
            Err(p) => p.into_inner(),
        };
        match h.iter().find(|e| e.id == id) {
            Some(e) => Reply::text(StatusCode::OK, e.debug.clone()),
            None => Reply::text(StatusCode::NOT_FOUND, "Probe id not found\n"),
        }
    }
}

/// Runs a prober under the deadline and adds `probe_success`,
/// `probe_duration_seconds` and (on failure) `probe_failure_info`.
pub async fn run_probe(
    probe: &mut Probe,
    module: &Module,
    params: &ProbeParams,
    timeout: Duration,
) -> bool {
    let start = Instant::now();
    probe.info(
        "main.rs",
        "Beginning probe",
        &[
            ("probe", &module.prober),
            (
                "timeout_seconds",
                &vigie_common::expo::go_float(timeout.as_secs_f64()),
            ),
        ],
    );
    let deadline = tokio::time::Instant::now() + timeout;
    let fut = probers::run(probe, module, params, deadline);
    let ok = match tokio::time::timeout_at(deadline, fut).await {
        Ok(ok) => ok,
        Err(_) => {
            let phase = probe.phase;
            probe.error(
                "main.rs",
                "Probe timed out",
                &[("err", &"context deadline exceeded"), ("phase", &phase)],
            );
            probe.fail(phase, "timeout (context deadline exceeded)")
        }
    };
    let elapsed = start.elapsed();
    probe.gauge("probe_duration_seconds", H_DURATION, elapsed.as_secs_f64());
    probe.gauge("probe_success", H_SUCCESS, if ok { 1.0 } else { 0.0 });
    let secs = crate::probe::secs(elapsed);
    if ok {
        probe.info("main.rs", "Probe succeeded", &[("duration_seconds", &secs)]);
    } else {
        if probe.failure.is_none() {
            let phase = probe.phase;
            probe.fail(phase, "probe failed");
        }
        if let Some((phase, reason)) = probe.failure.clone() {
            probe.gauge_l(
                "probe_failure_info",
                H_FAILURE,
                &[("phase", &phase), ("reason", &reason)],
                1.0,
            );
        }
        probe.error("main.rs", "Probe failed", &[("duration_seconds", &secs)]);
    }
    ok
}

fn debug_output(probe: &Probe, metrics: &MetricSet, module_yaml: &str) -> String {
    format!(
        "Logs for the probe:\n{}\n\n\nMetrics that would have been returned:\n{}\n\n\nModule configuration:\n{}",
        probe.log_text(),
        metrics.encode_text(),
        module_yaml
    )
}

/// Go's `url.QueryUnescape`: `%XX` decoded, `+` to space; bad escapes fail.
pub fn query_unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                out.push(v);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

impl Exporter for Blackbox {
    async fn metrics(&self, _req: Request) -> Reply {
        let mut set = MetricSet::new();
        set.counter(
            "blackbox_module_unknown_total",
            "Count of unknown modules requested by probes",
            &[],
            self.unknown_modules.load(Ordering::Relaxed) as f64,
        );
        Reply::Metrics(set)
    }

    async fn handle(&self, req: Request) -> Option<Reply> {
        match req.path.as_str() {
            "/probe" => Some(self.probe(&req).await),
            "/config" => Some(Reply::text(StatusCode::OK, self.config.get().yaml.clone())),
            "/logs" => Some(self.logs(&req)),
            _ => None,
        }
    }

    fn reload(&self) -> Result<(), String> {
        match Config::load(&self.opts.config_file) {
            Ok(c) => {
                self.config.set(Loaded::new(c));
                Ok(())
            }
            Err(e) => Err(format!("failed to reload config: {e}")),
        }
    }

    fn has_config(&self) -> bool {
        true
    }

    fn is_limited(&self, path: &str) -> bool {
        path == "/probe"
    }

    fn landing_html(&self) -> String {
        let mut s = String::from(
            "<p><a href=\"probe?target=prometheus.io&module=http_2xx\">Probe prometheus.io for http_2xx</a></p>\n\
             <p><a href=\"probe?target=prometheus.io&module=http_2xx&debug=true\">Debug probe prometheus.io for http_2xx</a></p>\n\
             <h2>Recent Probes</h2>\n\
             <table border='1'><tr><th>Module</th><th>Target</th><th>Result</th><th>Debug</th></tr>",
        );
        let h = match self.history.lock() {
            Ok(h) => h,
            Err(p) => p.into_inner(),
        };
        for e in h.iter().rev() {
            let result = if e.success {
                "Success"
            } else {
                "<strong>Failure</strong>"
            };
            s.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{result}</td><td><a href='logs?id={}'>Logs</a></td></tr>",
                html_escape(&e.module),
                html_escape(&e.target),
                e.id
            ));
        }
        s.push_str("</table>\n");
        s
    }
}

/// Shared handle type for main.
pub type Shared = Arc<Blackbox>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vigie_common::config::PromDuration;

    fn module(t: u64) -> Module {
        let cfg = Config::parse(
            std::path::Path::new("x.yml"),
            "modules:\n  a:\n    prober: http\n",
        )
        .unwrap();
        let mut m = cfg.modules["a"].clone();
        m.timeout = PromDuration(Duration::from_secs(t));
        m
    }

    #[test]
    fn timeout_rule() {
        let f = |m: u64, h: Option<f64>| Blackbox::timeout(&module(m), h, 0.5).as_secs_f64();
        assert_eq!(f(5, Some(2.0)), 1.5);
        assert_eq!(f(5, None), 5.0);
        assert_eq!(f(0, Some(3.0)), 2.5);
        assert_eq!(f(5, Some(0.3)), 5.0);
        assert_eq!(f(0, None), 119.5);
        assert_eq!(f(0, Some(1e300)), 86_400.0);
        assert_eq!(f(0, Some(-3.0)), 0.0);
    }

    #[test]
    fn unescape() {
        assert_eq!(query_unescape("a%2Fb+c").as_deref(), Some("a/b c"));
        assert_eq!(query_unescape("%zz"), None);
    }
}
