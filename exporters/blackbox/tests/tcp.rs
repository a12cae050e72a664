//! TCP prober (connect, banners, query_response with ${1}, TLS and
//! STARTTLS) side by side with the Go exporter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use vigie_common::testkit;

fn config(dir: &std::path::Path, ca: &std::path::Path) -> std::path::PathBuf {
    let text = format!(
        r#"modules:
  tcp_connect:
    prober: tcp
    timeout: 3s
    tcp:
      preferred_ip_protocol: ip4
  ssh_banner:
    prober: tcp
    timeout: 3s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
      - expect: "^SSH-2.0-"
      - send: "SSH-2.0-blackbox-ssh-check"
  ssh_banner_wrong:
    prober: tcp
    timeout: 3s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
      - expect: "^SSH-1.99-"
  irc_banner:
    prober: tcp
    timeout: 3s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
      - send: "NICK prober"
      - send: "USER prober prober prober :prober"
      - expect: "PING :([^ ]+)"
        send: "PONG ${{1}}"
      - expect: "^:[^ ]+ 001"
  tcp_tls:
    prober: tcp
    timeout: 3s
    tcp:
      preferred_ip_protocol: ip4
      tls: true
      tls_config:
        ca_file: {ca}
  tcp_tls_insecure:
    prober: tcp
    timeout: 3s
    tcp:
      preferred_ip_protocol: ip4
      tls: true
      tls_config:
        insecure_skip_verify: true
  smtp_starttls:
    prober: tcp
    timeout: 3s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
      - expect: "^220"
      - send: "STARTTLS"
      - expect: "^220"
      - starttls: true
      - expect: "^250"
      tls_config:
        ca_file: {ca}
        server_name: localhost
"#,
        ca = ca.display()
    );
    let p = dir.join("blackbox.yml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn tcp_matches_go() {
    let dir = testkit::scratch_dir("tcp-cmp");
    let (certs, valid, expired, _, _) = make_certs(&dir);
    let cfg = config(&dir, &certs.ca_file);
    let (go, ours) = start_both(&cfg);
    let Some(go) = go else { return };
    let ssh = format!("127.0.0.1:{}", banner_server("SSH-2.0-OpenSSH_9.2\r\n"));
    let https = format!("127.0.0.1:{}", https_server(&valid));
    let https_expired = format!("127.0.0.1:{}", https_server(&expired));
    let cases: Vec<(&str, String, &[&str])> = vec![
        ("tcp_connect", ssh.clone(), &[]),
        ("tcp_connect", format!("127.0.0.1:{}", closed_port()), &[]),
        ("tcp_connect", "127.0.0.1".to_owned(), &[]),
        ("ssh_banner", ssh.clone(), &[]),
        ("ssh_banner_wrong", ssh.clone(), &[]),
        ("irc_banner", format!("127.0.0.1:{}", irc_server()), &[]),
        ("tcp_tls", https.clone(), &[]),
        ("tcp_tls_insecure", https.clone(), &[]),
        (
            "tcp_tls",
            https_expired,
            &[
                "probe_ssl_earliest_cert_expiry",
                "probe_ssl_last_chain_info",
            ],
        ),
        ("tcp_tls", ssh.clone(), &[]),
        (
            "smtp_starttls",
            format!("127.0.0.1:{}", starttls_server(&valid)),
            &[],
        ),
    ];
    let diffs: Vec<String> = cases
        .iter()
        .map(|(m, t, extra)| compare(&go, &ours, m, t, extra))
        .filter(|d| !d.is_empty())
        .collect();
    assert!(
        diffs.is_empty(),
        "differences from the Go exporter:\n{}",
        diffs.join("\n")
    );
}

#[test]
fn tcp_silent_server_times_out() {
    let dir = testkit::scratch_dir("tcp-slow");
    let (certs, ..) = make_certs(&dir);
    let cfg = config(&dir, &certs.ca_file);
    let ours = testkit::spawn_exporter(OURS, &[&format!("--config.file={}", cfg.display())]);
    let start = Instant::now();
    let body = probe(
        &ours,
        "ssh_banner",
        &format!("127.0.0.1:{}", silent_server()),
    );
    assert!(
        start.elapsed() < Duration::from_millis(3800),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(value(&body, "probe_success").as_deref(), Some("0"));
    assert!(
        body.contains("probe_failure_info{phase=\"regex\",reason=\"timeout"),
        "{body}"
    );
    let body = probe(&ours, "tcp_connect", "[::1");
    assert!(
        body.contains("probe_failure_info{phase=\"resolve\""),
        "{body}"
    );
}
