//! Dynamic filters (snmp_exporter 0.22+ `filters:`) and static filters (as
//! the generator writes them: `get:` of target.index) on real agents:
//! snmpsim serving the pfSense walk and net-snmp's snmpd. The expected
//! series come from the fixture file and from `snmpwalk`, not from Vigie.
//! (Debian's snmp_exporter is 0.21 and knows no filters, so there is no Go
//! side-by-side here.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use support::*;

const IF_DESCR: &str = "1.3.6.1.2.1.2.2.1.2";
const IF_MTU: &str = "1.3.6.1.2.1.2.2.1.4";
const IF_ADMIN: &str = "1.3.6.1.2.1.2.2.1.7";
const IF_OPER: &str = "1.3.6.1.2.1.2.2.1.8";

/// Metric definitions as the generator writes them for IF-MIB.
fn if_metrics() -> String {
    format!(
        "    metrics:\n\
         \x20   - {{name: ifDescr, oid: {IF_DESCR}, type: DisplayString, help: d, indexes: [{{labelname: ifIndex, type: gauge}}]}}\n\
         \x20   - {{name: ifMtu, oid: {IF_MTU}, type: gauge, help: m, indexes: [{{labelname: ifIndex, type: gauge}}]}}\n\
         \x20   - {{name: sysName, oid: 1.3.6.1.2.1.1.5, type: DisplayString, help: n}}\n"
    )
}

/// A column of the pfSense fixture: index → value.
fn fixture_column(rec: &BTreeMap<String, (String, String)>, col: &str) -> BTreeMap<u32, String> {
    rec.iter()
        .filter_map(|(oid, (_, v))| {
            let idx = oid.strip_prefix(col)?.strip_prefix('.')?;
            Some((idx.parse().ok()?, v.clone()))
        })
        .collect()
}

/// A column walked with net-snmp's snmpwalk: index → value (quotes removed).
fn snmpwalk_column(port: u16, col: &str) -> BTreeMap<u32, String> {
    let out = std::process::Command::new("snmpwalk")
        .args(["-m", "", "-v2c", "-c", "public", "-On", "-Oq", "-Oe"])
        .arg(format!("127.0.0.1:{port}"))
        .arg(col)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (oid, v) = l.split_once(' ')?;
            let idx = oid.strip_prefix(&format!(".{col}."))?;
            Some((idx.parse().ok()?, v.trim().trim_matches('"').to_owned()))
        })
        .collect()
}

fn indices_where(col: &BTreeMap<u32, String>, keep: impl Fn(&str) -> bool) -> BTreeSet<u32> {
    col.iter()
        .filter(|(_, v)| keep(v))
        .map(|(i, _)| *i)
        .collect()
}

/// The ifDescr and ifMtu series expected for the given indices.
fn expected_if_series(
    descr: &BTreeMap<u32, String>,
    mtu: &BTreeMap<u32, String>,
    descr_at: &BTreeSet<u32>,
    mtu_at: &BTreeSet<u32>,
) -> Samples {
    let mut want = Samples::new();
    for i in descr_at {
        want.insert(
            format!("ifDescr{{ifDescr=\"{}\",ifIndex=\"{i}\"}}", descr[i]),
            "1".into(),
        );
    }
    for i in mtu_at {
        want.insert(format!("ifMtu{{ifIndex=\"{i}\"}}"), mtu[i].clone());
    }
    want
}

/// The data series of a scrape, without the snmp_scrape_* ones.
fn data_series(body: &str) -> Samples {
    samples(body)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("snmp_scrape_"))
        .collect()
}

fn scrape_ok(p: &vigie_common::testkit::Proc, query: &str) -> (Samples, Samples) {
    let (status, body) = scrape(p, query);
    assert_eq!(status, 200, "{query}: {body}");
    (data_series(&body), samples(&body))
}

#[test]
fn dynamic_filters_on_the_pfsense_walk() {
    let Some((_agent, port)) = start_snmpsim() else {
        return;
    };
    let m = if_metrics();
    let text = format!(
        "auths:\n  pfsense: {{community: pfsense, version: 2}}\nmodules:\n\
         \x20 up:\n    walk: [{IF_DESCR}, {IF_MTU}]\n    get: [1.3.6.1.2.1.1.5.0]\n    timeout: 10s\n{m}\
         \x20   filters:\n\
         \x20   - {{oid: {IF_ADMIN}, targets: [{IF_DESCR}, {IF_MTU}], values: ['^1$']}}\n\
         \x20   - {{oid: {IF_OPER}, targets: [{IF_MTU}], values: ['^1$']}}\n\
         \x20 by_name:\n    walk: [{IF_MTU}]\n    timeout: 10s\n{m}\
         \x20   filters:\n\
         \x20   - {{oid: {IF_DESCR}, targets: [{IF_MTU}], values: ['em[12]', '^lo']}}\n\
         \x20 none:\n    walk: [{IF_DESCR}, {IF_MTU}]\n    timeout: 10s\n{m}\
         \x20   filters:\n\
         \x20   - {{oid: {IF_OPER}, targets: [{IF_MTU}], values: ['^9$']}}\n"
    );
    let dir = vigie_common::testkit::scratch_dir("filters-pfsense");
    let cfg = dir.join("snmp.yml");
    std::fs::write(&cfg, text).unwrap();

    let rec = snmprec();
    let descr = fixture_column(&rec, IF_DESCR);
    let mtu = fixture_column(&rec, IF_MTU);
    let admin_up = indices_where(&fixture_column(&rec, IF_ADMIN), |v| v == "1");
    let oper_up = indices_where(&fixture_column(&rec, IF_OPER), |v| v == "1");
    assert!(!admin_up.is_empty() && !oper_up.is_empty() && admin_up != oper_up);
    let both: BTreeSet<u32> = admin_up.intersection(&oper_up).copied().collect();
    let sys_name = &rec["1.3.6.1.2.1.1.5.0"].1;

    let vigie = start_vigie(&cfg, &[]);
    let q = |m: &str| format!("target=127.0.0.1:{port}&module={m}&auth=pfsense");

    // Two filters on ifMtu intersect; ifDescr only has the admin filter.
    let (got, all) = scrape_ok(&vigie, &q("up"));
    let mut want = expected_if_series(&descr, &mtu, &admin_up, &both);
    want.insert(format!("sysName{{sysName=\"{sys_name}\"}}"), "1".into());
    assert_eq!(got, want);
    // The GETs (sysName + targets at the kept indices) are the PDUs returned;
    // the filter walks are not. Packets: one GETBULK per filter column
    // (7 rows < max_repetitions), one GET for all, no walk left.
    let pdus = 1 + admin_up.len() + both.len();
    assert_eq!(all["snmp_scrape_pdus_returned"], pdus.to_string());
    let sent: u64 = all["snmp_scrape_packets_sent"].parse().unwrap();
    let retried: u64 = all["snmp_scrape_packets_retried"].parse().unwrap();
    assert_eq!(sent - retried, 3, "{all:?}");

    // Concurrent walks change nothing.
    let concurrent = start_vigie(&cfg, &["--snmp.walk-concurrency=3"]);
    let (got_c, all_c) = scrape_ok(&concurrent, &q("up"));
    assert_eq!(got_c, got);
    assert_eq!(all_c["snmp_scrape_pdus_returned"], pdus.to_string());

    // Values are unanchored regexes on the value as a string.
    let re = [
        regex::Regex::new("em[12]").unwrap(),
        regex::Regex::new("^lo").unwrap(),
    ];
    let named = indices_where(&descr, |v| re.iter().any(|r| r.is_match(v)));
    assert_eq!(named.len(), 3, "{descr:?}");
    let (got, _) = scrape_ok(&vigie, &q("by_name"));
    assert_eq!(
        got,
        expected_if_series(&descr, &mtu, &BTreeSet::new(), &named)
    );

    // No index matches: the target is neither walked nor fetched.
    let (got, all) = scrape_ok(&vigie, &q("none"));
    let every: BTreeSet<u32> = descr.keys().copied().collect();
    assert_eq!(
        got,
        expected_if_series(&descr, &mtu, &every, &BTreeSet::new())
    );
    assert_eq!(all["snmp_scrape_pdus_returned"], every.len().to_string());
}

#[test]
fn static_and_dynamic_filters_on_snmpd() {
    let Some((_agent, port)) = start_snmpd("filters") else {
        return;
    };
    let descr = snmpwalk_column(port, IF_DESCR);
    let mtu = snmpwalk_column(port, IF_MTU);
    let oper = snmpwalk_column(port, IF_OPER);
    assert!(
        !descr.is_empty() && descr.len() == mtu.len(),
        "{descr:?} {mtu:?}"
    );
    let first = *descr.keys().next().unwrap();
    let last = *descr.keys().last().unwrap();
    let m = if_metrics();
    // What the generator writes for `filters: {static: [{targets: [ifDescr],
    // indices: [first, last, 99999]}]}`: the column leaves `walk:` and its
    // instances are in `get:`; a missing instance is dropped.
    let text = format!(
        "modules:\n\
         \x20 static:\n    get: [{IF_DESCR}.{first}, {IF_DESCR}.{last}, {IF_DESCR}.99999]\n    walk: [{IF_MTU}]\n{m}\
         \x20 oper_up:\n    walk: [{IF_DESCR}, {IF_MTU}]\n{m}\
         \x20   filters:\n\
         \x20   - oid: {IF_OPER}\n      targets: ['{IF_DESCR}', '{IF_MTU}']\n      values: ['^1$']\n"
    );
    let dir = vigie_common::testkit::scratch_dir("filters-snmpd");
    let cfg = dir.join("snmp.yml");
    std::fs::write(&cfg, text).unwrap();
    let vigie = start_vigie(&cfg, &[]);
    let q = |m: &str| format!("target=127.0.0.1:{port}&module={m}");

    let (got, all) = scrape_ok(&vigie, &q("static"));
    let every: BTreeSet<u32> = mtu.keys().copied().collect();
    let ends: BTreeSet<u32> = [first, last].into();
    assert_eq!(got, expected_if_series(&descr, &mtu, &ends, &every));
    assert_eq!(
        all["snmp_scrape_pdus_returned"],
        (ends.len() + every.len()).to_string()
    );

    let up = indices_where(&oper, |v| v == "1");
    assert!(!up.is_empty(), "loopback is up: {oper:?}");
    let (got, all) = scrape_ok(&vigie, &q("oper_up"));
    assert_eq!(got, expected_if_series(&descr, &mtu, &up, &up));
    assert_eq!(all["snmp_scrape_pdus_returned"], (2 * up.len()).to_string());
}
