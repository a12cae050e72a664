//! Test helpers shared by the exporters' integration tests (feature
//! `testkit`): start a binary on a free loopback port and wait until it
//! listens, scrape it, run the real promtool, find Debian's Go exporters.
//! Processes are stopped by PID when their handle drops.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A process started by a test; killed (by PID) and reaped on drop.
pub struct Proc {
    pub child: Child,
    /// The address it listens on, when known.
    pub addr: Option<SocketAddr>,
    /// Everything it wrote to stderr so far.
    pub log: Arc<Mutex<String>>,
}

impl Proc {
    /// `http://ADDR` of the process.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr.expect("process address"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Text of stderr so far.
    pub fn log_text(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Sends a signal by PID.
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status();
    }

    /// Waits for exit up to `timeout`; returns the exit code if it exited.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Path of a binary of this workspace built for the tests
/// (`env!("CARGO_BIN_EXE_<name>")` in the calling test).
pub fn spawn_exporter(bin: &str, args: &[&str]) -> Proc {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    if !args.iter().any(|a| a.starts_with("--web.listen-address")) {
        all.push("--web.listen-address=127.0.0.1:0".into());
    }
    let p = spawn_logged(bin, &all);
    wait_listening(p, Duration::from_secs(20))
}

/// Starts a command with stderr captured into [`Proc::log`].
pub fn spawn_logged(bin: &str, args: &[String]) -> Proc {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().expect("stderr");
    let l2 = Arc::clone(&log);
    std::thread::spawn(move || {
        let mut r = BufReader::new(stderr);
        let mut line = String::new();
        while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            if std::env::var_os("VIGIE_TEST_LOG").is_some() {
                eprint!("{line}");
            }
            if let Ok(mut l) = l2.lock() {
                l.push_str(&line);
            }
            line.clear();
        }
    });
    Proc {
        child,
        addr: None,
        log,
    }
}

/// Waits for the "Listening on" log line and records its address.
pub fn wait_listening(mut p: Proc, timeout: Duration) -> Proc {
    let deadline = Instant::now() + timeout;
    loop {
        let text = p.log_text();
        if let Some(addr) = listening_address(&text) {
            p.addr = Some(addr);
            return p;
        }
        if let Ok(Some(st)) = p.child.try_wait() {
            panic!("process exited ({st}) before listening; log:\n{text}");
        }
        if Instant::now() > deadline {
            panic!("process did not listen within {timeout:?}; log:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn listening_address(log: &str) -> Option<SocketAddr> {
    log.lines()
        .filter(|l| l.contains("Listening on"))
        .find_map(|l| {
            l.split("address=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits until a TCP connect to `addr` succeeds.
pub fn wait_port(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A plain HTTP/1.1 GET with no client library: status, headers (lowercase
/// names) and body. Good enough for tests against loopback servers.
pub fn http_get(url: &str) -> (u16, Vec<(String, String)>, String) {
    http_request("GET", url, &[])
}

/// As [`http_get`], with a method and extra headers.
pub fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, String) {
    use std::io::Write;
    let rest = url.strip_prefix("http://").expect("http:// URL");
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut s = std::net::TcpStream::connect(hostport)
        .unwrap_or_else(|e| panic!("connect {hostport}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> (u16, Vec<(String, String)>, String) {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    (status, headers, String::from_utf8_lossy(&body).to_string())
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}

/// The header value of `name` in a header list from [`http_get`].
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Finds a program on PATH (or at an absolute path).
pub fn which(prog: &str) -> Option<PathBuf> {
    if prog.contains('/') {
        let p = PathBuf::from(prog);
        return p.exists().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(prog))
            .find(|p| p.is_file())
    })
}

/// Like [`which`], but a missing program fails the test when `CI` is set
/// (CI installs everything) and skips it otherwise (returns None, prints why).
pub fn require(prog: &str) -> Option<PathBuf> {
    match which(prog) {
        Some(p) => Some(p),
        None if std::env::var_os("CI").is_some() => {
            panic!("{prog} is not installed; .ci/run should have installed it")
        }
        None => {
            eprintln!("SKIP: {prog} is not installed (scripts/test.sh installs it)");
            None
        }
    }
}

/// Runs `promtool check metrics` on `text`, filtering the findings whose
/// metric names match any of `allowed` prefixes (names imposed by the
/// compatibility contract). Returns the remaining findings, or Ok.
pub fn promtool_check(text: &str, allowed: &[&str]) -> Result<(), String> {
    use std::io::Write;
    let promtool = require("promtool").ok_or("promtool missing")?;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let findings: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&out.stdout).lines())
        .map(str::to_owned)
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !allowed.iter().any(|a| l.starts_with(a)))
        .collect();
    if out.status.code() == Some(1) {
        return Err(format!(
            "promtool could not parse the output: {}",
            findings.join("\n")
        ));
    }
    if findings.is_empty() {
        Ok(())
    } else {
        Err(findings.join("\n"))
    }
}

/// Directory for test scratch files under the target dir.
pub fn scratch_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let d = base.join(format!("vigie-{name}-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&d);
    d
}

/// Parses text exposition into `(name{sorted labels}, value)` pairs, for
/// comparing two exporters' outputs sample by sample.
pub fn parse_samples(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = match l.rfind('}') {
                Some(i) => (&l[..=i], l[i + 1..].trim()),
                None => l.split_once(' ')?,
            };
            let value = value.split_whitespace().next()?.to_owned();
            Some((normalize_series(series), value))
        })
        .collect()
}

/// `name{b="2",a="1"}` → `name{a="1",b="2"}`.
pub fn normalize_series(series: &str) -> String {
    let Some(open) = series.find('{') else {
        return series.trim().to_owned();
    };
    let name = &series[..open];
    let inner = series[open + 1..].trim_end_matches('}');
    let mut labels = split_labels(inner);
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

fn split_labels(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_q = false;
    let mut esc = false;
    for c in s.chars() {
        if esc {
            cur.push(c);
            esc = false;
            continue;
        }
        match c {
            '\\' => {
                cur.push(c);
                esc = true;
            }
            '"' => {
                in_q = !in_q;
                cur.push(c);
            }
            ',' if !in_q => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The workspace root (two levels above an exporter crate, one above common).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(Path::to_path_buf).unwrap_or(here)
}

/// Checks what every Vigie binary must do: `--help` and `--version` answer,
/// `/metrics` serves text that the real promtool accepts (apart from
/// `allowed` name prefixes), and a port already in use makes it exit
/// non-zero within 5 s naming the address.
pub fn check_binary_basics(bin: &str, default_port: u16, extra_args: &[&str], allowed: &[&str]) {
    let out = Command::new(bin)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(out.status.success(), "--help failed");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--web.listen-address"), "{help}");
    assert!(
        help.contains(&format!(":{default_port}")),
        "default port in --help: {help}"
    );
    assert!(help.contains("--log.level"), "{help}");

    let out = Command::new(bin)
        .arg("--version")
        .output()
        .expect("run --version");
    assert!(out.status.success(), "--version failed");
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(v.contains("version ") && v.contains("revision"), "{v}");

    let p = spawn_exporter(bin, extra_args);
    let (status, headers, body) = http_get(&format!("{}/metrics", p.base()));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(body.contains("_build_info{"), "{body}");
    if which("promtool").is_some() || std::env::var_os("CI").is_some() {
        promtool_check(&body, allowed).unwrap_or_else(|e| panic!("promtool: {e}"));
    }

    // Port in use.
    let holder = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = holder.local_addr().expect("addr");
    let mut args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
    args.push(format!("--web.listen-address={addr}"));
    let mut p2 = spawn_logged(bin, &args);
    let code = p2.wait_exit(Duration::from_secs(5));
    assert!(
        matches!(code, Some(c) if c != 0),
        "expected a non-zero exit, got {code:?}"
    );
    // The stderr reader thread may still be draining the pipe after the exit.
    let until = Instant::now() + Duration::from_secs(2);
    let mut log = p2.log_text();
    while !(log.contains(&addr.to_string()) && log.contains("in use")) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
        log = p2.log_text();
    }
    assert!(
        log.contains(&addr.to_string()) && log.contains("in use"),
        "{log}"
    );
    drop(holder);
}
