//! xfs: per-filesystem XFS statistics, `/sys/fs/xfs/<device>/stats/stats`.

use std::collections::HashMap;
use std::path::Path;

use vigie_common::MetricSet;

use super::{no_args, read_file, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "xfs",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Xfs)),
    }
}

struct Xfs;

/// Lines node_exporter 1.5.0 checks, with their number of values; a
/// known line with another count fails the collector, unknown lines are
/// ignored.
const COUNTS: &[(&str, &[usize])] = &[
    ("extent_alloc", &[4]),
    ("abt", &[4]),
    ("blk_map", &[7]),
    ("bmbt", &[4]),
    ("dir", &[4]),
    ("trans", &[3]),
    ("ig", &[7]),
    ("log", &[5]),
    ("push_ail", &[10]),
    ("xstrat", &[2]),
    ("rw", &[2]),
    ("attr", &[4]),
    ("icluster", &[3]),
    ("vnodes", &[7, 8]),
    ("buf", &[9]),
    ("xpc", &[3]),
];

/// (line, index, metric suffix, help) of each reported value.
const METRICS: &[(&str, usize, &str, &str)] = &[
    ("extent_alloc", 0, "extent_allocation_extents_allocated_total", "Number of extents allocated for a filesystem."),
    ("extent_alloc", 1, "extent_allocation_blocks_allocated_total", "Number of blocks allocated for a filesystem."),
    ("extent_alloc", 2, "extent_allocation_extents_freed_total", "Number of extents freed for a filesystem."),
    ("extent_alloc", 3, "extent_allocation_blocks_freed_total", "Number of blocks freed for a filesystem."),
    ("abt", 0, "allocation_btree_lookups_total", "Number of allocation B-tree lookups for a filesystem."),
    ("abt", 1, "allocation_btree_compares_total", "Number of allocation B-tree compares for a filesystem."),
    ("abt", 2, "allocation_btree_records_inserted_total", "Number of allocation B-tree records inserted for a filesystem."),
    ("abt", 3, "allocation_btree_records_deleted_total", "Number of allocation B-tree records deleted for a filesystem."),
    ("blk_map", 0, "block_mapping_reads_total", "Number of block map for read operations for a filesystem."),
    ("blk_map", 1, "block_mapping_writes_total", "Number of block map for write operations for a filesystem."),
    ("blk_map", 2, "block_mapping_unmaps_total", "Number of block unmaps (deletes) for a filesystem."),
    ("blk_map", 3, "block_mapping_extent_list_insertions_total", "Number of extent list insertions for a filesystem."),
    ("blk_map", 4, "block_mapping_extent_list_deletions_total", "Number of extent list deletions for a filesystem."),
    ("blk_map", 5, "block_mapping_extent_list_lookups_total", "Number of extent list lookups for a filesystem."),
    ("blk_map", 6, "block_mapping_extent_list_compares_total", "Number of extent list compares for a filesystem."),
    ("bmbt", 0, "block_map_btree_lookups_total", "Number of block map B-tree lookups for a filesystem."),
    ("bmbt", 1, "block_map_btree_compares_total", "Number of block map B-tree compares for a filesystem."),
    ("bmbt", 2, "block_map_btree_records_inserted_total", "Number of block map B-tree records inserted for a filesystem."),
    ("bmbt", 3, "block_map_btree_records_deleted_total", "Number of block map B-tree records deleted for a filesystem."),
    ("dir", 0, "directory_operation_lookup_total", "Number of file name directory lookups which miss the operating systems directory name lookup cache."),
    ("dir", 1, "directory_operation_create_total", "Number of times a new directory entry was created for a filesystem."),
    ("dir", 2, "directory_operation_remove_total", "Number of times an existing directory entry was created for a filesystem."),
    ("dir", 3, "directory_operation_getdents_total", "Number of times the directory getdents operation was performed for a filesystem."),
    ("ig", 0, "inode_operation_attempts_total", "Number of times the OS looked for an XFS inode in the inode cache."),
    ("ig", 1, "inode_operation_found_total", "Number of times the OS looked for and found an XFS inode in the inode cache."),
    ("ig", 2, "inode_operation_recycled_total", "Number of times the OS found an XFS inode in the cache, but could not use it as it was being recycled."),
    ("ig", 3, "inode_operation_missed_total", "Number of times the OS looked for an XFS inode in the cache, but did not find it."),
    ("ig", 4, "inode_operation_duplicates_total", "Number of times the OS tried to add a missing XFS inode to the inode cache, but found it had already been added by another process."),
    ("ig", 5, "inode_operation_reclaims_total", "Number of times the OS reclaimed an XFS inode from the inode cache to free memory for another purpose."),
    ("ig", 6, "inode_operation_attribute_changes_total", "Number of times the OS explicitly changed the attributes of an XFS inode."),
    ("vnodes", 0, "vnode_active_total", "Number of vnodes not on free lists for a filesystem."),
    ("vnodes", 1, "vnode_allocate_total", "Number of times vn_alloc called for a filesystem."),
    ("vnodes", 2, "vnode_get_total", "Number of times vn_get called for a filesystem."),
    ("vnodes", 3, "vnode_hold_total", "Number of times vn_hold called for a filesystem."),
    ("vnodes", 4, "vnode_release_total", "Number of times vn_rele called for a filesystem."),
    ("vnodes", 5, "vnode_reclaim_total", "Number of times vn_reclaim called for a filesystem."),
    ("vnodes", 6, "vnode_remove_total", "Number of times vn_remove called for a filesystem."),
    ("rw", 0, "write_calls_total", "Number of write(2) system calls made to files in a filesystem."),
    ("rw", 1, "read_calls_total", "Number of read(2) system calls made to files in a filesystem."),
];

fn parse(path: &Path, text: &str) -> Result<HashMap<String, Vec<f64>>, CollectError> {
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let mut f = line.split_whitespace();
        let Some(key) = f.next() else { continue };
        let Some((_, counts)) = COUNTS.iter().find(|(k, _)| *k == key) else {
            continue;
        };
        let mut nums = Vec::new();
        for s in f {
            let v: u64 = s
                .parse()
                .map_err(|_| CollectError::parse(path, i + 1, format!("bad number {s:?}")))?;
            nums.push(v as f64);
        }
        if !counts.contains(&nums.len()) {
            return Err(CollectError::parse(
                path,
                i + 1,
                format!(
                    "incorrect number of values for XFS {key} stats: {}",
                    nums.len()
                ),
            ));
        }
        out.insert(key.to_owned(), nums);
    }
    Ok(out)
}

impl Collector for Xfs {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let base = ctx.roots.sys("fs/xfs");
        let Ok(rd) = std::fs::read_dir(&base) else {
            return Ok(());
        };
        let mut devs: Vec<(String, std::path::PathBuf)> = rd
            .flatten()
            .filter_map(|e| {
                let p = e.path().join("stats/stats");
                p.is_file()
                    .then(|| (e.file_name().to_string_lossy().into_owned(), p))
            })
            .collect();
        devs.sort();
        let mut all = Vec::new();
        for (dev, path) in devs {
            let stats = parse(&path, &read_file(&path)?)?;
            all.push((dev, stats));
        }
        for (dev, stats) in &all {
            for (key, idx, suffix, help) in METRICS {
                let v = stats
                    .get(*key)
                    .and_then(|v| v.get(*idx))
                    .copied()
                    .unwrap_or(0.0);
                out.counter(&format!("node_xfs_{suffix}"), help, &[("device", dev)], v);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_checked() {
        let p = Path::new("stats");
        assert!(parse(p, "rw 1 2 3\n").is_err());
        assert!(parse(p, "rw 1 x\n").is_err());
        assert!(parse(p, "bogus 1\nvnodes 1 2 3 4 5 6 7 8\n").is_ok());
        assert_eq!(parse(p, "rw 1 2\n").unwrap()["rw"], vec![1.0, 2.0]);
    }
}
