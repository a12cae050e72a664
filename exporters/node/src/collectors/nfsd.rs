//! nfsd: NFS server RPC statistics from `/proc/net/rpc/nfsd`.

use vigie_common::MetricSet;

use super::nfs::{at, parse_lines, Len, V2, V3};
use super::{no_args, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "nfsd",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Nfsd)),
    }
}

struct Nfsd;

/// NFSv4 server operations of the `proc4ops` line, by position; `None`
/// marks positions node_exporter 1.5.0 does not report.
const V4_OPS: &[Option<&str>] = &[
    None,
    None,
    None,
    Some("Access"),
    Some("Close"),
    Some("Commit"),
    Some("Create"),
    Some("DelegPurge"),
    Some("DelegReturn"),
    Some("GetAttr"),
    Some("GetFH"),
    Some("Link"),
    Some("Lock"),
    Some("Lockt"),
    Some("Locku"),
    Some("Lookup"),
    Some("LookupRoot"),
    Some("Nverify"),
    Some("Open"),
    Some("OpenAttr"),
    Some("OpenConfirm"),
    Some("OpenDgrd"),
    Some("PutFH"),
    None,
    None,
    Some("Read"),
    Some("ReadDir"),
    Some("ReadLink"),
    Some("Remove"),
    Some("Rename"),
    Some("Renew"),
    Some("RestoreFH"),
    Some("SaveFH"),
    Some("SecInfo"),
    Some("SetAttr"),
    Some("Verify"),
    Some("Write"),
    Some("RelLockOwner"),
];

const RULES: &[(&str, Len)] = &[
    ("rc", Len::Exact(3)),
    ("fh", Len::Exact(5)),
    ("io", Len::Exact(2)),
    ("th", Len::AtLeast(2)),
    ("ra", Len::Exact(12)),
    ("net", Len::Exact(4)),
    ("rpc", Len::Exact(5)),
    ("proc2", Len::Counted(18)),
    ("proc3", Len::Counted(22)),
    ("proc4", Len::Counted(2)),
    ("proc4ops", Len::Counted(38)),
];

impl Collector for Nfsd {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let path = ctx.roots.proc("net/rpc/nfsd");
        let text = match ctx.read(&path) {
            Ok(t) => t,
            Err(e) if e.is_not_found() => return Err(CollectError::NoData),
            Err(e) => return Err(e),
        };
        let l = parse_lines(&path, &text, RULES)?;
        let counters: &[(&str, &str, &str, usize)] = &[
            (
                "node_nfsd_reply_cache_hits_total",
                "Total number of NFSd Reply Cache hits (client lost server response).",
                "rc",
                0,
            ),
            (
                "node_nfsd_reply_cache_misses_total",
                "Total number of NFSd Reply Cache an operation that requires caching (idempotent).",
                "rc",
                1,
            ),
            (
                "node_nfsd_reply_cache_nocache_total",
                "Total number of NFSd Reply Cache non-idempotent operations (rename/delete/…).",
                "rc",
                2,
            ),
            (
                "node_nfsd_file_handles_stale_total",
                "Total number of NFSd stale file handles",
                "fh",
                0,
            ),
            (
                "node_nfsd_disk_bytes_read_total",
                "Total NFSd bytes read.",
                "io",
                0,
            ),
            (
                "node_nfsd_disk_bytes_written_total",
                "Total NFSd bytes written.",
                "io",
                1,
            ),
            (
                "node_nfsd_read_ahead_cache_not_found_total",
                "Total number of NFSd read ahead cache not found.",
                "ra",
                11,
            ),
            (
                "node_nfsd_connections_total",
                "Total number of NFSd TCP connections.",
                "net",
                3,
            ),
            (
                "node_nfsd_server_rpcs_total",
                "Total number of NFSd RPCs.",
                "rpc",
                0,
            ),
        ];
        for (name, help, key, n) in counters {
            out.counter(name, help, &[], at(&l, key, *n));
        }
        out.gauge(
            "node_nfsd_server_threads",
            "Total number of NFSd kernel threads that are running.",
            &[],
            at(&l, "th", 0),
        );
        out.gauge(
            "node_nfsd_read_ahead_cache_size_blocks",
            "How large the read ahead cache is in blocks.",
            &[],
            at(&l, "ra", 0),
        );
        let ph = "Total NFSd network packets (sent+received) by protocol type.";
        out.counter(
            "node_nfsd_packets_total",
            ph,
            &[("proto", "udp")],
            at(&l, "net", 1),
        );
        out.counter(
            "node_nfsd_packets_total",
            ph,
            &[("proto", "tcp")],
            at(&l, "net", 2),
        );
        let eh = "Total number of NFSd RPC errors by error type.";
        for (label, n) in [("fmt", 2), ("auth", 3), ("cInt", 4)] {
            out.counter(
                "node_nfsd_rpc_errors_total",
                eh,
                &[("error", label)],
                at(&l, "rpc", n),
            );
        }
        let rh = "Total number NFSd Requests by method and protocol.";
        for (key, proto, names) in [("proc2", "2", V2), ("proc3", "3", V3)] {
            // The server side does not report Null calls.
            for (i, name) in names.iter().enumerate().skip(1) {
                out.counter(
                    "node_nfsd_requests_total",
                    rh,
                    &[("proto", proto), ("method", name)],
                    at(&l, key, i),
                );
            }
        }
        for (i, name) in V4_OPS.iter().enumerate() {
            if let Some(name) = name {
                out.counter(
                    "node_nfsd_requests_total",
                    rh,
                    &[("proto", "4"), ("method", name)],
                    at(&l, "proc4ops", i),
                );
            }
        }
        Ok(())
    }
}
