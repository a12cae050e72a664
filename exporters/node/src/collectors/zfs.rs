//! zfs: ZFS kstats of `/proc/spl/kstat/zfs` (ARC, ZIL, ... as untyped
//! `node_zfs_<subsystem>_<name>`) and per-pool io, dataset and state.

use std::path::{Path, PathBuf};

use vigie_common::{MetricSet, MetricType};

use super::{no_args, read_file, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "zfs",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Zfs)),
    }
}

struct Zfs;

/// kstat file → metric subsystem.
const FILES: &[(&str, &str)] = &[
    ("abdstats", "zfs_abd"),
    ("arcstats", "zfs_arc"),
    ("dmu_tx", "zfs_dmu_tx"),
    ("dnodestats", "zfs_dnode"),
    ("fm", "zfs_fm"),
    ("vdev_cache_stats", "zfs_vdev_cache"),
    ("vdev_mirror_stats", "zfs_vdev_mirror"),
    ("xuio_stats", "zfs_xuio"),
    ("zfetchstats", "zfs_zfetch"),
    ("zil", "zfs_zil"),
];

const POOL_STATES: &[&str] = &[
    "online", "degraded", "faulted", "offline", "removed", "unavail",
];

/// `name type data` lines after the two header lines; only numeric
/// (type 4) entries. Returns (name, value).
fn parse_kstat(path: &Path, text: &str) -> Result<Vec<(String, f64)>, CollectError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(2) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 || f[1] != "4" {
            continue;
        }
        let v: u64 = f[2]
            .parse()
            .map_err(|_| CollectError::parse(path, i + 1, format!("bad value {:?}", f[2])))?;
        out.push((f[0].to_owned(), v as f64));
    }
    Ok(out)
}

/// The `dataset_name` (type 7) entry of an objset kstat.
fn dataset_name(text: &str) -> Option<String> {
    text.lines().skip(2).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 3 && f[0] == "dataset_name" && f[1] == "7").then(|| f[2..].join(" "))
    })
}

/// A pool's `io` kstat: a line of names then a line of values.
fn parse_io(path: &Path, text: &str) -> Result<Vec<(String, f64)>, CollectError> {
    let mut lines = text.lines().skip(1);
    let names: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let values: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    if names.is_empty() || names.len() != values.len() {
        return Err(CollectError::parse(
            path,
            2,
            "names and values differ in number",
        ));
    }
    names
        .iter()
        .zip(values)
        .map(|(n, v)| {
            v.parse::<u64>()
                .map(|x| ((*n).to_owned(), x as f64))
                .map_err(|_| CollectError::parse(path, 3, format!("bad value {v:?}")))
        })
        .collect()
}

fn sorted_dir(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = rd
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    v.sort();
    v
}

fn untyped(out: &mut MetricSet, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
    out.family(name, help, MetricType::Untyped).add(labels, v);
}

impl Collector for Zfs {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let base = ctx.roots.proc("spl/kstat/zfs");
        let mut found = 0;
        for (file, subsystem) in FILES {
            let path = base.join(file);
            let text = match read_file(&path) {
                Ok(t) => t,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            found += 1;
            for (name, v) in parse_kstat(&path, &text)? {
                let metric = format!(
                    "node_{subsystem}_{}",
                    vigie_common::expo::sanitize_name(&name)
                );
                let help = format!("kstat.zfs.misc.{file}.{name}");
                untyped(out, &metric, &help, &[], v);
            }
        }
        if found == 0 {
            tracing::debug!("ZFS / ZFS statistics are not available");
            return Err(CollectError::NoData);
        }
        for (pool, dir) in sorted_dir(&base) {
            if !dir.is_dir() {
                continue;
            }
            self.pool(out, &pool, &dir)?;
        }
        Ok(())
    }
}

impl Zfs {
    fn pool(&self, out: &mut MetricSet, pool: &str, dir: &Path) -> Result<(), CollectError> {
        let io = dir.join("io");
        if let Ok(text) = read_file(&io) {
            for (name, v) in parse_io(&io, &text)? {
                untyped(
                    out,
                    &format!(
                        "node_zfs_zpool_{}",
                        vigie_common::expo::sanitize_name(&name)
                    ),
                    &format!("kstat.zfs.misc.io.{name}"),
                    &[("zpool", pool)],
                    v,
                );
            }
        }
        for (file, path) in sorted_dir(dir) {
            if !file.starts_with("objset-") {
                continue;
            }
            let text = read_file(&path)?;
            let dataset = dataset_name(&text).unwrap_or_default();
            for (name, v) in parse_kstat(&path, &text)? {
                untyped(
                    out,
                    &format!(
                        "node_zfs_zpool_dataset_{}",
                        vigie_common::expo::sanitize_name(&name)
                    ),
                    &format!("kstat.zfs.misc.objset.{name}"),
                    &[("zpool", pool), ("dataset", &dataset)],
                    v,
                );
            }
        }
        if let Ok(state) = read_file(&dir.join("state")) {
            let state = state.trim().to_lowercase();
            for s in POOL_STATES {
                out.gauge(
                    "node_zfs_zpool_state",
                    "kstat.zfs.misc.state",
                    &[("zpool", pool), ("state", s)],
                    if state == *s { 1.0 } else { 0.0 },
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_kstats() {
        let p = Path::new("k");
        assert!(parse_kstat(p, "h\nh\nhits 4 x\n").is_err());
        assert_eq!(
            parse_kstat(p, "h\nh\nname 7 pool\nhits 4 3\nshort\n").unwrap(),
            vec![("hits".into(), 3.0)]
        );
        assert!(parse_io(p, "h\na b\n1\n").is_err());
        assert!(parse_io(p, "").is_err());
        assert_eq!(
            dataset_name("h\nh\ndataset_name 7 a/b\n").as_deref(),
            Some("a/b")
        );
    }
}
