//! nfs: NFS client RPC statistics from `/proc/net/rpc/nfs`.

use std::collections::HashMap;
use std::path::Path;

use vigie_common::MetricSet;

use super::{no_args, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "nfs",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Nfs)),
    }
}

struct Nfs;

/// NFSv2 procedures in kernel order (the `proc2` line).
pub(super) const V2: &[&str] = &[
    "Null", "GetAttr", "SetAttr", "Root", "Lookup", "ReadLink", "Read", "WrCache", "Write",
    "Create", "Remove", "Rename", "Link", "SymLink", "MkDir", "RmDir", "ReadDir", "FsStat",
];

/// NFSv3 procedures in kernel order (the `proc3` line).
pub(super) const V3: &[&str] = &[
    "Null",
    "GetAttr",
    "SetAttr",
    "Lookup",
    "Access",
    "ReadLink",
    "Read",
    "Write",
    "Create",
    "MkDir",
    "SymLink",
    "MkNod",
    "Remove",
    "RmDir",
    "Rename",
    "Link",
    "ReadDir",
    "ReadDirPlus",
    "FsStat",
    "FsInfo",
    "PathConf",
    "Commit",
];

/// NFSv4 client operations in kernel order (the client's `proc4` line).
const V4_CLIENT: &[&str] = &[
    "Null",
    "Read",
    "Write",
    "Commit",
    "Open",
    "OpenConfirm",
    "OpenNoattr",
    "OpenDowngrade",
    "Close",
    "Setattr",
    "FsInfo",
    "Renew",
    "SetClientID",
    "SetClientIDConfirm",
    "Lock",
    "Lockt",
    "Locku",
    "Access",
    "Getattr",
    "Lookup",
    "LookupRoot",
    "Remove",
    "Rename",
    "Link",
    "Symlink",
    "Create",
    "Pathconf",
    "StatFs",
    "ReadLink",
    "ReadDir",
    "ServerCaps",
    "DelegReturn",
    "GetACL",
    "SetACL",
    "FsLocations",
    "ReleaseLockowner",
    "Secinfo",
    "FsidPresent",
    "ExchangeID",
    "CreateSession",
    "DestroySession",
    "Sequence",
    "GetLeaseTime",
    "ReclaimComplete",
    "LayoutGet",
    "GetDeviceInfo",
    "LayoutCommit",
    "LayoutReturn",
    "SecinfoNoName",
    "TestStateID",
    "FreeStateID",
    "GetDeviceList",
    "BindConnToSession",
    "DestroyClientID",
    "Seek",
    "Allocate",
    "DeAllocate",
    "LayoutStats",
    "Clone",
];

/// How many numbers a line must carry (node_exporter 1.5.0 rejects the
/// whole file otherwise, and any line it does not know).
#[derive(Clone, Copy)]
pub(super) enum Len {
    Exact(usize),
    AtLeast(usize),
    /// A leading count equal to the number of values that follow, and at
    /// least this many values.
    Counted(usize),
}

/// The lines of an rpc stats file, checked against `rules`: key → numbers
/// (without the leading count of `Counted` lines).
pub(super) fn parse_lines(
    path: &Path,
    text: &str,
    rules: &[(&str, Len)],
) -> Result<HashMap<String, Vec<f64>>, CollectError> {
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let mut f = line.split_whitespace();
        let Some(key) = f.next() else { continue };
        let bad = |msg: String| CollectError::parse(path, i + 1, msg);
        let rule = rules
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, r)| *r)
            .ok_or_else(|| bad(format!("unknown NFS metric line {key:?}")))?;
        let mut nums = Vec::new();
        for s in f {
            nums.push(
                s.parse::<f64>()
                    .map_err(|_| bad(format!("bad number {s:?} in {key} line")))?,
            );
        }
        let ok = match rule {
            Len::Exact(n) => nums.len() == n,
            Len::AtLeast(n) => nums.len() >= n,
            Len::Counted(n) => {
                let ok =
                    nums.first().is_some_and(|c| *c as usize + 1 == nums.len()) && nums.len() > n;
                if ok {
                    nums.remove(0);
                }
                ok
            }
        };
        if !ok {
            return Err(bad(format!("invalid {key} line: {} values", nums.len())));
        }
        out.insert(key.to_owned(), nums);
    }
    Ok(out)
}

/// The n-th value of a line, 0 when the line is absent (as in Go).
pub(super) fn at(lines: &HashMap<String, Vec<f64>>, key: &str, n: usize) -> f64 {
    lines
        .get(key)
        .and_then(|v| v.get(n))
        .copied()
        .unwrap_or(0.0)
}

const RULES: &[(&str, Len)] = &[
    ("net", Len::Exact(4)),
    ("rpc", Len::Exact(3)),
    ("proc2", Len::Counted(18)),
    ("proc3", Len::Counted(22)),
    ("proc4", Len::Counted(59)),
];

impl Collector for Nfs {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let path = ctx.roots.proc("net/rpc/nfs");
        let text = match ctx.read(&path) {
            Ok(t) => t,
            Err(e) if e.is_not_found() => return Err(CollectError::NoData),
            Err(e) => return Err(e),
        };
        let l = parse_lines(&path, &text, RULES)?;
        let ph = "Total NFSd network packets (sent+received) by protocol type.";
        out.counter(
            "node_nfs_packets_total",
            ph,
            &[("protocol", "udp")],
            at(&l, "net", 1),
        );
        out.counter(
            "node_nfs_packets_total",
            ph,
            &[("protocol", "tcp")],
            at(&l, "net", 2),
        );
        out.counter(
            "node_nfs_connections_total",
            "Total number of NFSd TCP connections.",
            &[],
            at(&l, "net", 3),
        );
        out.counter(
            "node_nfs_rpcs_total",
            "Total number of RPCs performed.",
            &[],
            at(&l, "rpc", 0),
        );
        out.counter(
            "node_nfs_rpc_retransmissions_total",
            "Number of RPC transmissions performed.",
            &[],
            at(&l, "rpc", 1),
        );
        out.counter(
            "node_nfs_rpc_authentication_refreshes_total",
            "Number of RPC authentication refreshes performed.",
            &[],
            at(&l, "rpc", 2),
        );
        for (key, proto, names) in [
            ("proc2", "2", V2),
            ("proc3", "3", V3),
            ("proc4", "4", V4_CLIENT),
        ] {
            for (i, name) in names.iter().enumerate() {
                out.counter(
                    "node_nfs_requests_total",
                    "Number of NFS procedures invoked.",
                    &[("proto", proto), ("method", name)],
                    at(&l, key, i),
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
    fn odd_lines() {
        let p = Path::new("nfs");
        assert!(parse_lines(p, "net 1 x 3 4\n", RULES).is_err());
        assert!(parse_lines(p, "net 1 2 3\n", RULES).is_err());
        assert!(parse_lines(p, "bogus 1\n", RULES).is_err());
        assert!(parse_lines(p, "proc2 18 1 2\n", RULES).is_err());
        assert!(parse_lines(p, "proc2 2 1 2\n", RULES).is_err());
        let l = parse_lines(p, "rpc 1 2 3\n\n", RULES).unwrap();
        assert_eq!(at(&l, "rpc", 2), 3.0);
        assert_eq!(at(&l, "net", 7), 0.0);
    }
}
