//! powersupplyclass: `/sys/class/power_supply/<supply>/*` values and an
//! info series of its text attributes.

use std::collections::HashMap;

use clap::Arg;
use regex::Regex;
use vigie_common::{MetricSet, MetricType};

use super::{class_entries, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "powersupplyclass",
        default_enabled: true,
        args,
        build: |ctx: &BuildCtx| {
            let ignored = match ctx.regex("collector.powersupply.ignored-supplies")? {
                Some(r) => r,
                None => Regex::new("^$").map_err(|e| e.to_string())?,
            };
            Ok(Box::new(PowerSupplyClass { ignored }))
        },
    }
}

fn args() -> Vec<Arg> {
    vec![Arg::new("collector.powersupply.ignored-supplies")
        .long("collector.powersupply.ignored-supplies")
        .default_value("^$")
        .value_name("REGEX")
        .help("Regexp of power supplies to ignore for powersupplyclass collector.")]
}

struct PowerSupplyClass {
    ignored: Regex,
}

/// sysfs attribute → metric suffix, divisor.
const VALUES: &[(&str, &str, f64)] = &[
    ("authentic", "authentic", 1.0),
    ("calibrate", "calibrate", 1.0),
    ("capacity", "capacity", 1.0),
    ("capacity_alert_max", "capacity_alert_max", 1.0),
    ("capacity_alert_min", "capacity_alert_min", 1.0),
    ("cycle_count", "cyclecount", 1.0),
    ("online", "online", 1.0),
    ("present", "present", 1.0),
    ("time_to_empty_now", "time_to_empty_seconds", 1.0),
    ("time_to_full_now", "time_to_full_seconds", 1.0),
    ("current_boot", "current_boot", 1e6),
    ("current_max", "current_max", 1e6),
    ("current_now", "current_ampere", 1e6),
    ("energy_empty", "energy_empty", 1e6),
    ("energy_empty_design", "energy_empty_design", 1e6),
    ("energy_full", "energy_full", 1e6),
    ("energy_full_design", "energy_full_design", 1e6),
    ("energy_now", "energy_watthour", 1e6),
    ("voltage_boot", "voltage_boot", 1e6),
    ("voltage_max", "voltage_max", 1e6),
    ("voltage_max_design", "voltage_max_design", 1e6),
    ("voltage_min", "voltage_min", 1e6),
    ("voltage_min_design", "voltage_min_design", 1e6),
    ("voltage_now", "voltage_volt", 1e6),
    ("voltage_ocv", "voltage_ocv", 1e6),
    ("charge_control_limit", "charge_control_limit", 1e6),
    ("charge_control_limit_max", "charge_control_limit_max", 1e6),
    ("charge_counter", "charge_counter", 1e6),
    ("charge_empty", "charge_empty", 1e6),
    ("charge_empty_design", "charge_empty_design", 1e6),
    ("charge_full", "charge_full", 1e6),
    ("charge_full_design", "charge_full_design", 1e6),
    ("charge_now", "charge_ampere", 1e6),
    ("charge_term_current", "charge_term_current", 1e6),
    ("constant_charge_current", "constant_charge_current", 1e6),
    (
        "constant_charge_current_max",
        "constant_charge_current_max",
        1e6,
    ),
    ("constant_charge_voltage", "constant_charge_voltage", 1e6),
    (
        "constant_charge_voltage_max",
        "constant_charge_voltage_max",
        1e6,
    ),
    ("precharge_current", "precharge_current", 1e6),
    ("input_current_limit", "input_current_limit", 1e6),
    ("power_now", "power_watt", 1e6),
    ("temp", "temp_celsius", 10.0),
    ("temp_alert_max", "temp_alert_max_celsius", 10.0),
    ("temp_alert_min", "temp_alert_min_celsius", 10.0),
    ("temp_ambient", "temp_ambient_celsius", 10.0),
    ("temp_ambient_max", "temp_ambient_max_celsius", 10.0),
    ("temp_ambient_min", "temp_ambient_min_celsius", 10.0),
    ("temp_max", "temp_max_celsius", 10.0),
    ("temp_min", "temp_min_celsius", 10.0),
];

/// Text attributes that become labels of `node_power_supply_info`.
const INFO: &[&str] = &[
    "capacity_level",
    "charge_type",
    "health",
    "manufacturer",
    "model_name",
    "scope",
    "serial_number",
    "status",
    "technology",
    "type",
    "usb_type",
];

/// The readable regular files of one supply directory, trimmed. Files the
/// driver refuses to read (EIO, ENODATA, ...) are left out, as in Go.
fn read_attrs(dir: &std::path::Path) -> Result<HashMap<String, String>, CollectError> {
    let rd = std::fs::read_dir(dir).map_err(|e| CollectError::io(dir, e))?;
    let mut out = HashMap::new();
    for e in rd.flatten() {
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        if let Ok(v) = super::read_file(&e.path()) {
            out.insert(name, v.trim().to_owned());
        }
    }
    Ok(out)
}

impl Collector for PowerSupplyClass {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let base = ctx.roots.sys("class/power_supply");
        let supplies = class_entries(&base)?
            .into_iter()
            .filter_map(|n| n.into_string().ok());
        for name in supplies {
            if self.ignored.is_match(&name) {
                continue;
            }
            let attrs = read_attrs(&base.join(&name))?;
            for (file, metric, div) in VALUES {
                let Some(raw) = attrs.get(*file) else {
                    continue;
                };
                let Ok(v) = raw.parse::<i64>() else {
                    continue;
                };
                out.gauge(
                    &format!("node_power_supply_{metric}"),
                    &format!("{metric} value of /sys/class/power_supply/<power_supply>."),
                    &[("power_supply", &name)],
                    v as f64 / div,
                );
            }
            let mut labels = vec![("power_supply".to_owned(), name.clone())];
            for key in INFO {
                if let Some(v) = attrs.get(*key).filter(|v| !v.is_empty()) {
                    labels.push(((*key).to_owned(), v.clone()));
                }
            }
            out.family(
                "node_power_supply_info",
                "info of /sys/class/power_supply/<power_supply>.",
                MetricType::Gauge,
            )
            .add_owned(labels, 1.0);
        }
        Ok(())
    }
}
