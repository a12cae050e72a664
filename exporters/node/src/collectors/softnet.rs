//! softnet: `/proc/net/softnet_stat`, one hex row per CPU.

use vigie_common::MetricSet;

use super::{no_args, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "softnet",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Softnet)),
    }
}

struct Softnet;

/// `(processed, dropped, time_squeeze)` per row.
pub fn parse(text: &str) -> Result<Vec<[u64; 3]>, usize> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() < 9 {
            return Err(i + 1);
        }
        let h = |j: usize| u64::from_str_radix(f[j], 16).map_err(|_| i + 1);
        out.push([h(0)?, h(1)?, h(2)?]);
    }
    Ok(out)
}

impl Collector for Softnet {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let path = ctx.roots.proc("net/softnet_stat");
        let rows = parse(&ctx.read(&path)?)
            .map_err(|l| CollectError::parse(&path, l, "expected at least 9 hex columns"))?;
        for (cpu, r) in rows.iter().enumerate() {
            let c = cpu.to_string();
            let l = [("cpu", c.as_str())];
            out.counter(
                "node_softnet_processed_total",
                "Number of processed packets",
                &l,
                r[0] as f64,
            );
            out.counter(
                "node_softnet_dropped_total",
                "Number of dropped packets",
                &l,
                r[1] as f64,
            );
            out.counter(
                "node_softnet_times_squeezed_total",
                "Number of times processing packets ran out of quota",
                &l,
                r[2] as f64,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses() {
        let r = super::parse("00000114 00000000 00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n").unwrap();
        assert_eq!(r, vec![[276, 0, 1]]);
        assert!(super::parse("0001 zz\n").is_err());
        assert!(super::parse("zz 0 0 0 0 0 0 0 0\n").is_err());
    }
}
