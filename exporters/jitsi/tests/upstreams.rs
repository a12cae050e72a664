//! The exporter against real upstream parts on loopback: a real Prosody
//! with mod_http_openmetrics, HTTP servers serving videobridge and Jicofo
//! documents (examples, 2021-era, hostile), and servers that hang, dribble,
//! answer 502 or truncate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use vigie_common::testkit;

fn up(body: &str, upstream: &str) -> Option<f64> {
    value(body, &format!("jitsi_up{{upstream=\"{upstream}\"}}"))
}

/// Every sample line appears once, and every name is valid.
fn assert_well_formed(body: &str) {
    let mut seen = HashSet::new();
    for l in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let series = match l.rfind('}') {
            Some(i) => &l[..=i],
            None => l.split(' ').next().unwrap(),
        };
        assert!(
            seen.insert(series.to_owned()),
            "duplicate series {series}\n{body}"
        );
        let name = series.split('{').next().unwrap();
        assert!(
            vigie_common::expo::is_valid_metric_name(name),
            "invalid name {name:?}"
        );
    }
}

#[test]
fn all_three_upstreams_with_a_real_prosody() {
    let Some(prosody) = start_prosody("jitsi-all3") else {
        return;
    };
    let jvb = serve_json(fixture("jvb_colibri_stats_example.json"));
    let jicofo = serve_json(fixture("jicofo_stats_example.json"));
    let p = exporter_with_config(
        "jitsi-all3",
        &format!(
            "timeout: 5s\njvb:\n  url: {}\njicofo:\n  url: {}\nprosody:\n  url: {}\n",
            jvb.url("/colibri/stats"),
            jicofo.url("/stats"),
            prosody.metrics_url()
        ),
    );
    let (status, body) = scrape(&p);
    assert_eq!(status, 200);
    for u in ["jvb", "jicofo", "prosody"] {
        assert_eq!(up(&body, u), Some(1.0), "{u}: {body}\n{}", p.log_text());
    }
    // systemli's names for the videobridge example.
    for (series, v) in [
        ("jitsi_participants", 11.0),
        ("jitsi_conferences", 3.0),
        ("jitsi_stress_level", 0.0712),
        ("jitsi_total_conferences_created", 148.0),
        ("jitsi_total_conference_seconds", 412345.0),
        ("total_ice_succeeded", 1017.0),
        ("total_ice_failed", 4.0),
        ("jitsi_healthy", 1.0),
        ("jitsi_drain", 0.0),
        ("jitsi_total_bytes_received", 98123456789.0),
        ("jitsi_version_info{version=\"2.3.254-g1a2b3c4d\"}", 1.0),
        ("jitsi_region_info{region=\"eu-central-1\"}", 1.0),
        ("jicofo_conferences", 3.0),
        ("jicofo_participants", 11.0),
        ("jicofo_bridge_selector_bridge_count", 2.0),
        ("jicofo_jibri_recording_active", 1.0),
        ("jicofo_health_hard_failure", 1.0),
    ] {
        assert_eq!(value(&body, series), Some(v), "{series}\n{body}");
    }
    assert!(
        body.contains("# TYPE jitsi_total_conferences_created counter\n"),
        "{body}"
    );
    assert!(
        !body.contains("current_timestamp") && !body.contains("_note"),
        "{body}"
    );

    // Prosody: the same names, labels and values as Prosody serves, minus _created.
    let (_, _, direct) = testkit::http_get(&prosody.metrics_url());
    let ours: std::collections::HashMap<String, String> =
        testkit::parse_samples(&body).into_iter().collect();
    let mut compared = 0;
    for (series, v) in testkit::parse_samples(&direct) {
        if series.contains("_created") {
            assert!(!ours.contains_key(&series), "{series} should be dropped");
            continue;
        }
        let got = ours
            .get(&series)
            .unwrap_or_else(|| panic!("{series} missing from\n{body}"));
        // The stats histograms move between two fetches; the rest must match.
        if !series.starts_with("prosody_stats_") {
            assert_eq!(
                got.parse::<f64>().unwrap(),
                v.parse::<f64>().unwrap(),
                "{series}"
            );
        }
        compared += 1;
    }
    assert!(compared > 20, "only {compared} prosody samples\n{direct}");
    assert!(
        body.contains("# TYPE prosody_mod_bosh__new_sid_total counter\n"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE prosody_stats_collection_seconds histogram\n"),
        "{body}"
    );
    assert_well_formed(&body);
    promtool_ok(&body);
    drop(prosody);
}

#[test]
fn failing_upstreams_answer_within_the_timeout_with_up_zero() {
    let hang = start(Behaviour::Hang);
    let dribble = start(Behaviour::Dribble);
    let bad = start(Behaviour::BadGateway);
    let p = exporter_with_config(
        "jitsi-failing",
        &format!(
            "timeout: 1s\njvb:\n  url: {}\njicofo:\n  url: {}\nprosody:\n  url: {}\n",
            hang.url("/colibri/stats"),
            dribble.url("/stats"),
            bad.url("/metrics")
        ),
    );
    for _ in 0..2 {
        let start = Instant::now();
        let (status, body) = scrape(&p);
        let took = start.elapsed();
        assert_eq!(status, 200, "{body}");
        assert!(took < Duration::from_secs(2), "scrape took {took:?}");
        assert!(
            took >= Duration::from_millis(900),
            "scrape took {took:?}: did it wait for the timeout?"
        );
        for u in ["jvb", "jicofo", "prosody"] {
            assert_eq!(up(&body, u), Some(0.0), "{u}: {body}");
        }
        assert!(
            !body.contains("\njitsi_participants")
                && !body.contains("\njicofo_")
                && !body.contains("\nprosody_"),
            "{body}"
        );
        promtool_ok(&body);
    }
    let log = p.log_text();
    assert!(log.contains("timed out") && log.contains("502"), "{log}");
}

#[test]
fn prometheus_scrape_timeout_header_shortens_the_timeout() {
    let hang = start(Behaviour::Hang);
    let p = exporter_with_config(
        "jitsi-header",
        &format!("timeout: 30s\njvb:\n  url: {}\n", hang.url("/")),
    );
    let start = Instant::now();
    let (status, _, body) = testkit::http_request(
        "GET",
        &format!("{}/metrics", p.base()),
        &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")],
    );
    assert_eq!(status, 200);
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(up(&body, "jvb"), Some(0.0));
}

#[test]
fn truncated_documents_are_failures() {
    let json = fixture("jvb_colibri_stats_example.json");
    let jvb = start(Behaviour::Truncate {
        body: json.clone(),
        content_type: "application/json".into(),
    });
    // Complete HTTP, truncated JSON.
    let jicofo = serve_json(fixture("jvb_truncated.json"));
    let om = fixture("prosody_0.12_openmetrics.txt");
    let cut = om[..om.len() / 2].to_vec();
    let prosody = start(Behaviour::Serve {
        body: cut,
        content_type: "application/openmetrics-text; version=0.0.4".into(),
    });
    let p = exporter_with_config(
        "jitsi-truncated",
        &format!(
            "timeout: 2s\njvb:\n  url: {}\njicofo:\n  url: {}\nprosody:\n  url: {}\n",
            jvb.url("/"),
            jicofo.url("/"),
            prosody.url("/")
        ),
    );
    let (status, body) = scrape(&p);
    assert_eq!(status, 200);
    for u in ["jvb", "jicofo", "prosody"] {
        assert_eq!(up(&body, u), Some(0.0), "{u}: {body}");
    }
    assert!(
        !body.contains("\nprosody_") && !body.contains("\njitsi_participants"),
        "{body}"
    );
}

#[test]
fn hostile_and_old_documents() {
    let jvb = serve_json(fixture("jvb_hostile.json"));
    let jicofo = serve_json(fixture("jicofo_2021.json"));
    let p = exporter_with_config(
        "jitsi-hostile",
        &format!(
            "jvb:\n  url: {}\njicofo:\n  url: {}\n",
            jvb.url("/"),
            jicofo.url("/")
        ),
    );
    let (status, body) = scrape(&p);
    assert_eq!(status, 200);
    assert_eq!(up(&body, "jvb"), Some(1.0), "{body}");
    assert_eq!(up(&body, "jicofo"), Some(1.0), "{body}");
    assert!(
        up(&body, "prosody").is_none(),
        "unconfigured upstreams do not appear"
    );
    for (series, v) in [
        ("jitsi_participants_local", 3.0),
        ("jitsi_participants_relayed_a", 1.0),
        ("jitsi_total_bytes_sent", 18446744073709551616.0),
        ("jitsi_endpoints", 7.0),
        ("jitsi_bit_rate_download", 12.0),
        ("jitsi_gr__e", 5.0),
        ("jitsi___", 6.0),
        ("jitsi_", 7.0),
        ("jitsi_1leading_digit", 8.0),
        ("total_ice_failed", 1.0),
        ("jitsi_version", 2.0),
        ("jitsi_relay_id_info{relay_id=\"a\\\"b\\\\c\\nd\"}", 1.0),
        ("jitsi_drain", 1.0),
        ("jitsi_conference_sizes{conference_size=\"0\"}", 1.0),
        ("jitsi_conference_sizes{conference_size=\"1\"}", -2.0),
        ("jitsi_conference_sizes{conference_size=\"2\"}", 3.5),
        ("jitsi_conference_sizes{conference_size=\"7\"}", 1e300),
        ("jitsi_conference_sizes_x{conference_size=\"6\"}", 6.0),
        ("jitsi_nested_deep_deeper_deepest{index=\"0\"}", 1.0),
        ("jitsi_nested_deep_deeper_deepest_k{index=\"1\"}", 0.0),
        ("jitsi_total_conferences_created", -5.0),
        ("jitsi_version_info", 4.0),
        // 2021-era Jicofo.
        ("jicofo_conference_sizes{conference_size=\"3\"}", 1.0),
        ("jicofo_bridge_selector_total_least_loaded", 12.0),
        ("jicofo_version_info{version=\"1.0-756-g1a2b3c4\"}", 1.0),
    ] {
        assert_eq!(value(&body, series), Some(v), "{series}\n{body}");
    }
    for absent in [
        "jitsi_threads ",
        "jitsi_conferences ",
        "jitsi_stress_level",
        "jitsi_total_bytes_received",
        "jitsi_total_packets_sent",
        "jitsi_healthy",
        "jitsi_region",
        "total_ice_bogus",
        "jitsi_up ",
        "jitsi_exporter_build_info ",
        "jitsi_conference_sizes{conference_size=\"3\"}",
        "jitsi_conference_sizes{conference_size=\"4\"}",
        "jitsi_conference_sizes{conference_size=\"5\"}",
    ] {
        assert!(
            !body.contains(&format!("\n{absent}")),
            "{absent} should be skipped\n{body}"
        );
    }
    assert_well_formed(&body);
    promtool_ok(&body);
}

#[test]
fn old_videobridge_document() {
    let jvb = serve_json(fixture("jvb_2021.json"));
    let p = exporter(&["-videobridge-url", &jvb.url("/colibri/stats")]);
    let (_, body) = scrape(&p);
    assert_eq!(up(&body, "jvb"), Some(1.0), "{body}");
    for (series, v) in [
        ("jitsi_audiochannels", 5.0),
        ("jitsi_videochannels", 4.0),
        ("jitsi_videostreams", 6.0),
        ("jitsi_loss_rate_download", 0.001),
        ("jitsi_jitter_aggregate", 1.5),
        ("jitsi_octo_version", 1.0),
        ("jitsi_conference_sizes{conference_size=\"2\"}", 1.0),
        ("jitsi_conference_sizes{conference_size=\"21\"}", 0.0),
        ("jitsi_conferences_by_audio_senders{index=\"1\"}", 2.0),
        ("total_ice_succeeded_relayed", 3.0),
        ("jitsi_total_loss_degraded_participant_seconds", 12.0),
        ("jitsi_graceful_shutdown", 0.0),
        ("jitsi_version_info{version=\"2.1.416-g2f43d1b4\"}", 1.0),
    ] {
        assert_eq!(value(&body, series), Some(v), "{series}\n{body}");
    }
    assert!(body.contains("# TYPE jitsi_total_loss_degraded_participant_seconds counter\n"));
    assert_eq!(
        body.matches("\njitsi_total_packets_dropped_octo ").count(),
        1,
        "duplicate key gives one series"
    );
    assert_well_formed(&body);
    promtool_ok(&body);
}

#[test]
fn a_failed_upstream_leaves_no_stale_values() {
    let jvb = serve_json(fixture("jvb_colibri_stats_example.json"));
    let url = jvb.url("/colibri/stats");
    let p = exporter(&[&format!("--videobridge-url={url}")]);
    let (_, body) = scrape(&p);
    assert_eq!(up(&body, "jvb"), Some(1.0));
    assert_eq!(value(&body, "jitsi_participants"), Some(11.0));
    drop(jvb);
    let (status, body) = scrape(&p);
    assert_eq!(status, 200);
    assert_eq!(up(&body, "jvb"), Some(0.0), "{body}");
    assert!(!body.contains("jitsi_participants"), "{body}");
}

#[test]
fn basic_auth_is_sent() {
    // base64("prom:s3cret")
    let token = "cHJvbTpzM2NyZXQ=".to_owned();
    let jicofo = start(Behaviour::Auth {
        token: token.clone(),
        body: fixture("jicofo_stats_example.json"),
    });
    let dir = testkit::scratch_dir("jitsi-auth");
    std::fs::write(dir.join("pw"), "s3cret\n").unwrap();
    let good = exporter_with_config(
        "jitsi-auth",
        &format!(
            "jicofo:\n  url: {}\n  basic_auth:\n    username: prom\n    password_file: pw\n",
            jicofo.url("/stats")
        ),
    );
    let (_, body) = scrape(&good);
    assert_eq!(up(&body, "jicofo"), Some(1.0), "{body}");
    let bad = exporter_with_config(
        "jitsi-auth-bad",
        &format!(
            "jicofo:\n  url: {}\n  basic_auth:\n    username: prom\n    password: wrong\n",
            jicofo.url("/stats")
        ),
    );
    let (_, body) = scrape(&bad);
    assert_eq!(up(&body, "jicofo"), Some(0.0), "{body}");
    assert!(bad.log_text().contains("401"), "{}", bad.log_text());
}

#[test]
fn reload_keeps_the_last_good_config() {
    let jvb = serve_json(fixture("jvb_colibri_stats_example.json"));
    let jicofo = serve_json(fixture("jicofo_stats_example.json"));
    let cfg = config_file("jitsi-reload", &format!("jvb:\n  url: {}\n", jvb.url("/")));
    let p = exporter(&[&format!("--config.file={}", cfg.display())]);
    let (_, body) = scrape(&p);
    assert_eq!(up(&body, "jvb"), Some(1.0));
    assert!(up(&body, "jicofo").is_none());
    assert_eq!(
        value(&body, "jitsi_exporter_config_last_reload_successful"),
        Some(1.0),
        "{body}"
    );

    std::fs::write(&cfg, "jvb:\n  urll: x\n").unwrap();
    let (status, _, msg) = testkit::http_request("POST", &format!("{}/-/reload", p.base()), &[]);
    assert_eq!(status, 500, "{msg}");
    assert!(msg.contains("urll"), "{msg}");
    let (_, body) = scrape(&p);
    assert_eq!(up(&body, "jvb"), Some(1.0), "old config kept");
    assert_eq!(
        value(&body, "jitsi_exporter_config_last_reload_successful"),
        Some(0.0),
        "{body}"
    );

    std::fs::write(
        &cfg,
        format!(
            "jvb:\n  url: {}\njicofo:\n  url: {}\n",
            jvb.url("/"),
            jicofo.url("/")
        ),
    )
    .unwrap();
    p.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = scrape(&p);
        if up(&body, "jicofo") == Some(1.0) {
            assert_eq!(
                value(&body, "jitsi_exporter_config_last_reload_successful"),
                Some(1.0)
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP reload not applied: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn config_check() {
    let bin = env!("CARGO_BIN_EXE_vigie-jitsi-exporter");
    let shipped = testkit::workspace_root().join("config/jitsi.yml");
    let out = std::process::Command::new(bin)
        .arg(format!("--config.file={}", shipped.display()))
        .arg("--config.check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = config_file(
        "jitsi-check",
        "timeout: 5s\nprosody:\n  url: http://x/\n  tls_config:\n    insecure: true\n",
    );
    let out = std::process::Command::new(bin)
        .arg(format!("--config.file={}", bad.display()))
        .arg("--config.check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("jitsi.yml:5") && err.contains("insecure"),
        "{err}"
    );
}
