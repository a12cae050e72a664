//! Property tests ("fuzzing") of the /proc and /sys parsers: arbitrary and
//! mutated input must never panic. Two levels:
//! - every parser on arbitrary strings and on mutations of real files;
//! - every collector run on fixture trees whose files were mutated
//!   (truncated, bytes flipped, lines duplicated or dropped).
//!
//! `VIGIE_FUZZ_CASES` raises the case count (default keeps the run short).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use vigie_common::MetricSet;
use vigie_node_exporter::collectors::{fuzzing, registry, BuildCtx, ScrapeCtx};
use vigie_node_exporter::roots::FsRoots;

fn cases(default: u32) -> u32 {
    std::env::var("VIGIE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn fixture_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/local")
}

/// Every regular file of the fixture tree (relative path, content).
fn fixture_files() -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                walk(base, &p, out);
            } else if ft.is_file() {
                let rel = p.strip_prefix(base).unwrap().to_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    let root = fixture_root();
    walk(&root, &root, &mut out);
    out.sort();
    out
}

/// A mutation of `data`: truncation, byte edits, line duplication/removal.
#[derive(Debug, Clone)]
struct Mutation {
    truncate: Option<usize>,
    edits: Vec<(usize, u8)>,
    dup_line: Option<usize>,
    drop_line: Option<usize>,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    (
        proptest::option::of(0usize..4096),
        proptest::collection::vec((0usize..4096, any::<u8>()), 0..6),
        proptest::option::of(0usize..64),
        proptest::option::of(0usize..64),
    )
        .prop_map(|(truncate, edits, dup_line, drop_line)| Mutation {
            truncate,
            edits,
            dup_line,
            drop_line,
        })
}

fn apply(m: &Mutation, data: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = data.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    if let Some(i) = m.dup_line {
        if !lines.is_empty() {
            let l = lines[i % lines.len()].clone();
            lines.insert(i % lines.len(), l);
        }
    }
    if let Some(i) = m.drop_line {
        if !lines.is_empty() {
            let n = lines.len();
            lines.remove(i % n);
        }
    }
    let mut out = lines.join(&b'\n');
    for (pos, b) in &m.edits {
        if !out.is_empty() {
            let n = out.len();
            out[pos % n] = *b;
        }
    }
    if let Some(t) = m.truncate {
        if !out.is_empty() {
            let n = out.len();
            out.truncate(t % (n + 1));
        }
    }
    out
}

static PARSER_INPUTS: AtomicUsize = AtomicUsize::new(0);

#[test]
fn parsers_never_panic_on_arbitrary_text() {
    let parsers = fuzzing::parsers();
    let mut runner = TestRunner::new(Config {
        cases: cases(2000),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(0..parsers.len(), ".{0,400}"), |(i, text)| {
            (parsers[i].1)(&text);
            PARSER_INPUTS.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
    eprintln!(
        "fuzz: {} arbitrary inputs",
        PARSER_INPUTS.load(Ordering::Relaxed)
    );
}

#[test]
fn parsers_never_panic_on_mutated_real_files() {
    let parsers = fuzzing::parsers();
    let files = fixture_files();
    let n = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: cases(3000),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(0..files.len(), mutation()), |(f, m)| {
            let text = String::from_utf8_lossy(&apply(&m, &files[f].1)).into_owned();
            // Every parser on every mutated file: cross-feeding finds more.
            for (_, p) in &parsers {
                p(&text);
                n.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap();
    eprintln!(
        "fuzz: {} parser runs on mutated files",
        n.load(Ordering::Relaxed)
    );
}

#[test]
fn collectors_never_panic_on_mutated_trees() {
    let files = fixture_files();
    let specs = registry();
    let mut cmd = clap::Command::new("fuzz");
    for s in &specs {
        for a in (s.args)() {
            cmd = cmd.arg(a);
        }
    }
    let matches = cmd.get_matches_from(["fuzz"]);
    let n = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: cases(60),
        failure_persistence: None,
        ..Config::default()
    });
    let names = [
        "arp",
        "conntrack",
        "cpu",
        "cpufreq",
        "diskstats",
        "entropy",
        "filefd",
        "filesystem",
        "loadavg",
        "meminfo",
        "netclass",
        "netstat",
        "os",
        "pressure",
        "schedstat",
        "sockstat",
        "softnet",
        "stat",
        "time",
        "udp_queues",
        "vmstat",
    ];
    runner
        .run(&proptest::collection::vec(mutation(), 8), |muts| {
            let dir = tempfile::tempdir().unwrap();
            for (i, (rel, data)) in files.iter().enumerate() {
                let p = dir.path().join(rel);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                // Mutate a rotating subset of the files in each case.
                let data = if i % 8 < muts.len() && (i / 8) % 3 == 0 {
                    apply(&muts[i % 8], data)
                } else {
                    data.clone()
                };
                std::fs::write(&p, data).unwrap();
            }
            let roots = Arc::new(FsRoots {
                procfs: dir.path().join("proc"),
                sysfs: dir.path().join("sys"),
                rootfs: dir.path().join("root"),
                udev_data: dir.path().join("udev"),
            });
            let ctx = BuildCtx {
                roots: Arc::clone(&roots),
                matches: &matches,
            };
            let sctx = ScrapeCtx {
                roots: Arc::clone(&roots),
                deadline: Instant::now() + Duration::from_secs(5),
            };
            for s in specs.iter().filter(|s| names.contains(&s.name)) {
                let c = (s.build)(&ctx).unwrap();
                let mut out = MetricSet::new();
                let _ = c.update(&sctx, &mut out);
                let _ = out.encode_text();
                n.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap();
    eprintln!(
        "fuzz: {} collector runs on mutated trees",
        n.load(Ordering::Relaxed)
    );
}
