//! gRPC health check prober against an in-test HTTP/2 health server, side
//! by side with the Go exporter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use vigie_common::testkit;

/// Health server: "" SERVING, "sick" NOT_SERVING, anything else NOT_FOUND;
/// over TLS (ALPN h2) when a certificate is given.
fn health_server(tls: Option<Pair>) -> u16 {
    let acceptor = tls.map(|pair| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cert = rustls::pki_types::CertificateDer::from(pair.cert_der.clone());
        let key = rustls::pki_types::PrivateKeyDer::try_from(pair.key_der.clone()).unwrap();
        let mut cfg = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg))
    });
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            loop {
                let Ok((s, _)) = l.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        |req: http::Request<hyper::body::Incoming>| async move {
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let service = if body.len() > 7 {
                                String::from_utf8_lossy(&body[7..]).into_owned()
                            } else {
                                String::new()
                            };
                            let mut trailers = http::HeaderMap::new();
                            let (status, data) = match service.as_str() {
                                "" => ("0", vec![0u8, 0, 0, 0, 2, 0x08, 1]),
                                "sick" => ("0", vec![0u8, 0, 0, 0, 2, 0x08, 2]),
                                _ => ("5", vec![]),
                            };
                            trailers.insert("grpc-status", status.parse().unwrap());
                            let b = Full::new(Bytes::from(data))
                                .with_trailers(async move { Some(Ok::<_, Infallible>(trailers)) })
                                .boxed();
                            Ok::<_, Infallible>(
                                http::Response::builder()
                                    .header("content-type", "application/grpc")
                                    .body(b)
                                    .unwrap(),
                            )
                        },
                    );
                    let builder = hyper::server::conn::http2::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    );
                    match acceptor {
                        None => {
                            let _ = builder
                                .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                                .await;
                        }
                        Some(a) => {
                            let Ok(tls) = a.accept(s).await else { return };
                            let _ = builder
                                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                                .await;
                        }
                    }
                });
            }
        });
    });
    port
}

const MODULES: &str = r#"modules:
  grpc_tls:
    prober: grpc
    timeout: 3s
    grpc:
      tls: true
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: CA_FILE
  grpc_plain:
    prober: grpc
    timeout: 3s
    grpc:
      tls: false
      preferred_ip_protocol: ip4
  grpc_sick:
    prober: grpc
    timeout: 3s
    grpc:
      service: sick
      preferred_ip_protocol: ip4
  grpc_unknown:
    prober: grpc
    timeout: 3s
    grpc:
      service: nosuch
      preferred_ip_protocol: ip4
"#;

#[test]
fn grpc_matches_go() {
    let dir = testkit::scratch_dir("grpc-cmp");
    let cfg = dir.join("blackbox.yml");
    let (certs, valid, expired, _, _) = make_certs(&dir);
    std::fs::write(
        &cfg,
        MODULES.replace("CA_FILE", &certs.ca_file.display().to_string()),
    )
    .unwrap();
    let (go, ours) = start_both(&cfg);
    let Some(go) = go else { return };
    let t = format!("127.0.0.1:{}", health_server(None));
    let tls = format!("127.0.0.1:{}", health_server(Some(valid)));
    let tls_expired = format!("127.0.0.1:{}", health_server(Some(expired)));
    let mut diffs = Vec::new();
    for m in ["grpc_plain", "grpc_sick", "grpc_unknown"] {
        diffs.push(compare(&go, &ours, m, &t, &[]));
    }
    diffs.push(compare(
        &go,
        &ours,
        "grpc_plain",
        &format!("127.0.0.1:{}", closed_port()),
        &[],
    ));
    diffs.push(compare(&go, &ours, "grpc_tls", &tls, &[]));
    diffs.push(compare(
        &go,
        &ours,
        "grpc_tls",
        &tls_expired,
        &[
            "probe_ssl_last_chain_info",
            "probe_ssl_earliest_cert_expiry",
        ],
    ));
    let body = probe(&ours, "grpc_plain", &t);
    assert!(
        body.contains("probe_grpc_healthcheck_response{serving_status=\"SERVING\"} 1"),
        "{body}"
    );
    assert_eq!(
        value(&body, "probe_success").as_deref(),
        Some("1"),
        "{body}"
    );
    let body = probe(&ours, "grpc_unknown", &t);
    assert_eq!(
        value(&body, "probe_grpc_status_code").as_deref(),
        Some("5"),
        "{body}"
    );
    let body = probe(&ours, "grpc_tls", &tls);
    assert!(
        body.contains("probe_grpc_ssl 1") && body.contains("probe_success 1"),
        "{body}"
    );
    diffs.retain(|d| !d.is_empty());
    assert!(
        diffs.is_empty(),
        "differences from the Go exporter:\n{}",
        diffs.join("\n")
    );
}
