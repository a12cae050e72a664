//! Bad input: misbehaving agents (a fake agent written here), unreachable
//! targets, bad query parameters, partial results, config errors and reload.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::fake::{self, Mode};
use support::*;
use vigie_common::testkit;
use vigie_snmp_exporter::client::{Client, Op};
use vigie_snmp_exporter::module::{parse_oid, WalkParams};
use vigie_snmp_exporter::walk;

fn params(timeout_ms: u64, retries: u32) -> WalkParams {
    WalkParams {
        max_repetitions: 25,
        retries,
        timeout: Duration::from_millis(timeout_ms),
        allow_nonincreasing_oids: false,
        use_unconnected_udp_socket: false,
    }
}

fn client(port: u16, p: WalkParams) -> Client {
    Client::new(
        format!("127.0.0.1:{port}").parse().unwrap(),
        Arc::new(vigie_snmp_exporter::default_public_v2()),
        p,
        Instant::now() + Duration::from_secs(20),
        Arc::new(tokio::sync::Semaphore::new(4)),
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_late_reply_is_never_taken_for_the_answer() {
    let agent = fake::start(
        fake::small_tree(),
        Mode::FirstLate(Duration::from_millis(700)),
    );
    rt().block_on(async {
        let mut c = client(agent.port, params(300, 3));
        let oids = vec![parse_oid("1.3.6.1.2.1.1.1.0").unwrap()];
        let r = c.request(Op::Get(&oids)).await.unwrap();
        assert_eq!(r.varbinds.len(), 1);
        assert_eq!(
            r.varbinds[0].value,
            vigie_snmp_exporter::client::SnmpValue::OctetString(b"fake agent".to_vec())
        );
        assert!(
            c.stats.retried >= 1 && c.stats.sent == c.stats.retried + 1,
            "{:?}",
            c.stats
        );
        // Wait for the late packet to arrive, then make sure later requests are still right.
        tokio::time::sleep(Duration::from_millis(800)).await;
        for _ in 0..3 {
            let r = c.request(Op::Get(&oids)).await.unwrap();
            assert_ne!(
                r.varbinds[0].value,
                vigie_snmp_exporter::client::SnmpValue::OctetString(b"LATE".to_vec())
            );
        }
    });
}

#[test]
fn silence_times_out_after_the_retries() {
    let agent = fake::start(fake::small_tree(), Mode::SilentUnder(vec![1]));
    rt().block_on(async {
        let mut c = client(agent.port, params(100, 2));
        let start = Instant::now();
        let root = parse_oid("1.3.6.1.2.1.1").unwrap();
        let err = walk::walk(&mut c, &root).await.unwrap_err().1;
        assert_eq!(err.to_string(), "request timeout (after 2 retries)");
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!((c.stats.sent, c.stats.retried), (3, 2));
    });
}

#[test]
fn non_increasing_oids_and_loops_end_the_walk_with_an_error() {
    for mode in [Mode::Backwards, Mode::Loop] {
        let agent = fake::start(fake::small_tree(), mode.clone());
        rt().block_on(async {
            let mut c = client(agent.port, params(200, 0));
            let root = parse_oid("1.3.6.1.2.1.1").unwrap();
            let err = walk::walk(&mut c, &root).await.unwrap_err().1;
            assert!(
                err.to_string().contains("OID not increasing"),
                "{mode:?}: {err}"
            );
            // With allow_nonincreasing_oids a pure loop is still caught.
            let mut p = params(200, 0);
            p.allow_nonincreasing_oids = true;
            let mut c = client(agent.port, p);
            let start = Instant::now();
            let res = walk::walk(&mut c, &root).await;
            assert!(
                res.unwrap_err().1.to_string().contains("repeated"),
                "{mode:?}"
            );
            assert!(start.elapsed() < Duration::from_secs(3));
        });
    }
}

#[test]
fn garbage_and_error_status_are_clear_errors() {
    let agent = fake::start(fake::small_tree(), Mode::Garbage);
    rt().block_on(async {
        let mut c = client(agent.port, params(300, 1));
        let oids = vec![parse_oid("1.3.6.1.2.1.1.1.0").unwrap()];
        let start = Instant::now();
        let err = c.request(Op::Get(&oids)).await.unwrap_err();
        assert!(err.to_string().contains("malformed"), "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "no retries on garbage"
        );
    });
    let agent = fake::start(fake::small_tree(), Mode::GenErr);
    let dir = testkit::scratch_dir("generr");
    let cfg = dir.join("snmp.yml");
    std::fs::write(&cfg, "m:\n  get: [1.3.6.1.2.1.1.1.0]\n  metrics: []\n").unwrap();
    let p = start_vigie(&cfg, &[]);
    let (s, body) = scrape(&p, &format!("target=127.0.0.1:{}&module=m", agent.port));
    assert_eq!(s, 500);
    if let Some(go) = start_go(&cfg) {
        let (gs, gbody) = scrape(&go, &format!("target=127.0.0.1:{}&module=m", agent.port));
        assert_eq!((gs, gbody.as_str()), (s, body.as_str()));
    }
    assert!(
        body.contains("error reported by target 127.0.0.1: Error Status 5"),
        "{body}"
    );
}

#[test]
fn walks_follow_the_tree_and_render_counter64() {
    let agent = fake::start(fake::small_tree(), Mode::Normal);
    let dir = testkit::scratch_dir("fake-walk");
    let cfg = dir.join("snmp.yml");
    std::fs::write(
        &cfg,
        r#"m:
  walk: [1.3.6.1.2.1.2, 1.3.6.1.2.1.31.1.1, 1.3.6.1.2.1.1.3.0]
  max_repetitions: 2
  metrics:
  - {name: ifOperStatus, oid: 1.3.6.1.2.1.2.2.1.8, type: gauge, help: h, indexes: [{labelname: ifIndex, type: gauge}],
     lookups: [{labels: [ifIndex], labelname: ifDescr, oid: 1.3.6.1.2.1.2.2.1.2, type: DisplayString}]}
  - {name: ifHCInOctets, oid: 1.3.6.1.2.1.31.1.1.1.6, type: counter, help: h, indexes: [{labelname: ifIndex, type: gauge}],
     lookups: [{labels: [ifIndex], labelname: ifDescr, oid: 1.3.6.1.2.1.2.2.1.2, type: DisplayString}, {labels: [], labelname: ifIndex}]}
  - {name: ifLastChange, oid: 1.3.6.1.2.1.2.2.1.9, type: gauge, help: h, indexes: [{labelname: ifIndex, type: gauge}],
     lookups: [{labels: [ifIndex], labelname: ifName, oid: 1.3.6.1.2.1.31.1.1.1.1, type: DisplayString}]}
  - {name: sysUpTime, oid: 1.3.6.1.2.1.1.3, type: gauge, help: h}
"#,
    )
    .unwrap();
    for extra in [&[][..], &["--no-snmp.wrap-large-counters"][..]] {
        let p = start_vigie(&cfg, extra);
        let (s, body) = scrape(&p, &format!("target=127.0.0.1:{}&module=m", agent.port));
        assert_eq!(s, 200, "{body}");
        let got = samples(&body);
        assert_eq!(got["ifOperStatus{ifDescr=\"eth2\",ifIndex=\"2\"}"], "1");
        // drop_source_indexes removed ifIndex; Counter64 wrapped at 2^53 by default.
        let v = &got["ifHCInOctets{ifDescr=\"eth3\"}"];
        if extra.is_empty() {
            assert_eq!(v, "3");
        } else {
            assert_eq!(v, "1.152921504606847e+18");
        }
        // A lookup with no row gives an empty label.
        assert_eq!(got["ifLastChange{ifIndex=\"1\",ifName=\"\"}"], "7");
        // A walk of a leaf OID falls back to a GET of it.
        assert_eq!(got["sysUpTime"], "12345");
        assert!(body.contains("# TYPE ifHCInOctets counter"));
    }
}

#[test]
fn bad_parameters_and_unreachable_targets() {
    let cfg = shipped_config();
    let p = start_vigie(&cfg, &[]);
    let cases: &[(&str, u16, &str)] = &[
        ("", 400, "'target' parameter must be specified once"),
        ("target=", 400, "'target' parameter must be specified once"),
        (
            "target=a&target=b",
            400,
            "'target' parameter must be specified once",
        ),
        ("target=127.0.0.1&module=nope", 400, "Unknown module 'nope'"),
        (
            "target=127.0.0.1&module=if_mib,nope",
            400,
            "Unknown module 'nope'",
        ),
        ("target=127.0.0.1&auth=nope", 400, "Unknown auth 'nope'"),
        (
            "target=127.0.0.1&auth=a&auth=b",
            400,
            "'auth' parameter must only be specified once",
        ),
        ("target=127.0.0.1:99999", 400, "invalid 'target' parameter"),
        ("target=[::1", 400, "invalid 'target' parameter"),
    ];
    for (q, status, text) in cases {
        let (s, body) = scrape(&p, q);
        assert_eq!(s, *status, "{q}: {body}");
        assert!(body.contains(text), "{q}: {body}");
    }
    // Nothing listens on that UDP port: ICMP port unreachable, a quick 500.
    let port = free_udp_port();
    let start = Instant::now();
    let (s, body) = scrape(&p, &format!("target=127.0.0.1:{port}&module=system"));
    assert_eq!(s, 500, "{body}");
    assert!(
        body.contains("snmp_error") && body.contains("127.0.0.1"),
        "{body}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    // A name that does not resolve; the scrape timeout header bounds a slow resolver.
    let (s, _, body) = testkit::http_request(
        "GET",
        &format!("{}/snmp?target=nonexistent.invalid&module=system", p.base()),
        &[("X-Prometheus-Scrape-Timeout-Seconds", "3")],
    );
    assert_eq!(s, 500, "{body}");
    assert!(
        body.contains("error connecting to target nonexistent.invalid"),
        "{body}"
    );
}

#[test]
fn wrong_community_fails_within_the_timeout_and_partial_results_keep_the_rest() {
    // The fake agent ignores one subtree (as an agent ignores a wrong community).
    let agent = fake::start(
        fake::small_tree(),
        Mode::SilentUnder(vec![1, 3, 6, 1, 2, 1, 2]),
    );
    let dir = testkit::scratch_dir("partial");
    let cfg = dir.join("snmp.yml");
    std::fs::write(
        &cfg,
        "auths:\n  public_v2: {community: public, version: 2}\nmodules:\n  sys:\n    walk: [1.3.6.1.2.1.1]\n    metrics:\n\
         \x20   - {name: sysUpTime, oid: 1.3.6.1.2.1.1.3, type: gauge, help: h}\n\
         \x20 ifs:\n    walk: [1.3.6.1.2.1.2]\n    timeout: 200ms\n    retries: 1\n    metrics:\n\
         \x20   - {name: ifOperStatus, oid: 1.3.6.1.2.1.2.2.1.8, type: gauge, help: h}\n",
    )
    .unwrap();
    let q = format!("target=127.0.0.1:{}&module=sys,ifs", agent.port);
    let p = start_vigie(&cfg, &[]);
    let start = Instant::now();
    let (s, body) = scrape(&p, &q);
    assert_eq!(s, 500, "{body}");
    assert!(
        body.contains("error walking target 127.0.0.1: request timeout (after 1 retries)"),
        "{body}"
    );
    assert!(start.elapsed() < Duration::from_secs(3));

    let p = start_vigie(&cfg, &["--snmp.partial-results"]);
    let (s, body) = scrape(&p, &q);
    assert_eq!(s, 200, "{body}");
    let got = samples(&body);
    assert_eq!(got["sysUpTime"], "12345");
    assert_eq!(got["snmp_scrape_module_success{module=\"sys\"}"], "1");
    assert_eq!(got["snmp_scrape_module_success{module=\"ifs\"}"], "0");
    assert!(body.contains("snmp_scrape_module_error_info{module=\"ifs\",reason=\"error walking target 127.0.0.1: request timeout (after 1 retries)\"} 1"), "{body}");
    assert_eq!(got["snmp_scrape_packets_retried{module=\"ifs\"}"], "1");
}

#[test]
fn config_check_reload_and_config_page() {
    let dir = testkit::scratch_dir("reload");
    let cfg = dir.join("snmp.yml");
    std::fs::write(
        &cfg,
        "auths:\n  a: {community: s3cret}\nmodules:\n  one: {walk: [1.3.6.1.2.1.1]}\n",
    )
    .unwrap();
    let st = std::process::Command::new(BIN)
        .args([
            format!("--config.file={}", cfg.display()),
            "--config.check".into(),
        ])
        .output()
        .unwrap();
    assert!(st.status.success());
    let bad = dir.join("bad.yml");
    std::fs::write(&bad, "if_mib:\n  walk: [1.3.6.1.2.1.2]\n  walkz: []\n").unwrap();
    let st = std::process::Command::new(BIN)
        .args([
            format!("--config.file={}", bad.display()),
            "--dry-run".into(),
        ])
        .output()
        .unwrap();
    assert!(!st.status.success());
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(err.contains("bad.yml:3:") && err.contains("walkz"), "{err}");

    let p = start_vigie(&cfg, &[]);
    let (_, _, body) = testkit::http_get(&format!("{}/config", p.base()));
    assert!(
        body.contains("<secret>") && !body.contains("s3cret"),
        "{body}"
    );
    std::fs::write(
        &cfg,
        "modules:\n  one: {walk: [1.3.6.1.2.1.1]}\n  two: {walk: [not-an-oid]}\n",
    )
    .unwrap();
    let (s, _, body) = testkit::http_request("POST", &format!("{}/-/reload", p.base()), &[]);
    assert_eq!(s, 500, "{body}");
    assert!(body.contains("not-an-oid"), "{body}");
    let (s, _) = scrape(&p, "target=127.0.0.1&module=two");
    assert_eq!(s, 400, "the bad config must not be in force");
    std::fs::write(
        &cfg,
        "modules:\n  one: {walk: [1.3.6.1.2.1.1]}\n  two: {walk: [1.3.6.1.2.1.2]}\n",
    )
    .unwrap();
    let (s, _, _) = testkit::http_request("POST", &format!("{}/-/reload", p.base()), &[]);
    assert_eq!(s, 200);
    let (_, _, m) = testkit::http_get(&format!("{}/metrics", p.base()));
    assert!(
        m.contains("snmp_exporter_config_last_reload_successful 1"),
        "{m}"
    );
}
