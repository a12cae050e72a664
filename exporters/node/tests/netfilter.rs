//! The netfilter collector against the real kernel, in a private network
//! namespace: the test re-runs itself under `unshare -n`, installs a
//! ruleset there with the real `nft` and `iptables`/`ip6tables`
//! (nf_tables backend), sends a known number of loopback UDP packets,
//! scrapes the real binary and checks the exact counters. The host's
//! firewall is never touched (setup.sh and this test refuse to run in a
//! namespace that has any interface but `lo`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use vigie_common::testkit::{http_get, parse_samples, promtool_check, spawn_exporter};

const BIN: &str = env!("CARGO_BIN_EXE_vigie-node-exporter");
const INNER: &str = "VIGIE_NF_NETNS_INNER";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/netfilter")
}

/// Tries what the tests need in a throwaway namespace: nf_tables, and
/// iptables-nft/ip6tables-nft with the comment match.
fn probe_in_netns() -> Option<String> {
    let probe = "nft add table inet vigie_probe \
        && iptables -A INPUT -m comment --comment probe -j ACCEPT \
        && ip6tables -A INPUT -m comment --comment probe -j ACCEPT";
    match Command::new("unshare")
        .args(["-n", "sh", "-c", probe])
        .output()
    {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "the kernel does not let nft/iptables-nft work in a namespace here: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run unshare: {e}")),
    }
}

/// Why a private network namespace cannot be made here, if it cannot.
fn netns_unavailable() -> Option<String> {
    for p in ["unshare", "nft", "iptables", "ip6tables", "ip", "setpriv"] {
        if vigie_common::testkit::require(p).is_none() {
            return Some(format!(
                "{p} is not installed (scripts/test.sh installs it)"
            ));
        }
    }
    match Command::new("unshare").args(["-n", "true"]).output() {
        Ok(o) if o.status.success() => probe_in_netns(),
        Ok(o) => Some(format!(
            "`unshare -n` is not permitted here (needs root / CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run unshare: {e}")),
    }
}

/// Runs the test named `name` of this binary again inside `unshare -n`.
fn run_in_netns(name: &str) {
    if let Some(why) = netns_unavailable() {
        println!("SKIP {name}: {why}");
        return;
    }
    let o = Command::new("unshare")
        .arg("-n")
        .arg(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .env("VIGIE_NETNS_OK", "1")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    println!("--- {name} inside unshare -n ---\n{out}{err}");
    assert!(o.status.success(), "{name} failed inside the namespace");
    assert!(out.contains("1 passed"), "inner test did not run: {out}");
}

/// True when this process sees only a loopback interface.
fn only_loopback() -> bool {
    let Ok(out) = Command::new("ip").args(["-o", "link", "show"]).output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let links: Vec<&str> = text.lines().filter_map(|l| l.split(": ").nth(1)).collect();
    links == ["lo"]
}

fn setup(elements: usize) {
    assert!(only_loopback(), "refusing: not a private network namespace");
    let st = Command::new("sh")
        .arg(fixtures().join("setup.sh"))
        .arg(elements.to_string())
        .status()
        .unwrap();
    assert!(st.success(), "setup.sh failed");
}

/// Sends `n` UDP datagrams of `payload` bytes to `to` and waits until the
/// receiver bound there got them all (so they went through the input hook).
fn send(rx: &UdpSocket, to: &str, n: usize, payload: usize) {
    let from = if to.starts_with('[') {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let tx = UdpSocket::bind(from).unwrap();
    let data = vec![b'v'; payload];
    for _ in 0..n {
        tx.send_to(&data, to).unwrap();
    }
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 2048];
    for i in 0..n {
        let got = rx
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("{to}: packet {i}: {e}"));
        assert_eq!(got, payload);
    }
}

fn scrape(base: &str) -> (String, BTreeMap<String, String>) {
    let (status, _, body) = http_get(&format!("{base}/metrics"));
    assert_eq!(status, 200);
    let samples = parse_samples(&body).into_iter().collect();
    (body, samples)
}

fn value(s: &BTreeMap<String, String>, series: &str) -> String {
    s.get(series)
        .cloned()
        .unwrap_or_else(|| panic!("missing {series}; have:\n{}", dump(s)))
}

fn dump(s: &BTreeMap<String, String>) -> String {
    s.iter()
        .filter(|(k, _)| k.contains("netfilter"))
        .map(|(k, v)| format!("{k} {v}\n"))
        .collect()
}

// Packets sent per port, payload bytes, and the IP packet sizes the kernel
// counts at the input hook (IPv4 20 + UDP 8, IPv6 40 + UDP 8).
const N1: usize = 7; // 127.0.0.1:5001, 100 bytes
const N6: usize = 3; // [::1]:5001, 50 bytes
const N2: usize = 5; // 127.0.0.1:5002, 10 bytes
const N3: usize = 4; // 127.0.0.1:5003, 20 bytes
const N4: usize = 6; // 127.0.0.1:5004, 30 bytes

fn v4(payload: usize) -> usize {
    28 + payload
}

fn v6(payload: usize) -> usize {
    48 + payload
}

#[test]
fn netns_counters() {
    if std::env::var_os(INNER).is_none() {
        return run_in_netns("netns_counters");
    }
    setup(10_000);
    let plain = spawn_exporter(
        BIN,
        &["--collector.disable-defaults", "--collector.netfilter"],
    );
    let all = spawn_exporter(
        BIN,
        &[
            "--collector.disable-defaults",
            "--collector.netfilter",
            "--collector.netfilter.all-rules",
        ],
    );
    let rx: Vec<UdpSocket> = [5001, 5002, 5003, 5004]
        .iter()
        .map(|p| UdpSocket::bind(("127.0.0.1", *p)).unwrap())
        .collect();
    let rx6 = UdpSocket::bind("[::1]:5001").unwrap();
    send(&rx[0], "127.0.0.1:5001", N1, 100);
    send(&rx6, "[::1]:5001", N6, 50);
    send(&rx[1], "127.0.0.1:5002", N2, 10);
    send(&rx[2], "127.0.0.1:5003", N3, 20);
    send(&rx[3], "127.0.0.1:5004", N4, 30);

    let (body, s) = scrape(&plain.base());
    let n = |v: usize| v.to_string();
    let ok = r#"node_scrape_collector_success{collector="netfilter"}"#;
    assert_eq!(value(&s, ok), "1", "{}", plain.log_text());

    // nft rules: a comment covering IPv4 and IPv6 (inet), a regular chain.
    let rule = |what: &str, fam: &str, table: &str, chain: &str, comment: &str| {
        format!(
            r#"node_netfilter_rule_{what}_total{{chain="{chain}",comment="{comment}",family="{fam}",table="{table}"}}"#
        )
    };
    let five = rule("packets", "inet", "vigie", "input", "nft-five");
    assert_eq!(value(&s, &five), n(N1 + N6));
    let five_b = rule("bytes", "inet", "vigie", "input", "nft-five");
    assert_eq!(value(&s, &five_b), n(N1 * v4(100) + N6 * v6(50)));
    // Uncommented rules with a counter, summed per chain (one here: 5002).
    assert_eq!(
        value(&s, &rule("packets", "inet", "vigie", "input", "")),
        n(N2)
    );
    assert_eq!(
        value(&s, &rule("bytes", "inet", "vigie", "input", "")),
        n(N2 * v4(10))
    );
    assert_eq!(
        value(&s, &rule("packets", "inet", "vigie", "input", "blocklist")),
        "0"
    );
    assert_eq!(
        value(&s, &rule("packets", "inet", "vigie", "sub", "nft-sub")),
        n(N3)
    );
    assert_eq!(
        value(&s, &rule("bytes", "inet", "vigie", "sub", "nft-sub")),
        n(N3 * v4(20))
    );

    // iptables-nft: -m comment from the xt match, iptables' names.
    assert_eq!(
        value(&s, &rule("packets", "ip", "filter", "INPUT", "ipt-five")),
        n(N1)
    );
    assert_eq!(
        value(&s, &rule("bytes", "ip", "filter", "INPUT", "ipt-five")),
        n(N1 * v4(100))
    );
    assert_eq!(
        value(&s, &rule("packets", "ip", "filter", "INPUT", "")),
        n(N2)
    );
    // A comment with a quote and a backslash, escaped in the exposition.
    assert_eq!(
        value(
            &s,
            &rule("packets", "ip", "filter", "INPUT", r#"odd \"q\" \\ x"#)
        ),
        "0"
    );
    assert_eq!(
        value(&s, &rule("packets", "ip6", "filter", "INPUT", "ip6t-five")),
        n(N6)
    );
    assert_eq!(
        value(&s, &rule("bytes", "ip6", "filter", "INPUT", "ip6t-five")),
        n(N6 * v6(50))
    );

    // Policy counters: kept for the iptables chain after -P (udp to 5003
    // and 5004 falls through), none for the chain nft made.
    let pol = |what: &str| {
        format!(
            r#"node_netfilter_chain_policy_{what}_total{{chain="INPUT",family="ip",policy="accept",table="filter"}}"#
        )
    };
    assert_eq!(value(&s, &pol("packets")), n(N3 + N4));
    assert_eq!(value(&s, &pol("bytes")), n(N3 * v4(20) + N4 * v4(30)));
    assert!(
        !s.keys().any(|k| k.starts_with("node_netfilter_chain_policy") && k.contains(r#"family="inet""#)),
        "nft chains keep no policy counters:\n{}",
        dump(&s)
    );
    assert_eq!(
        value(
            &s,
            r#"node_netfilter_chain_info{chain="input",family="inet",hook="input",policy="accept",priority="10",table="vigie",type="filter"}"#
        ),
        "1"
    );

    // Named counter object, sets, counts.
    assert_eq!(
        value(
            &s,
            r#"node_netfilter_object_packets_total{family="inet",name="named_c",table="vigie"}"#
        ),
        n(N4)
    );
    assert_eq!(
        value(
            &s,
            r#"node_netfilter_object_bytes_total{family="inet",name="named_c",table="vigie"}"#
        ),
        n(N4 * v4(30))
    );
    assert_eq!(
        value(
            &s,
            r#"node_netfilter_set_elements{family="inet",set="big",table="vigie"}"#
        ),
        "10000"
    );
    assert_eq!(
        value(
            &s,
            r#"node_netfilter_set_elements{family="inet",set="nets",table="vigie"}"#
        ),
        "2"
    );
    assert_eq!(
        value(&s, r#"node_netfilter_sets{family="inet",table="vigie"}"#),
        "2"
    );
    for fam in ["inet", "ip", "ip6"] {
        assert_eq!(
            value(&s, &format!(r#"node_netfilter_tables{{family="{fam}"}}"#)),
            "1"
        );
    }
    assert_eq!(
        value(&s, r#"node_netfilter_chains{family="inet",table="vigie"}"#),
        "2"
    );
    assert_eq!(
        value(
            &s,
            r#"node_netfilter_rules{chain="input",family="inet",table="vigie"}"#
        ),
        "6"
    );
    assert_eq!(
        value(
            &s,
            r#"node_netfilter_rules{chain="sub",family="inet",table="vigie"}"#
        ),
        "1"
    );
    promtool_check(&body, &[]).unwrap();

    // --collector.netfilter.all-rules: the uncommented rule by its handle.
    let (_, a) = scrape(&all.base());
    let by_handle: Vec<(&String, &String)> = a
        .iter()
        .filter(|(k, _)| {
            k.starts_with("node_netfilter_rule_packets_total{")
                && k.contains(r#"chain="input",comment="",family="inet""#)
        })
        .collect();
    assert_eq!(by_handle.len(), 1, "{by_handle:?}");
    assert!(by_handle[0].0.contains(",handle=\""), "{by_handle:?}");
    assert_eq!(by_handle[0].1, &n(N2));
    // Commented rules keep their series whatever the flag.
    assert_eq!(value(&a, &five), n(N1 + N6));
    println!(
        "netns_counters: exact counters checked for nft, iptables-nft and ip6tables-nft rules"
    );
}

/// Starts the exporter through `setpriv` with the given privilege options.
fn spawn_setpriv(opts: &[&str]) -> vigie_common::testkit::Proc {
    let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    args.extend(
        [
            BIN,
            "--collector.disable-defaults",
            "--collector.netfilter",
            "--web.listen-address=127.0.0.1:0",
        ]
        .map(String::from),
    );
    vigie_common::testkit::wait_listening(
        vigie_common::testkit::spawn_logged("setpriv", &args),
        Duration::from_secs(20),
    )
}

#[test]
fn netns_capabilities() {
    if std::env::var_os(INNER).is_none() {
        return run_in_netns("netns_capabilities");
    }
    assert!(only_loopback());
    let st = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new("nft")
        .args(["add", "table", "inet", "captest"])
        .status()
        .unwrap();
    assert!(st.success());
    let ok = r#"node_scrape_collector_success{collector="netfilter"}"#;

    // Root without CAP_NET_ADMIN: setpriv drops it from the bounding and
    // inheritable sets, so the exec'd exporter does not get it back.
    let p = spawn_setpriv(&["--inh-caps=-net_admin", "--bounding-set=-net_admin"]);
    let (_, s) = scrape(&p.base());
    assert_eq!(value(&s, ok), "0");
    assert!(
        !s.keys().any(|k| k.starts_with("node_netfilter_")),
        "{}",
        dump(&s)
    );
    let log = p.log_text();
    assert!(log.contains("CAP_NET_ADMIN"), "{log}");

    // What the systemd drop-in gives: an unprivileged user, no new
    // privileges, CAP_NET_ADMIN as the only (ambient) capability.
    let p = spawn_setpriv(&[
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--no-new-privs",
        "--inh-caps=-all,+net_admin",
        "--ambient-caps=+net_admin",
        "--bounding-set=-all,+net_admin",
    ]);
    let (_, s) = scrape(&p.base());
    assert_eq!(value(&s, ok), "1", "{}", p.log_text());
    assert_eq!(value(&s, r#"node_netfilter_tables{family="inet"}"#), "1");
    println!("netns_capabilities: without CAP_NET_ADMIN success 0 and the log names it; nobody + ambient CAP_NET_ADMIN works");
}

#[test]
fn netns_ruleset_changing_during_scrapes() {
    if std::env::var_os(INNER).is_none() {
        return run_in_netns("netns_ruleset_changing_during_scrapes");
    }
    setup(2_000);
    let p = spawn_exporter(
        BIN,
        &[
            "--collector.disable-defaults",
            "--collector.netfilter",
            "--log.level=debug",
        ],
    );
    // One nft process per change, so every change is its own generation.
    let mut churn = Command::new("sh")
        .arg("-c")
        .arg(
            "for i in $(seq 40); do \
               nft add rule inet vigie sub udp dport 6000 counter comment churn || exit 1; \
               nft flush chain inet vigie sub || exit 1; \
             done",
        )
        .spawn()
        .unwrap();
    let ok = r#"node_scrape_collector_success{collector="netfilter"}"#;
    let (mut scrapes, mut good) = (0, 0);
    while churn.try_wait().unwrap().is_none() {
        let (_, s) = scrape(&p.base());
        scrapes += 1;
        if value(&s, ok) == "1" {
            good += 1;
            // A consistent read: the big set is always complete.
            assert_eq!(
                value(
                    &s,
                    r#"node_netfilter_set_elements{family="inet",set="big",table="vigie"}"#
                ),
                "2000"
            );
        }
    }
    assert!(churn.wait().unwrap().success());
    let (_, s) = scrape(&p.base());
    assert_eq!(value(&s, ok), "1");
    let retries = p.log_text().matches("reading it again").count();
    println!("netns_ruleset_changing_during_scrapes: {good} of {scrapes} scrapes during 80 ruleset changes succeeded, {retries} re-reads");
    assert!(scrapes > 0);
}
