//! nvme: `node_nvme_info` per controller of `/sys/class/nvme`.

use vigie_common::{MetricSet, MetricType};

use super::{
    class_entries, no_args, read_attr, BuildCtx, CollectError, Collector, ScrapeCtx, Spec,
};

pub fn spec() -> Spec {
    Spec {
        name: "nvme",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Nvme)),
    }
}

struct Nvme;

impl Collector for Nvme {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let base = ctx.roots.sys("class/nvme");
        let devs = class_entries(&base)?;
        for d in devs {
            let dir = base.join(&d);
            let serial = read_attr(&dir.join("serial"))?;
            let model = read_attr(&dir.join("model"))?;
            let state = read_attr(&dir.join("state"))?;
            let firmware = read_attr(&dir.join("firmware_rev"))?;
            out.family(
                "node_nvme_info",
                "Non-numeric data from /sys/class/nvme/<device>, value is always 1.",
                MetricType::Gauge,
            )
            .add(
                &[
                    ("device", &d.to_string_lossy()),
                    ("firmware_revision", &firmware),
                    ("model", &model),
                    ("serial", &serial),
                    ("state", &state),
                ],
                1.0,
            );
        }
        Ok(())
    }
}
