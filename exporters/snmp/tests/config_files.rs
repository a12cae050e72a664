//! Several `--config.file` values and glob patterns (snmp_exporter 0.23+):
//! `--config.check`, scraping modules and auths from different files on a
//! real snmpd, `/config`, and reloads that fail and keep the last good set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use support::*;
use vigie_common::testkit;

fn check(args: &[String]) -> (bool, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .arg("--config.check")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn flag(p: &Path) -> String {
    format!("--config.file={}", p.display())
}

#[test]
fn several_config_files_check_scrape_and_reload() {
    let Some((_agent, port)) = start_snmpd("config-files") else {
        return;
    };
    let dir = testkit::scratch_dir("config-files");
    let d = dir.join("snmp.d");
    std::fs::create_dir_all(&d).unwrap();
    let auths = dir.join("auths.yml");
    std::fs::write(&auths, "auths:\n  lab: {community: public, version: 2}\n").unwrap();
    std::fs::write(
        d.join("a.yml"),
        "modules:\n  uptime:\n    get: [1.3.6.1.2.1.1.3.0]\n    metrics:\n    - {name: sysUpTime, oid: 1.3.6.1.2.1.1.3, type: gauge, help: u}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("b.yml"),
        "modules:\n  location:\n    get: [1.3.6.1.2.1.1.6.0]\n    metrics:\n    - {name: sysLocation, oid: 1.3.6.1.2.1.1.6, type: DisplayString, help: l}\n",
    )
    .unwrap();
    let glob = d.join("*.yml");
    let args = [flag(&auths), flag(&glob)];

    let (ok, text) = check(&args);
    assert!(ok, "{text}");
    assert!(
        text.contains("Configuration parsed successfully (2 modules)"),
        "{text}"
    );

    let p = start_vigie(&auths, &[&flag(&glob)]);
    // A module from one file with an auth from another.
    let (s, body) = scrape(
        &p,
        &format!("target=127.0.0.1:{port}&module=location&auth=lab"),
    );
    assert_eq!(s, 200, "{body}");
    // sysLocation as snmpd.conf sets it (see support::start_snmpd_with).
    assert!(
        body.contains("sysLocation{sysLocation=\"loopback-test\"} 1"),
        "{body}"
    );
    let (s, body) = scrape(
        &p,
        &format!("target=127.0.0.1:{port}&module=uptime,location&auth=lab"),
    );
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("sysUpTime "), "{body}");
    let (_, _, page) = testkit::http_get(&format!("{}/config", p.base()));
    for k in ["lab:", "uptime:", "location:", "community: <secret>"] {
        assert!(page.contains(k), "{k}: {page}");
    }

    // A duplicate module: check fails naming both files, a reload is refused
    // with the same reason and the last good config stays in force.
    let dup = d.join("c.yml");
    std::fs::write(
        &dup,
        "modules:\n  uptime:\n    walk: [1.3.6.1.2.1.1]\n  extra:\n    walk: [1.3.6.1.2.1.1]\n",
    )
    .unwrap();
    let (ok, text) = check(&args);
    assert!(!ok);
    let want = format!(
        "{}: module \"uptime\" is already defined in {}",
        dup.display(),
        d.join("a.yml").display()
    );
    assert!(text.contains(&want), "{text}");
    let (s, _, body) = testkit::http_request("POST", &format!("{}/-/reload", p.base()), &[]);
    assert_eq!(s, 500, "{body}");
    assert!(body.contains(&want), "{body}");
    let (s, _) = scrape(
        &p,
        &format!("target=127.0.0.1:{port}&module=extra&auth=lab"),
    );
    assert_eq!(s, 400, "the refused config must not be in force");
    let (_, _, m) = testkit::http_get(&format!("{}/metrics", p.base()));
    assert!(
        m.contains("snmp_exporter_config_last_reload_successful 0"),
        "{m}"
    );

    // Fixed, and a new file picked up by the glob on SIGHUP.
    std::fs::write(&dup, "modules:\n  extra:\n    walk: [1.3.6.1.2.1.1.5]\n    metrics:\n    - {name: sysName, oid: 1.3.6.1.2.1.1.5, type: DisplayString, help: n}\n").unwrap();
    p.signal("HUP");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, _, m) = testkit::http_get(&format!("{}/metrics", p.base()));
        if m.contains("snmp_exporter_config_last_reload_successful 1") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no reload: {m}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (s, body) = scrape(
        &p,
        &format!("target=127.0.0.1:{port}&module=extra&auth=lab"),
    );
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("sysName{sysName="), "{body}");
    // A duplicate auth names both files too.
    let auths2 = dir.join("auths2.yml");
    std::fs::write(&auths2, "auths:\n  lab: {community: other}\n").unwrap();
    let (ok, text) = check(&[flag(&auths), flag(&auths2)]);
    assert!(!ok);
    assert!(
        text.contains(&format!(
            "{}: auth \"lab\" is already defined in {}",
            auths2.display(),
            auths.display()
        )),
        "{text}"
    );
}
