//! HTTP prober client-config features side by side with the Go
//! blackbox_exporter: `compression: br`, `oauth2` (client credentials
//! against a token server started here) and `proxy_connect_header`
//! (through a CONNECT proxy started here that records what it gets).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use vigie_common::testkit::{self, Proc};

/// One request as a test server received it.
#[derive(Clone, Debug)]
struct Seen {
    line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn is_vigie(&self) -> bool {
        self.header("user-agent").unwrap_or("").contains("Vigie")
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

fn read_request<R: BufRead>(r: &mut R) -> Option<Seen> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 || h.trim_end().is_empty() {
            break;
        }
        let (k, v) = h.trim_end().split_once(':')?;
        headers.push((k.to_owned(), v.trim().to_owned()));
    }
    let mut seen = Seen {
        line: line.trim_end().to_owned(),
        headers,
        body: String::new(),
    };
    let len: usize = seen
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    seen.body = String::from_utf8_lossy(&body).into_owned();
    Some(seen)
}

/// Accepts on 127.0.0.1, reads each connection's first request head and
/// body, records it, and hands it with the connection to `handle`.
fn recorded_listener<F>(read_timeout: Duration, handle: F) -> (u16, Log)
where
    F: Fn(Seen, BufReader<TcpStream>, TcpStream) + Send + Sync + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let log: Log = Arc::default();
    let log2 = Arc::clone(&log);
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let (log, handle) = (Arc::clone(&log2), Arc::clone(&handle));
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(read_timeout));
                let mut r = BufReader::new(s.try_clone().unwrap());
                let Some(seen) = read_request(&mut r) else {
                    return;
                };
                log.lock().unwrap().push(seen.clone());
                handle(seen, r, s);
            });
        }
    });
    (port, log)
}

/// An HTTP/1.1 server on 127.0.0.1 answering each request with `answer`;
/// `None` keeps the connection open without an answer (for 10 s).
fn server<F>(answer: F) -> (u16, Log)
where
    F: Fn(&Seen) -> Option<Vec<u8>> + Send + Sync + 'static,
{
    recorded_listener(
        Duration::from_secs(10),
        move |seen, _, mut w| match answer(&seen) {
            Some(resp) => {
                let _ = w.write_all(&resp);
                let _ = w.flush();
            }
            None => std::thread::sleep(Duration::from_secs(10)),
        },
    )
}

fn response(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 9, 22);
        w.write_all(data).unwrap();
    }
    out
}

/// The compression target: brotli bodies (whole, chunked, huge once
/// decompressed, cut short) and a body that is not brotli at all.
fn compression_target() -> u16 {
    let small = brotli(&b"compressed hello ".repeat(100));
    let huge = brotli(&vec![b'x'; 3 << 20]);
    let (port, _) = server(move |req| {
        let path = req.line.split_whitespace().nth(1).unwrap_or("/");
        let br = "Content-Encoding: br\r\n";
        Some(match path {
            "/br" => response("200 OK", br, &small),
            "/br-huge" => response("200 OK", br, &huge),
            "/br-cut" => response("200 OK", br, &small[..small.len() / 2]),
            "/br-chunked" => {
                let mut r = format!(
                    "HTTP/1.1 200 OK\r\n{br}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n",
                    small.len()
                )
                .into_bytes();
                r.extend_from_slice(&small);
                r.extend_from_slice(b"\r\n0\r\n\r\n");
                r
            }
            "/plain" => response("200 OK", "", b"<html>not compressed at all</html>"),
            _ => response("404 Not Found", "", b""),
        })
    });
    port
}

fn write_config(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    let p = dir.join("blackbox.yml");
    std::fs::write(&p, format!("modules:\n{body}")).unwrap();
    p
}

fn assert_same(diffs: Vec<String>) {
    let diffs: Vec<String> = diffs.into_iter().filter(|d| !d.is_empty()).collect();
    assert!(
        diffs.is_empty(),
        "differences from the Go exporter:\n{}",
        diffs.join("\n")
    );
}

#[test]
fn brotli_matches_go() {
    let dir = testkit::scratch_dir("http-br");
    let cfg = write_config(
        &dir,
        r#"  br:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      compression: br
      fail_if_body_not_matches_regexp: ["compressed hello"]
  br_any:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      compression: br
  br_limit:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      compression: br
      body_size_limit: 1MB
  br_asked:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      compression: br
      headers:
        Accept-Encoding: "br, gzip;q=0.5"
"#,
    );
    let (go, ours) = start_both(&cfg);
    let ok = brotli(b"ok");
    let (seen_port, seen) =
        server(move |_| Some(response("200 OK", "Content-Encoding: br\r\n", &ok)));
    let t = compression_target();
    let h = format!("http://127.0.0.1:{t}");

    // `compression` alone sends no Accept-Encoding (0.23 does not either).
    let body = probe(&ours, "br_any", &format!("http://127.0.0.1:{seen_port}/"));
    assert!(body.contains("probe_success 1"), "{body}");
    let vigie = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(vigie.header("accept-encoding"), None, "{vigie:?}");
    let body = probe(&ours, "br_asked", &format!("http://127.0.0.1:{seen_port}/"));
    assert!(body.contains("probe_success 1"), "{body}");
    let vigie = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(vigie.header("accept-encoding"), Some("br, gzip;q=0.5"));

    // Decoded: the body regex sees the text, the length is the decoded one.
    let body = probe(&ours, "br", &format!("{h}/br"));
    assert!(body.contains("probe_success 1"), "{body}");
    assert_eq!(
        value(&body, "probe_http_uncompressed_body_length").as_deref(),
        Some("1700"),
        "{body}"
    );
    // The limit applies to the decoded size (3 MiB > 1 MiB from a few bytes).
    let body = probe(&ours, "br_limit", &format!("{h}/br-huge"));
    assert!(body.contains("probe_success 0"), "{body}");
    assert!(body.contains("response body too large"), "{body}");
    for (path, module) in [("/br-cut", "br_any"), ("/plain", "br_any")] {
        let body = probe(&ours, module, &format!("{h}{path}"));
        assert!(body.contains("probe_success 0"), "{path}: {body}");
    }

    let Some(go) = &go else { return };
    let before = seen.lock().unwrap().len();
    for m in ["br_any", "br_asked"] {
        let body = probe(go, m, &format!("http://127.0.0.1:{seen_port}/"));
        assert!(body.contains("probe_success 1"), "{body}");
    }
    let from_go: Vec<Option<String>> = seen.lock().unwrap()[before..]
        .iter()
        .map(|r| r.header("accept-encoding").map(str::to_owned))
        .collect();
    assert_eq!(from_go, [None, Some("br, gzip;q=0.5".to_owned())]);
    assert_same(
        [
            ("br", "/br"),
            ("br_any", "/br-chunked"),
            ("br_limit", "/br"),
            ("br_limit", "/br-huge"),
            ("br_any", "/br-cut"),
            ("br_any", "/plain"),
        ]
        .iter()
        .map(|(m, p)| compare(go, &ours, m, &format!("{h}{p}"), &[]))
        .collect(),
    );
}

/// A token server: `/token` wants basic auth, `/token-params` the
/// credentials in the form, `/token-deny` refuses, `/token-slow` never answers.
fn token_server() -> (u16, Log) {
    server(|req| {
        let path = req.line.split_whitespace().nth(1).unwrap_or("/");
        let token = |t: &str| {
            let json =
                format!(r#"{{"access_token":"{t}","token_type":"bearer","expires_in":3600}}"#);
            response(
                "200 OK",
                "Content-Type: application/json\r\n",
                json.as_bytes(),
            )
        };
        let denied = response(
            "401 Unauthorized",
            "Content-Type: application/json\r\n",
            br#"{"error":"invalid_client"}"#,
        );
        // base64("client:s3cret")
        let basic_ok = req.header("authorization") == Some("Basic Y2xpZW50OnMzY3JldA==");
        let form_ok = req.body.contains("client_id=client")
            && req.body.contains("client_secret=file-s3cret")
            && req.header("authorization").is_none();
        Some(match path {
            "/token" if basic_ok => token("tok-basic"),
            "/token-params" if form_ok => token("tok-params"),
            "/token-slow" => return None,
            _ => denied,
        })
    })
}

/// The probed target: 200 only with one of the tokens the token server hands out.
fn protected_target() -> (u16, Log) {
    server(|req| {
        Some(match req.header("authorization") {
            Some("Bearer tok-basic" | "Bearer tok-params") => response("200 OK", "", b"welcome"),
            _ => response("401 Unauthorized", "", b"who are you"),
        })
    })
}

#[test]
fn oauth2_matches_go() {
    let dir = testkit::scratch_dir("http-oauth2");
    let (tok, tokens) = token_server();
    let (target, hits) = protected_target();
    let secret_file = dir.join("secret");
    std::fs::write(&secret_file, "file-s3cret\n").unwrap();
    let cfg = write_config(
        &dir,
        &format!(
            r#"  oauth_basic:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      oauth2:
        client_id: client
        client_secret: s3cret
        token_url: http://127.0.0.1:{tok}/token
        scopes: [probe, "read:all"]
        endpoint_params: {{audience: vigie}}
  oauth_params:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      oauth2:
        client_id: client
        client_secret_file: {secret}
        token_url: http://127.0.0.1:{tok}/token-params
  oauth_deny:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      oauth2:
        client_id: client
        client_secret: wrong
        token_url: http://127.0.0.1:{tok}/token-deny
  oauth_slow:
    prober: http
    timeout: 2s
    http:
      preferred_ip_protocol: ip4
      oauth2:
        client_id: client
        client_secret: s3cret
        token_url: http://127.0.0.1:{tok}/token-slow
  oauth_down:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      oauth2:
        client_id: client
        client_secret: s3cret
        token_url: http://127.0.0.1:{closed}/token
"#,
            secret = secret_file.display(),
            closed = closed_port(),
        ),
    );
    let (go, ours) = start_both(&cfg);
    let t = format!("http://127.0.0.1:{target}/");

    // Basic auth style: one token request, then the cached token.
    for _ in 0..3 {
        let body = probe(&ours, "oauth_basic", &t);
        assert!(body.contains("probe_success 1"), "{body}");
    }
    let vigie_tokens: Vec<Seen> = tokens
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.is_vigie())
        .cloned()
        .collect();
    assert_eq!(vigie_tokens.len(), 1, "{vigie_tokens:?}");
    let req = &vigie_tokens[0];
    assert!(req.line.starts_with("POST /token "), "{req:?}");
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        req.body,
        "audience=vigie&grant_type=client_credentials&scope=probe+read%3Aall"
    );
    let vigie_hits: Vec<Seen> = hits
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.is_vigie())
        .cloned()
        .collect();
    assert_eq!(vigie_hits.len(), 3);
    assert!(vigie_hits
        .iter()
        .all(|r| r.header("authorization") == Some("Bearer tok-basic")));

    // Params style: basic auth is refused, the form is accepted.
    let body = probe(&ours, "oauth_params", &t);
    assert!(body.contains("probe_success 1"), "{body}");
    let to_params: Vec<Seen> = tokens
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.is_vigie() && r.line.starts_with("POST /token-params "))
        .cloned()
        .collect();
    assert_eq!(to_params.len(), 2, "{to_params:?}");
    assert!(to_params[0].header("authorization").is_some());
    assert_eq!(
        to_params[1].body,
        "client_id=client&client_secret=file-s3cret&grant_type=client_credentials"
    );

    // Refused, unreachable, too slow: failed probes with the reason.
    let body = probe(&ours, "oauth_deny", &t);
    assert!(body.contains("probe_success 0"), "{body}");
    assert!(
        body.contains("oauth2: cannot fetch token: 401 Unauthorized"),
        "{body}"
    );
    let body = probe(&ours, "oauth_down", &t);
    assert!(body.contains("probe_success 0"), "{body}");
    assert!(body.contains("connection refused"), "{body}");
    let start = Instant::now();
    let body = probe(&ours, "oauth_slow", &t);
    assert!(
        start.elapsed() < Duration::from_millis(2800),
        "{:?}",
        start.elapsed()
    );
    assert!(body.contains("probe_success 0"), "{body}");
    assert!(
        body.contains("oauth2: token request: context deadline exceeded"),
        "{body}"
    );
    let (_, _, debug) = testkit::http_get(&format!(
        "{}&debug=true",
        probe_url(&ours, "oauth_deny", &t)
    ));
    assert!(debug.contains("msg=\"Error for HTTP request\""), "{debug}");
    assert!(debug.contains("oauth2: cannot fetch token"), "{debug}");

    let Some(go) = &go else { return };
    let go_start = hits.lock().unwrap().len();
    assert_same(
        ["oauth_basic", "oauth_params", "oauth_deny", "oauth_down"]
            .iter()
            .map(|m| compare(go, &ours, m, &t, &[]))
            .collect(),
    );
    // Go sent the same token requests and the same bearer tokens.
    let go_tokens: Vec<Seen> = tokens
        .lock()
        .unwrap()
        .iter()
        .filter(|r| !r.is_vigie())
        .cloned()
        .collect();
    let bodies = |path: &str, v: &[Seen]| -> Vec<(Option<String>, String)> {
        v.iter()
            .filter(|r| r.line.starts_with(&format!("POST {path} ")))
            .map(|r| (r.header("authorization").map(str::to_owned), r.body.clone()))
            .collect()
    };
    let ours_tokens: Vec<Seen> = tokens
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.is_vigie())
        .cloned()
        .collect();
    assert_eq!(
        bodies("/token", &go_tokens)[0],
        bodies("/token", &ours_tokens)[0]
    );
    assert_eq!(
        bodies("/token-params", &go_tokens)[..2],
        bodies("/token-params", &ours_tokens)[..2]
    );
    let go_hits: Vec<Seen> = hits.lock().unwrap()[go_start..]
        .iter()
        .filter(|r| !r.is_vigie())
        .cloned()
        .collect();
    let auths: Vec<&str> = go_hits
        .iter()
        .filter_map(|r| r.header("authorization"))
        .collect();
    assert_eq!(
        auths,
        ["Bearer tok-basic", "Bearer tok-params"],
        "{go_hits:?}"
    );
}

/// A proxy that records each request head it gets: CONNECT is tunnelled,
/// an absolute-form request is forwarded in origin form. Host names in
/// `names` are dialled at the address given (names the exporters cannot
/// resolve themselves).
fn recording_proxy(names: &[(&str, &str)]) -> (u16, Log) {
    let names: Vec<(String, String)> = names
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    recorded_listener(Duration::from_secs(5), move |seen, mut r, s| {
        let mut parts = seen.line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let target = parts.next().unwrap_or("").to_owned();
        let dial = |authority: &str| {
            let (h, p) = authority.rsplit_once(':').unwrap_or((authority, "80"));
            let h = names
                .iter()
                .find(|(n, _)| n == h)
                .map_or(h, |(_, a)| a.as_str());
            TcpStream::connect(format!("{h}:{p}"))
        };
        let mut client = s;
        if method != "CONNECT" {
            let rest = target.strip_prefix("http://").unwrap_or("");
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let Ok(mut up) = dial(authority) else {
                let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
                return;
            };
            let mut req = format!("{method} {path} HTTP/1.1\r\n");
            for (k, v) in &seen.headers {
                req.push_str(&format!("{k}: {v}\r\n"));
            }
            req.push_str("\r\n");
            req.push_str(&seen.body);
            let _ = up.write_all(req.as_bytes());
            let _ = std::io::copy(&mut up, &mut client);
            return;
        }
        let Ok(up) = dial(&target) else {
            let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
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
    })
}

fn connect_proxy() -> (u16, Log) {
    recording_proxy(&[])
}

#[test]
fn proxy_connect_header_matches_go() {
    let dir = testkit::scratch_dir("http-connect-header");
    let (certs, valid, _, _, _) = make_certs(&dir);
    let https = https_server(&valid);
    let (proxy, connects) = connect_proxy();
    let cfg = write_config(
        &dir,
        &format!(
            r#"  via_proxy:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      proxy_url: http://127.0.0.1:{proxy}
      proxy_connect_header:
        x-proxy-token: [s3cret]
        X-Multi: [one, two]
      tls_config:
        ca_file: {ca}
"#,
            ca = certs.ca_file.display()
        ),
    );
    let (go, ours) = start_both(&cfg);
    let t = format!("https://localhost:{https}/");
    let body = probe(&ours, "via_proxy", &t);
    assert!(body.contains("probe_success 1"), "{body}");
    let seen = connects.lock().unwrap().last().cloned().unwrap();
    // The prober resolved the target: as in Go, the proxy is asked for the IP.
    assert_eq!(seen.line, format!("CONNECT 127.0.0.1:{https} HTTP/1.1"));
    let extra = |s: &Seen| -> Vec<(String, String)> {
        s.headers
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-"))
            .cloned()
            .collect()
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };
    assert_eq!(
        extra(&seen),
        pairs(&[
            ("X-Multi", "one"),
            ("X-Multi", "two"),
            ("x-proxy-token", "s3cret")
        ])
    );

    let Some(go) = &go else { return };
    let before = connects.lock().unwrap().len();
    assert_same(vec![compare(go, &ours, "via_proxy", &t, &[])]);
    let log = connects.lock().unwrap();
    let go_seen = log[before..]
        .iter()
        .find(|s| !s.is_vigie())
        .cloned()
        .unwrap();
    assert_eq!(go_seen.line, seen.line);
    assert_eq!(extra(&go_seen), extra(&seen));
}

/// What a proxy got, without what differs by design (the User-Agent names
/// Vigie): the request line and the headers in the order received.
fn at_proxy(s: &Seen) -> (String, Vec<(String, String)>) {
    let headers = s
        .headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("user-agent"))
        .cloned()
        .collect();
    (s.line.clone(), headers)
}

/// Probes `target` with `module` on Go and on Vigie and returns what the
/// proxy got from each (all requests of the probe, in order).
type AtProxy = Vec<(String, Vec<(String, String)>)>;
fn proxy_sees(go: &Proc, ours: &Proc, log: &Log, module: &str, target: &str) -> (AtProxy, AtProxy) {
    let mut out = Vec::new();
    for p in [go, ours] {
        let before = log.lock().unwrap().len();
        probe(p, module, target);
        out.push(
            log.lock().unwrap()[before..]
                .iter()
                .map(at_proxy)
                .collect::<Vec<_>>(),
        );
    }
    let ours = out.pop().unwrap();
    (out.pop().unwrap(), ours)
}

/// Probes each (module, target) with both exporters through the recording
/// proxy: the proxy must see the same requests, the samples must match.
fn same_through_proxy(go: &Proc, ours: &Proc, log: &Log, cases: &[(&str, &String)]) {
    let mut diffs = Vec::new();
    for (m, t) in cases {
        let (g, o) = proxy_sees(go, ours, log, m, t);
        assert_eq!(
            o, g,
            "{m} {t}: what the proxy got from Vigie (left) and Go (right)"
        );
        diffs.push(compare(go, ours, m, t, &[]));
    }
    assert_same(diffs);
}

#[test]
fn proxy_url_credentials_match_go() {
    let dir = testkit::scratch_dir("http-proxy-auth");
    let (certs, valid, _, _, _) = make_certs(&dir);
    let https = https_server(&valid);
    let (plain, _) = server(|_| Some(response("200 OK", "", b"hello")));
    let (proxy, log) = recording_proxy(&[]);
    let cfg = write_config(
        &dir,
        &format!(
            r#"  auth:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      proxy_url: http://prober:p%40ss%3Aword@127.0.0.1:{proxy}
      tls_config:
        ca_file: {ca}
  auth_headers:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      proxy_url: http://prober:s3cret@127.0.0.1:{proxy}
      proxy_connect_header:
        Proxy-Authorization: [Basic overridden]
        X-Extra: [one]
        a-lower: [two]
      tls_config:
        ca_file: {ca}
  user_only:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      proxy_url: http://prober@127.0.0.1:{proxy}
      tls_config:
        ca_file: {ca}
"#,
            ca = certs.ca_file.display()
        ),
    );
    let (go, ours) = start_both(&cfg);
    let plain_t = format!("http://127.0.0.1:{plain}/path?q=1");
    let https_t = format!("https://localhost:{https}/");

    // base64("prober:p@ss:word"): the credentials are sent decoded.
    let auth = "Basic cHJvYmVyOnBAc3M6d29yZA==";
    for t in [&plain_t, &https_t] {
        let before = log.lock().unwrap().len();
        let body = probe(&ours, "auth", t);
        assert!(body.contains("probe_success 1"), "{t}: {body}");
        let seen = log.lock().unwrap()[before..].to_vec();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(
            seen[0].header("proxy-authorization"),
            Some(auth),
            "{seen:?}"
        );
    }
    let seen = log.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen.line, format!("CONNECT 127.0.0.1:{https} HTTP/1.1"));
    // /config hides the password as Go's url.Redacted does.
    let proxy_lines = |p: &Proc| -> Vec<String> {
        let (_, _, text) = testkit::http_get(&format!("{}/config", p.base()));
        text.lines()
            .filter(|l| l.contains("proxy_url"))
            .map(|l| l.trim().to_owned())
            .collect()
    };
    let shown = proxy_lines(&ours);
    assert_eq!(
        shown[0],
        format!("proxy_url: http://prober:xxxxx@127.0.0.1:{proxy}")
    );

    let Some(go) = &go else { return };
    assert_eq!(proxy_lines(go), shown);
    same_through_proxy(
        go,
        &ours,
        &log,
        &[
            ("auth", &plain_t),
            ("auth", &https_t),
            ("auth_headers", &https_t),
            ("auth_headers", &plain_t),
            ("user_only", &https_t),
            ("user_only", &plain_t),
        ],
    );
}

/// A name only the test proxy knows (`.invalid` never resolves).
const PROXY_ONLY: &str = "vigie-behind-proxy.invalid";

#[test]
fn skip_resolve_phase_with_proxy_matches_go() {
    let dir = testkit::scratch_dir("http-skip-resolve");
    let (certs, valid, _, _, _) = make_certs(&dir);
    let https = https_server(&valid);
    let (plain, _) = server(|req| {
        Some(if req.line.starts_with("GET /redirect ") {
            response("302 Found", "Location: /\r\n", b"")
        } else {
            response("200 OK", "", b"hello")
        })
    });
    let (proxy, log) = recording_proxy(&[(PROXY_ONLY, "127.0.0.1")]);
    let module = |name: &str, extra: &str| {
        format!(
            r#"  {name}:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: {ca}
        server_name: localhost
{extra}"#,
            ca = certs.ca_file.display()
        )
    };
    let skip = "      skip_resolve_phase_with_proxy: true\n";
    let via = format!("      proxy_url: http://127.0.0.1:{proxy}\n");
    let cfg = write_config(
        &dir,
        &[
            module("skip", &format!("{skip}{via}")),
            module("skip_auth", &format!("{skip}      proxy_url: http://u:p@127.0.0.1:{proxy}\n      proxy_connect_header: {{X-Via: [test]}}\n")),
            module("resolve", &via),
            module("skip_no_proxy", skip),
        ]
        .concat(),
    );
    let (go, ours) = start_both(&cfg);
    let local = format!("http://localhost:{plain}/");
    let local_tls = format!("https://localhost:{https}/");
    let hidden = format!("http://{PROXY_ONLY}:{plain}/");
    let hidden_tls = format!("https://{PROXY_ONLY}:{https}/");
    let hidden_redirect = format!("http://{PROXY_ONLY}:{plain}/redirect");
    let local_redirect = format!("http://localhost:{plain}/redirect");

    // The proxy gets the name, the prober reports no resolution.
    for t in [&local, &local_tls, &hidden, &hidden_tls, &hidden_redirect] {
        let before = log.lock().unwrap().len();
        let body = probe(&ours, "skip", t);
        assert!(body.contains("probe_success 1"), "{t}: {body}");
        for absent in [
            "probe_ip_protocol",
            "probe_ip_addr_hash",
            "probe_dns_lookup_time_seconds",
        ] {
            assert!(!body.contains(absent), "{t}: {body}");
        }
        let first = log.lock().unwrap()[before].line.clone();
        assert!(
            first.contains("localhost:") || first.contains(PROXY_ONLY),
            "{first}"
        );
    }
    let body = probe(&ours, "skip", &local);
    assert!(!body.contains("phase=\"resolve\""), "{body}");
    let body = probe(&ours, "skip", &hidden_redirect);
    assert!(body.contains("probe_http_redirects 1"), "{body}");
    assert!(body.contains("phase=\"resolve\""), "{body}");
    // Without skip, the name the proxy knows does not resolve here.
    let body = probe(&ours, "resolve", &hidden);
    assert!(body.contains("probe_success 0"), "{body}");
    assert!(body.contains("probe_ip_protocol"), "{body}");

    let Some(go) = &go else { return };
    same_through_proxy(
        go,
        &ours,
        &log,
        &[
            ("skip", &local),
            ("skip", &local_tls),
            ("skip", &hidden),
            ("skip", &hidden_tls),
            ("skip", &hidden_redirect),
            ("skip_auth", &local),
            ("skip_auth", &hidden_tls),
            ("resolve", &local),
            ("resolve", &local_tls),
            ("resolve", &hidden),
            // The Referer of the second request names the IP the prober dialled.
            ("resolve", &local_redirect),
            ("skip", &local_redirect),
            ("skip_no_proxy", &local),
            ("skip_no_proxy", &hidden),
        ],
    );
}

/// `--config.check` on both binaries: whether the config loads.
fn loads(bin: &str, path: &std::path::Path) -> bool {
    std::process::Command::new(bin)
        .arg("--config.check")
        .arg(format!("--config.file={}", path.display()))
        .output()
        .unwrap()
        .status
        .success()
}

/// 0.23's prometheus/common predates `no_proxy` and
/// `proxy_from_environment`: both binaries refuse them, in the module and
/// in its oauth2 block; `skip_resolve_phase_with_proxy` loads.
#[test]
fn proxy_keys_load_as_go() {
    let dir = testkit::scratch_dir("http-proxy-keys");
    let cases = [
        ("      skip_resolve_phase_with_proxy: true\n", true),
        ("      no_proxy: example.com\n", false),
        ("      proxy_from_environment: true\n", false),
        (
            "      oauth2: {client_id: a, client_secret: s, token_url: 'http://t/', proxy_url: 'http://u:p@127.0.0.1:3128'}\n",
            true,
        ),
        (
            "      oauth2: {client_id: a, client_secret: s, token_url: 'http://t/', no_proxy: x}\n",
            false,
        ),
        (
            "      oauth2: {client_id: a, client_secret: s, token_url: 'http://t/', proxy_from_environment: true}\n",
            false,
        ),
    ];
    let go = testkit::require(GO);
    for (i, (key, ok)) in cases.iter().enumerate() {
        let path = dir.join(format!("check{i}.yml"));
        std::fs::write(
            &path,
            format!("modules:\n  m:\n    prober: http\n    http:\n      proxy_url: http://127.0.0.1:3128\n{key}"),
        )
        .unwrap();
        assert_eq!(loads(OURS, &path), *ok, "{key}");
        if let Some(go) = &go {
            assert_eq!(loads(go.to_str().unwrap(), &path), *ok, "go: {key}");
        }
    }
}
