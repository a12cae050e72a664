//! edac: memory controller error counters under
//! `/sys/devices/system/edac/mc/mc*` and their `csrow*` rows.

use std::path::Path;

use vigie_common::MetricSet;

use super::{
    no_args, numbered_entries, read_attr, BuildCtx, CollectError, Collector, ScrapeCtx, Spec,
};

pub fn spec() -> Spec {
    Spec {
        name: "edac",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Edac)),
    }
}

struct Edac;

fn read_count(path: &Path) -> Result<f64, CollectError> {
    let s = read_attr(path)?;
    s.parse::<u64>()
        .map(|v| v as f64)
        .map_err(|_| CollectError::parse(path, 1, format!("not a count: {s:?}")))
}

impl Collector for Edac {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        for (mc, dir) in numbered_entries(&ctx.roots.sys("devices/system/edac/mc"), "mc") {
            let ce = read_count(&dir.join("ce_count"))?;
            out.counter(
                "node_edac_correctable_errors_total",
                "Total correctable memory errors.",
                &[("controller", &mc)],
                ce,
            );
            let ue = read_count(&dir.join("ue_count"))?;
            out.counter(
                "node_edac_uncorrectable_errors_total",
                "Total uncorrectable memory errors.",
                &[("controller", &mc)],
                ue,
            );
            let ce = read_count(&dir.join("ce_noinfo_count"))?;
            csrow(out, &mc, "unknown", true, ce);
            let ue = read_count(&dir.join("ue_noinfo_count"))?;
            csrow(out, &mc, "unknown", false, ue);
            for (row, rdir) in numbered_entries(&dir, "csrow") {
                let ce = read_count(&rdir.join("ce_count"))?;
                csrow(out, &mc, &row, true, ce);
                let ue = read_count(&rdir.join("ue_count"))?;
                csrow(out, &mc, &row, false, ue);
            }
        }
        Ok(())
    }
}

fn csrow(out: &mut MetricSet, mc: &str, row: &str, correctable: bool, v: f64) {
    let (name, help) = if correctable {
        (
            "node_edac_csrow_correctable_errors_total",
            "Total correctable memory errors for this csrow.",
        )
    } else {
        (
            "node_edac_csrow_uncorrectable_errors_total",
            "Total uncorrectable memory errors for this csrow.",
        )
    };
    out.counter(name, help, &[("controller", mc), ("csrow", row)], v);
}

#[cfg(test)]
mod tests {
    use super::super::number_suffix;
    use super::*;

    #[test]
    fn names_and_counts() {
        assert_eq!(number_suffix("mc0", "mc"), Some("0"));
        assert_eq!(number_suffix("mc", "mc"), None);
        assert_eq!(number_suffix("mcx", "mc"), None);
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ce_count");
        std::fs::write(&p, "garbage\n").unwrap();
        assert!(read_count(&p).is_err());
        std::fs::write(&p, "7\n").unwrap();
        assert_eq!(read_count(&p).unwrap(), 7.0);
    }
}
