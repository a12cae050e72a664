//! mdadm: software RAID arrays from `/proc/mdstat`.

use std::path::Path;

use vigie_common::MetricSet;

use super::{no_args, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "mdadm",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Mdadm)),
    }
}

struct Mdadm;

#[derive(Debug, PartialEq)]
struct MdStat {
    name: String,
    /// active, inactive, recovering, resyncing or checking.
    state: &'static str,
    active: i64,
    failed: i64,
    spare: i64,
    total: i64,
    blocks: i64,
    synced: i64,
}

/// First integer of `s` after `(` in `(123/456)`.
fn recovered_blocks(line: &str) -> Option<i64> {
    let open = line.find('(')?;
    let rest = &line[open + 1..];
    let slash = rest.find('/')?;
    let n = &rest[..slash];
    let close = rest[slash..].find(')')?;
    let denom = &rest[slash + 1..slash + close];
    (denom.bytes().all(|b| b.is_ascii_digit()) && !denom.is_empty())
        .then(|| n.parse().ok())
        .flatten()
}

/// `[n/m] [UU_]` on the status line → (active m, total n).
fn status_counts(status: &str) -> Option<(i64, i64)> {
    // The last `[n/m]` followed by a `[U_]+` group.
    let mut search = status;
    let mut found = None;
    while let Some(open) = search.find('[') {
        let rest = &search[open + 1..];
        let Some(close) = rest.find(']') else { break };
        let inner = &rest[..close];
        if let Some((t, a)) = inner.split_once('/') {
            if let (Ok(t), Ok(a)) = (t.parse::<i64>(), a.parse::<i64>()) {
                let after = rest[close + 1..].trim_start();
                let ok = after.strip_prefix('[').is_some_and(|g| {
                    g.find(']')
                        .is_some_and(|e| e > 0 && g[..e].bytes().all(|b| b == b'U' || b == b'_'))
                });
                if ok {
                    found = Some((a, t));
                }
            }
        }
        search = &rest[close + 1..];
    }
    found
}

fn parse(path: &Path, text: &str) -> Result<Vec<MdStat>, CollectError> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty()
            || line.starts_with(' ')
            || line.starts_with('\t')
            || line.starts_with("Personalities")
            || line.starts_with("unused")
        {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 3 {
            return Err(CollectError::parse(
                path,
                i + 1,
                format!("not enough fields in mdline (expected at least 3): {line}"),
            ));
        }
        if lines.len() <= i + 3 {
            return Err(CollectError::parse(
                path,
                i + 1,
                format!("error parsing {}: too few lines for md device", fields[0]),
            ));
        }
        let failed = line.matches("(F)").count() as i64;
        let spare = line.matches("(S)").count() as i64;
        let status = lines[i + 1];
        let blocks: i64 = status
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| CollectError::parse(path, i + 2, "bad block count"))?;
        let (active, total) = if line.contains("raid0") || line.contains("linear") {
            let n = line.matches('[').count() as i64;
            (n, n)
        } else if line.contains("inactive") {
            (0, 0)
        } else {
            status_counts(status).ok_or_else(|| {
                CollectError::parse(
                    path,
                    i + 2,
                    format!("couldn't find all the substring matches: {status}"),
                )
            })?
        };
        let mut sync_idx = i + 2;
        if lines[sync_idx].contains("bitmap") {
            sync_idx += 1;
        }
        let sync = lines.get(sync_idx).copied().unwrap_or("");
        let mut state = if fields[2] == "inactive" {
            "inactive"
        } else {
            "active"
        };
        let mut synced = blocks;
        let (recovering, resyncing, checking) = (
            sync.contains("recovery"),
            sync.contains("resync"),
            sync.contains("check"),
        );
        if recovering || resyncing || checking {
            state = if recovering {
                "recovering"
            } else if checking {
                "checking"
            } else {
                "resyncing"
            };
            synced = if sync.contains("PENDING") || sync.contains("DELAYED") {
                0
            } else {
                recovered_blocks(sync).ok_or_else(|| {
                    CollectError::parse(path, sync_idx + 1, format!("unexpected statusLine {sync}"))
                })?
            };
        }
        out.push(MdStat {
            name: fields[0].to_owned(),
            state,
            active,
            failed,
            spare,
            total,
            blocks,
            synced,
        });
    }
    Ok(out)
}

impl Collector for Mdadm {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let path = ctx.roots.proc("mdstat");
        let text = match ctx.read(&path) {
            Ok(t) => t,
            Err(e) if e.is_not_found() => return Err(CollectError::NoData),
            Err(e) => return Err(e),
        };
        for md in parse(&path, &text)? {
            let dev = md.name.as_str();
            out.gauge(
                "node_md_disks_required",
                "Total number of disks of device.",
                &[("device", dev)],
                md.total as f64,
            );
            for (state, v) in [
                ("active", md.active),
                ("failed", md.failed),
                ("spare", md.spare),
            ] {
                out.gauge(
                    "node_md_disks",
                    "Number of active/failed/spare disks of device.",
                    &[("device", dev), ("state", state)],
                    v as f64,
                );
            }
            for (label, state) in [
                ("active", "active"),
                ("inactive", "inactive"),
                ("recovering", "recovering"),
                ("resync", "resyncing"),
                ("check", "checking"),
            ] {
                let v = if md.state == state { 1.0 } else { 0.0 };
                out.gauge(
                    "node_md_state",
                    "Indicates the state of md-device.",
                    &[("device", dev), ("state", label)],
                    v,
                );
            }
            out.gauge(
                "node_md_blocks",
                "Total number of blocks on device.",
                &[("device", dev)],
                md.blocks as f64,
            );
            out.gauge(
                "node_md_blocks_synced",
                "Number of blocks synced on device.",
                &[("device", dev)],
                md.synced as f64,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_input_is_an_error_not_a_panic() {
        let p = Path::new("mdstat");
        assert!(parse(p, "md0 : active raid1 sda[0]\n").is_err());
        assert!(parse(p, "md0 :\n\n\n\n").is_err());
        assert!(parse(p, "md0 : active raid1 sda[0]\n   x blocks\n\n\n").is_err());
        assert!(parse(p, "md0 : active raid1 sda[0]\n   5 blocks [2/x] [UU]\n\n\n").is_err());
        assert_eq!(
            parse(p, "Personalities : \nunused devices: <none>\n").unwrap(),
            vec![]
        );
        let v = parse(p, "md1 : active raid1 a[0] b[1](F)\n  10 blocks [2/1] [U_]\n  [=>..]  recovery = 5% (3/10) finish=1min\n\n").unwrap();
        assert_eq!(
            (
                v[0].state,
                v[0].active,
                v[0].total,
                v[0].failed,
                v[0].synced
            ),
            ("recovering", 1, 2, 1, 3)
        );
        assert_eq!(recovered_blocks("(12/x)"), None);
    }
}
