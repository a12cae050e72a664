//! Benchmark of vigie-jitsi-exporter (run by hand: `bash bench/jitsi/run.sh`).
//!
//! Serves the three upstream documents (videobridge and Jicofo examples, a
//! real Prosody 0.12 capture) from loopback servers in this process, starts
//! the release exporter against them, then per iteration fetches every
//! upstream directly (the slowest fetch is the floor a scrape cannot beat)
//! and scrapes the exporter once. Prints the median scrape latency over
//! the slowest fetch (target <= 1 ms) and the exporter's resident memory
//! (target <= 5 MB).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ITERATIONS: usize = 1000;
const WARMUP: usize = 100;

fn serve(body: Vec<u8>, content_type: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let body = body.clone();
            std::thread::spawn(move || {
                conn.set_nodelay(true).ok();
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                loop {
                    let mut line = String::new();
                    // Read the request head.
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let mut msg = head.into_bytes();
                    msg.extend_from_slice(&body);
                    if w.write_all(&msg).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A keep-alive HTTP/1.1 client on one connection.
struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
    host: String,
}

impl Client {
    fn new(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).ok();
        Client {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
            host: addr.to_string(),
        }
    }

    /// GETs `path`; returns the body length.
    fn get(&mut self, path: &str) -> usize {
        write!(self.w, "GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host).unwrap();
        let mut len = 0usize;
        let mut status = String::new();
        self.r.read_line(&mut status).unwrap();
        assert!(status.contains(" 200 "), "{status}");
        loop {
            let mut line = String::new();
            self.r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0u8; len];
        self.r.read_exact(&mut body).unwrap();
        len
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn rss_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixtures = root.join("tests/fixtures");
    let read = |n: &str| std::fs::read(fixtures.join(n)).unwrap();
    let jvb = serve(read("jvb_colibri_stats_example.json"), "application/json");
    let jicofo = serve(read("jicofo_stats_example.json"), "application/json");
    let prosody = serve(
        read("prosody_0.12_openmetrics_sessions.txt"),
        "application/openmetrics-text; version=0.0.4",
    );

    let bin = std::env::args().nth(1).unwrap_or_else(|| {
        root.join("../../target/release/vigie-jitsi-exporter")
            .display()
            .to_string()
    });
    let dir = std::env::temp_dir().join(format!("vigie-jitsi-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("jitsi.yml");
    std::fs::write(
        &cfg,
        format!(
            "timeout: 5s\njvb:\n  url: http://{jvb}/colibri/stats\njicofo:\n  url: http://{jicofo}/stats\nprosody:\n  url: http://{prosody}/metrics\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(&bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .args(std::env::args().skip(2))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let addr: SocketAddr = loop {
        let mut line = String::new();
        assert!(log.read_line(&mut line).unwrap() > 0, "exporter exited");
        if line.contains("Listening on") {
            let a = line
                .split("address=")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap();
            break a.parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in log.lines() {});

    let mut up = [Client::new(jvb), Client::new(jicofo), Client::new(prosody)];
    let paths = ["/colibri/stats", "/stats", "/metrics"];
    let mut exp = Client::new(addr);
    let mut scrape_ms = Vec::with_capacity(ITERATIONS);
    let mut slowest_ms = Vec::with_capacity(ITERATIONS);
    let mut over_ms = Vec::with_capacity(ITERATIONS);
    let mut size = 0;
    let mut cpu_start = 0.0;
    for i in 0..WARMUP + ITERATIONS {
        if i == WARMUP {
            cpu_start = cpu_seconds(child.id());
        }
        let mut slowest = 0f64;
        for (c, p) in up.iter_mut().zip(paths) {
            let t = Instant::now();
            c.get(p);
            slowest = slowest.max(t.elapsed().as_secs_f64() * 1e3);
        }
        let t = Instant::now();
        size = exp.get("/metrics");
        let s = t.elapsed().as_secs_f64() * 1e3;
        if i >= WARMUP {
            scrape_ms.push(s);
            slowest_ms.push(slowest);
            over_ms.push(s - slowest);
        }
    }
    let cpu_ms = (cpu_seconds(child.id()) - cpu_start) * 1e3 / ITERATIONS as f64;
    std::thread::sleep(Duration::from_millis(100));
    let (rss, hwm) = (rss_kb(child.id(), "VmRSS:"), rss_kb(child.id(), "VmHWM:"));
    let (anon, file) = (
        rss_kb(child.id(), "RssAnon:"),
        rss_kb(child.id(), "RssFile:"),
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    let (ms, mf, mo) = (
        median(&mut scrape_ms),
        median(&mut slowest_ms),
        median(&mut over_ms),
    );
    println!(
        "vigie-jitsi-exporter, {ITERATIONS} scrapes of 3 upstreams ({size} bytes of output each)"
    );
    println!("  median scrape latency            {ms:.3} ms");
    println!("  median slowest upstream fetch    {mf:.3} ms");
    println!(
        "  median scrape over slowest fetch {mo:.3} ms   (target <= 1 ms) {}",
        verdict(mo <= 1.0)
    );
    println!(
        "  resident memory                  {:.2} MB (peak {:.2} MB)   (target <= 5 MB) {}",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        verdict(rss as f64 / 1024.0 <= 5.0)
    );
    println!(
        "    of which private (RssAnon) {:.2} MB, mapped binary and shared libraries (RssFile) {:.2} MB",
        anon as f64 / 1024.0,
        file as f64 / 1024.0
    );
    println!("  exporter CPU per scrape          {cpu_ms:.3} ms (user+system, 10 ms ticks over all scrapes)");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "  machine load average             {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("  Go exporter (systemli) for comparison: not packaged in Debian, not measured");
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "OK"
    } else {
        "OVER TARGET"
    }
}
