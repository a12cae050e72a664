//! ICMP prober against 127.0.0.1 and ::1, side by side with the Go exporter
//! (both as root: raw sockets), plus the unprivileged ping-socket path in a
//! private network namespace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;
use vigie_common::testkit;

const MODULES: &str = r#"modules:
  icmp:
    prober: icmp
    timeout: 3s
    icmp:
      preferred_ip_protocol: ip4
  icmp6:
    prober: icmp
    timeout: 3s
  icmp_ttl5_df:
    prober: icmp
    timeout: 3s
    icmp:
      preferred_ip_protocol: ip4
      ttl: 5
      dont_fragment: true
      payload_size: 100
  icmp_v6only:
    prober: icmp
    timeout: 2s
    icmp:
      preferred_ip_protocol: ip6
      ip_protocol_fallback: false
"#;

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

#[test]
fn icmp_matches_go() {
    if !is_root() {
        eprintln!("skipped: raw ICMP comparison needs root");
        return;
    }
    let dir = testkit::scratch_dir("icmp-cmp");
    let cfg = dir.join("blackbox.yml");
    std::fs::write(&cfg, MODULES).unwrap();
    let (go, ours) = start_both(&cfg);
    let Some(go) = go else { return };
    let mut diffs = Vec::new();
    for (m, t) in [
        ("icmp", "127.0.0.1"),
        ("icmp", "localhost"),
        ("icmp6", "::1"),
        ("icmp_ttl5_df", "127.0.0.1"),
        ("icmp_v6only", "127.0.0.1"),
        ("icmp", "no-such-host.invalid"),
    ] {
        diffs.push(compare(&go, &ours, m, t, &[]));
    }
    diffs.retain(|d| !d.is_empty());
    assert!(
        diffs.is_empty(),
        "differences from the Go exporter:\n{}",
        diffs.join("\n")
    );
}

/// As uid 65534 without capabilities, in a private network namespace:
/// ping sockets work when ping_group_range allows, and the failure says why
/// when it does not.
#[test]
fn icmp_unprivileged_ping_socket() {
    if !is_root()
        || !Command::new("unshare")
            .args(["-n", "true"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    {
        eprintln!("skipped: needs root and unshare -n");
        return;
    }
    if testkit::which("setpriv").is_none() || testkit::which("curl").is_none() {
        eprintln!("skipped: needs setpriv and curl");
        return;
    }
    let dir = testkit::scratch_dir("icmp-unpriv");
    let cfg = dir.join("blackbox.yml");
    std::fs::write(&cfg, MODULES).unwrap();
    let _ = Command::new("chmod")
        .args(["-R", "a+rX", dir.to_str().unwrap()])
        .status();
    // The binary and the config must be reachable by uid 65534.
    let reachable = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg(format!(
            "test -r '{}' && '{}' --version >/dev/null 2>&1",
            cfg.display(),
            OURS
        ))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !reachable {
        eprintln!("skipped: the test binary or config is not readable by uid 65534 here");
        return;
    }
    let port = testkit::free_port();
    let script = format!(
        r#"ip link set lo up
sysctl -q -w net.ipv4.ping_group_range="0 2147483647"
setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all {bin} --config.file={cfg} --web.listen-address=127.0.0.1:{port} 2>/dev/null &
P=$!
for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:{port}/-/healthy && break; sleep 0.05; done
echo "== v4"; curl -s "http://127.0.0.1:{port}/probe?module=icmp&target=127.0.0.1"
echo "== v6"; curl -s "http://127.0.0.1:{port}/probe?module=icmp6&target=::1"
sysctl -q -w net.ipv4.ping_group_range="1 0"
echo "== denied"; curl -s "http://127.0.0.1:{port}/probe?module=icmp&target=127.0.0.1"
kill $P
"#,
        bin = OURS,
        cfg = cfg.display()
    );
    let out = Command::new("timeout")
        .args(["30", "unshare", "-n", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let parts: Vec<&str> = text.split("== ").collect();
    assert_eq!(parts.len(), 4, "{text}");
    for p in &parts[1..3] {
        assert!(p.contains("probe_success 1"), "{text}");
        assert!(p.contains("probe_icmp_reply_hop_limit 64"), "{text}");
    }
    assert!(parts[3].contains("probe_success 0"), "{text}");
    assert!(parts[3].contains("ping_group_range"), "{text}");
}
