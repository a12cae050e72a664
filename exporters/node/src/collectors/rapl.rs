//! rapl: energy counters of the powercap RAPL zones,
//! `/sys/class/powercap/*/{name,energy_uj}`.

use std::collections::HashMap;

use clap::{Arg, ArgAction};
use vigie_common::MetricSet;

use super::{class_entries, read_attr, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "rapl",
        default_enabled: true,
        args,
        build: |ctx: &BuildCtx| {
            Ok(Box::new(Rapl {
                zone_label: ctx.flag("collector.rapl.enable-zone-label"),
            }))
        },
    }
}

fn args() -> Vec<Arg> {
    vec![Arg::new("collector.rapl.enable-zone-label")
        .long("collector.rapl.enable-zone-label")
        .action(ArgAction::SetTrue)
        .help("Enables service unit metric unit_start_time_seconds")]
}

struct Rapl {
    zone_label: bool,
}

/// `package-1` → (1, "package"); other names are numbered by how often
/// they were seen before (`core`, `core` → 0, 1).
fn index_and_name(seen: &mut HashMap<String, u32>, name: &str) -> (String, String) {
    if let Some((base, idx)) = name.split_once('-') {
        if !idx.contains('-') {
            if let Ok(i) = idx.parse::<i64>() {
                return (i.to_string(), base.to_owned());
            }
        }
    }
    let n = seen.entry(name.to_owned()).or_insert(0);
    let idx = *n;
    *n += 1;
    (idx.to_string(), name.to_owned())
}

impl Collector for Rapl {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let base = ctx.roots.sys("class/powercap");
        let dirs = class_entries(&base)?;
        let mut seen = HashMap::new();
        for d in dirs {
            let dir = base.join(&d);
            let Ok(name) = read_attr(&dir.join("name")) else {
                continue;
            };
            let (index, name) = index_and_name(&mut seen, &name);
            let energy_path = dir.join("energy_uj");
            let raw = read_attr(&energy_path)?;
            let uj: u64 = raw
                .parse()
                .map_err(|_| CollectError::parse(&energy_path, 1, "not a counter"))?;
            let path = dir.to_string_lossy();
            let joules = uj as f64 / 1_000_000.0;
            if self.zone_label {
                out.counter(
                    "node_rapl_joules_total",
                    "Current RAPL value in joules",
                    &[("index", &index), ("path", &path), ("rapl_zone", &name)],
                    joules,
                );
            } else {
                let metric = format!(
                    "node_rapl_{}_joules_total",
                    vigie_common::expo::sanitize_name(&name)
                );
                out.counter(
                    &metric,
                    &format!("Current RAPL {name} value in joules"),
                    &[("index", &index), ("path", &path)],
                    joules,
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
    fn zone_indexes() {
        let mut seen = HashMap::new();
        assert_eq!(
            index_and_name(&mut seen, "package-10"),
            ("10".into(), "package".into())
        );
        assert_eq!(
            index_and_name(&mut seen, "core"),
            ("0".into(), "core".into())
        );
        assert_eq!(
            index_and_name(&mut seen, "core"),
            ("1".into(), "core".into())
        );
        assert_eq!(index_and_name(&mut seen, "a-b"), ("0".into(), "a-b".into()));
    }
}
