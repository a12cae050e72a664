//! Test helpers: a small HTTP/1.1 server on loopback that plays one
//! upstream behaviour, a real Prosody, and scraping the exporter.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use vigie_common::testkit;

/// How a test upstream answers.
#[derive(Clone)]
pub enum Behaviour {
    /// 200 with this body and content type.
    Serve { body: Vec<u8>, content_type: String },
    /// Accepts, reads the request, never answers.
    Hang,
    /// Sends the head, then one body byte every 100 ms, forever.
    Dribble,
    /// 502 Bad Gateway.
    BadGateway,
    /// Announces a Content-Length, sends half the body, closes.
    Truncate { body: Vec<u8>, content_type: String },
    /// Requires basic auth `user:pass` (base64 given), then serves.
    Auth { token: String, body: Vec<u8> },
}

/// A running test upstream; stops accepting when dropped.
pub struct Upstream {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

pub fn serve_json(body: impl Into<Vec<u8>>) -> Upstream {
    start(Behaviour::Serve {
        body: body.into(),
        content_type: "application/json".into(),
    })
}

pub fn start(b: Behaviour) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stop2.load(Ordering::SeqCst) {
                break;
            }
            let Ok(conn) = conn else { continue };
            let b = b.clone();
            let stop3 = Arc::clone(&stop2);
            std::thread::spawn(move || handle(conn, &b, &stop3));
        }
    });
    Upstream { addr, stop }
}

fn read_head(conn: &mut TcpStream) -> Option<String> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn handle(mut conn: TcpStream, b: &Behaviour, stop: &AtomicBool) {
    // Keep-alive: answer requests on this connection until it closes.
    while let Some(head) = read_head(&mut conn) {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let ok = match b {
            Behaviour::Serve { body, content_type } => {
                respond(&mut conn, "200 OK", content_type, body)
            }
            Behaviour::BadGateway => respond(
                &mut conn,
                "502 Bad Gateway",
                "text/html",
                b"<html>bad gateway</html>",
            ),
            Behaviour::Hang => {
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                false
            }
            Behaviour::Dribble => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{";
                if conn.write_all(head.as_bytes()).is_err() {
                    return;
                }
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(100));
                    if conn.write_all(b" ").is_err() {
                        return;
                    }
                }
                false
            }
            Behaviour::Truncate { body, content_type } => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&body[..body.len() / 2]);
                false
            }
            Behaviour::Auth { token, body } => {
                let want = format!("authorization: basic {}", token.to_ascii_lowercase());
                if head.to_ascii_lowercase().contains(&want) {
                    respond(&mut conn, "200 OK", "application/json", body)
                } else {
                    respond(&mut conn, "401 Unauthorized", "text/plain", b"no")
                }
            }
        };
        if !ok {
            return;
        }
    }
}

fn respond(conn: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) -> bool {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).is_ok() && conn.write_all(body).is_ok()
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

/// Writes `text` as a config file in a fresh scratch directory.
pub fn config_file(name: &str, text: &str) -> PathBuf {
    let dir = testkit::scratch_dir(name);
    let p = dir.join("jitsi.yml");
    std::fs::write(&p, text).unwrap();
    p
}

pub fn exporter(args: &[&str]) -> testkit::Proc {
    testkit::spawn_exporter(env!("CARGO_BIN_EXE_vigie-jitsi-exporter"), args)
}

pub fn exporter_with_config(name: &str, text: &str) -> testkit::Proc {
    let cfg = config_file(name, text);
    let arg = format!("--config.file={}", cfg.display());
    exporter(&[&arg, "--log.level=debug"])
}

/// GET /metrics: status and body.
pub fn scrape(p: &testkit::Proc) -> (u16, String) {
    let (status, _, body) = testkit::http_get(&format!("{}/metrics", p.base()));
    (status, body)
}

/// The value of the sample line that starts with `series ` (exact series text).
pub fn value(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Names systemli imposes that promtool's lints dislike (counters without
/// `_total`, `_milliseconds`, the unprefixed `total_ice_*`).
pub const SYSTEMLI_NAMES: &[&str] = &["jitsi_", "total_ice_"];

/// A real Prosody with mod_http_openmetrics on loopback, stopped on drop.
pub struct Prosody {
    pub proc: testkit::Proc,
    pub http: SocketAddr,
    pub dir: PathBuf,
}

impl Prosody {
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.http)
    }
}

/// Starts Prosody (None when it is not installed and CI is not set).
pub fn start_prosody(name: &str) -> Option<Prosody> {
    let prosody = testkit::require("prosody")?;
    let dir = testkit::scratch_dir(name);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    let (http, c2s, s2s) = (
        testkit::free_port(),
        testkit::free_port(),
        testkit::free_port(),
    );
    let d = dir.display();
    let cfg = format!(
        r#"-- throwaway Prosody config written by the vigie-jitsi-exporter tests
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
certificates = "{d}/certs"
log = {{ {{ levels = {{ min = "info" }}, to = "console" }} }}
run_as_root = true
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
http_ports = {{ {http} }}
http_interfaces = {{ "127.0.0.1" }}
https_ports = {{ }}
https_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s} }}
c2s_direct_tls_ports = {{ }}
s2s_ports = {{ {s2s} }}
s2s_direct_tls_ports = {{ }}
statistics = "internal"
modules_enabled = {{ "http_openmetrics"; "bosh"; }}
VirtualHost "localhost"
Component "conference.localhost" "muc"
"#
    );
    let cfg_path = dir.join("prosody.cfg.lua");
    std::fs::write(&cfg_path, cfg).unwrap();
    let proc = testkit::spawn_logged(
        prosody.to_str().unwrap(),
        &[
            "--config".to_owned(),
            cfg_path.display().to_string(),
            "-F".to_owned(),
        ],
    );
    let addr: SocketAddr = format!("127.0.0.1:{http}").parse().unwrap();
    assert!(
        testkit::wait_port(addr, Duration::from_secs(20)),
        "prosody did not listen on {addr}"
    );
    // Serving starts with the listener; wait until /metrics answers 200.
    let url = format!("http://{addr}/metrics");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, _) = testkit::http_get(&url);
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "prosody /metrics answered {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(Prosody {
        proc,
        http: addr,
        dir,
    })
}

/// `promtool check metrics`, apart from systemli's names and the `_count`
/// lint on Jicofo's own key names (`bridge_selector.bridge_count` is
/// `jicofo_bridge_selector_bridge_count` by the issue's naming rule).
pub fn promtool_ok(body: &str) {
    if let Err(e) = testkit::promtool_check(body, SYSTEMLI_NAMES) {
        let rest: Vec<&str> = e
            .lines()
            .filter(|l| {
                !(l.starts_with("jicofo_") && l.contains("should not have \"_count\" suffix"))
            })
            .collect();
        assert!(rest.is_empty(), "promtool: {}\n{body}", rest.join("\n"));
    }
}
