//! Helpers shared by the e2e tests: paths of the shipped config, the
//! Prometheus HTTP API, and the queries in the shipped Grafana dashboards.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use regex::Regex;
use serde_json::Value;

/// The workspace root (the e2e crate's parent directory).
pub fn root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

pub fn prom_dir() -> PathBuf {
    root().join("config/prometheus")
}

pub fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A YAML file as JSON values (serde_norway reads YAML into any serde type).
pub fn yaml(path: &std::path::Path) -> Value {
    serde_norway::from_str(&read(path)).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// Percent-encodes a query-string value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Calls `f` every 100 ms until it returns Some or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// GET on the Prometheus API; the `data` member of a success answer.
pub fn api(base: &str, path_and_query: &str) -> Result<Value, String> {
    let (status, _, body) = vigie_common::testkit::http_get(&format!("{base}{path_and_query}"));
    let v: Value =
        serde_json::from_str(&body).map_err(|e| format!("{path_and_query}: {e}: {body}"))?;
    if status != 200 || v["status"] != "success" {
        return Err(format!("{path_and_query}: HTTP {status}: {body}"));
    }
    Ok(v["data"].clone())
}

/// An instant query: the result vector (or scalar as a one-element vector).
pub fn query(base: &str, expr: &str) -> Result<Vec<Value>, String> {
    let data = api(base, &format!("/api/v1/query?query={}", encode(expr)))?;
    match data["resultType"].as_str() {
        Some("vector") | Some("matrix") => {
            Ok(data["result"].as_array().cloned().unwrap_or_default())
        }
        _ => Ok(vec![data["result"].clone()]),
    }
}

/// Value of one vector sample.
pub fn sample_value(s: &Value) -> Option<f64> {
    s["value"][1].as_str()?.parse().ok()
}

/// A query found in a dashboard: where it is, and the PromQL.
#[derive(Debug, Clone)]
pub struct DashQuery {
    pub dashboard: String,
    pub panel: String,
    pub expr: String,
}

/// Every panel query and template-variable query of the shipped dashboards.
/// `label_values(sel, label)` variables become `group by (label) (sel)`.
pub fn dashboard_queries() -> Vec<DashQuery> {
    let dir = root().join("config/grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let label_values = Regex::new(r"^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$").unwrap();
    let mut out = Vec::new();
    for f in files {
        let d: Value = serde_json::from_str(&read(&f)).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        for p in d["panels"].as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push(DashQuery {
                        dashboard: name.clone(),
                        panel: p["title"].as_str().unwrap_or("").to_owned(),
                        expr: e.to_owned(),
                    });
                }
            }
        }
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            if v["type"] != "query" {
                continue;
            }
            let q = v["query"]["query"]
                .as_str()
                .or(v["query"].as_str())
                .unwrap_or("");
            let c = label_values.captures(q).unwrap_or_else(|| {
                panic!(
                    "{name}: variable {} is not label_values(..): {q}",
                    v["name"]
                )
            });
            out.push(DashQuery {
                dashboard: name.clone(),
                panel: format!("variable ${}", v["name"].as_str().unwrap_or("")),
                expr: format!("group by ({}) ({})", &c[2], &c[1]),
            });
        }
    }
    out
}

/// Grafana's variables replaced by what "All" and a short range give.
pub fn substitute(expr: &str) -> String {
    expr.replace("${job}", ".*")
        .replace("$job", ".*")
        .replace("${instance}", ".*")
        .replace("$instance", ".*")
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "1h")
}

/// Metric names a PromQL expression reads (selectors outside strings,
/// label matchers, grouping clauses and ranges; not functions or keywords).
pub fn metric_names(expr: &str) -> Vec<String> {
    let strings = Regex::new(r#""(?:[^"\\]|\\.)*""#).unwrap();
    let braces = Regex::new(r"\{[^}]*\}").unwrap();
    let ranges = Regex::new(r"\[[^\]]*\]").unwrap();
    let grouping =
        Regex::new(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)").unwrap();
    let token = Regex::new(r"[a-zA-Z_:][a-zA-Z0-9_:]*").unwrap();
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
        "nan",
        "Inf",
        "NaN",
    ];
    let e = strings.replace_all(expr, "\"\"");
    let e = braces.replace_all(&e, "{}");
    let e = ranges.replace_all(&e, "");
    let e = grouping.replace_all(&e, "");
    let mut names = Vec::new();
    for m in token.find_iter(&e) {
        let rest = e[m.end()..].trim_start();
        let before = &e[..m.start()];
        // a duration like 5m or a number's exponent is preceded by a digit
        if before.ends_with(|c: char| c.is_ascii_digit() || c == '.') || rest.starts_with('(') {
            continue;
        }
        let n = m.as_str();
        if KEYWORDS.contains(&n) || names.iter().any(|x| x == n) {
            continue;
        }
        names.push(n.to_owned());
    }
    names
}

/// Every `expr` of the shipped rule files.
pub fn rule_exprs() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for f in ["alerts.yml", "recording.yml"] {
        let v = yaml(&prom_dir().join("rules").join(f));
        for g in v["groups"].as_array().into_iter().flatten() {
            for r in g["rules"].as_array().into_iter().flatten() {
                let name = r["alert"]
                    .as_str()
                    .or(r["record"].as_str())
                    .unwrap_or("")
                    .to_owned();
                out.push((name, r["expr"].as_str().unwrap_or("").to_owned()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_skip_functions_labels_and_ranges() {
        let n = metric_names(
            r#"1 - avg by (instance) (rate(node_cpu_seconds_total{job=~"$job",mode="idle"}[$__rate_interval])) and on(instance) up"#,
        );
        assert_eq!(n, vec!["node_cpu_seconds_total", "up"]);
        let n = metric_names("probe_ssl_earliest_cert_expiry - time() < 14 * 86400");
        assert_eq!(n, vec!["probe_ssl_earliest_cert_expiry"]);
        assert_eq!(
            metric_names("instance:probe_success:avg_over_time_30d < 0.98"),
            vec!["instance:probe_success:avg_over_time_30d"]
        );
        assert_eq!(metric_names("x > 1e+06"), vec!["x"]);
    }
}
