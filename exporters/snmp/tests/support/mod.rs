//! Shared helpers: real agents (net-snmp snmpd, snmpsim) and exporters on loopback.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vigie_common::testkit::{self, Proc};

pub mod fake;

pub const BIN: &str = env!("CARGO_BIN_EXE_vigie-snmp-exporter");
pub const GO_BIN: &str = "prometheus-snmp-exporter";

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn shipped_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/snmp.yml")
}

/// A UDP port that was free a moment ago on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free udp port")
}

/// Waits until `snmpget` answers on `port` with `community`.
pub fn wait_agent(port: u16, community: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let ok = Command::new("snmpget")
            .args([
                "-m", "", "-v2c", "-c", community, "-t", "0.3", "-r", "0", "-On",
            ])
            .arg(format!("127.0.0.1:{port}"))
            .arg("1.3.6.1.2.1.1.3.0")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// net-snmp's snmpd on 127.0.0.1 with community `public` and the v3 user
/// `promuser` (SHA/AES, authPriv). None when snmpd is not installed (local runs).
pub fn start_snmpd(name: &str) -> Option<(Proc, u16)> {
    start_snmpd_with(name, "")
}

/// As [`start_snmpd`], with extra snmpd.conf lines.
pub fn start_snmpd_with(name: &str, extra_conf: &str) -> Option<(Proc, u16)> {
    let snmpd = testkit::which("/usr/sbin/snmpd").or_else(|| testkit::require("snmpd"))?;
    testkit::require("snmpget")?;
    let dir = testkit::scratch_dir(&format!("snmpd-{name}"));
    let persist = dir.join("persist");
    std::fs::create_dir_all(&persist).unwrap();
    let conf = dir.join("snmpd.conf");
    std::fs::write(
        &conf,
        "sysLocation loopback-test\nsysContact test@example.invalid\nsysServices 72\n\
         rocommunity public 127.0.0.1\n\
         createUser promuser SHA \"authpass123\" AES \"privpass123\"\n\
         rouser promuser authpriv\nload 12 10 5\ndisk / 10%\n\
         createUser u256 SHA-256 \"authpass256\" AES-256 \"privpass256\"\nrouser u256 authpriv\n\
         createUser u512 SHA-512 \"authpass512\" AES-192 \"privpass512\"\nrouser u512 authpriv\n\
         createUser umd5 MD5 \"authpassmd5\" DES \"privpassdes\"\nrouser umd5 authpriv\n"
            .to_owned()
            + extra_conf,
    )
    .unwrap();
    for _ in 0..5 {
        let port = free_udp_port();
        let args = vec![
            format!("SNMP_PERSISTENT_DIR={}", persist.display()),
            snmpd.display().to_string(),
            "-f".into(),
            "-Lo".into(),
            "-C".into(),
            "-c".into(),
            conf.display().to_string(),
            "-m".into(),
            String::new(),
            format!("udp:127.0.0.1:{port}"),
        ];
        let p = testkit::spawn_logged("env", &args);
        if wait_agent(port, "public", Duration::from_secs(10)) {
            return Some((p, port));
        }
    }
    panic!("snmpd did not start");
}

/// snmpsim serving the pfSense fixture (community `pfsense`).
pub fn start_snmpsim() -> Option<(Proc, u16)> {
    let venv = std::env::var_os("VIGIE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| testkit::workspace_root().join("target/venv"));
    let bin = venv.join("bin/snmpsim-command-responder");
    testkit::require(bin.to_str()?)?;
    testkit::require("snmpget")?;
    let dir = testkit::scratch_dir("snmpsim");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(fixture("pfsense.snmprec"), data.join("pfsense.snmprec")).unwrap();
    for _ in 0..3 {
        let port = free_udp_port();
        let args = vec![
            "SNMPSIM_ALLOW_ROOT=true".to_string(),
            bin.display().to_string(),
            format!("--data-dir={}", data.display()),
            format!("--cache-dir={}", dir.join("cache").display()),
            format!("--agent-udpv4-endpoint=127.0.0.1:{port}"),
            "--logging-method=null".into(),
        ];
        let p = testkit::spawn_logged("env", &args);
        if wait_agent(port, "pfsense", Duration::from_secs(30)) {
            return Some((p, port));
        }
    }
    panic!("snmpsim did not start");
}

/// The Go snmp_exporter on a free port.
pub fn start_go(config: &Path) -> Option<Proc> {
    testkit::require(GO_BIN)?;
    let port = testkit::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut p = testkit::spawn_logged(
        GO_BIN,
        &[
            format!("--config.file={}", config.display()),
            format!("--web.listen-address={addr}"),
        ],
    );
    assert!(
        testkit::wait_port(addr.parse().unwrap(), Duration::from_secs(10)),
        "Go exporter did not listen: {}",
        p.log_text()
    );
    p.addr = Some(addr.parse().unwrap());
    Some(p)
}

pub fn start_vigie(config: &Path, extra: &[&str]) -> Proc {
    let cfg = format!("--config.file={}", config.display());
    let mut args = vec![cfg.as_str()];
    args.extend_from_slice(extra);
    testkit::spawn_exporter(BIN, &args)
}

pub fn scrape(p: &Proc, query: &str) -> (u16, String) {
    let (status, _, body) = testkit::http_get(&format!("{}/snmp?{query}", p.base()));
    (status, body)
}

/// Top-level module blocks of an snmp.yml in the 0.21 layout, by name.
pub fn flat_modules(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut cur: Option<String> = None;
    for line in text.split_inclusive('\n') {
        let first = line.chars().next().unwrap_or(' ');
        if !first.is_whitespace() && first != '#' && line.trim_end().ends_with(':') {
            let name = line.trim_end().trim_end_matches(':').to_owned();
            out.insert(name.clone(), line.to_owned());
            cur = Some(name);
        } else if let Some(c) = &cur {
            out.get_mut(c).unwrap().push_str(line);
        }
    }
    out
}

/// The shipped (0.23+) modules rewritten into the 0.21 layout with `community`,
/// so that the Go 0.21 exporter reads the very same modules.
pub fn shipped_as_flat(community: &str, names: &[&str]) -> String {
    let text = std::fs::read_to_string(shipped_config()).unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let modules = doc.get("modules").unwrap().as_mapping().unwrap();
    let mut flat = serde_norway::Mapping::new();
    for (k, v) in modules {
        let name = k.as_str().unwrap();
        if !names.contains(&name) {
            continue;
        }
        let mut m = v.as_mapping().unwrap().clone();
        let mut auth = serde_norway::Mapping::new();
        auth.insert("community".into(), community.into());
        m.insert("auth".into(), serde_norway::Value::Mapping(auth));
        flat.insert(k.clone(), serde_norway::Value::Mapping(m));
    }
    serde_norway::to_string(&flat).unwrap()
}

pub type Samples = BTreeMap<String, String>;

/// Samples without the scrape durations (they differ by nature).
pub fn samples(text: &str) -> Samples {
    testkit::parse_samples(text)
        .into_iter()
        .filter(|(k, _)| !k.contains("duration_seconds"))
        .collect()
}

/// Compares Vigie's scrape with two Go scrapes taken just before and after
/// it: every series Go had both times must be in Vigie's output, Vigie may
/// not invent series, and a value must equal Go's unless it changed between
/// Go's two scrapes (live counters), in which case it must lie between them.
pub fn compare(go1: &Samples, vigie: &Samples, go2: &Samples) -> Vec<String> {
    let mut problems = Vec::new();
    let both: BTreeSet<&String> = go1.keys().filter(|k| go2.contains_key(*k)).collect();
    for k in &both {
        match vigie.get(*k) {
            None => problems.push(format!("missing in Vigie: {k}")),
            Some(v) => {
                let (a, b) = (&go1[*k], &go2[*k]);
                if v == a || v == b {
                    continue;
                }
                let (fa, fb, fv) = (num(a), num(b), num(v));
                let ok = a != b && fv >= fa.min(fb) && fv <= fa.max(fb);
                if !ok {
                    problems.push(format!("{k}: Go {a} / {b}, Vigie {v}"));
                }
            }
        }
    }
    for k in vigie.keys() {
        if !go1.contains_key(k) && !go2.contains_key(k) {
            problems.push(format!("only in Vigie: {k} {}", vigie[k]));
        }
    }
    problems
}

fn num(s: &str) -> f64 {
    s.parse().unwrap_or(f64::NAN)
}

/// Expected values from the fixture: OID → value text.
pub fn snmprec() -> BTreeMap<String, (String, String)> {
    let text = std::fs::read_to_string(fixture("pfsense.snmprec")).unwrap();
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, '|');
            Some((
                it.next()?.to_owned(),
                (it.next()?.to_owned(), it.next()?.to_owned()),
            ))
        })
        .collect()
}
