//! thermal_zone: `/sys/class/thermal/thermal_zone*` temperatures and
//! `cooling_device*` throttle states.

use std::path::Path;

use vigie_common::MetricSet;

use super::{
    no_args, numbered_entries, read_attr, BuildCtx, CollectError, Collector, ScrapeCtx, Spec,
};

pub fn spec() -> Spec {
    Spec {
        name: "thermal_zone",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(ThermalZone)),
    }
}

struct ThermalZone;

fn read_i64(path: &Path) -> Result<i64, CollectError> {
    let s = read_attr(path)?;
    s.parse()
        .map_err(|_| CollectError::parse(path, 1, format!("not an integer: {s:?}")))
}

impl Collector for ThermalZone {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let base = ctx.roots.sys("class/thermal");
        for (zone, dir) in numbered_entries(&base, "thermal_zone") {
            let kind = read_attr(&dir.join("type"))?;
            let temp = read_i64(&dir.join("temp"))?;
            out.gauge(
                "node_thermal_zone_temp",
                "Zone temperature in Celsius",
                &[("zone", &zone), ("type", &kind)],
                temp as f64 / 1000.0,
            );
        }
        for (name, dir) in numbered_entries(&base, "cooling_device") {
            let kind = read_attr(&dir.join("type"))?;
            let max = read_i64(&dir.join("max_state"))?;
            let cur = read_i64(&dir.join("cur_state"))?;
            let labels = [("name", name.as_str()), ("type", kind.as_str())];
            out.gauge(
                "node_cooling_device_cur_state",
                "Current throttle state of the cooling device",
                &labels,
                cur as f64,
            );
            out.gauge(
                "node_cooling_device_max_state",
                "Maximum throttle state of the cooling device",
                &labels,
                max as f64,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_temperature_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("temp");
        std::fs::write(&p, "hot\n").unwrap();
        assert!(read_i64(&p).is_err());
        std::fs::write(&p, "-44000\n").unwrap();
        assert_eq!(read_i64(&p).unwrap(), -44000);
        assert!(numbered_entries(&d.path().join("none"), "x").is_empty());
    }
}
