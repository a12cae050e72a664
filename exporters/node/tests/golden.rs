//! Golden comparison against the real node_exporter 1.5.0 (Debian's
//! `prometheus-node-exporter`): both binaries read the same fixture tree
//! (`--path.procfs/--path.sysfs/--path.rootfs/--path.udev.data`) with the
//! same explicit collector list, and every sample (name, labels, value) plus
//! every family's TYPE and HELP must be equal, apart from timings and build
//! information. The comparison, not hand-written expectations, is the proof
//! of compatibility.
//!
//! Adding a collector: put its name in [`GOLDEN_COLLECTORS`] (and the files it
//! reads into the fixture tree, see `fixtures/capture.sh`), or add a test
//! calling [`compare_tree`] on a tree of your own under `tests/fixtures/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use vigie_common::testkit;

/// The collectors compared on the captured tree `fixtures/local` and on the
/// live machine. Extend it when a collector lands (keep it sorted).
pub const GOLDEN_COLLECTORS: &[&str] = &[
    "arp",
    "bcache",
    "bonding",
    "btrfs",
    "conntrack",
    "cpu",
    "cpufreq",
    "diskstats",
    "dmi",
    "edac",
    "entropy",
    "fibrechannel",
    "filefd",
    "filesystem",
    "hwmon",
    "infiniband",
    "ipvs",
    "loadavg",
    "mdadm",
    "meminfo",
    "netclass",
    "netdev",
    "netstat",
    "nfs",
    "nfsd",
    "nvme",
    "os",
    "powersupplyclass",
    "pressure",
    "rapl",
    "schedstat",
    "selinux",
    "sockstat",
    "softnet",
    "stat",
    "systemd",
    "tapestats",
    "textfile",
    "thermal_zone",
    "time",
    "timex",
    "udp_queues",
    "uname",
    "vmstat",
    "xfs",
    "zfs",
];

/// Families whose values change between two reads of the same tree (the
/// clock, adjtimex): only their series are compared.
const VOLATILE: &[&str] = &["node_time_seconds", "node_timex_"];

const GO_BIN: &str = "/usr/bin/prometheus-node-exporter";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The flags that point both exporters at `tree` and pick `collectors`.
pub fn tree_args(tree: &Path, collectors: &[&str]) -> Vec<String> {
    let p = |sub: &str| tree.join(sub).to_string_lossy().into_owned();
    let mut args = vec![
        format!("--path.procfs={}", p("proc")),
        format!("--path.sysfs={}", p("sys")),
        format!("--path.rootfs={}", p("root")),
        format!("--path.udev.data={}", p("udev")),
        "--collector.disable-defaults".to_owned(),
    ];
    if collectors.contains(&"textfile") {
        args.push(format!("--collector.textfile.directory={}", p("textfile")));
    }
    if collectors.contains(&"netdev") {
        // Debian's default excludes lo; the fixture keeps it.
        args.push("--collector.netdev.device-exclude=".to_owned());
        // netlink would read the live kernel, not the tree.
        args.push("--no-collector.netdev.netlink".to_owned());
    }
    args.extend(collectors.iter().map(|c| format!("--collector.{c}")));
    args
}

/// One exporter's output: samples and per-family (TYPE, HELP).
struct Scrape {
    samples: BTreeMap<String, String>,
    meta: BTreeMap<String, (String, String)>,
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

fn parse(text: &str) -> Scrape {
    let mut meta: BTreeMap<String, (String, String)> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            meta.entry(name.to_owned()).or_default().1 = help.to_owned();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            meta.entry(name.to_owned()).or_default().0 = kind.to_owned();
        }
    }
    meta.retain(|name, _| !skipped(name));
    let samples = testkit::parse_samples(text)
        .into_iter()
        .filter(|(s, _)| !skipped(family_of(s)))
        .map(|(s, v)| {
            if VOLATILE.iter().any(|p| family_of(&s).starts_with(p)) {
                (s, "<volatile>".to_owned())
            } else {
                (s, v)
            }
        })
        .collect();
    Scrape { samples, meta }
}

fn scrape(bin: &str, args: &[String]) -> String {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let p = testkit::spawn_exporter(bin, &args);
    let (status, _, body) = testkit::http_get(&format!("{}/metrics", p.base()));
    assert_eq!(status, 200, "{bin}: {body}");
    body
}

/// Readable differences between the Go exporter (`want`) and Vigie (`got`).
fn diff(want: &Scrape, got: &Scrape) -> Vec<String> {
    let mut out = Vec::new();
    for (s, v) in &want.samples {
        match got.samples.get(s) {
            None => out.push(format!("missing in vigie: {s} {v}")),
            Some(g) if g != v => out.push(format!("value differs:    {s} go={v} vigie={g}")),
            Some(_) => {}
        }
    }
    for (s, v) in &got.samples {
        if !want.samples.contains_key(s) {
            out.push(format!("extra in vigie:   {s} {v}"));
        }
    }
    for (name, m) in &want.meta {
        match got.meta.get(name) {
            Some(g) if g != m => out.push(format!(
                "TYPE/HELP differs for {name}:\n    go:    {} {:?}\n    vigie: {} {:?}",
                m.0, m.1, g.0, g.1
            )),
            _ => {}
        }
    }
    out
}

/// Runs both exporters on `tree` with `collectors` (+ `extra` flags) and
/// fails with a readable diff on any difference.
pub fn compare_tree(tree: &Path, collectors: &[&str], extra: &[&str]) {
    if testkit::require(GO_BIN).is_none() {
        return;
    }
    let mut args = tree_args(tree, collectors);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let vigie_bin = env!("CARGO_BIN_EXE_vigie-node-exporter").to_owned();
    let a2 = args.clone();
    let go = std::thread::spawn(move || scrape(GO_BIN, &a2));
    let vigie = scrape(&vigie_bin, &args);
    let go = go.join().expect("go exporter scrape");
    let (want, got) = (parse(&go), parse(&vigie));
    let d = diff(&want, &got);
    eprintln!(
        "compared {} samples, {} families",
        want.samples.len(),
        want.meta.len()
    );
    assert!(
        d.is_empty(),
        "{} differences on {} with collectors {collectors:?}:\n{}",
        d.len(),
        tree.display(),
        d.join("\n")
    );
    // Every listed collector must have been compared (and not both failing
    // the same way unnoticed).
    for c in collectors {
        let key = format!("node_scrape_collector_success{{collector=\"{c}\"}}");
        assert!(want.samples.contains_key(&key), "go did not run {c}");
    }
}

#[test]
fn golden_local_tree() {
    compare_tree(&fixtures().join("local"), GOLDEN_COLLECTORS, &[]);
}

/// The same tree with truncated, malformed and missing files (see
/// fixtures/NOTICE): both exporters must fail and succeed the same way.
#[test]
fn golden_odd_tree() {
    compare_tree(
        &fixtures().join("odd"),
        GOLDEN_COLLECTORS,
        &["--collector.cpu.info"],
    );
}

/// Option flags that add families, on the same tree.
#[test]
fn golden_option_flags() {
    compare_tree(
        &fixtures().join("local"),
        &["stat", "cpu"],
        &["--collector.stat.softirq", "--collector.cpu.info"],
    );
}

/// udev edge cases for diskstats: `fixtures/udev-edge` gives each device
/// one `ID_ATA_ROTATION_RATE_RPM` value (Go's ParseFloat syntax); a tree
/// written here adds lines at and past bufio.Scanner's 64 KiB limit, which
/// end node_exporter's reading of a udev file.
#[test]
fn golden_udev_edge() {
    compare_tree(&fixtures().join("udev-edge"), &["diskstats"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path();
    for sub in ["proc", "sys", "udev"] {
        std::fs::create_dir_all(tree.join(sub)).unwrap();
    }
    const LIMIT: usize = 64 * 1024;
    let long =
        |len: usize, end: &str| format!("E:ID_WWN={}{end}", "w".repeat(len - 9 - (end.len() - 1)));
    let unterminated =
        |len: usize| format!("E:ID_MODEL=before\nE:ID_PATH={}", "p".repeat(len - 10));
    let files = [
        format!(
            "E:ID_MODEL=before\n{}E:ID_PATH=after\n",
            long(LIMIT - 1, "\n")
        ),
        format!("E:ID_MODEL=before\n{}E:ID_PATH=after\n", long(LIMIT, "\n")),
        format!(
            "E:ID_MODEL=before\n{}E:ID_PATH=after\n",
            long(LIMIT - 1, "\r\n")
        ),
        format!(
            "E:ID_MODEL=before\n{}E:ID_PATH=after\n",
            long(LIMIT, "\r\n")
        ),
        unterminated(LIMIT - 1),
        unterminated(LIMIT),
    ];
    let mut diskstats = String::new();
    for (i, body) in files.iter().enumerate() {
        diskstats.push_str(&format!("   2 {i} long{i} 1 2 3 4 5 6 7 8 9 10 11\n"));
        std::fs::write(tree.join(format!("udev/b2:{i}")), body).unwrap();
    }
    std::fs::write(tree.join("proc/diskstats"), diskstats).unwrap();
    compare_tree(tree, &["diskstats"], &[]);
}

type Shape = BTreeMap<String, (String, BTreeSet<String>)>;

/// Each family's type and label names.
fn shape(s: &Scrape) -> Shape {
    let mut out = Shape::new();
    for (name, (kind, _)) in &s.meta {
        out.entry(name.clone()).or_default().0 = kind.clone();
    }
    for series in s.samples.keys() {
        let fam = family_of(series).to_owned();
        let labels = series
            .split_once('{')
            .map(|(_, l)| l.trim_end_matches('}'))
            .unwrap_or("");
        let names: BTreeSet<String> = labels
            .split("\",")
            .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_owned()))
            .collect();
        out.entry(fam).or_default().1.extend(names);
    }
    out
}

fn shape_diff(want: &Shape, got: &Shape) -> Vec<String> {
    let mut d = Vec::new();
    for (fam, w) in want {
        match got.get(fam) {
            None => d.push(format!("missing family in vigie: {fam} {w:?}")),
            Some(g) if g != w => d.push(format!("{fam}: go={w:?} vigie={g:?}")),
            Some(_) => {}
        }
    }
    for fam in got.keys() {
        if !want.contains_key(fam) {
            d.push(format!("extra family in vigie: {fam}"));
        }
    }
    d
}

/// Both exporters on this machine with the same flags.
fn live_pair(args: &[String]) -> (Scrape, Scrape) {
    let vigie_bin = env!("CARGO_BIN_EXE_vigie-node-exporter").to_owned();
    let a2 = args.to_vec();
    let go = std::thread::spawn(move || scrape(GO_BIN, &a2));
    let vigie = scrape(&vigie_bin, args);
    let go = go.join().expect("go exporter scrape");
    (parse(&go), parse(&vigie))
}

/// Families, types and label names of both exporters on this machine
/// (values differ: the machine moves between the two scrapes).
#[test]
fn live_machine_same_families() {
    if testkit::require(GO_BIN).is_none() {
        return;
    }
    let mut args = vec!["--collector.disable-defaults".to_owned()];
    args.extend(GOLDEN_COLLECTORS.iter().map(|c| format!("--collector.{c}")));
    let (go, vigie) = live_pair(&args);
    let d = shape_diff(&shape(&go), &shape(&vigie));
    assert!(d.is_empty(), "live differences:\n{}", d.join("\n"));
}

/// netdev's address-info and detailed names, from netlink and from
/// /proc/net/dev: same families; the address series are equal.
#[test]
fn live_netdev_options() {
    if testkit::require(GO_BIN).is_none() {
        return;
    }
    for source in [
        "--collector.netdev.netlink",
        "--no-collector.netdev.netlink",
    ] {
        let args: Vec<String> = [
            "--collector.disable-defaults",
            "--collector.netdev",
            "--collector.netdev.address-info",
            "--collector.netdev.enable-detailed-metrics",
            source,
        ]
        .map(str::to_owned)
        .to_vec();
        let (go, vigie) = live_pair(&args);
        let d = shape_diff(&shape(&go), &shape(&vigie));
        assert!(
            d.is_empty(),
            "{source}: live differences:\n{}",
            d.join("\n")
        );
        let addrs = |s: &Scrape| -> BTreeMap<String, String> {
            s.samples
                .iter()
                .filter(|(k, _)| k.starts_with("node_network_address_info"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        assert!(!addrs(&go).is_empty());
        assert_eq!(addrs(&go), addrs(&vigie), "{source}");
    }
}
