//! HTTPS upstreams: a rustls server on loopback with a certificate from a
//! test CA (rcgen); the exporter's `tls_config` (ca_file, server_name,
//! insecure_skip_verify, client certificates).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

struct Pki {
    ca_pem: String,
    server_der: CertificateDer<'static>,
    server_key: Vec<u8>,
    client_pem: String,
    client_key_pem: String,
    ca_der: CertificateDer<'static>,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["jvb.test".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let ckey = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["exporter.test".to_owned()])
        .unwrap()
        .signed_by(&ckey, &ca, &ca_key)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().clone(),
        server_der: server.der().clone(),
        server_key: key.serialize_der(),
        client_pem: client.pem(),
        client_key_pem: ckey.serialize_pem(),
    }
}

/// An HTTPS server answering every request with `body`; with
/// `client_ca`, it requires a client certificate signed by it.
fn tls_server(p: &Pki, client_ca: bool, body: Vec<u8>) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if client_ca {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(p.ca_der.clone()).unwrap();
        let v =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(v)
    } else {
        builder.with_no_client_auth()
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(p.server_key.clone()));
    let cfg = Arc::new(
        builder
            .with_single_cert(vec![p.server_der.clone()], key)
            .unwrap(),
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for tcp in l.incoming().flatten() {
            let cfg = Arc::clone(&cfg);
            let body = body.clone();
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                    return;
                };
                let mut s = rustls::StreamOwned::new(conn, tcp);
                loop {
                    let mut head = Vec::new();
                    let mut b = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if s.read(&mut b).map(|n| n == 0).unwrap_or(true) {
                            return;
                        }
                        head.push(b[0]);
                    }
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    if s.write_all(resp.as_bytes())
                        .and_then(|_| s.write_all(&body))
                        .and_then(|_| s.flush())
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn up_jvb(name: &str, cfg: &str) -> (Option<f64>, String) {
    let p = exporter_with_config(name, cfg);
    let (_, body) = scrape(&p);
    (
        value(&body, "jitsi_up{upstream=\"jvb\"}"),
        format!("{body}\n{}", p.log_text()),
    )
}

#[test]
fn https_with_ca_file_server_name_and_insecure() {
    let p = pki();
    let addr = tls_server(&p, false, fixture("jvb_colibri_stats_example.json"));
    let dir = vigie_common::testkit::scratch_dir("jitsi-tls");
    std::fs::write(dir.join("ca.pem"), &p.ca_pem).unwrap();
    let url = format!("https://{addr}/colibri/stats");

    // Right CA and the certificate's name: up.
    let (up, log) = up_jvb(
        "jitsi-tls",
        &format!(
            "jvb:\n  url: {url}\n  tls_config:\n    ca_file: ca.pem\n    server_name: jvb.test\n"
        ),
    );
    assert_eq!(up, Some(1.0), "{log}");
    // Right CA, but the URL's 127.0.0.1 is not in the certificate: down.
    let (up, log) = up_jvb(
        "jitsi-tls",
        &format!("jvb:\n  url: {url}\n  tls_config:\n    ca_file: ca.pem\n"),
    );
    assert_eq!(up, Some(0.0), "{log}");
    // Built-in roots do not know the test CA: down, with the reason logged.
    let (up, log) = up_jvb(
        "jitsi-tls",
        &format!("jvb:\n  url: {url}\n  tls_config:\n    server_name: jvb.test\n"),
    );
    assert_eq!(up, Some(0.0), "{log}");
    assert!(
        log.contains("UnknownIssuer") || log.contains("unknown issuer"),
        "{log}"
    );
    // insecure_skip_verify accepts it.
    let (up, log) = up_jvb(
        "jitsi-tls",
        &format!("jvb:\n  url: {url}\n  tls_config:\n    insecure_skip_verify: true\n"),
    );
    assert_eq!(up, Some(1.0), "{log}");
}

#[test]
fn https_with_a_client_certificate() {
    let p = pki();
    let addr = tls_server(&p, true, fixture("jvb_colibri_stats_example.json"));
    let dir = vigie_common::testkit::scratch_dir("jitsi-mtls");
    std::fs::write(dir.join("ca.pem"), &p.ca_pem).unwrap();
    std::fs::write(dir.join("client.pem"), &p.client_pem).unwrap();
    std::fs::write(dir.join("client.key"), &p.client_key_pem).unwrap();
    let url = format!("https://{addr}/colibri/stats");
    let base = format!(
        "jvb:\n  url: {url}\n  tls_config:\n    ca_file: ca.pem\n    server_name: jvb.test\n"
    );
    let (up, log) = up_jvb(
        "jitsi-mtls",
        &format!("{base}    cert_file: client.pem\n    key_file: client.key\n"),
    );
    assert_eq!(up, Some(1.0), "{log}");
    let (up, log) = up_jvb("jitsi-mtls", &base);
    assert_eq!(up, Some(0.0), "without a client certificate: {log}");
}
