//! The shipped Prometheus and Grafana configuration: promtool accepts the
//! scrape config, the examples and the rules; `promtool test rules` passes
//! and covers every alert both firing and silent; every metric a rule or a
//! dashboard reads is one Vigie exports; the modules and auths the scrape
//! jobs name exist in the shipped exporter configs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use common::*;
use serde_json::Value;
use vigie_common::testkit::require;

fn promtool(args: &[&str]) -> Option<(bool, String)> {
    let bin = require("promtool")?;
    let out = Command::new(bin)
        .args(args)
        .current_dir(prom_dir())
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

#[test]
fn promtool_check_config_accepts_the_scrape_config_and_examples() {
    let mut files = vec!["prometheus.yml".to_owned()];
    for e in std::fs::read_dir(prom_dir().join("examples")).unwrap() {
        let p = e.unwrap().path();
        files.push(format!(
            "examples/{}",
            p.file_name().unwrap().to_string_lossy()
        ));
    }
    for f in files {
        let Some((ok, text)) = promtool(&["check", "config", &f]) else {
            return;
        };
        assert!(ok, "promtool check config {f}:\n{text}");
    }
}

#[test]
fn promtool_check_rules_accepts_the_rules() {
    let Some((ok, text)) = promtool(&["check", "rules", "rules/alerts.yml", "rules/recording.yml"])
    else {
        return;
    };
    assert!(ok, "{text}");
}

#[test]
fn promtool_test_rules_passes() {
    let mut files: Vec<String> = std::fs::read_dir(prom_dir().join("tests"))
        .unwrap()
        .map(|e| format!("tests/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|f| f.ends_with(".yml"))
        .collect();
    files.sort();
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(String::as_str));
    let Some((ok, text)) = promtool(&args) else {
        return;
    };
    assert!(ok, "{text}");
}

#[test]
fn every_alert_is_tested_firing_and_silent() {
    let alerts: BTreeSet<String> = rule_exprs()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| !n.contains(':'))
        .collect();
    let mut seen: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for e in std::fs::read_dir(prom_dir().join("tests")).unwrap() {
        let v = yaml(&e.unwrap().path());
        for t in v["tests"].as_array().into_iter().flatten() {
            for a in t["alert_rule_test"].as_array().into_iter().flatten() {
                let name = a["alertname"].as_str().unwrap().to_owned();
                let fires = a["exp_alerts"].as_array().is_some_and(|x| !x.is_empty());
                let e = seen.entry(name).or_default();
                if fires {
                    e.0 = true;
                } else {
                    e.1 = true;
                }
            }
        }
    }
    for a in &alerts {
        let (fires, silent) = seen.get(a).copied().unwrap_or_default();
        assert!(fires, "no promtool test where {a} fires");
        assert!(silent, "no promtool test where {a} stays silent");
    }
}

/// Names the Go exporters export (captured), plus the SNMP names of the
/// shipped snmp.yml and the recording rules' outputs.
fn exported_names() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = read(&root().join("e2e/tests/fixtures/exported_names.txt"))
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split('\t').next())
        .map(str::to_owned)
        .collect();
    let snmp = yaml(&root().join("config/snmp.yml"));
    for (_, m) in snmp["modules"].as_object().into_iter().flatten() {
        for metric in m["metrics"].as_array().into_iter().flatten() {
            names.insert(metric["name"].as_str().unwrap_or("").to_owned());
        }
    }
    for n in [
        "snmp_scrape_duration_seconds",
        "snmp_scrape_pdus_returned",
        "snmp_scrape_walk_duration_seconds",
        "snmp_scrape_packets_sent",
        "snmp_scrape_packets_retried",
    ] {
        names.insert(n.to_owned());
    }
    for (n, _) in rule_exprs() {
        if n.contains(':') {
            names.insert(n);
        }
    }
    names.insert("up".to_owned());
    names
}

#[test]
fn rules_and_dashboards_read_only_exported_metrics() {
    let names = exported_names();
    let mut unknown = Vec::new();
    for (rule, expr) in rule_exprs() {
        for n in metric_names(&expr) {
            if !names.contains(&n) {
                unknown.push(format!("rule {rule}: {n}"));
            }
        }
    }
    for q in dashboard_queries() {
        for n in metric_names(&q.expr) {
            if !names.contains(&n) {
                unknown.push(format!("{} / {}: {n}", q.dashboard, q.panel));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "metrics no Vigie exporter exports:\n{}",
        unknown.join("\n")
    );
}

#[test]
fn scrape_jobs_name_modules_and_auths_that_exist() {
    let prom = yaml(&prom_dir().join("prometheus.yml"));
    let blackbox = yaml(&root().join("config/blackbox.yml"));
    let snmp = yaml(&root().join("config/snmp.yml"));
    let mut checked = 0;
    for job in prom["scrape_configs"].as_array().unwrap() {
        let name = job["job_name"].as_str().unwrap();
        let param = |k: &str| -> Vec<String> {
            job["params"][k]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .flat_map(|s| s.split(','))
                .map(str::to_owned)
                .collect()
        };
        match job["metrics_path"].as_str() {
            Some("/probe") => {
                for m in param("module") {
                    assert!(
                        blackbox["modules"][&m].is_object(),
                        "job {name}: module {m} not in config/blackbox.yml"
                    );
                    checked += 1;
                }
            }
            Some("/snmp") => {
                for m in param("module") {
                    assert!(
                        snmp["modules"][&m].is_object(),
                        "job {name}: module {m} not in config/snmp.yml"
                    );
                    checked += 1;
                }
                for a in param("auth") {
                    assert!(
                        snmp["auths"][&a].is_object(),
                        "job {name}: auth {a} not in config/snmp.yml"
                    );
                    checked += 1;
                }
            }
            _ => {}
        }
    }
    assert!(
        checked >= 5,
        "expected the blackbox and snmp jobs, checked {checked}"
    );
}

#[test]
fn dashboards_are_what_generate_py_writes() {
    let Some(py) = require("python3") else { return };
    let out = vigie_common::testkit::scratch_dir("grafana-gen");
    let st = Command::new(py)
        .arg(root().join("config/grafana/generate.py"))
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_owned();
        let committed = root().join("config/grafana/dashboards").join(&name);
        assert_eq!(
            read(&p),
            read(&committed),
            "{name:?} differs from generate.py's output: run python3 config/grafana/generate.py"
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn dashboards_use_the_datasource_variable_and_unique_ids() {
    let dir = root().join("config/grafana/dashboards");
    let mut uids = BTreeSet::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let d: Value = serde_json::from_str(&read(&p)).unwrap();
        assert!(
            uids.insert(d["uid"].as_str().unwrap().to_owned()),
            "{p:?}: uid repeated"
        );
        let mut ids = BTreeSet::new();
        for panel in d["panels"].as_array().unwrap() {
            assert!(
                ids.insert(panel["id"].as_u64().unwrap()),
                "{p:?}: panel id repeated"
            );
            if panel["type"] != "row" {
                assert_eq!(
                    panel["datasource"]["uid"], "${datasource}",
                    "{p:?}: {}",
                    panel["title"]
                );
            }
        }
    }
    assert_eq!(uids.len(), 4, "host, probes, pfsense, jitsi");
}

/// `systemd-analyze security --offline=true` rates every unit at 2.0 or
/// better (Debian's Go exporter units: 9.2), and the unit runs as vigie,
/// reads /etc/default and reloads with SIGHUP.
#[test]
fn systemd_units_are_hardened() {
    let Some(sa) = vigie_common::testkit::which("systemd-analyze") else {
        eprintln!("skipped: systemd-analyze not installed");
        return;
    };
    for x in ["node", "blackbox", "snmp", "jitsi"] {
        let unit = root().join(format!("systemd/vigie-{x}-exporter.service"));
        let text = read(&unit);
        for line in [
            "User=vigie".to_owned(),
            format!("EnvironmentFile=-/etc/default/vigie-{x}-exporter"),
            format!("ExecStart=/usr/bin/vigie-{x}-exporter $ARGS"),
            "ExecReload=/bin/kill -HUP $MAINPID".to_owned(),
            "Restart=on-failure".to_owned(),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{}: no line {line}",
                unit.display()
            );
        }
        let caps = if x == "blackbox" { "CAP_NET_RAW" } else { "" };
        assert!(
            text.contains(&format!("\nCapabilityBoundingSet={caps}\n")),
            "{x}: capabilities"
        );
        let out = Command::new(&sa)
            .args(["security", "--offline=true"])
            .arg(&unit)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let score: f64 = text
            .lines()
            .find_map(|l| l.split("exposure level for ").nth(1))
            .and_then(|l| l.split(": ").nth(1))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no score for {x}:\n{text}"));
        assert!(
            score <= 2.0,
            "vigie-{x}-exporter.service exposure {score} > 2.0"
        );
    }
}

/// The deb metadata of each exporter crate names existing files (apart from
/// what build-debs.sh stages under packaging/build/), and the default file's
/// ARGS names the config the package ships.
#[test]
fn deb_metadata_names_shipped_files() {
    let paths = regex::Regex::new(r#"\["(\.\./\.\./[^"]+)""#).unwrap();
    for x in ["node", "blackbox", "snmp", "jitsi"] {
        let crate_dir = root().join(format!("exporters/{x}"));
        let toml = read(&crate_dir.join("Cargo.toml"));
        let meta = toml
            .split("[package.metadata.deb]")
            .nth(1)
            .unwrap_or_else(|| panic!("exporters/{x}/Cargo.toml has no [package.metadata.deb]"));
        let pkg = format!("vigie-{x}-exporter");
        assert!(
            meta.contains(&format!("name = \"{pkg}\"")),
            "{x}: package name"
        );
        let mut n = 0;
        for c in paths.captures_iter(meta) {
            let rel = &c[1];
            if rel.starts_with("../../packaging/build/") {
                continue;
            }
            assert!(
                crate_dir.join(rel).exists(),
                "{x}: asset {rel} does not exist"
            );
            n += 1;
        }
        assert!(
            n >= 4,
            "{x}: expected the default file, sysusers, lintian overrides, web config"
        );
        for f in ["postinst", "postrm", "changelog", "default"] {
            assert!(
                root().join(format!("packaging/{pkg}/{f}")).is_file(),
                "{pkg}/{f}"
            );
        }
        for f in ["postinst", "postrm"] {
            let script = root().join(format!("packaging/{pkg}/{f}"));
            let text = read(&script);
            assert!(
                text.starts_with("#!/bin/sh\n") && text.contains("\n#DEBHELPER#\n"),
                "{pkg}/{f}: #!/bin/sh and #DEBHELPER#"
            );
            let st = Command::new("sh").arg("-n").arg(&script).status().unwrap();
            assert!(st.success(), "{pkg}/{f}: sh -n");
        }
        let default = read(&root().join(format!("packaging/{pkg}/default")));
        if x != "node" {
            assert!(
                meta.contains(&format!("\"etc/vigie/{x}.yml\"")),
                "{x}: ships /etc/vigie/{x}.yml"
            );
            assert!(
                default.contains(&format!("ARGS=\"--config.file=/etc/vigie/{x}.yml\"")),
                "{x}: default ARGS"
            );
        }
    }
}
