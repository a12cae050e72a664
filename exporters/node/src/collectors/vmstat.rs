//! vmstat: `/proc/vmstat`, the fields matching `--collector.vmstat.fields`,
//! untyped like node_exporter.

use vigie_common::MetricSet;

use super::{str_arg, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

const FIELDS: &str = "collector.vmstat.fields";

pub fn spec() -> Spec {
    Spec {
        name: "vmstat",
        default_enabled: true,
        args: || {
            vec![str_arg(
                FIELDS,
                Some("^(oom_kill|pgpg|pswp|pg.*fault).*"),
                "Regexp of fields to return for vmstat collector.",
            )]
        },
        build: |ctx: &BuildCtx| {
            // An empty regexp matches everything, as in Go.
            let fields = ctx.regex(FIELDS)?;
            Ok(Box::new(Vmstat {
                fields: super::FieldFilter::new(fields),
            }))
        },
    }
}

struct Vmstat {
    fields: super::FieldFilter,
}

impl Collector for Vmstat {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let path = ctx.roots.proc("vmstat");
        let text = ctx.read(&path)?;
        for (i, line) in text.lines().enumerate() {
            let mut it = line.split_ascii_whitespace();
            let (Some(k), Some(v), None) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            if !self.fields.matches(k) {
                continue;
            }
            let v: f64 = v
                .parse()
                .map_err(|_| CollectError::parse(&path, i + 1, format!("invalid value {v:?}")))?;
            out.untyped(
                &format!("node_vmstat_{k}"),
                &format!("/proc/vmstat information field {k}."),
                &[],
                v,
            );
        }
        Ok(())
    }
}
