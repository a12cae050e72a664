//! HTTP prober: side by side with the Go blackbox_exporter on loopback
//! HTTP and HTTPS servers, plus bad input that only needs to fail cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use vigie_common::testkit;

fn config(dir: &std::path::Path, ca: &std::path::Path) -> std::path::PathBuf {
    let ss = dir.join("selfsigned.pem");
    let proxy = PROXY_PORT.get().copied().unwrap_or(1);
    let text = format!(
        r#"modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
  http_default:
    prober: http
    timeout: 5s
  http_404_ok:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      valid_status_codes: [404]
  http_noredirect:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      follow_redirects: false
  http_regex_fail:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      fail_if_body_not_matches_regexp: ["this text is not there"]
      fail_if_header_not_matches:
        - header: Content-Type
          regexp: "text/html"
  http_regex_ok:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      fail_if_body_matches_regexp: ["nope"]
      fail_if_body_not_matches_regexp: ["status"]
      fail_if_header_matches:
        - header: X-Vigie
          regexp: "no"
      fail_if_header_not_matches:
        - header: X-Missing
          regexp: "x"
          allow_missing: true
  http_header_missing:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      fail_if_header_not_matches:
        - header: X-Missing
          regexp: "x"
  http_post:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      method: POST
      body: "hello"
      headers:
        Content-Type: text/plain
  http_gzip:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      compression: gzip
  http_limit:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      body_size_limit: 1MB
  http_versions:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      valid_http_versions: ["HTTP/1.1"]
  http_not_ssl:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      fail_if_not_ssl: true
  http_slow:
    prober: http
    timeout: 2s
    http:
      preferred_ip_protocol: ip4
  https_ca:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: {ca}
  https_fail_ssl:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      fail_if_ssl: true
      tls_config:
        ca_file: {ca}
  https_insecure:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      tls_config:
        insecure_skip_verify: true
  https_verify:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
  http_h1_only:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      enable_http2: false
      tls_config:
        ca_file: {ca}
  https_selfsigned:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: {ss}
  http_proxy:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      proxy_url: http://127.0.0.1:{proxy}
  https_proxy:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      proxy_url: http://127.0.0.1:{proxy}
      tls_config:
        ca_file: {ca}
"#,
        ca = ca.display(),
        ss = ss.display()
    );
    let p = dir.join("blackbox.yml");
    std::fs::write(&p, text).unwrap();
    p
}

static PROXY_PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
static PROXIED: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicUsize>> =
    std::sync::OnceLock::new();

fn proxied() -> usize {
    PROXIED
        .get()
        .map_or(0, |c| c.load(std::sync::atomic::Ordering::SeqCst))
}

struct Env {
    go: Option<testkit::Proc>,
    ours: testkit::Proc,
    http: u16,
    valid: u16,
    expired: u16,
    wrong: u16,
    selfsigned: u16,
    h2: u16,
}

fn env(name: &str) -> Env {
    let dir = testkit::scratch_dir(name);
    let (certs, valid, expired, wrong, ss) = make_certs(&dir);
    PROXY_PORT.get_or_init(|| {
        let c = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let _ = PROXIED.set(std::sync::Arc::clone(&c));
        proxy_server(c)
    });
    let cfg = config(&dir, &certs.ca_file);
    let (go, ours) = start_both(&cfg);
    Env {
        go,
        ours,
        http: http_server(),
        valid: https_server(&valid),
        expired: https_server(&expired),
        wrong: https_server(&wrong),
        selfsigned: https_server(&ss),
        h2: h2_server(&valid),
    }
}

const CERT_EXTRA: &[&str] = &[
    "probe_ssl_earliest_cert_expiry",
    "probe_ssl_last_chain_info",
];

#[test]
fn http_matches_go() {
    let e = env("http-cmp");
    let Some(go) = &e.go else { return };
    let h = format!("127.0.0.1:{}", e.http);
    let closed = format!("http://127.0.0.1:{}/", closed_port());
    let cases: Vec<(&str, String, &[&str])> = vec![
        ("http_2xx", format!("http://{h}/"), &[]),
        ("http_2xx", h.clone(), &[]),
        ("http_default", format!("http://{h}/"), &[]),
        ("http_2xx", format!("http://{h}/missing"), &[]),
        ("http_404_ok", format!("http://{h}/missing"), &[]),
        ("http_2xx", format!("http://{h}/redirect"), &[]),
        ("http_noredirect", format!("http://{h}/redirect"), &[]),
        ("http_2xx", format!("http://{h}/loop"), &[]),
        ("http_2xx", format!("http://{h}/chunked"), &[]),
        ("http_2xx", format!("http://{h}/http10"), &[]),
        ("http_regex_fail", format!("http://{h}/"), &[]),
        ("http_regex_ok", format!("http://{h}/json"), &[]),
        ("http_header_missing", format!("http://{h}/"), &[]),
        ("http_post", format!("http://{h}/"), &[]),
        ("http_gzip", format!("http://{h}/gzip"), &[]),
        ("http_versions", format!("http://{h}/"), &[]),
        ("http_versions", format!("http://{h}/http10"), &[]),
        ("http_not_ssl", format!("http://{h}/"), &[]),
        ("http_2xx", closed, &[]),
        ("http_2xx", format!("http://{h}/garbage"), &[]),
        ("https_ca", format!("https://127.0.0.1:{}/", e.valid), &[]),
        ("https_ca", format!("https://localhost:{}/", e.valid), &[]),
        (
            "https_fail_ssl",
            format!("https://127.0.0.1:{}/", e.valid),
            &[],
        ),
        (
            "https_insecure",
            format!("https://127.0.0.1:{}/", e.valid),
            &[],
        ),
        (
            "https_insecure",
            format!("https://127.0.0.1:{}/", e.expired),
            &[],
        ),
        (
            "https_verify",
            format!("https://127.0.0.1:{}/", e.valid),
            CERT_EXTRA,
        ),
        (
            "https_ca",
            format!("https://127.0.0.1:{}/", e.expired),
            CERT_EXTRA,
        ),
        (
            "https_ca",
            format!("https://127.0.0.1:{}/", e.wrong),
            CERT_EXTRA,
        ),
        (
            "https_selfsigned",
            format!("https://127.0.0.1:{}/", e.selfsigned),
            &[],
        ),
        (
            "https_ca",
            format!("https://127.0.0.1:{}/redirect", e.valid),
            &[],
        ),
        ("http_proxy", format!("http://{h}/"), &[]),
        ("http_limit", format!("http://{h}/huge"), &[]),
        ("http_limit", format!("http://{h}/"), &[]),
        ("http_gzip", format!("http://{h}/"), &[]),
        (
            "https_ca",
            format!("https://127.0.0.1:{}/goto/http://{h}/", e.valid),
            &[],
        ),
        (
            "https_ca",
            format!("http://{h}/goto/https://localhost:{}/", e.valid),
            &[],
        ),
        (
            "http_slow",
            format!("http://127.0.0.1:{}/", silent_server()),
            &[],
        ),
        ("http_2xx", format!("http://user:secret@{h}/"), &[]),
        ("https_ca", format!("https://127.0.0.1:{}/", e.h2), &[]),
        ("http_h1_only", format!("https://127.0.0.1:{}/", e.h2), &[]),
        (
            "https_proxy",
            format!("https://localhost:{}/", e.valid),
            &[],
        ),
    ];
    let diffs: Vec<String> = cases
        .iter()
        .map(|(m, t, extra)| compare(go, &e.ours, m, t, extra))
        .filter(|d| !d.is_empty())
        .collect();
    let mut diffs = diffs;
    let body = probe(&e.ours, "https_ca", &format!("https://127.0.0.1:{}/", e.h2));
    assert!(
        body.contains("probe_http_version 2\n") && body.contains("probe_success 1"),
        "{body}"
    );
    if let Some(p6) = http_server_on("[::1]:0") {
        diffs.push(compare(
            go,
            &e.ours,
            "http_default",
            &format!("http://[::1]:{p6}/"),
            &[],
        ));
        diffs.push(compare(
            go,
            &e.ours,
            "http_2xx",
            &format!("http://[::1]:{p6}/redirect"),
            &[],
        ));
    }
    // hostname= sets the Host header and the TLS name (the cert is for localhost).
    diffs.push(compare_with(
        go,
        &e.ours,
        "https_ca",
        &format!("https://127.0.0.1:{}/", e.valid),
        "&hostname=localhost",
        &[],
    ));
    diffs.push(compare_with(
        go,
        &e.ours,
        "https_ca",
        &format!("https://127.0.0.1:{}/", e.wrong),
        "&hostname=wrong.example",
        &[],
    ));
    diffs.retain(|d| !d.is_empty());
    assert!(
        diffs.is_empty(),
        "differences from the Go exporter:\n{}",
        diffs.join("\n")
    );
    // Both exporters went through the proxy for both proxy cases.
    assert!(proxied() >= 4, "proxied {}", proxied());
}

#[test]
fn cert_metrics_when_verification_fails() {
    let e = env("http-certfail");
    let body = probe(
        &e.ours,
        "https_ca",
        &format!("https://127.0.0.1:{}/", e.expired),
    );
    assert_eq!(
        value(&body, "probe_success").as_deref(),
        Some("0"),
        "{body}"
    );
    // 2020-01-01T00:00:00Z
    assert_eq!(
        value(&body, "probe_ssl_earliest_cert_expiry").as_deref(),
        Some("1.5778368e+09"),
        "{body}"
    );
    assert!(
        body.contains("probe_failure_info{phase=\"tls\",reason=\"x509: certificate has expired"),
        "{body}"
    );
    assert!(body.contains("subject=\"CN=localhost,O=BBTest\""), "{body}");
    let body = probe(
        &e.ours,
        "https_ca",
        &format!("https://127.0.0.1:{}/", e.wrong),
    );
    assert!(
        body.contains("subjectalternative=\"wrong.example\""),
        "{body}"
    );
    assert!(
        body.contains("reason=\"x509: certificate is not valid for 127.0.0.1\""),
        "{body}"
    );
    let body = probe(
        &e.ours,
        "https_ca",
        &format!("https://127.0.0.1:{}/", e.valid),
    );
    assert_eq!(
        value(&body, "probe_success").as_deref(),
        Some("1"),
        "{body}"
    );
    assert!(!body.contains("probe_failure_info"), "{body}");
}

fn assert_fails_fast(p: &testkit::Proc, module: &str, target: &str, within: Duration, phase: &str) {
    let t = Instant::now();
    let body = probe(p, module, target);
    let took = t.elapsed();
    assert!(took < within, "{module} {target} took {took:?}");
    assert_eq!(
        value(&body, "probe_success").as_deref(),
        Some("0"),
        "{target}: {body}"
    );
    assert!(
        body.contains(&format!("probe_failure_info{{phase=\"{phase}\"")),
        "{target}: {body}"
    );
}

#[test]
fn bad_input_fails_cleanly() {
    let e = env("http-bad");
    let h = format!("127.0.0.1:{}", e.http);
    let s = Duration::from_secs(2);
    assert_fails_fast(
        &e.ours,
        "http_2xx",
        &format!("http://{h}/garbage"),
        s,
        "http",
    );
    assert_fails_fast(&e.ours, "http_2xx", "http://[::1", s, "resolve");
    assert_fails_fast(&e.ours, "http_2xx", "ftp://127.0.0.1/", s, "resolve");
    assert_fails_fast(
        &e.ours,
        "http_2xx",
        "http://no-such-host.invalid/",
        Duration::from_secs(6),
        "resolve",
    );
    assert_fails_fast(
        &e.ours,
        "http_2xx",
        &format!("http://[::1]:{}/", closed_port()),
        s,
        "connect",
    );
    assert_fails_fast(
        &e.ours,
        "http_limit",
        &format!("http://{h}/huge"),
        s,
        "http",
    );
    // Slow loris and a silent server: failure by the module timeout (2 s).
    assert_fails_fast(
        &e.ours,
        "http_slow",
        &format!("http://{h}/slow"),
        Duration::from_millis(2800),
        "http",
    );
    assert_fails_fast(
        &e.ours,
        "http_slow",
        &format!("http://127.0.0.1:{}/", silent_server()),
        Duration::from_millis(2800),
        "http",
    );
    // Huge body without a limit is counted, not kept.
    let body = probe(&e.ours, "http_2xx", &format!("http://{h}/huge"));
    assert_eq!(
        value(&body, "probe_http_uncompressed_body_length").as_deref(),
        Some("3.145728e+06"),
        "{body}"
    );
    // Bad request parameters.
    let (st, _, b) = testkit::http_get(&format!("{}/probe?module=nosuch&target=x", e.ours.base()));
    assert_eq!((st, b.as_str()), (400, "Unknown module \"nosuch\"\n"));
    let (st, _, b) = testkit::http_get(&format!("{}/probe?module=http_2xx", e.ours.base()));
    assert_eq!((st, b.as_str()), (400, "Target parameter is missing\n"));
}

#[test]
fn debug_history_config_and_timeout_header() {
    let e = env("http-endpoints");
    let t = format!("http://127.0.0.1:{}/", e.http);
    let (st, _, body) = testkit::http_get(&format!(
        "{}&debug=true",
        probe_url(&e.ours, "http_2xx", &t)
    ));
    assert_eq!(st, 200);
    assert!(body.starts_with("Logs for the probe:\n"), "{body}");
    assert!(
        body.contains("msg=\"Beginning probe\" probe=http timeout_seconds=5"),
        "{body}"
    );
    assert!(
        body.contains("\n\n\n\nMetrics that would have been returned:\n# HELP"),
        "{body}"
    );
    assert!(
        body.contains("\n\n\n\nModule configuration:\nprober: http\ntimeout: 5s\n"),
        "{body}"
    );
    let (_, _, landing) = testkit::http_get(&format!("{}/", e.ours.base()));
    assert!(
        landing.contains("Recent Probes") && landing.contains("logs?id=0"),
        "{landing}"
    );
    let (st, _, logs) = testkit::http_get(&format!("{}/logs?id=0", e.ours.base()));
    assert_eq!(st, 200);
    assert!(logs.starts_with("Logs for the probe:"), "{logs}");
    let (st, _, _) = testkit::http_get(&format!("{}/logs?id=999", e.ours.base()));
    assert_eq!(st, 404);
    let (st, _, cfg) = testkit::http_get(&format!("{}/config", e.ours.base()));
    assert_eq!(st, 200);
    assert!(
        cfg.contains("http_404_ok:") && cfg.contains("ttl: 64"),
        "{cfg}"
    );
    // Timeout header: 1.5 s - 0.5 s offset = 1 s against a silent server.
    let silent = format!("http://127.0.0.1:{}/", silent_server());
    let start = Instant::now();
    let (st, _, body) = testkit::http_request(
        "GET",
        &format!("{}&debug=true", probe_url(&e.ours, "http_2xx", &silent)),
        &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")],
    );
    assert_eq!(st, 200);
    assert!(body.contains("timeout_seconds=1\n"), "{body}");
    assert!(
        start.elapsed() < Duration::from_millis(1900),
        "{:?}",
        start.elapsed()
    );
    let (st, _, _) = testkit::http_request(
        "GET",
        &probe_url(&e.ours, "http_2xx", &silent),
        &[("X-Prometheus-Scrape-Timeout-Seconds", "abc")],
    );
    assert_eq!(st, 500);
}
