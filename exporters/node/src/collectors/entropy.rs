//! entropy: `/proc/sys/kernel/random/{entropy_avail,poolsize}`.

use vigie_common::MetricSet;

use super::{no_args, read_sysfs, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "entropy",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Entropy)),
    }
}

struct Entropy;

fn read_num(path: &std::path::Path) -> Result<f64, CollectError> {
    let s = read_sysfs(path)?;
    s.parse::<u64>()
        .map(|v| v as f64)
        .map_err(|e| CollectError::parse(path, 1, e.to_string()))
}

impl Collector for Entropy {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let avail = read_num(&ctx.roots.proc("sys/kernel/random/entropy_avail"))?;
        out.gauge(
            "node_entropy_available_bits",
            "Bits of available entropy.",
            &[],
            avail,
        );
        let pool = read_num(&ctx.roots.proc("sys/kernel/random/poolsize"))?;
        out.gauge(
            "node_entropy_pool_size_bits",
            "Bits of entropy pool.",
            &[],
            pool,
        );
        Ok(())
    }
}
