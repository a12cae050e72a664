//! DNS prober against dnsmasq on a loopback port, side by side with the Go
//! exporter; plus a server that answers garbage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use vigie_common::testkit;

const MODULES: &str = r#"modules:
  dns_tls:
    prober: dns
    timeout: 3s
    dns:
      preferred_ip_protocol: ip4
      transport_protocol: tcp
      dns_over_tls: true
      query_name: www.example.test
      query_type: A
      tls_config:
        ca_file: CA_FILE
  dns_a:
    prober: dns
    timeout: 3s
    dns:
      preferred_ip_protocol: ip4
      query_name: www.example.test
      query_type: A
      valid_rcodes: [NOERROR]
      validate_answer_rrs:
        fail_if_not_matches_regexp: ["www\\.example\\.test\\.\\t600\\tIN\\tA\\t192\\.0\\.2\\.1[01]"]
  dns_a_tcp:
    prober: dns
    timeout: 3s
    dns:
      preferred_ip_protocol: ip4
      transport_protocol: tcp
      query_name: www.example.test
      query_type: A
  dns_any:
    prober: dns
    timeout: 3s
    dns:
      query_name: www.example.test
  dns_soa:
    prober: dns
    timeout: 3s
    dns:
      preferred_ip_protocol: ip4
      query_name: example.test
      query_type: SOA
  dns_nxdomain:
    prober: dns
    timeout: 3s
    dns:
      preferred_ip_protocol: ip4
      query_name: nope.example.test
      query_type: A
  dns_nxdomain_ok:
    prober: dns
    timeout: 3s
    dns:
      preferred_ip_protocol: ip4
      query_name: nope.example.test
      query_type: A
      valid_rcodes: [NXDOMAIN]
      validate_answer_rrs:
        fail_if_all_match_regexp: ["."]
  dns_refused:
    prober: dns
    timeout: 3s
    dns:
      preferred_ip_protocol: ip4
      query_name: example.com
      query_type: A
  dns_mx:
    prober: dns
    timeout: 3s
    dns:
      preferred_ip_protocol: ip4
      query_name: example.test
      query_type: MX
      validate_answer_rrs:
        fail_if_matches_regexp: ["nomatch"]
        fail_if_none_matches_regexp: ["mail\\.example\\.test"]
      validate_authority_rrs:
        fail_if_all_match_regexp: ["NS"]
  dns_all_match_quirk:
    prober: dns
    timeout: 3s
    dns:
      preferred_ip_protocol: ip4
      query_name: www.example.test
      query_type: A
      validate_answer_rrs:
        fail_if_all_match_regexp: ["192\\.0\\.2\\.10"]
  dns_txt:
    prober: dns
    timeout: 3s
    dns:
      preferred_ip_protocol: ip4
      query_name: txt.example.test
      query_type: TXT
      validate_answer_rrs:
        fail_if_none_matches_regexp: ["\"v=spf1 -all\""]
  dns_empty_not_matches:
    prober: dns
    timeout: 3s
    dns:
      preferred_ip_protocol: ip4
      query_name: example.test
      query_type: A
      validate_answer_rrs:
        fail_if_not_matches_regexp: ["x"]
  dns_norecurse:
    prober: dns
    timeout: 3s
    dns:
      preferred_ip_protocol: ip4
      query_name: www.example.test
      query_type: A
      recursion_desired: false
  dns_udp_short:
    prober: dns
    timeout: 1s
    dns:
      preferred_ip_protocol: ip4
      query_name: www.example.test
      query_type: A
"#;

fn dnsmasq(port: u16) -> Option<testkit::Proc> {
    let bin = testkit::require("dnsmasq")?;
    let args: Vec<String> = [
        "--no-daemon".to_string(),
        format!("--port={port}"),
        "--listen-address=127.0.0.1".into(),
        "--bind-interfaces".into(),
        "--no-resolv".into(),
        "--no-hosts".into(),
        "--host-record=www.example.test,192.0.2.10".into(),
        "--host-record=www.example.test,192.0.2.11".into(),
        "--auth-zone=example.test".into(),
        "--auth-server=ns.example.test,127.0.0.1".into(),
        "--auth-soa=2026112301,hostmaster.example.test".into(),
        "--txt-record=txt.example.test,v=spf1 -all".into(),
        "--mx-host=example.test,mail.example.test,10".into(),
        "--log-facility=-".into(),
        "--user=root".into(),
        "--pid-file=".into(),
    ]
    .to_vec();
    let p = testkit::spawn_logged(bin.to_str().unwrap(), &args);
    assert!(
        testkit::wait_port(
            format!("127.0.0.1:{port}").parse().unwrap(),
            Duration::from_secs(10)
        ),
        "dnsmasq: {}",
        p.log_text()
    );
    Some(p)
}

/// DNS over TLS in front of dnsmasq's TCP port: terminates TLS and relays one
/// length-prefixed exchange per connection.
fn dot_relay(pair: &Pair, upstream: u16) -> u16 {
    use std::io::{Read, Write};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = rustls::pki_types::CertificateDer::from(pair.cert_der.clone());
    let key = rustls::pki_types::PrivateKeyDer::try_from(pair.key_der.clone()).unwrap();
    let cfg = std::sync::Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
    );
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let cfg = std::sync::Arc::clone(&cfg);
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
                let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, s);
                let mut len = [0u8; 2];
                if tls.read_exact(&mut len).is_err() {
                    return;
                }
                let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if tls.read_exact(&mut q).is_err() {
                    return;
                }
                let Ok(mut up) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    return;
                };
                let _ = up.write_all(&len);
                let _ = up.write_all(&q);
                let mut rlen = [0u8; 2];
                if up.read_exact(&mut rlen).is_err() {
                    return;
                }
                let mut r = vec![0u8; usize::from(u16::from_be_bytes(rlen))];
                if up.read_exact(&mut r).is_err() {
                    return;
                }
                let _ = tls.write_all(&rlen);
                let _ = tls.write_all(&r);
                let _ = tls.flush();
            });
        }
    });
    port
}

/// A UDP server answering every query with junk bytes that carry its id.
fn garbage_dns() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = s.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        for _ in 0..100 {
            let Ok((n, from)) = s.recv_from(&mut buf) else {
                return;
            };
            if n < 2 {
                continue;
            }
            let mut out = vec![buf[0], buf[1], 0x81, 0x80, 0xff, 0xff];
            out.extend_from_slice(b"garbage that is not a dns message");
            let _ = s.send_to(&out, from);
        }
    });
    port
}

#[test]
fn dns_matches_go() {
    let port = testkit::free_port();
    let Some(_dns) = dnsmasq(port) else { return };
    let dir = testkit::scratch_dir("dns-cmp");
    let cfg = dir.join("blackbox.yml");
    let (certs, valid, ..) = make_certs(&dir);
    std::fs::write(
        &cfg,
        MODULES.replace("CA_FILE", &certs.ca_file.display().to_string()),
    )
    .unwrap();
    let (go, ours) = start_both(&cfg);
    let dot = format!("127.0.0.1:{}", dot_relay(&valid, port));
    let Some(go) = go else { return };
    let t = format!("127.0.0.1:{port}");
    let closed = format!("127.0.0.1:{}", closed_port());
    let mut diffs = Vec::new();
    for m in [
        "dns_a",
        "dns_a_tcp",
        "dns_any",
        "dns_soa",
        "dns_nxdomain",
        "dns_nxdomain_ok",
        "dns_refused",
        "dns_mx",
        "dns_txt",
        "dns_empty_not_matches",
        "dns_norecurse",
        "dns_all_match_quirk",
    ] {
        diffs.push(compare(&go, &ours, m, &t, &[]));
    }
    diffs.push(compare(&go, &ours, "dns_a", &closed, &[]));
    diffs.push(compare(&go, &ours, "dns_a_tcp", &closed, &[]));
    diffs.push(compare(&go, &ours, "dns_tls", &dot, &[]));
    let body = probe(&ours, "dns_tls", &dot);
    assert!(
        body.contains("probe_success 1") && body.contains("probe_dns_answer_rrs 2"),
        "{body}"
    );
    diffs.retain(|d| !d.is_empty());
    assert!(
        diffs.is_empty(),
        "differences from the Go exporter:\n{}",
        diffs.join("\n")
    );
}

#[test]
fn dns_garbage_answer_fails_with_reason() {
    let dir = testkit::scratch_dir("dns-bad");
    let cfg = dir.join("blackbox.yml");
    std::fs::write(&cfg, MODULES).unwrap();
    let ours = testkit::spawn_exporter(OURS, &[&format!("--config.file={}", cfg.display())]);
    let start = Instant::now();
    let body = probe(
        &ours,
        "dns_udp_short",
        &format!("127.0.0.1:{}", garbage_dns()),
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(
        value(&body, "probe_success").as_deref(),
        Some("0"),
        "{body}"
    );
    assert!(
        body.contains("probe_failure_info{phase=\"dns\",reason=\"dns: cannot parse response"),
        "{body}"
    );
    // Nothing answers on a silent UDP port: the module timeout ends it.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let start = Instant::now();
    let body = probe(
        &ours,
        "dns_udp_short",
        &silent.local_addr().unwrap().to_string(),
    );
    assert!(
        start.elapsed() < Duration::from_millis(1800),
        "{:?}",
        start.elapsed()
    );
    assert!(body.contains("reason=\"timeout"), "{body}");
}
