//! udp_queues: `/proc/net/udp{,6}`, summed tx/rx queue bytes.

use vigie_common::MetricSet;

use super::{no_args, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "udp_queues",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(UdpQueues)),
    }
}

struct UdpQueues;

/// `(tx, rx)` summed over the sockets (the `tx_queue:rx_queue` column).
pub fn parse(text: &str) -> Result<(u64, u64), usize> {
    let (mut tx, mut rx) = (0u64, 0u64);
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        let q = f.get(4).ok_or(i + 1)?;
        let (t, r) = q.split_once(':').ok_or(i + 1)?;
        tx = tx.wrapping_add(u64::from_str_radix(t, 16).map_err(|_| i + 1)?);
        rx = rx.wrapping_add(u64::from_str_radix(r, 16).map_err(|_| i + 1)?);
    }
    Ok((tx, rx))
}

impl Collector for UdpQueues {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let mut found = false;
        for (file, ip) in [("net/udp", "v4"), ("net/udp6", "v6")] {
            let path = ctx.roots.proc(file);
            let text = match ctx.read(&path) {
                Ok(t) => t,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            found = true;
            let (tx, rx) =
                parse(&text).map_err(|l| CollectError::parse(&path, l, "malformed socket line"))?;
            let help = "Number of allocated memory in the kernel for UDP datagrams in bytes.";
            out.gauge(
                "node_udp_queues",
                help,
                &[("ip", ip), ("queue", "tx")],
                tx as f64,
            );
            out.gauge(
                "node_udp_queues",
                help,
                &[("ip", ip), ("queue", "rx")],
                rx as f64,
            );
        }
        if found {
            Ok(())
        } else {
            Err(CollectError::NoData)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n  1: 00000000:0044 00000000:0000 07 00000010:00000001 00:00000000 00000000     0        0 1 2 0\n";
        assert_eq!(super::parse(t), Ok((16, 1)));
        assert!(super::parse("h\n 1: a b c zz\n").is_err());
    }
}
