//! btrfs: per-filesystem allocation statistics from `/sys/fs/btrfs/<uuid>`.

use std::path::Path;

use vigie_common::MetricSet;

use super::{no_args, read_attr, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "btrfs",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Btrfs)),
    }
}

struct Btrfs;

const BLOCK_GROUPS: &[&str] = &["data", "metadata", "system"];

fn read_u64(path: &Path) -> Result<u64, CollectError> {
    let s = read_attr(path)?;
    s.parse()
        .map_err(|_| CollectError::parse(path, 1, format!("not a number: {s:?}")))
}

fn sorted_entries(dir: &Path) -> Vec<(String, std::path::PathBuf)> {
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

/// Bytes written on disk per byte of data for a RAID profile.
fn allocation_ratio(mode: &str, devices: usize) -> f64 {
    let n = devices as f64;
    match mode {
        "dup" | "raid1" | "raid10" => 2.0,
        "raid1c3" => 3.0,
        "raid1c4" => 4.0,
        "raid5" => n / (n - 1.0),
        "raid6" => n / (n - 2.0),
        _ => 1.0,
    }
}

/// One block group type: (reserved bytes, [(mode, total, used)]).
type Group = (f64, Vec<(String, f64, f64)>);

impl Btrfs {
    fn filesystem(&self, out: &mut MetricSet, uuid: &str, dir: &Path) -> Result<(), CollectError> {
        // Go (procfs) takes the uuid from `metadata_uuid` when present and
        // reads a missing or unreadable number as 0.
        let uuid = read_attr(&dir.join("metadata_uuid")).unwrap_or_else(|_| uuid.to_owned());
        let uuid = uuid.as_str();
        let label = read_attr(&dir.join("label")).unwrap_or_default();
        let num = |p: &Path| read_u64(p).unwrap_or(0) as f64;
        let rsv = num(&dir.join("allocation/global_rsv_size"));
        let devices: Vec<(String, f64)> = sorted_entries(&dir.join("devices"))
            .into_iter()
            // Go reports 0 for a device whose size cannot be read.
            .map(|(d, p)| {
                (
                    d,
                    read_u64(&p.join("size"))
                        .map(|s| s as f64 * 512.0)
                        .unwrap_or(0.0),
                )
            })
            .collect();
        let mut groups: Vec<(&str, Group)> = Vec::new();
        for bg in BLOCK_GROUPS {
            let gdir = dir.join("allocation").join(bg);
            if !gdir.is_dir() {
                continue;
            }
            let reserved = num(&gdir.join("bytes_reserved"));
            let mut layouts = Vec::new();
            for (mode, p) in sorted_entries(&gdir) {
                if !p.is_dir() {
                    continue;
                }
                let total = num(&p.join("total_bytes"));
                let used = num(&p.join("used_bytes"));
                layouts.push((mode, total, used));
            }
            groups.push((bg, (reserved, layouts)));
        }
        out.gauge(
            "node_btrfs_info",
            "Filesystem information",
            &[("label", &label), ("uuid", uuid)],
            1.0,
        );
        out.gauge(
            "node_btrfs_global_rsv_size_bytes",
            "Size of global reserve.",
            &[("uuid", uuid)],
            rsv,
        );
        for (dev, size) in &devices {
            out.gauge(
                "node_btrfs_device_size_bytes",
                "Size of a device that is part of the filesystem.",
                &[("device", dev), ("uuid", uuid)],
                *size,
            );
        }
        for (bg, (reserved, layouts)) in &groups {
            out.gauge(
                "node_btrfs_reserved_bytes",
                "Amount of space reserved for a data type",
                &[("block_group_type", bg), ("uuid", uuid)],
                *reserved,
            );
            for (mode, total, used) in layouts {
                let labels = [
                    ("block_group_type", *bg),
                    ("mode", mode.as_str()),
                    ("uuid", uuid),
                ];
                out.gauge(
                    "node_btrfs_size_bytes",
                    "Amount of space allocated for a layout/data type",
                    &labels,
                    *total,
                );
                out.gauge(
                    "node_btrfs_used_bytes",
                    "Amount of used space by a layout/data type",
                    &labels,
                    *used,
                );
                out.gauge(
                    "node_btrfs_allocation_ratio",
                    "Data allocation ratio for a layout/data type",
                    &labels,
                    allocation_ratio(mode, devices.len()),
                );
            }
        }
        Ok(())
    }
}

impl Collector for Btrfs {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let base = ctx.roots.sys("fs/btrfs");
        for (uuid, dir) in sorted_entries(&base) {
            // `features/` and other non-uuid entries have no allocation dir.
            if !dir.join("allocation").is_dir() {
                continue;
            }
            self.filesystem(out, &uuid, &dir)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_bad_numbers() {
        assert_eq!(allocation_ratio("raid6", 4), 2.0);
        assert_eq!(allocation_ratio("raid5", 4), 4.0 / 3.0);
        assert_eq!(allocation_ratio("single", 1), 1.0);
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("n"), "12x\n").unwrap();
        assert!(read_u64(&d.path().join("n")).is_err());
        assert!(read_u64(&d.path().join("missing")).is_err());
    }
}
