//! Loopback targets for the integration tests (HTTP, HTTPS, TCP banner,
//! DNS via dnsmasq) and the side-by-side comparison with the Go exporter.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vigie_common::testkit::{self, Proc};

pub const OURS: &str = env!("CARGO_BIN_EXE_vigie-blackbox-exporter");
pub const GO: &str = "prometheus-blackbox-exporter";

/// Reads a request head; returns the request line.
fn read_head<R: Read>(r: &mut BufReader<R>) -> Option<(String, Vec<String>)> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        headers.push(h.trim_end().to_owned());
        if headers.len() > 100 {
            break;
        }
    }
    Some((line.trim_end().to_owned(), headers))
}

/// The routes every HTTP(S) test server answers.
fn respond<W: Write>(w: &mut W, request_line: &str) {
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let ok = |body: &str, extra: &str| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nLast-Modified: Mon, 23 Nov 2026 07:34:16 GMT\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        )
    };
    if let Some(to) = path.strip_prefix("/goto/") {
        let r = format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let _ = w.write_all(r.as_bytes());
        let _ = w.flush();
        return;
    }
    let resp: Vec<u8> = match path {
        "/" => ok("<html>hello world</html>\n", "").into_bytes(),
        "/missing" => b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found".to_vec(),
        "/redirect" => b"HTTP/1.1 301 Moved Permanently\r\nLocation: /\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
        "/loop" => b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
        "/chunked" => {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec()
        }
        "/http10" => b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold style body".to_vec(),
        "/json" => ok("{\"status\":\"ok\"}", "X-Vigie: yes\r\n").into_bytes(),
        "/gzip" => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&b"compressed hello ".repeat(100)).unwrap();
            let body = enc.finish().unwrap();
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            r.extend_from_slice(&body);
            r
        }
        "/huge" => {
            let body = vec![b'x'; 3 << 20];
            let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).into_bytes();
            r.extend_from_slice(&body);
            r
        }
        "/garbage" => b"this is not HTTP at all\r\n\r\n".to_vec(),
        "/slow" => {
            // Slow loris: a header byte every 200 ms, never finishing.
            for _ in 0..50 {
                if w.write_all(b"X").is_err() {
                    return;
                }
                let _ = w.flush();
                std::thread::sleep(Duration::from_millis(200));
            }
            return;
        }
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
    };
    let _ = w.write_all(&resp);
    let _ = w.flush();
}

/// A plain HTTP server on 127.0.0.1 (a thread per connection).
pub fn http_server() -> u16 {
    http_server_on("127.0.0.1:0").unwrap_or(0)
}

/// The same server on another loopback address (`[::1]:0`); None when
/// the address is not available.
pub fn http_server_on(addr: &str) -> Option<u16> {
    let l = TcpListener::bind(addr).ok()?;
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let mut r = BufReader::new(s.try_clone().unwrap());
                if let Some((line, _)) = read_head(&mut r) {
                    let mut w = s;
                    respond(&mut w, &line);
                }
            });
        }
    });
    Some(port)
}

/// Test certificates.
pub struct Certs {
    pub dir: PathBuf,
    /// CA file that signed `valid` (and `wrong_name`, `expired`).
    pub ca_file: PathBuf,
}

pub struct Pair {
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

/// valid (localhost + 127.0.0.1, signed by the CA), expired, wrong name, self-signed.
pub fn make_certs(dir: &Path) -> (Certs, Pair, Pair, Pair, Pair) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Vigie Test CA");
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, "BBTest");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.not_after = rcgen::date_time_ymd(2040, 1, 1);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();

    let leaf =
        |sans: Vec<String>, cn: &str, not_before: (i32, u8, u8), not_after: (i32, u8, u8)| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(sans).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.distinguished_name
                .push(DnType::OrganizationName, "BBTest");
            p.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
            p.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
            let c = p.signed_by(&key, &ca, &ca_key).unwrap();
            Pair {
                cert_der: c.der().to_vec(),
                key_der: key.serialize_der(),
            }
        };
    let valid = leaf(
        vec!["localhost".into(), "127.0.0.1".into()],
        "localhost",
        (2024, 1, 1),
        (2035, 6, 1),
    );
    let expired = leaf(
        vec!["localhost".into(), "127.0.0.1".into()],
        "localhost",
        (2019, 1, 1),
        (2020, 1, 1),
    );
    let wrong = leaf(
        vec!["wrong.example".into()],
        "wrong.example",
        (2024, 1, 1),
        (2035, 6, 1),
    );
    let ss_key = KeyPair::generate().unwrap();
    let mut ss =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    ss.distinguished_name.push(DnType::CommonName, "localhost");
    ss.not_after = rcgen::date_time_ymd(2034, 3, 1);
    let ssc = ss.self_signed(&ss_key).unwrap();
    std::fs::write(dir.join("selfsigned.pem"), ssc.pem()).unwrap();
    let selfsigned = Pair {
        cert_der: ssc.der().to_vec(),
        key_der: ss_key.serialize_der(),
    };
    (
        Certs {
            dir: dir.to_owned(),
            ca_file,
        },
        valid,
        expired,
        wrong,
        selfsigned,
    )
}

/// An HTTPS server with the given certificate (rustls, a thread per connection).
pub fn https_server(pair: &Pair) -> u16 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = rustls::pki_types::CertificateDer::from(pair.cert_der.clone());
    let key = rustls::pki_types::PrivateKeyDer::try_from(pair.key_der.clone()).unwrap();
    let cfg = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let cfg = Arc::clone(&cfg);
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, s);
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
                    match tls.read(&mut b) {
                        Ok(1) => head.push(b[0]),
                        _ => return,
                    }
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let line = text.lines().next().unwrap_or("").to_owned();
                respond(&mut tls, &line);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    port
}

/// A TCP server that sends `banner` and then reads until the peer closes.
pub fn banner_server(banner: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s: TcpStream = s;
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let _ = s.write_all(banner.as_bytes());
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
            });
        }
    });
    port
}

/// A TCP server that accepts and never answers (held for 10 s).
pub fn silent_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(10));
                drop(s);
            });
        }
    });
    port
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    testkit::free_port()
}

/// Starts both exporters with the same config; the Go one is None when
/// missing locally (CI installs it).
pub fn start_both(config: &Path) -> (Option<Proc>, Proc) {
    let arg = format!("--config.file={}", config.display());
    let ours = testkit::spawn_exporter(OURS, &[&arg]);
    let go =
        testkit::require(GO).map(|bin| testkit::spawn_exporter(bin.to_str().unwrap(), &[&arg]));
    (go, ours)
}

pub fn probe_url(p: &Proc, module: &str, target: &str) -> String {
    let t: String = url_encode(target);
    format!("{}/probe?module={module}&target={t}", p.base())
}

pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn probe(p: &Proc, module: &str, target: &str) -> String {
    let (status, _, body) = testkit::http_get(&probe_url(p, module, target));
    assert_eq!(status, 200, "{module} {target}: {body}");
    body
}

/// Families whose values depend on timing: compared by presence only.
const TIMING: &[&str] = &[
    "probe_duration_seconds",
    "probe_dns_lookup_time_seconds",
    "probe_http_duration_seconds",
    "probe_icmp_duration_seconds",
    "probe_dns_duration_seconds",
    "probe_grpc_duration_seconds",
];

fn family(series: &str) -> &str {
    series.split('{').next().unwrap_or(series)
}

/// Compares one probe on both exporters. `extra_ok`: families that only
/// Vigie may add in this case (its additions). Returns a description of the
/// differences, empty when equal.
pub fn compare(go: &Proc, ours: &Proc, module: &str, target: &str, extra_ok: &[&str]) -> String {
    compare_with(go, ours, module, target, "", extra_ok)
}

/// As [`compare`], with extra query parameters (`&hostname=...`).
pub fn compare_with(
    go: &Proc,
    ours: &Proc,
    module: &str,
    target: &str,
    extra: &str,
    extra_ok: &[&str],
) -> String {
    let get = |p: &Proc| {
        let (status, _, body) =
            testkit::http_get(&format!("{}{extra}", probe_url(p, module, target)));
        assert_eq!(status, 200, "{module} {target}: {body}");
        body
    };
    let g = testkit::parse_samples(&get(go));
    let o = testkit::parse_samples(&get(ours));
    let mut diffs = Vec::new();
    for (s, v) in &g {
        let f = family(s);
        match o.iter().find(|(os, _)| os == s) {
            None => diffs.push(format!("missing {s} (go {v})")),
            Some((_, ov)) if !TIMING.contains(&f) && !extra_ok.contains(&f) && ov != v => {
                diffs.push(format!("{s}: go {v}, vigie {ov}"))
            }
            _ => {}
        }
    }
    for (s, v) in &o {
        let f = family(s);
        if f == "probe_failure_info" || extra_ok.contains(&f) {
            continue;
        }
        if !g.iter().any(|(gs, _)| gs == s) {
            diffs.push(format!("extra {s} {v}"));
        }
    }
    if diffs.is_empty() {
        String::new()
    } else {
        format!("[{module} {target}] {}", diffs.join("; "))
    }
}

pub fn value(text: &str, series: &str) -> Option<String> {
    testkit::parse_samples(text)
        .into_iter()
        .find(|(s, _)| s == series)
        .map(|(_, v)| v)
}

/// An IRC-like server: waits for NICK and USER, sends `PING :token`,
/// expects `PONG token`, then sends the 001 welcome line.
pub fn irc_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                let mut line = String::new();
                for _ in 0..2 {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                }
                let _ = w.write_all(b":irc.test NOTICE * :hello\r\nPING :tok123\r\n");
                line.clear();
                let _ = r.read_line(&mut line);
                if line.trim_end() == "PONG tok123" {
                    let _ = w.write_all(b":irc.test 001 prober :Welcome\r\n");
                } else {
                    let _ = w.write_all(b":irc.test 464 prober :bad pong\r\n");
                }
                let _ = r.read_line(&mut line);
            });
        }
    });
    port
}

/// An SMTP-like STARTTLS server: `220` banner, `STARTTLS` -> `220 go ahead`,
/// then TLS with `pair`, then a `250` line inside TLS.
pub fn starttls_server(pair: &Pair) -> u16 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = rustls::pki_types::CertificateDer::from(pair.cert_der.clone());
    let key = rustls::pki_types::PrivateKeyDer::try_from(pair.key_der.clone()).unwrap();
    let cfg = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let cfg = Arc::clone(&cfg);
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
                let mut s: TcpStream = s;
                let _ = s.write_all(b"220 smtp.test ESMTP ready\r\n");
                // Read the STARTTLS line byte by byte so no TLS bytes are consumed.
                let mut line = Vec::new();
                let mut b = [0u8; 1];
                while !line.ends_with(b"\n") && line.len() < 1024 {
                    match s.read(&mut b) {
                        Ok(1) => line.push(b[0]),
                        _ => return,
                    }
                }
                let _ = s.write_all(b"220 go ahead\r\n");
                let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, s);
                let _ = tls.write_all(b"250 smtp.test secure\r\n");
                let _ = tls.flush();
                let _ = tls.read(&mut [0u8; 64]);
            });
        }
    });
    port
}

/// A minimal HTTP proxy: absolute-form requests are forwarded (the request
/// line is rewritten to origin-form), CONNECT is tunnelled. Counts requests.
pub fn proxy_server(count: Arc<std::sync::atomic::AtomicUsize>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let count = Arc::clone(&count);
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut r = BufReader::new(s.try_clone().unwrap());
                let Some((line, headers)) = read_head(&mut r) else {
                    return;
                };
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_owned();
                let target = parts.next().unwrap_or("").to_owned();
                let mut client = s;
                if method == "CONNECT" {
                    let Ok(up) = TcpStream::connect(&target) else {
                        return;
                    };
                    let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                    let mut up_r = up.try_clone().unwrap();
                    let mut cl_w = client.try_clone().unwrap();
                    let t = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut up_r, &mut cl_w);
                    });
                    let mut up_w = up;
                    let _ = std::io::copy(&mut r, &mut up_w);
                    let _ = t.join();
                    return;
                }
                let Some(rest) = target.strip_prefix("http://") else {
                    return;
                };
                let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                let path = if path.is_empty() { "/" } else { path };
                let Ok(mut up) = TcpStream::connect(authority) else {
                    return;
                };
                let mut req = format!("{method} {path} HTTP/1.1\r\n");
                for h in headers {
                    req.push_str(&h);
                    req.push_str("\r\n");
                }
                req.push_str("\r\n");
                let _ = up.write_all(req.as_bytes());
                let _ = std::io::copy(&mut up, &mut client);
            });
        }
    });
    port
}

/// An HTTPS server speaking HTTP/2 only (ALPN h2), answering 200 with a small body.
pub fn h2_server(pair: &Pair) -> u16 {
    use http_body_util::Full;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = rustls::pki_types::CertificateDer::from(pair.cert_der.clone());
    let key = rustls::pki_types::PrivateKeyDer::try_from(pair.key_der.clone()).unwrap();
    let mut cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
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
                let a = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = a.accept(s).await else { return };
                    let svc = hyper::service::service_fn(
                        |_req: http::Request<hyper::body::Incoming>| async move {
                            Ok::<_, std::convert::Infallible>(
                                http::Response::builder()
                                    .header("content-type", "text/plain")
                                    .header("content-length", "9")
                                    .body(Full::new(bytes::Bytes::from_static(b"h2 hello\n")))
                                    .unwrap(),
                            )
                        },
                    );
                    let _ = hyper::server::conn::http2::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
                });
            }
        });
    });
    port
}
