#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Golden comparison of the "rare hardware" collectors (bcache, bonding,
//! btrfs, ..., zfs) against the real node_exporter 1.5.0: both binaries read
//! the fixture tree `tests/fixtures/sysfs-rare` (taken from upstream's test
//! fixtures, see its NOTICE) with the same collector list, and every sample
//! (name, labels, value) and every family's TYPE and HELP must be equal,
//! apart from timings and build information.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use vigie_common::testkit;

/// Collectors compared on the fixture tree (sorted).
const RARE: &[&str] = &[
    "bcache",
    "bonding",
    "btrfs",
    "dmi",
    "edac",
    "fibrechannel",
    "hwmon",
    "infiniband",
    "ipvs",
    "mdadm",
    "nfs",
    "nfsd",
    "nvme",
    "powersupplyclass",
    "rapl",
    "selinux",
    "systemd",
    "tapestats",
    "thermal_zone",
    "xfs",
    "zfs",
];

const GO_BIN: &str = "/usr/bin/prometheus-node-exporter";

fn tree() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysfs-rare")
}

fn args(tree: &Path, collectors: &[&str], extra: &[&str]) -> Vec<String> {
    let mut a = vec![
        format!("--path.procfs={}", tree.join("proc").display()),
        format!("--path.sysfs={}", tree.join("sys").display()),
        "--collector.disable-defaults".to_owned(),
    ];
    a.extend(collectors.iter().map(|c| format!("--collector.{c}")));
    a.extend(extra.iter().map(|s| (*s).to_owned()));
    a
}

fn skipped(name: &str) -> bool {
    name.starts_with("go_")
        || name.starts_with("process_")
        || name.starts_with("promhttp_")
        || name.ends_with("_build_info")
        || name == "node_scrape_collector_duration_seconds"
}

fn family_of(series: &str) -> &str {
    series.split('{').next().unwrap_or(series)
}

/// Samples plus `# HELP`/`# TYPE` lines, keyed for comparison.
fn parse(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        for (prefix, tag) in [("# HELP ", "help"), ("# TYPE ", "type")] {
            if let Some(rest) = line.strip_prefix(prefix) {
                let (name, v) = rest.split_once(' ').unwrap_or((rest, ""));
                if !skipped(name) {
                    out.insert(format!("{tag} {name}"), v.to_owned());
                }
            }
        }
    }
    for (s, v) in testkit::parse_samples(text) {
        if !skipped(family_of(&s)) {
            out.insert(s, v);
        }
    }
    out
}

fn scrape(bin: &str, args: &[String]) -> String {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let p = testkit::spawn_exporter(bin, &args);
    let (status, _, body) = testkit::http_get(&format!("{}/metrics", p.base()));
    assert_eq!(status, 200, "{bin}: {body}");
    body
}

fn compare(tree: &Path, collectors: &[&str], extra: &[&str]) {
    if testkit::require(GO_BIN).is_none() {
        return;
    }
    let a = args(tree, collectors, extra);
    let a2 = a.clone();
    let go = std::thread::spawn(move || scrape(GO_BIN, &a2));
    let vigie = scrape(env!("CARGO_BIN_EXE_vigie-node-exporter"), &a);
    let go = go.join().expect("go exporter scrape");
    let (want, got) = (parse(&go), parse(&vigie));
    let mut d = Vec::new();
    for (k, v) in &want {
        match got.get(k) {
            None => d.push(format!("missing in vigie: {k} {v}")),
            Some(g) if g != v => d.push(format!("differs: {k} go={v:?} vigie={g:?}")),
            Some(_) => {}
        }
    }
    for (k, v) in &got {
        if !want.contains_key(k) {
            d.push(format!("extra in vigie: {k} {v}"));
        }
    }
    eprintln!("compared {} lines for {collectors:?}", want.len());
    assert!(d.is_empty(), "{} differences:\n{}", d.len(), d.join("\n"));
    for c in collectors {
        let key = format!("node_scrape_collector_success{{collector=\"{c}\"}}");
        assert!(want.contains_key(&key), "go did not run {c}");
    }
}

#[test]
fn rare_collectors_match_go_on_fixture_tree() {
    compare(&tree(), RARE, &[]);
}

/// On an empty tree every collector reports what Go reports (mostly
/// `node_scrape_collector_success 0`, no panic).
#[test]
fn rare_collectors_match_go_on_empty_tree() {
    let empty = testkit::scratch_dir("rare-empty");
    let _ = std::fs::create_dir_all(empty.join("proc"));
    let _ = std::fs::create_dir_all(empty.join("sys"));
    compare(&empty, RARE, &[]);
}

/// Option flags: an IPVS label subset (backends summed) and the RAPL zone label.
#[test]
fn rare_option_flags_match_go() {
    compare(
        &tree(),
        &["bcache", "ipvs", "rapl", "powersupplyclass", "tapestats"],
        &[
            "--collector.bcache.priorityStats",
            "--collector.ipvs.backend-labels=local_port,proto",
            "--collector.rapl.enable-zone-label",
            "--collector.powersupply.ignored-supplies=^AC$",
            "--collector.tapestats.ignored-devices=^st1$",
        ],
    );
}

/// A tree holding only `proc/net/rpc/{nfs,nfsd}` with the given contents.
fn nfs_tree(name: &str, nfs: &str, nfsd: &str) -> PathBuf {
    let d = testkit::scratch_dir(name);
    std::fs::create_dir_all(d.join("proc/net/rpc")).unwrap();
    std::fs::create_dir_all(d.join("sys")).unwrap();
    std::fs::write(d.join("proc/net/rpc/nfs"), nfs).unwrap();
    std::fs::write(d.join("proc/net/rpc/nfsd"), nfsd).unwrap();
    d
}

fn numbers(count: usize, from: usize) -> String {
    (from..from + count)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// NFS procedure order (distinct values), absent lines, short and
/// unknown lines: same output and success as Go.
#[test]
fn rare_nfs_variants_match_go() {
    let good_nfs = format!(
        "net 1 2 3 4\nrpc 5 6 7\nproc2 18 {}\nproc3 22 {}\nproc4 61 {}\n",
        numbers(18, 100),
        numbers(22, 200),
        numbers(61, 300)
    );
    let good_nfsd = format!(
        "rc 1 2 3\nfh 4 0 0 0 0\nio 5 6\nth 7 0 0.000 0.000\nnet 9 10 11 12\nrpc 13 14 15 16 17\nproc2 18 {}\nproc3 22 {}\nproc4 2 2 10853\nproc4ops 72 {}\n",
        numbers(18, 100),
        numbers(22, 200),
        numbers(72, 400)
    );
    let cases = [
        ("nfs-order", good_nfs.clone(), good_nfsd.clone()),
        (
            "nfs-partial",
            "net 1 2 3 4\n".to_owned(),
            "rc 1 2 3\nth 8 0\n".to_owned(),
        ),
        (
            "nfs-short",
            "proc3 22 1 2 3\n".to_owned(),
            "ra 32\n".to_owned(),
        ),
        (
            "nfs-count",
            format!("proc2 5 {}\n", numbers(18, 0)),
            format!("proc4ops 72 {}\n", numbers(40, 0)),
        ),
        (
            "nfs-unknown",
            "bogus 1\n".to_owned(),
            "wdeleg_getattr 0\n".to_owned(),
        ),
    ];
    for (name, nfs, nfsd) in cases {
        compare(&nfs_tree(name, &nfs, &nfsd), &["nfs", "nfsd"], &[]);
    }
}
