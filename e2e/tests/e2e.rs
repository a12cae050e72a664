//! End to end: the four built exporters on loopback (snmp against a local
//! snmpd that emulates pfSense's pf MIB, jitsi against local JVB/Jicofo/
//! Prosody stand-ins, blackbox against local HTTP, HTTPS and TCP servers and
//! 127.0.0.1 ICMP), a real Prometheus with the shipped scrape jobs (targets
//! rewritten to the test's addresses, intervals to 1 s) and the shipped rule
//! files, then checks through Prometheus' HTTP API: every job up, probes
//! succeed and fail when their target goes away, every rule evaluates
//! without error, every dashboard query returns data.
//!
//! The exporters are the workspace's debug binaries: `cargo test
//! --workspace` builds them; when they are missing (e.g. `cargo test -p
//! vigie-e2e` on a fresh checkout) the test builds them itself with cargo in
//! a separate target directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::json;
use vigie_common::testkit::{self, require, Proc};

const EXPORTERS: [&str; 4] = ["node", "blackbox", "snmp", "jitsi"];

/// Dashboard queries that cannot return data in this test, and why. Keep short.
const SKIP: &[(&str, &str)] = &[(
    r#"jitsi_conference_sizes{job=~"$job",instance=~"$instance"}"#,
    "the JVB fixture is a current videobridge, which no longer sends conference_sizes (older ones do)",
)];

// === binaries ===

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root().join(p) })
        .unwrap_or_else(|| root().join("target"))
}

/// The four exporter binaries; built with cargo into target/e2e-bins when
/// the workspace's target/debug lacks them (a nested cargo on the same
/// target dir would wait for the lock the outer `cargo test` holds).
fn exporter_bins() -> BTreeMap<&'static str, PathBuf> {
    let debug = target_dir().join("debug");
    let bin = |dir: &Path, x: &str| dir.join(format!("vigie-{x}-exporter"));
    if EXPORTERS.iter().all(|x| bin(&debug, x).is_file()) {
        return EXPORTERS.iter().map(|x| (*x, bin(&debug, x))).collect();
    }
    let alt = target_dir().join("e2e-bins");
    eprintln!(
        "e2e: exporter binaries missing in {}; building them into {}",
        debug.display(),
        alt.display()
    );
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.arg("build")
        .arg("--bins")
        .current_dir(root())
        .env("CARGO_TARGET_DIR", &alt);
    for x in EXPORTERS {
        cmd.arg("-p").arg(format!("vigie-{x}-exporter"));
    }
    assert!(
        cmd.status().expect("run cargo build").success(),
        "cargo build of the exporters failed"
    );
    EXPORTERS
        .iter()
        .map(|x| (*x, bin(&alt.join("debug"), x)))
        .collect()
}

// === small loopback servers ===

type Handler = Arc<dyn Fn(&str) -> (u16, &'static str, String) + Send + Sync>;

/// An HTTP/1.1 (or HTTPS) server on 127.0.0.1 answering each request with
/// `handler(path)`, until dropped.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(handler: Handler, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for s in l.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(s) = s else { continue };
                let (h, tls) = (Arc::clone(&handler), tls.clone());
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                    match tls {
                        Some(cfg) => {
                            let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                                return;
                            };
                            let mut t = rustls::StreamOwned::new(conn, s);
                            answer(&mut t, &h);
                            t.conn.send_close_notify();
                            let _ = t.flush();
                        }
                        None => {
                            let mut s = s;
                            answer(&mut s, &h);
                        }
                    }
                });
            }
        });
        Server {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}/", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(s: &mut (impl Read + Write), h: &Handler) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let path = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_owned();
    let (status, ctype, body) = h(&path);
    let _ = write!(
        s,
        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.flush();
}

fn ok_handler() -> Handler {
    Arc::new(|_| (200, "text/plain", "ok\n".to_owned()))
}

/// A CA (written to `dir/ca.pem`) and an HTTPS server config whose leaf is
/// valid for 127.0.0.1 and localhost.
fn tls_config(dir: &Path) -> Arc<rustls::ServerConfig> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "Vigie e2e CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf = leaf.signed_by(&key, &ca, &ca_key).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = rustls_pki_types::CertificateDer::from(leaf.der().to_vec());
    let key = rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
    )
}

/// Stand-ins for JVB (/colibri/stats), Jicofo (/stats) and Prosody (/metrics).
fn jitsi_upstreams() -> Server {
    let fx = root().join("e2e/tests/fixtures");
    let jvb = read(&fx.join("jvb_colibri_stats.json"));
    let jicofo = read(&fx.join("jicofo_stats.json"));
    let prosody = read(&fx.join("prosody_openmetrics.txt"));
    Server::start(
        Arc::new(move |path| match path {
            "/colibri/stats" => (200, "application/json", jvb.clone()),
            "/stats" => (200, "application/json", jicofo.clone()),
            "/metrics" => (
                200,
                "application/openmetrics-text; version=0.0.4",
                prosody.clone(),
            ),
            _ => (404, "text/plain", "not found\n".to_owned()),
        }),
        None,
    )
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// net-snmp's snmpd on 127.0.0.1:`port`, community `public`, with the
/// BEGEMOT-PF-MIB subtree served from a pfSense-like walk.
fn start_snmpd(snmpd: &Path, python: &Path, dir: &Path, port: u16) -> Proc {
    let fx = root().join("e2e/tests/fixtures");
    let persist = dir.join("snmp-persist");
    std::fs::create_dir_all(&persist).unwrap();
    let conf = dir.join("snmpd.conf");
    std::fs::write(
        &conf,
        format!(
            "agentAddress udp:127.0.0.1:{port}\nrocommunity public 127.0.0.1\nsysLocation e2e\nsysName vigie-e2e\n\
             load 12 10 5\ndisk / 10%\n\
             pass_persist .1.3.6.1.4.1.12325.1.200.1 {} {} {}\n",
            python.display(),
            fx.join("begemot_pf.py").display(),
            fx.join("begemot_pf_walk.txt").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(snmpd)
        .args(["-f", "-Lo", "-C", "-c"])
        .arg(&conf)
        .arg("-p")
        .arg(dir.join("snmpd.pid"))
        .env("SNMP_PERSISTENT_DIR", &persist)
        .env("MIBS", "")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start snmpd");
    let log = Arc::new(Mutex::new(String::new()));
    let l2 = Arc::clone(&log);
    let mut err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        if let Ok(mut l) = l2.lock() {
            l.push_str(&s);
        }
    });
    Proc {
        child,
        addr: None,
        log,
    }
}

// === the Prometheus config under test ===

struct Addrs {
    node: String,
    blackbox: String,
    snmp: String,
    jitsi: String,
    http_ok: String,
    http_stopped: String,
    https: String,
    tcp: String,
    snmpd: String,
}

/// The shipped prometheus.yml with the test's targets, 1 s intervals and
/// copies of the rule files whose group intervals are 1 s too.
fn prometheus_config(dir: &Path, a: &Addrs) -> PathBuf {
    let mut cfg = yaml(&prom_dir().join("prometheus.yml"));
    cfg["global"]["scrape_interval"] = json!("1s");
    cfg["global"]["scrape_timeout"] = json!("1s");
    cfg["global"]["evaluation_interval"] = json!("1s");
    let by_port = |p: &str| -> String {
        match p {
            "9100" => a.node.clone(),
            "9115" => a.blackbox.clone(),
            "9116" => a.snmp.clone(),
            "9888" => a.jitsi.clone(),
            _ => panic!(
                "shipped prometheus.yml names localhost:{p}, which the e2e test does not know"
            ),
        }
    };
    for job in cfg["scrape_configs"].as_array_mut().unwrap() {
        let name = job["job_name"].as_str().unwrap().to_owned();
        let obj = job.as_object_mut().unwrap();
        obj.remove("scrape_interval");
        obj.remove("scrape_timeout");
        if name.starts_with("snmp_") && obj.get("metrics_path") == Some(&json!("/snmp")) {
            obj.insert("scrape_interval".into(), json!("2s"));
            obj.insert("scrape_timeout".into(), json!("2s"));
        }
        let targets: Vec<String> = match name.as_str() {
            "blackbox_http" => vec![a.http_ok.clone(), a.http_stopped.clone(), a.https.clone()],
            "blackbox_tcp" => vec![a.tcp.clone()],
            "blackbox_icmp" => vec!["127.0.0.1".to_owned()],
            "snmp_pfsense" => vec![a.snmpd.clone()],
            _ => {
                // exporters scraped directly: localhost:<default port>
                let t = job["static_configs"][0]["targets"][0]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                let port = t.rsplit(':').next().unwrap_or("").to_owned();
                assert!(
                    t.starts_with("localhost:"),
                    "job {name}: unexpected shipped target {t}"
                );
                vec![by_port(&port)]
            }
        };
        job["static_configs"] = json!([{ "targets": targets }]);
        for r in job["relabel_configs"].as_array_mut().into_iter().flatten() {
            if let Some(rep) = r["replacement"].as_str() {
                if let Some(port) = rep.strip_prefix("localhost:") {
                    r["replacement"] = json!(by_port(port));
                }
            }
        }
    }
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let mut files = Vec::new();
    for f in cfg["rule_files"].as_array().unwrap().clone() {
        let src = prom_dir().join(f.as_str().unwrap());
        let mut v = yaml(&src);
        for g in v["groups"].as_array_mut().unwrap() {
            if g.get("interval").is_some() {
                g["interval"] = json!("1s");
            }
        }
        let dst = rules.join(src.file_name().unwrap());
        std::fs::write(&dst, serde_norway::to_string(&v).unwrap()).unwrap();
        files.push(json!(dst.display().to_string()));
    }
    cfg["rule_files"] = json!(files);
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, serde_norway::to_string(&cfg).unwrap()).unwrap();
    path
}

/// The blackbox modules the shipped jobs use, from the shipped blackbox.yml,
/// with the test CA added to every http module.
fn blackbox_config(dir: &Path) -> PathBuf {
    let mut bb = yaml(&root().join("config/blackbox.yml"));
    for (_, m) in bb["modules"].as_object_mut().unwrap() {
        if m["prober"] == "http" {
            m["http"]["tls_config"]["ca_file"] = json!(dir.join("ca.pem").display().to_string());
        }
    }
    let path = dir.join("blackbox.yml");
    std::fs::write(&path, serde_norway::to_string(&bb).unwrap()).unwrap();
    path
}

fn jitsi_config(dir: &Path, upstream: &Server) -> PathBuf {
    let base = format!("http://{}", upstream.addr);
    let path = dir.join("jitsi.yml");
    std::fs::write(
        &path,
        format!("timeout: 2s\njvb:\n  url: {base}/colibri/stats\njicofo:\n  url: {base}/stats\nprosody:\n  url: {base}/metrics\n"),
    )
    .unwrap();
    path
}

fn start_exporter(bin: &Path, config: Option<&Path>) -> Proc {
    let bin = bin.display().to_string();
    match config {
        Some(c) => testkit::spawn_exporter(&bin, &[&format!("--config.file={}", c.display())]),
        None => testkit::spawn_exporter(&bin, &[]),
    }
}

fn start_prometheus(prom: &Path, dir: &Path, config: &Path) -> (Proc, String) {
    let port = testkit::free_port();
    let args = vec![
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--log.level=warn".to_owned(),
    ];
    let p = testkit::spawn_logged(&prom.display().to_string(), &args);
    let base = format!("http://127.0.0.1:{port}");
    let ready = poll(Duration::from_secs(30), || {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        (TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            && testkit::http_get(&format!("{base}/-/ready")).0 == 200)
            .then_some(())
    });
    assert!(
        ready.is_some(),
        "prometheus not ready; log:\n{}",
        p.log_text()
    );
    (p, base)
}

// === checks ===

/// Waits until every active target is up; returns the ones that are not.
fn wait_targets_up(base: &str) -> Vec<String> {
    let mut last = Vec::new();
    let ok = poll(Duration::from_secs(60), || {
        let d = api(base, "/api/v1/targets?state=active").ok()?;
        let targets = d["activeTargets"].as_array()?.clone();
        last = targets
            .iter()
            .filter(|t| t["health"] != "up")
            .map(|t| {
                format!(
                    "{} {} {}: {}",
                    t["labels"]["job"], t["labels"]["instance"], t["health"], t["lastError"]
                )
            })
            .collect();
        (!targets.is_empty() && last.is_empty()).then_some(())
    });
    if ok.is_some() {
        Vec::new()
    } else {
        last
    }
}

fn probe_success(base: &str, instance: &str) -> Option<f64> {
    let r = query(base, &format!("probe_success{{instance=\"{instance}\"}}")).ok()?;
    r.first().and_then(sample_value)
}

fn wait_probe(base: &str, instance: &str, want: f64) -> Option<f64> {
    let mut last = None;
    poll(Duration::from_secs(30), || {
        last = probe_success(base, instance);
        (last == Some(want)).then_some(())
    })
    .map(|_| want)
    .or(last)
}

/// Waits until every rule group was evaluated; returns rules in error.
fn rule_errors(base: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let done = poll(Duration::from_secs(30), || {
        let d = api(base, "/api/v1/rules").ok()?;
        let groups = d["groups"].as_array()?.clone();
        let evaluated = !groups.is_empty()
            && groups.iter().all(|g| {
                !g["lastEvaluation"]
                    .as_str()
                    .unwrap_or("0001")
                    .starts_with("0001")
            });
        errors = groups
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .filter(|r| r["health"] == "err")
            .map(|r| format!("{}: {}", r["name"], r["lastError"]))
            .collect();
        evaluated.then_some(())
    });
    assert!(done.is_some(), "rule groups not all evaluated within 30 s");
    errors
}

/// Metric names the Prometheus under test has stored.
fn stored_names(base: &str) -> BTreeSet<String> {
    api(base, "/api/v1/label/__name__/values")
        .ok()
        .and_then(|d| d.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn exporter_of(metric: &str) -> &'static str {
    if metric.starts_with("node_")
        || metric.starts_with("namedprocess_")
        || metric.starts_with("container_")
    {
        "vigie-node-exporter"
    } else if metric.starts_with("probe_") || metric.starts_with("instance:probe_success") {
        "vigie-blackbox-exporter"
    } else if metric.starts_with("jitsi_")
        || metric.starts_with("jicofo_")
        || metric.starts_with("prosody_")
    {
        "vigie-jitsi-exporter"
    } else {
        "vigie-snmp-exporter"
    }
}

#[test]
fn exporters_under_a_real_prometheus() {
    let Some(prom) = require("prometheus") else {
        return;
    };
    let Some(snmpd) = require("snmpd") else {
        return;
    };
    let Some(python) = require("python3") else {
        return;
    };
    let bins = exporter_bins();
    let dir = testkit::scratch_dir("e2e");

    // targets
    let tls = tls_config(&dir);
    let http_ok = Server::start(ok_handler(), None);
    let http_stopped = Server::start(ok_handler(), None);
    let https = Server::start(ok_handler(), Some(tls));
    let tcp = Server::start(ok_handler(), None);
    let upstreams = jitsi_upstreams();
    let snmp_port = free_udp_port();
    let _snmpd = start_snmpd(&snmpd, &python, &dir, snmp_port);

    // exporters
    // the off-by-default service collectors too, for the host dashboard's
    // Services row (every cgroup, so a container or CI runner has some)
    let node = testkit::spawn_exporter(
        &bins["node"].display().to_string(),
        &[
            "--collector.processes",
            "--collector.cgroup",
            "--collector.cgroup.include=.*",
        ],
    );
    let blackbox = start_exporter(&bins["blackbox"], Some(&blackbox_config(&dir)));
    let snmp = start_exporter(&bins["snmp"], Some(&root().join("config/snmp.yml")));
    let jitsi = start_exporter(&bins["jitsi"], Some(&jitsi_config(&dir, &upstreams)));
    let addr = |p: &Proc| p.addr.unwrap().to_string();
    let a = Addrs {
        node: addr(&node),
        blackbox: addr(&blackbox),
        snmp: addr(&snmp),
        jitsi: addr(&jitsi),
        http_ok: http_ok.url("http"),
        http_stopped: http_stopped.url("http"),
        https: https.url("https"),
        tcp: tcp.addr.to_string(),
        snmpd: format!("127.0.0.1:{snmp_port}"),
    };

    let config = prometheus_config(&dir, &a);
    let (_prom, base) = start_prometheus(&prom, &dir, &config);

    // 1. every job is up
    let down = wait_targets_up(&base);
    assert!(
        down.is_empty(),
        "targets not up after 60 s:\n{}",
        down.join("\n")
    );

    if let Ok(r) = query(
        &base,
        "max by (job) (max_over_time(scrape_duration_seconds[1m]))",
    ) {
        let d: Vec<String> = r
            .iter()
            .map(|s| {
                format!(
                    "{}={:.3}s",
                    s["metric"]["job"].as_str().unwrap_or(""),
                    sample_value(s).unwrap_or(0.0)
                )
            })
            .collect();
        eprintln!("e2e: slowest scrape per job: {}", d.join(" "));
    }

    // 2. probes of healthy targets succeed
    let icmp_allowed = icmp_permitted();
    for (what, inst) in [
        ("http", &a.http_ok),
        ("https", &a.https),
        ("tcp", &a.tcp),
        ("http (to be stopped)", &a.http_stopped),
    ] {
        let got = wait_probe(&base, inst, 1.0);
        assert_eq!(
            got,
            Some(1.0),
            "probe_success for the {what} target {inst}\nblackbox log:\n{}",
            blackbox.log_text()
        );
    }
    let icmp = wait_probe(&base, "127.0.0.1", 1.0);
    if icmp_allowed {
        assert_eq!(
            icmp,
            Some(1.0),
            "probe_success for ICMP 127.0.0.1; the same probe now:\n{}",
            testkit::http_get(&format!(
                "{}/probe?module=icmp&target=127.0.0.1&debug=true",
                blackbox.base()
            ))
            .2
        );
    } else {
        eprintln!(
            "e2e: NOTE: ICMP probe not asserted: not root and ping_group_range excludes this group"
        );
    }

    // 3. a stopped target fails its probe
    drop(http_stopped);
    let got = wait_probe(&base, &a.http_stopped, 0.0);
    assert_eq!(
        got,
        Some(0.0),
        "probe_success after stopping {}",
        a.http_stopped
    );

    // 4. every rule evaluates without error
    let errors = rule_errors(&base);
    assert!(errors.is_empty(), "rules in error:\n{}", errors.join("\n"));

    // 5. every dashboard query returns data
    let mut pending: Vec<DashQuery> = dashboard_queries()
        .into_iter()
        .filter(|q| !SKIP.iter().any(|(e, _)| *e == q.expr))
        .collect();
    for (e, why) in SKIP {
        eprintln!("e2e: NOTE: dashboard query skipped ({why}): {e}");
    }
    let total = pending.len();
    let mut errors = Vec::new();
    poll(Duration::from_secs(30), || {
        pending.retain(|q| match query(&base, &substitute(&q.expr)) {
            Ok(r) => r.is_empty(),
            Err(e) => {
                errors.push(format!("{} / {}: {e}", q.dashboard, q.panel));
                false
            }
        });
        pending.is_empty().then_some(())
    });
    assert!(
        errors.is_empty(),
        "dashboard queries Prometheus rejects:\n{}",
        errors.join("\n")
    );
    // A query without data fails the test unless a metric it reads was
    // never stored: then the exporter does not export it (yet), which is
    // reported, not failed (shipped_config.rs checks the names against the
    // Go exporters' captured output).
    let stored = stored_names(&base);
    let mut gated: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut empty = Vec::new();
    for q in &pending {
        let missing: Vec<String> = metric_names(&q.expr)
            .into_iter()
            .filter(|n| !stored.contains(n))
            .collect();
        if missing.is_empty() {
            empty.push(format!("{} / {}: {}", q.dashboard, q.panel, q.expr));
        } else {
            for m in missing {
                gated.entry(exporter_of(&m)).or_default().insert(m);
            }
        }
    }
    for (exp, names) in &gated {
        eprintln!(
            "e2e: NOTE: {exp} does not export these dashboard metrics (yet); their queries were not checked: {}",
            names.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    eprintln!(
        "e2e: {} of {total} dashboard queries returned data",
        total - pending.len()
    );
    assert!(
        empty.is_empty(),
        "dashboard queries without data although their metrics exist:\n{}",
        empty.join("\n")
    );

    // 6. a Jitsi upstream that goes away shows as jitsi_up 0 (JitsiUpstreamDown's input)
    if stored.contains("jitsi_up") {
        drop(upstreams);
        let down = poll(Duration::from_secs(30), || {
            let r = query(&base, r#"jitsi_up{upstream="jvb"}"#).ok()?;
            (r.first().and_then(sample_value) == Some(0.0)).then_some(())
        });
        assert!(
            down.is_some(),
            "jitsi_up{{upstream=\"jvb\"}} did not become 0 after the upstreams stopped"
        );
    } else {
        eprintln!("e2e: NOTE: vigie-jitsi-exporter does not export jitsi_up (yet)");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether this process may send ICMP echo: CAP_NET_RAW (raw sockets) or a
/// group inside net.ipv4.ping_group_range (unprivileged ping sockets).
fn icmp_permitted() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| -> Vec<u64> {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .map(|l| {
                l[k.len()..]
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    // CAP_NET_RAW (bit 13) in the effective set: raw ICMP sockets work
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    if cap_eff & (1 << 13) != 0 {
        return true;
    }
    let range: Vec<u64> = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let (lo, hi) = (
        range.first().copied().unwrap_or(1),
        range.get(1).copied().unwrap_or(0),
    );
    field("Gid:")
        .iter()
        .chain(field("Groups:").iter())
        .any(|g| (lo..=hi).contains(g))
}
