//! The grpc prober: one `grpc.health.v1.Health/Check` call over HTTP/2
//! (h2c, or TLS with ALPN h2). The protobuf messages are one field each, so
//! they are encoded by hand.

use std::sync::Arc;
use std::time::Instant as StdInstant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::config::{ip_protocol, GrpcProbe};
use crate::probe::Probe;
use crate::resolve::{choose, parse_port, split_host_port};
use crate::tlsutil;

const CALLER: &str = "grpc.rs";
const H_PHASE: &str = "Duration of gRPC request by phase";
const H_HEALTH: &str = "Response HealthCheck response";
const H_SSL: &str = "Indicates if SSL was used for the connection";
const H_STATUS: &str = "Response gRPC status code";
const STATUSES: [&str; 4] = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];
/// gRPC status codes used here.
const UNAVAILABLE: f64 = 14.0;
const UNKNOWN_CODE: f64 = 2.0;
/// Largest health response accepted.
const MAX_RESPONSE: usize = 64 * 1024;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub async fn probe(probe: &mut Probe, cfg: &GrpcProbe, _deadline: Instant) -> bool {
    for p in ["resolve", "check"] {
        probe.gauge_l("probe_grpc_duration_seconds", H_PHASE, &[("phase", p)], 0.0);
    }
    for s in STATUSES {
        probe.gauge_l(
            "probe_grpc_healthcheck_response",
            H_HEALTH,
            &[("serving_status", s)],
            0.0,
        );
    }
    probe.gauge("probe_grpc_ssl", H_SSL, 0.0);
    probe.gauge("probe_grpc_status_code", H_STATUS, 0.0);
    // blackbox 0.23 always exports this one (0 without TLS).
    probe.gauge("probe_ssl_earliest_cert_expiry", tlsutil::H_EARLIEST, 0.0);

    let target = probe.target.clone();
    let (host, port) = match split_host_port(&target) {
        Ok((h, p)) => match parse_port(&p) {
            Ok(p) => (h, p),
            Err(e) => return probe.fail("resolve", e),
        },
        Err(_) => (target.clone(), if cfg.tls { 443 } else { 80 }),
    };
    let (ip, lookup) = match choose(
        probe,
        CALLER,
        &host,
        ip_protocol(&cfg.preferred_ip_protocol),
        cfg.ip_protocol_fallback,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            probe.error(CALLER, "Error resolving address", &[("err", &e)]);
            return probe.fail("resolve", e);
        }
    };
    probe.gauge_l(
        "probe_grpc_duration_seconds",
        H_PHASE,
        &[("phase", "resolve")],
        lookup.as_secs_f64(),
    );
    let t_check = StdInstant::now();
    probe.phase = "grpc";
    let res = check(probe, cfg, &host, ip, port).await;
    probe.gauge_l(
        "probe_grpc_duration_seconds",
        H_PHASE,
        &[("phase", "check")],
        t_check.elapsed().as_secs_f64(),
    );
    match res {
        Err((code, e)) => {
            probe.gauge("probe_grpc_status_code", H_STATUS, code);
            probe.error(CALLER, "can't connect grpc server:", &[("err", &e)]);
            probe.fail("grpc", e)
        }
        Ok((code, serving)) => {
            probe.gauge("probe_grpc_status_code", H_STATUS, code);
            if code != 0.0 {
                probe.error(CALLER, "gRPC health check failed", &[("code", &code)]);
                return probe.fail("grpc", format!("status code {code}"));
            }
            let name = STATUSES.get(serving as usize).copied().unwrap_or("UNKNOWN");
            probe.gauge_l(
                "probe_grpc_healthcheck_response",
                H_HEALTH,
                &[("serving_status", name)],
                1.0,
            );
            if name != "SERVING" {
                probe.error(
                    CALLER,
                    "Service is not serving",
                    &[("serving_status", &name)],
                );
                return probe.fail("grpc", format!("serving status {name}"));
            }
            probe.info(CALLER, "Service is serving", &[]);
            true
        }
    }
}

type CheckError = (f64, String);

/// The health check call: `(grpc status code, serving status)`.
async fn check(
    probe: &mut Probe,
    cfg: &GrpcProbe,
    host: &str,
    ip: std::net::IpAddr,
    port: u16,
) -> Result<(f64, u64), CheckError> {
    let unavailable = |e: String| {
        (
            UNAVAILABLE,
            format!(
                "rpc error: code = Unavailable desc = connection error: desc = \"transport: {e}\""
            ),
        )
    };
    probe.debug(
        CALLER,
        if cfg.tls {
            "Dialing GRPC with TLS"
        } else {
            "Dialing GRPC without TLS"
        },
        &[],
    );
    let tcp = super::dial(ip, port, None)
        .await
        .map_err(|e| unavailable(format!("Error while dialing {e}")))?;
    let mut stream: Box<dyn Stream> = Box::new(tcp);
    if cfg.tls {
        let client =
            tlsutil::client(cfg.tls_config.as_ref(), &[b"h2"]).map_err(|e| (UNAVAILABLE, e))?;
        let name =
            tlsutil::server_name(cfg.tls_config.as_ref(), host).map_err(|e| (UNAVAILABLE, e))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&client.config));
        match connector.connect(name.clone(), stream).await {
            Ok(s) => {
                let version = s.get_ref().1.protocol_version();
                if let Ok(c) = client.verifier.captured.lock() {
                    tlsutil::record(probe, &c, version, &client.verifier.roots, false);
                }
                probe.gauge("probe_grpc_ssl", H_SSL, 1.0);
                stream = Box::new(s);
            }
            Err(e) => {
                if let Ok(c) = client.verifier.captured.lock() {
                    tlsutil::record(probe, &c, None, &client.verifier.roots, false);
                }
                return Err(unavailable(format!(
                    "authentication handshake failed: {}",
                    tlsutil::describe_error(&e, &name.to_str())
                )));
            }
        }
    }
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| unavailable(format!("http2 handshake: {e}")))?;
    let _driver = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let scheme = if cfg.tls { "https" } else { "http" };
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let req = http::Request::builder()
        .method("POST")
        .uri(format!(
            "{scheme}://{authority}/grpc.health.v1.Health/Check"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("user-agent", "grpc-rust-vigie/0.1")
        .body(Full::new(Bytes::from(encode_request(&cfg.service))))
        .map_err(|e| (UNKNOWN_CODE, e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| unavailable(format!("{e}")))?;
    let (parts, mut body) = resp.into_parts();
    if parts.status != http::StatusCode::OK {
        return Err((
            http_to_grpc(parts.status.as_u16()),
            format!("unexpected HTTP status {}", parts.status),
        ));
    }
    let mut data = Vec::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| unavailable(e.to_string()))?;
        match frame.into_data() {
            Ok(d) => {
                if data.len() + d.len() > MAX_RESPONSE {
                    return Err((8.0, "response too large".to_owned()));
                }
                data.extend_from_slice(&d);
            }
            Err(f) => {
                if let Ok(t) = f.into_trailers() {
                    trailers = Some(t);
                }
            }
        }
    }
    let status = trailers
        .as_ref()
        .and_then(|t| t.get("grpc-status"))
        .or_else(|| parts.headers.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    let Some(status) = status else {
        return Err((UNKNOWN_CODE, "missing grpc-status".to_owned()));
    };
    if status != 0 {
        let msg = trailers
            .as_ref()
            .and_then(|t| t.get("grpc-message"))
            .or_else(|| parts.headers.get("grpc-message"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        probe.error(
            CALLER,
            "gRPC health check returned an error",
            &[("code", &status), ("message", &msg)],
        );
        return Ok((f64::from(status), 0));
    }
    let serving = decode_response(&data).map_err(|e| (13.0, e))?;
    Ok((0.0, serving))
}

/// A length-prefixed HealthCheckRequest{service = 1}.
fn encode_request(service: &str) -> Vec<u8> {
    let mut msg = Vec::new();
    if !service.is_empty() {
        msg.push(0x0a);
        put_varint(&mut msg, service.len() as u64);
        msg.extend_from_slice(service.as_bytes());
    }
    let mut out = vec![0u8];
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(&msg);
    out
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long".to_owned())
}

/// HealthCheckResponse{status = 1 (enum)} from a length-prefixed message.
fn decode_response(b: &[u8]) -> Result<u64, String> {
    if b.len() < 5 {
        return Err("grpc: response too short".to_owned());
    }
    if b[0] != 0 {
        return Err("grpc: compressed responses are not supported".to_owned());
    }
    let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
    let msg = b.get(5..5 + len).ok_or("grpc: truncated response")?;
    let mut pos = 0;
    let mut status = 0;
    while pos < msg.len() {
        let key = get_varint(msg, &mut pos)?;
        match (key >> 3, key & 7) {
            (1, 0) => status = get_varint(msg, &mut pos)?,
            (_, 0) => {
                get_varint(msg, &mut pos)?;
            }
            (_, 2) => {
                let l = get_varint(msg, &mut pos)? as usize;
                pos = pos
                    .checked_add(l)
                    .filter(|p| *p <= msg.len())
                    .ok_or("grpc: truncated field")?;
            }
            (_, 5) => pos += 4,
            (_, 1) => pos += 8,
            _ => return Err("grpc: bad protobuf wire type".to_owned()),
        }
    }
    Ok(status)
}

/// gRPC's mapping of HTTP status to code for non-gRPC answers.
fn http_to_grpc(status: u16) -> f64 {
    match status {
        400 => 13.0,
        401 => 16.0,
        403 => 7.0,
        404 => 12.0,
        429 | 502..=504 => 14.0,
        _ => 2.0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn protobuf() {
        assert_eq!(encode_request(""), vec![0, 0, 0, 0, 0]);
        assert_eq!(
            encode_request("ab"),
            vec![0, 0, 0, 0, 4, 0x0a, 2, b'a', b'b']
        );
        assert_eq!(decode_response(&[0, 0, 0, 0, 2, 0x08, 1]).unwrap(), 1);
        assert_eq!(decode_response(&[0, 0, 0, 0, 0]).unwrap(), 0);
        assert!(decode_response(&[0, 0, 0, 0, 9, 0x08]).is_err());
        assert!(decode_response(&[0, 0, 0, 0, 2, 0x12, 200]).is_err());
    }
}
