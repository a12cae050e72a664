//! conntrack: `/proc/sys/net/netfilter/nf_conntrack_{count,max}` and the
//! per-CPU table `/proc/net/stat/nf_conntrack` (summed).

use vigie_common::MetricSet;

use super::{no_args, read_sysfs, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "conntrack",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Conntrack)),
    }
}

struct Conntrack;

const STATS: [(&str, &str); 8] = [
    ("found", "Number of searched entries which were successful."),
    ("invalid", "Number of packets seen which can not be tracked."),
    ("ignore", "Number of packets seen which are already connected to a conntrack entry."),
    ("insert", "Number of entries inserted into the list."),
    ("insert_failed", "Number of entries for which list insertion was attempted but failed."),
    ("drop", "Number of packets dropped due to conntrack failure."),
    ("early_drop", "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached."),
    ("search_restart", "Number of conntrack table lookups which had to be restarted due to hashtable resizes."),
];

/// Column sums by header name.
pub fn parse_stat(text: &str) -> Result<Vec<(String, u64)>, usize> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or(1usize)?
        .split_ascii_whitespace()
        .collect();
    let mut sums = vec![0u64; header.len()];
    for (i, line) in lines.enumerate() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if f.len() != header.len() {
            return Err(i + 2);
        }
        for (s, v) in sums.iter_mut().zip(&f) {
            *s = s.wrapping_add(u64::from_str_radix(v, 16).map_err(|_| i + 2)?);
        }
    }
    Ok(header.into_iter().map(str::to_owned).zip(sums).collect())
}

fn not_found_is_no_data(e: CollectError) -> CollectError {
    if e.is_not_found() {
        CollectError::NoData
    } else {
        e
    }
}

fn num(path: &std::path::Path) -> Result<f64, CollectError> {
    let s = read_sysfs(path).map_err(not_found_is_no_data)?;
    s.parse::<u64>()
        .map(|v| v as f64)
        .map_err(|e| CollectError::parse(path, 1, e.to_string()))
}

impl Collector for Conntrack {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let count = num(&ctx.roots.proc("sys/net/netfilter/nf_conntrack_count"))?;
        out.gauge(
            "node_nf_conntrack_entries",
            "Number of currently allocated flow entries for connection tracking.",
            &[],
            count,
        );
        let max = num(&ctx.roots.proc("sys/net/netfilter/nf_conntrack_max"))?;
        out.gauge(
            "node_nf_conntrack_entries_limit",
            "Maximum size of connection tracking table.",
            &[],
            max,
        );
        let path = ctx.roots.proc("net/stat/nf_conntrack");
        let text = ctx.read(&path).map_err(not_found_is_no_data)?;
        let sums = parse_stat(&text).map_err(|l| CollectError::parse(&path, l, "malformed row"))?;
        for (key, help) in STATS {
            let v = sums
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| *v)
                .unwrap_or(0);
            out.gauge(
                &format!("node_nf_conntrack_stat_{key}"),
                help,
                &[],
                v as f64,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_hex_columns() {
        let t = "entries found drop\n00000001 0000000a 00000000\n00000001 00000001 00000002\n";
        let s = super::parse_stat(t).unwrap();
        assert_eq!(s[1], ("found".into(), 11));
        assert!(super::parse_stat("a b\n1\n").is_err());
        assert!(super::parse_stat("").is_err());
    }
}
