//! Vigie against the real snmp_exporter 0.21 (Debian's prometheus-snmp-exporter),
//! both polling the same real agent with the same modules, sample by sample.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::*;

/// One snmp.yml (0.21 layout) both exporters load: upstream modules, an
/// SNMPv3 authPriv copy of if_mib, and Vigie's shipped modules.
fn snmpd_config(dir: &std::path::Path) -> std::path::PathBuf {
    let upstream = std::fs::read_to_string(fixture("snmp_exporter-0.21.0-snmp.yml")).unwrap();
    let blocks = flat_modules(&upstream);
    let mut text = String::new();
    for m in ["if_mib", "ddwrt", "arista_sw", "paloalto_fw", "synology"] {
        text.push_str(&blocks[m]);
    }
    text.push_str(&blocks["if_mib"].replacen("if_mib:", "if_mib_v1:", 1));
    text.push_str("  version: 1\n");
    text.push_str(&blocks["if_mib"].replacen("if_mib:", "if_mib_v3:", 1));
    text.push_str(
        "  version: 3\n  auth:\n    username: promuser\n    security_level: authPriv\n    password: authpass123\n    auth_protocol: SHA\n    priv_protocol: AES\n    priv_password: privpass123\n",
    );
    // Every rendering path: regex_extracts, EnumAsStateSet, Bits, Float (Opaque),
    // DateAndTime, OctetString hex, InetAddress indexes, TimeTicks as a label,
    // EnumAsInfo with unknown values, two metrics on one OID.
    text.push_str(&std::fs::read_to_string(fixture("types_module_v021.yml")).unwrap());
    text.push_str(&shipped_as_flat(
        "public",
        &["system", "host_resources", "ucd"],
    ));
    for (name, user, auth, pass, privp, privpass) in [
        (
            "v3_sha256_aes256",
            "u256",
            "SHA256",
            "authpass256",
            "AES256",
            "privpass256",
        ),
        (
            "v3_sha512_aes192",
            "u512",
            "SHA512",
            "authpass512",
            "AES192",
            "privpass512",
        ),
        (
            "v3_md5_des",
            "umd5",
            "MD5",
            "authpassmd5",
            "DES",
            "privpassdes",
        ),
    ] {
        text.push_str(&blocks["if_mib"].replacen("if_mib:", &format!("{name}:"), 1));
        text.push_str(&format!(
            "  version: 3\n  auth:\n    username: {user}\n    security_level: authPriv\n    password: {pass}\n    auth_protocol: {auth}\n    priv_protocol: {privp}\n    priv_password: {privpass}\n"
        ));
    }
    text.push_str("v3_wrong_password:\n  get: [1.3.6.1.2.1.1.3.0]\n  version: 3\n  timeout: 500ms\n  retries: 1\n  auth:\n    username: promuser\n    security_level: authPriv\n    password: wrongpass123\n    auth_protocol: SHA\n    priv_protocol: AES\n    priv_password: privpass123\n  metrics:\n  - {name: sysUpTime, oid: 1.3.6.1.2.1.1.3, type: gauge, help: h}\n");
    text.push_str("wrong_community:\n  get: [1.3.6.1.2.1.1.3.0]\n  timeout: 200ms\n  retries: 1\n  auth:\n    community: wrong\n  metrics:\n  - {name: sysUpTime, oid: 1.3.6.1.2.1.1.3, type: gauge, help: h}\n");
    let path = dir.join("snmp.yml");
    std::fs::write(&path, text).unwrap();
    path
}

fn compare_module(
    go: &vigie_common::testkit::Proc,
    vigie: &vigie_common::testkit::Proc,
    query: &str,
) {
    let mut last = Vec::new();
    // Live agent: retry once if a value moved at the wrong moment.
    for _ in 0..3 {
        let (s1, g1) = scrape(go, query);
        let (sv, v) = scrape(vigie, query);
        let (s2, g2) = scrape(go, query);
        assert_eq!(s1, 200, "Go {query}: {g1}");
        assert_eq!(s2, 200, "Go {query}: {g2}");
        assert_eq!(sv, 200, "Vigie {query}: {v}");
        last = compare(&samples(&g1), &samples(&v), &samples(&g2));
        if last.is_empty() {
            // Same TYPE and HELP lines too.
            let meta = |t: &str| {
                t.lines()
                    .filter(|l| l.starts_with("# "))
                    .map(str::to_owned)
                    .collect::<std::collections::BTreeSet<_>>()
            };
            assert_eq!(meta(&g1), meta(&v), "{query}: HELP/TYPE lines differ");
            return;
        }
    }
    panic!("{query}: {} differences:\n{}", last.len(), last.join("\n"));
}

#[test]
fn same_samples_as_snmp_exporter_on_snmpd_v2c_and_v3() {
    let Some((_agent, port)) = start_snmpd("cmp") else {
        return;
    };
    let dir = vigie_common::testkit::scratch_dir("cmp-snmpd");
    let cfg = snmpd_config(&dir);
    let Some(go) = start_go(&cfg) else { return };
    let vigie = start_vigie(&cfg, &[]);
    for m in [
        "if_mib",
        "if_mib_v3",
        "if_mib_v1",
        "v3_sha256_aes256",
        "v3_sha512_aes192",
        "v3_md5_des",
        "ddwrt",
        "arista_sw",
        "paloalto_fw",
        "synology",
        "system",
        "host_resources",
        "ucd",
        "types",
    ] {
        compare_module(&go, &vigie, &format!("target=127.0.0.1:{port}&module={m}"));
    }
    // Concurrent subtree walks (a Vigie addition) change nothing in the output.
    let concurrent = start_vigie(&cfg, &["--snmp.walk-concurrency=3"]);
    for m in ["if_mib", "ddwrt", "host_resources"] {
        compare_module(
            &go,
            &concurrent,
            &format!("target=127.0.0.1:{port}&module={m}"),
        );
    }
    // A wrong community: silence, then the same 500 and reason as Go.
    let q = format!("target=127.0.0.1:{port}&module=wrong_community");
    let (sg, g) = scrape(&go, &q);
    let start = std::time::Instant::now();
    let (sv, v) = scrape(&vigie, &q);
    assert!(start.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!((sg, sv), (500, 500));
    let reason = "error getting target 127.0.0.1: request timeout (after 1 retries)";
    assert!(g.contains(reason), "{g}");
    assert!(v.contains(reason), "{v}");
    // snmp_context= (0.26+) overrides the v3 context: an unknown one fails.
    // (the agent ignores it: the scrape timeout header bounds the wait)
    let (s, _, v) = vigie_common::testkit::http_request(
        "GET",
        &format!(
            "{}/snmp?target=127.0.0.1:{port}&module=if_mib_v3&snmp_context=nosuchcontext",
            vigie.base()
        ),
        &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")],
    );
    assert_eq!(s, 500, "{v}");
    let (s, _) = scrape(
        &vigie,
        &format!("target=127.0.0.1:{port}&module=if_mib_v3&snmp_context="),
    );
    assert_eq!(s, 200);
    // A wrong v3 password: both fail the scrape.
    let q = format!("target=127.0.0.1:{port}&module=v3_wrong_password");
    let (sg, g) = scrape(&go, &q);
    let (sv, v) = scrape(&vigie, &q);
    assert_eq!((sg, sv), (500, 500), "{g}\n{v}");
    // v3 costs one discovery packet more, in both.
    let (_, v) = scrape(&vigie, &format!("target=127.0.0.1:{port}&module=if_mib_v3"));
    assert!(v.contains("snmp_scrape_packets_sent 9\n"), "{v}");
}

#[test]
fn pfsense_fixture_same_as_snmp_exporter_and_values_from_the_walk() {
    let Some((_agent, port)) = start_snmpsim() else {
        return;
    };
    let dir = vigie_common::testkit::scratch_dir("cmp-pfsense");
    let cfg = dir.join("snmp.yml");
    let upstream = std::fs::read_to_string(fixture("snmp_exporter-0.21.0-snmp.yml")).unwrap();
    let mut text = flat_modules(&upstream)["if_mib"].clone();
    text.push_str("  auth:\n    community: pfsense\n");
    text.push_str(&flat_modules(&upstream)["ddwrt"]);
    text.push_str("  auth:\n    community: pfsense\n");
    text.push_str(&shipped_as_flat(
        "pfsense",
        &["pfsense", "system", "ucd", "host_resources"],
    ));
    std::fs::write(&cfg, text).unwrap();
    let Some(go) = start_go(&cfg) else { return };
    let vigie = start_vigie(&cfg, &[]);
    let q = format!("target=127.0.0.1:{port}&module=pfsense");
    let (sg, g) = scrape(&go, &q);
    let (sv, v) = scrape(&vigie, &q);
    assert_eq!((sg, sv), (200, 200), "{g}\n{v}");
    let (gs, vs) = (samples(&g), samples(&v));
    let problems = compare(&gs, &vs, &gs);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for m in ["if_mib", "system", "ucd"] {
        let q = format!("target=127.0.0.1:{port}&module={m}");
        let (_, g) = scrape(&go, &q);
        let (_, v) = scrape(&vigie, &q);
        let p = compare(&samples(&g), &samples(&v), &samples(&g));
        assert!(p.is_empty(), "{m}: {}", p.join("\n"));
    }

    // upstream ddwrt looks up laNames, which this walk lacks: duplicate series, and
    // both exporters fail the scrape with the same list of errors.
    let q = format!("target=127.0.0.1:{port}&module=ddwrt");
    let (sg, g) = scrape(&go, &q);
    let (sv, v) = scrape(&vigie, &q);
    assert_eq!((sg, sv), (500, 500), "{v}");
    // Go lists them in map order, so compare without the values.
    let lines = |t: &str| {
        t.lines()
            .map(|l| match l.find("<value:") {
                Some(i) => format!(
                    "{}{}",
                    &l[..i],
                    &l[l[i..].find('>').map_or(l.len(), |j| i + j)..]
                ),
                None => l.to_owned(),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(lines(&g), lines(&v));

    // Values straight from the fixture file.
    let rec = snmprec();
    let want = |oid: &str| -> f64 { rec[oid].1.parse().unwrap() };
    let got = |series: &str| -> f64 {
        vs.get(series)
            .unwrap_or_else(|| panic!("{series} missing"))
            .parse()
            .unwrap()
    };
    let p = "1.3.6.1.4.1.12325.1.200.1";
    assert_eq!(got("pfStateTableCount"), want(&format!("{p}.3.1.0")));
    assert_eq!(got("pfStateTableSearches"), want(&format!("{p}.3.2.0")));
    assert_eq!(got("pfStateTableInserts"), want(&format!("{p}.3.3.0")));
    assert_eq!(got("pfStateTableRemovals"), want(&format!("{p}.3.4.0")));
    for (i, n) in [
        "Match",
        "BadOffset",
        "Fragment",
        "Short",
        "Normalize",
        "MemDrop",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(
            got(&format!("pfCounter{n}")),
            want(&format!("{p}.2.{}.0", i + 1))
        );
    }
    for idx in 1..=3 {
        let name = &rec[&format!("1.3.6.1.2.1.31.1.1.1.1.{idx}")].1;
        let labels = format!("{{ifAlias=\"\",ifIndex=\"{idx}\",ifName=\"{name}\"}}");
        assert_eq!(
            got(&format!("ifHCInOctets{labels}")),
            want(&format!("1.3.6.1.2.1.31.1.1.1.6.{idx}"))
        );
        assert_eq!(
            got(&format!("ifHCOutOctets{labels}")),
            want(&format!("1.3.6.1.2.1.31.1.1.1.10.{idx}"))
        );
    }
    assert_eq!(got("sysUpTime"), want("1.3.6.1.2.1.1.3.0"));
    assert_eq!(got("memTotalReal"), want("1.3.6.1.4.1.2021.4.5.0"));
    assert_eq!(got("memAvailReal"), want("1.3.6.1.4.1.2021.4.6.0"));
    assert_eq!(
        got("laLoadInt{laIndex=\"1\"}"),
        want("1.3.6.1.4.1.2021.10.1.5.1")
    );
    assert_eq!(
        got("hrStorageSize{hrStorageDescr=\"Real Memory Metrics\",hrStorageIndex=\"1\"}"),
        want("1.3.6.1.2.1.25.2.3.1.5.1")
    );
    assert_eq!(
        got("hrProcessorLoad{hrDeviceIndex=\"131\"}"),
        want("1.3.6.1.2.1.25.3.3.1.2.131")
    );
    assert_eq!(
        got("dskTotal{dskIndex=\"1\",dskPath=\"/\"}"),
        want("1.3.6.1.4.1.2021.9.1.6.1")
    );
    // The walk has no pf interface table: the module walks it and gets nothing.
    assert!(!vs.keys().any(|k| k.starts_with("pfInterfacesIf4")));

    // Several modules in one scrape: per-module scrape metrics with a module label.
    let (s, v) = scrape(
        &vigie,
        &format!("target=127.0.0.1:{port}&module=system,ucd"),
    );
    assert_eq!(s, 200, "{v}");
    assert!(
        v.contains("snmp_scrape_pdus_returned{module=\"system\"}"),
        "{v}"
    );
    assert!(
        v.contains("snmp_scrape_pdus_returned{module=\"ucd\"}"),
        "{v}"
    );
    assert!(
        v.contains("sysDescr{sysDescr=\"pfSense 2.3.2-RELEASE"),
        "{v}"
    );
}

#[test]
fn pfsense_module_on_a_begemot_pf_agent_same_as_snmp_exporter() {
    let script = fixture("fake_begemot_pf.py");
    let Some(python) = vigie_common::testkit::require("python3") else {
        return;
    };
    let extra = format!(
        "pass_persist .1.3.6.1.4.1.12325.1.200.1 {} {}\n",
        python.display(),
        script.display()
    );
    let Some((_agent, port)) = start_snmpd_with("begemot", &extra) else {
        return;
    };
    let dir = vigie_common::testkit::scratch_dir("cmp-begemot");
    let cfg = dir.join("snmp.yml");
    std::fs::write(&cfg, shipped_as_flat("public", &["pfsense"])).unwrap();
    let Some(go) = start_go(&cfg) else { return };
    let vigie = start_vigie(&cfg, &[]);
    compare_module(
        &go,
        &vigie,
        &format!("target=127.0.0.1:{port}&module=pfsense"),
    );
    let (_, v) = scrape(&vigie, &format!("target=127.0.0.1:{port}&module=pfsense"));
    let s = samples(&v);
    let get = |k: &str| -> f64 {
        s.get(k)
            .unwrap_or_else(|| panic!("{k} missing:\n{v}"))
            .parse()
            .unwrap()
    };
    assert_eq!(get("pfStatusRunning"), 1.0);
    assert_eq!(get("pfStatusRuntime"), 123456.0);
    assert_eq!(get("pfStateTableCount"), 140.0);
    assert_eq!(get("pfLimitsStates"), 100000.0);
    assert_eq!(get("pfSrcNodesCount"), 3.0);
    assert_eq!(
        get("pfCounterNormalize"),
        12345.0,
        "Counter64 wrapped at 2^53"
    );
    assert_eq!(get("pfCounterMatch"), 1001.0);
    let cols = [
        "4BytesInPass",
        "4BytesInBlock",
        "4BytesOutPass",
        "4BytesOutBlock",
        "4PktsInPass",
        "4PktsInBlock",
        "4PktsOutPass",
        "4PktsOutBlock",
        "6BytesInPass",
        "6BytesInBlock",
        "6BytesOutPass",
        "6BytesOutBlock",
        "6PktsInPass",
        "6PktsInBlock",
        "6PktsOutPass",
        "6PktsOutBlock",
    ];
    for (i, name) in ["all", "em0", "em1"].iter().enumerate() {
        let idx = i + 1;
        for (c, col) in cols.iter().enumerate() {
            let key = format!("pfInterfacesIf{col}{{pfInterfacesIfDescr=\"{name}\",pfInterfacesIfIndex=\"{idx}\"}}");
            assert_eq!(get(&key), (idx * 1_000_000 + c + 7) as f64, "{key}");
        }
    }
    assert!(v.contains("# TYPE pfInterfacesIf6PktsOutBlock counter"));
}
