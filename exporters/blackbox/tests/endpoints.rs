//! Config loading and checking, reload, the allow-list and the probe limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;
use vigie_common::testkit;

#[test]
fn shipped_config_loads_in_both() {
    let cfg = testkit::workspace_root().join("config/blackbox.yml");
    let out = Command::new(OURS)
        .arg("--config.check")
        .arg(format!("--config.file={}", cfg.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(go) = testkit::require(GO) {
        let out = Command::new(go)
            .arg("--config.check")
            .arg(format!("--config.file={}", cfg.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The Debian example file, as shipped with the Go package, loads too.
    let debian = std::path::Path::new("/etc/prometheus/blackbox.yml");
    if debian.exists() {
        let out = Command::new(OURS)
            .arg("--config.check")
            .arg(format!("--config.file={}", debian.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn config_check_reports_line_of_unknown_key() {
    let dir = testkit::scratch_dir("bb-check");
    let f = dir.join("bad.yml");
    std::fs::write(
        &f,
        "modules:\n  http_2xx:\n    prober: http\n    http:\n      valid_status_code: [200]\n",
    )
    .unwrap();
    let out = Command::new(OURS)
        .arg("--config.check")
        .arg(format!("--config.file={}", f.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yml:5:") && err.contains("valid_status_code"),
        "{err}"
    );
    let missing = dir.join("missing.yml");
    let out = Command::new(OURS)
        .arg(format!("--config.file={}", missing.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn reload_keeps_last_good_config() {
    let dir = testkit::scratch_dir("bb-reload");
    let f = dir.join("blackbox.yml");
    std::fs::write(&f, "modules:\n  a:\n    prober: tcp\n").unwrap();
    let p = testkit::spawn_exporter(OURS, &[&format!("--config.file={}", f.display())]);
    let (st, _, _) = testkit::http_get(&format!("{}/probe?module=b&target=127.0.0.1:1", p.base()));
    assert_eq!(st, 400);
    std::fs::write(
        &f,
        "modules:\n  a:\n    prober: tcp\n  b:\n    prober: tcp\n",
    )
    .unwrap();
    let (st, _, body) = testkit::http_request("POST", &format!("{}/-/reload", p.base()), &[]);
    assert_eq!(st, 200, "{body}");
    let (st, _, _) = testkit::http_get(&format!("{}/probe?module=b&target=127.0.0.1:1", p.base()));
    assert_eq!(st, 200);
    std::fs::write(&f, "modules:\n  a:\n    prober: tcp\n    bogus: 1\n").unwrap();
    let (st, _, body) = testkit::http_request("POST", &format!("{}/-/reload", p.base()), &[]);
    assert_eq!(st, 500, "{body}");
    assert!(body.contains("bogus"), "{body}");
    let (st, _, _) = testkit::http_get(&format!("{}/probe?module=b&target=127.0.0.1:1", p.base()));
    assert_eq!(st, 200, "the last good config stays");
    let (_, _, m) = testkit::http_get(&format!("{}/metrics", p.base()));
    assert!(
        m.contains("blackbox_exporter_config_last_reload_successful 0"),
        "{m}"
    );
    let (_, _, cfg) = testkit::http_get(&format!("{}/config", p.base()));
    assert!(cfg.contains("  b:"), "{cfg}");
}

#[test]
fn allow_list_refuses_without_contacting() {
    let dir = testkit::scratch_dir("bb-allow");
    let f = dir.join("blackbox.yml");
    std::fs::write(&f, "modules:\n  http_2xx:\n    prober: http\n    timeout: 2s\n  tcp:\n    prober: tcp\n    timeout: 2s\n").unwrap();
    // A listener that records whether anyone connected.
    let l = std::net::TcpListener::bind("127.0.0.2:0")
        .or_else(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = l.local_addr().unwrap();
    l.set_nonblocking(true).unwrap();
    let p = testkit::spawn_exporter(
        OURS,
        &[
            &format!("--config.file={}", f.display()),
            "--probe.allow-target=127.0.0.1/32",
            "--probe.allow-target=*.allowed.test",
        ],
    );
    let http_port = http_server();
    let (st, _, body) = testkit::http_get(&probe_url(
        &p,
        "http_2xx",
        &format!("http://127.0.0.1:{http_port}/"),
    ));
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("probe_success 1"), "{body}");
    if addr.ip().to_string() == "127.0.0.2" {
        let (st, _, body) = testkit::http_get(&probe_url(&p, "tcp", &addr.to_string()));
        assert_eq!(st, 403, "{body}");
        assert!(
            matches!(l.accept(), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "the target was contacted"
        );
    }
    let (st, _, _) = testkit::http_get(&probe_url(&p, "http_2xx", "http://example.org/"));
    assert_eq!(st, 403);
    let (st, _, _) = testkit::http_get(&probe_url(&p, "tcp", "db.allowed.test:5432"));
    assert_eq!(st, 200);
}

#[test]
fn probes_are_bounded_by_max_requests() {
    let dir = testkit::scratch_dir("bb-limit");
    let f = dir.join("blackbox.yml");
    std::fs::write(&f, "modules:\n  slow:\n    prober: tcp\n    timeout: 2s\n    tcp:\n      query_response:\n      - expect: never\n").unwrap();
    let p = testkit::spawn_exporter(
        OURS,
        &[
            &format!("--config.file={}", f.display()),
            "--web.max-requests=1",
        ],
    );
    let silent = silent_server();
    let url = probe_url(&p, "slow", &format!("127.0.0.1:{silent}"));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let u = url.clone();
            std::thread::spawn(move || testkit::http_get(&u).0)
        })
        .collect();
    let codes: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 503).count(), 3, "{codes:?}");
}
