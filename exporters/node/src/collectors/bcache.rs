//! bcache: cache set, backing device and cache device statistics from
//! `/sys/fs/bcache/<set-uuid>/`.

use std::path::Path;

use clap::{Arg, ArgAction};
use vigie_common::{MetricSet, MetricType};

use super::{numbered_entries, read_attr, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "bcache",
        default_enabled: true,
        args,
        build: |ctx: &BuildCtx| {
            Ok(Box::new(Bcache {
                priority_stats: ctx.flag("collector.bcache.priorityStats"),
            }))
        },
    }
}

fn args() -> Vec<Arg> {
    vec![Arg::new("collector.bcache.priorityStats")
        .long("collector.bcache.priorityStats")
        .action(ArgAction::SetTrue)
        .help("Expose expensive priority stats.")]
}

struct Bcache {
    priority_stats: bool,
}

/// Parses bcache's human-readable numbers (`bch_hprint`): `427.5k` is
/// 427 × 1024 + 5 × 100, each further unit multiplies by 1024 (node_exporter
/// 1.5.0's reading, kept for identical values); plain numbers as they are.
fn dehumanize(s: &str) -> Option<f64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let last = body.chars().last()?;
    let v = if last.is_ascii_digit() {
        body.parse::<f64>().ok()?
    } else {
        let num = &body[..body.len() - last.len_utf8()];
        let level = match last {
            'k' => 1,
            'M' => 2,
            'G' => 3,
            'T' => 4,
            'P' => 5,
            'E' => 6,
            'Z' => 7,
            'Y' => 8,
            _ => return num.parse::<f64>().ok().map(|_| 0.0),
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, "0"));
        let int: u64 = int.parse().ok()?;
        let frac: u64 = frac.parse().ok()?;
        let mantissa = (int as f64) * 1024.0 + (frac as f64) * 100.0;
        mantissa * 1024f64.powi(level - 1)
    };
    Some(if neg { -v } else { v })
}

/// A value file: missing counts as 0 (as in Go), unparsable is an error.
fn value(path: &Path) -> Result<f64, CollectError> {
    match read_attr(path) {
        Ok(s) => dehumanize(&s)
            .ok_or_else(|| CollectError::parse(path, 1, format!("not a bcache number: {s:?}"))),
        Err(e) if e.is_not_found() => Ok(0.0),
        Err(e) => Err(e),
    }
}

/// `writeback_rate_debug` → (rate, target, proportional, integral, change).
fn writeback(path: &Path) -> Result<[f64; 5], CollectError> {
    let text = match read_attr(path) {
        Ok(t) => t,
        Err(e) if e.is_not_found() => return Ok([0.0; 5]),
        Err(e) => return Err(e),
    };
    let mut v = [0.0; 5];
    for (i, line) in text.lines().enumerate() {
        let Some((key, val)) = line.split_once(':') else {
            continue;
        };
        let slot = match key.trim() {
            "rate" => 0,
            "target" => 1,
            "proportional" => 2,
            "integral" => 3,
            "change" => 4,
            _ => continue,
        };
        let raw = val.split_whitespace().next().unwrap_or("");
        let raw = raw.strip_suffix("/sec").unwrap_or(raw);
        v[slot] = dehumanize(raw)
            .ok_or_else(|| CollectError::parse(path, i + 1, format!("bad value {raw:?}")))?;
    }
    Ok(v)
}

/// `Unused: 99%` and `Metadata: 0%` of `priority_stats`.
fn priority(path: &Path) -> Result<(f64, f64), CollectError> {
    let text = read_attr(path)?;
    let mut unused = 0.0;
    let mut metadata = 0.0;
    for line in text.lines() {
        let Some((key, val)) = line.split_once(':') else {
            continue;
        };
        let pct = || {
            val.trim()
                .trim_end_matches('%')
                .parse::<f64>()
                .map_err(|_| CollectError::parse(path, 1, format!("bad percentage {val:?}")))
        };
        match key.trim() {
            "Unused" => unused = pct()?,
            "Metadata" => metadata = pct()?,
            _ => {}
        }
    }
    Ok((unused, metadata))
}

/// One sample to write once the whole set parsed (a bad file yields no
/// partial output, as in Go).
struct Sample {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    labels: Vec<(String, String)>,
    value: f64,
}

const G: MetricType = MetricType::Gauge;
const C: MetricType = MetricType::Counter;

impl Bcache {
    fn set(&self, uuid: &str, dir: &Path, out: &mut Vec<Sample>) -> Result<(), CollectError> {
        let ul = || vec![("uuid".to_owned(), uuid.to_owned())];
        let set_values: &[(&str, &'static str, &'static str, MetricType, f64)] = &[
            ("average_key_size", "node_bcache_average_key_size_sectors", "Average data per key in the btree (sectors).", G, 1.0),
            ("btree_cache_size", "node_bcache_btree_cache_size_bytes", "Amount of memory currently used by the btree cache.", G, 1.0),
            ("cache_available_percent", "node_bcache_cache_available_percent", "Percentage of cache device without dirty data, usable for writeback (may contain clean cached data).", G, 1.0),
            ("congested", "node_bcache_congested", "Congestion.", G, 1.0),
            ("root_usage_percent", "node_bcache_root_usage_percent", "Percentage of the root btree node in use (tree depth increases if too high).", G, 1.0),
            ("tree_depth", "node_bcache_tree_depth", "Depth of the btree.", G, 1.0),
            ("internal/active_journal_entries", "node_bcache_active_journal_entries", "Number of journal entries that are newer than the index.", G, 1.0),
            ("internal/btree_nodes", "node_bcache_btree_nodes", "Total nodes in the btree.", G, 1.0),
            // node_exporter 1.5.0 scales this microsecond value by 1e-9.
            ("internal/btree_read_average_duration_us", "node_bcache_btree_read_average_duration_seconds", "Average btree read duration.", G, 1e-9),
            ("internal/cache_read_races", "node_bcache_cache_read_races_total", "Counts instances where while data was being read from the cache, the bucket was reused and invalidated - i.e. where the pointer was stale after the read completed.", C, 1.0),
        ];
        for (file, name, help, kind, scale) in set_values {
            out.push(Sample {
                name,
                help,
                kind: *kind,
                labels: ul(),
                value: value(&dir.join(file))? * scale,
            });
        }
        for (n, bdir) in numbered_entries(dir, "bdev") {
            let bdev = format!("bdev{n}");
            let l = || {
                vec![
                    ("backing_device".to_owned(), bdev.clone()),
                    ("uuid".to_owned(), uuid.to_owned()),
                ]
            };
            out.push(Sample {
                name: "node_bcache_dirty_data_bytes",
                help: "Amount of dirty data for this backing device in the cache.",
                kind: G,
                labels: l(),
                value: value(&bdir.join("dirty_data"))?,
            });
            let stats: &[(&str, &'static str, &'static str)] = &[
                ("bypassed", "node_bcache_bypassed_bytes_total", "Amount of IO (both reads and writes) that has bypassed the cache."),
                ("cache_hits", "node_bcache_cache_hits_total", "Hits counted per individual IO as bcache sees them."),
                ("cache_misses", "node_bcache_cache_misses_total", "Misses counted per individual IO as bcache sees them."),
                ("cache_bypass_hits", "node_bcache_cache_bypass_hits_total", "Hits for IO intended to skip the cache."),
                ("cache_bypass_misses", "node_bcache_cache_bypass_misses_total", "Misses for IO intended to skip the cache."),
                ("cache_miss_collisions", "node_bcache_cache_miss_collisions_total", "Instances where data insertion from cache miss raced with write (data already present)."),
                ("cache_readaheads", "node_bcache_cache_readaheads_total", "Count of times readahead occurred."),
            ];
            for (file, name, help) in stats {
                out.push(Sample {
                    name,
                    help,
                    kind: C,
                    labels: l(),
                    value: value(&bdir.join("stats_total").join(file))?,
                });
            }
            let wb = writeback(&bdir.join("writeback_rate_debug"))?;
            let wbm: [(&'static str, &'static str, f64); 5] = [
                (
                    "node_bcache_writeback_rate",
                    "Current writeback rate for this backing device in bytes.",
                    wb[0],
                ),
                (
                    "node_bcache_dirty_target_bytes",
                    "Current dirty data target threshold for this backing device in bytes.",
                    wb[1],
                ),
                (
                    "node_bcache_writeback_rate_proportional_term",
                    "Current result of proportional controller, part of writeback rate",
                    wb[2],
                ),
                (
                    "node_bcache_writeback_rate_integral_term",
                    "Current result of integral controller, part of writeback rate",
                    wb[3],
                ),
                (
                    "node_bcache_writeback_change",
                    "Last writeback rate change step for this backing device.",
                    wb[4],
                ),
            ];
            for (name, help, v) in wbm {
                out.push(Sample {
                    name,
                    help,
                    kind: G,
                    labels: l(),
                    value: v,
                });
            }
        }
        for (n, cdir) in numbered_entries(dir, "cache") {
            let cache = format!("cache{n}");
            let l = || {
                vec![
                    ("cache_device".to_owned(), cache.clone()),
                    ("uuid".to_owned(), uuid.to_owned()),
                ]
            };
            out.push(Sample {
                name: "node_bcache_io_errors",
                help: "Number of errors that have occurred, decayed by io_error_halflife.",
                kind: G,
                labels: l(),
                value: value(&cdir.join("io_errors"))?,
            });
            out.push(Sample {
                name: "node_bcache_metadata_written_bytes_total",
                help: "Sum of all non data writes (btree writes and all other metadata).",
                kind: C,
                labels: l(),
                value: value(&cdir.join("metadata_written"))?,
            });
            out.push(Sample {
                name: "node_bcache_written_bytes_total",
                help: "Sum of all data that has been written to the cache.",
                kind: C,
                labels: l(),
                value: value(&cdir.join("written"))?,
            });
            if self.priority_stats {
                let (unused, metadata) = priority(&cdir.join("priority_stats"))?;
                out.push(Sample {
                    name: "node_bcache_priority_stats_unused_percent",
                    help: "The percentage of the cache that doesn't contain any data.",
                    kind: G,
                    labels: l(),
                    value: unused,
                });
                out.push(Sample {
                    name: "node_bcache_priority_stats_metadata_percent",
                    help: "Bcache's metadata overhead.",
                    kind: G,
                    labels: l(),
                    value: metadata,
                });
            }
        }
        Ok(())
    }
}

impl Collector for Bcache {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let base = ctx.roots.sys("fs/bcache");
        let Ok(rd) = std::fs::read_dir(&base) else {
            return Ok(());
        };
        let mut sets: Vec<(String, std::path::PathBuf)> = rd
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| {
                let n = e.file_name().to_str()?.to_owned();
                n.contains('-').then(|| (n, e.path()))
            })
            .collect();
        sets.sort();
        let mut samples = Vec::new();
        for (uuid, dir) in sets {
            self.set(&uuid, &dir, &mut samples)?;
        }
        for s in samples {
            out.family(s.name, s.help, s.kind)
                .add_owned(s.labels, s.value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_numbers() {
        assert_eq!(dehumanize("427.5k"), Some(437748.0));
        assert_eq!(dehumanize("1.1M"), Some(1150976.0));
        assert_eq!(dehumanize("-28.6k"), Some(-29272.0));
        assert_eq!(dehumanize("790k"), Some(808960.0));
        assert_eq!(dehumanize("12"), Some(12.0));
        assert_eq!(dehumanize("garbage"), None);
        assert_eq!(dehumanize(""), None);
        assert_eq!(dehumanize("-"), None);
        assert_eq!(dehumanize("k"), None);
        assert_eq!(dehumanize("é"), None);
    }
}
