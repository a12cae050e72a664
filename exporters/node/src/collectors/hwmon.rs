//! hwmon: hardware sensors of `/sys/class/hwmon/hwmon*` (and their
//! `device/` directory, where older drivers put the sensor files).
//!
//! Sensor files are `<type><id>_<element>` (`temp1_input`, `fan2_min`);
//! values are scaled to base units as node_exporter does (milli-degrees →
//! degrees, microwatts → watts, ...), including its quirks (`*_crit_alarm`
//! scaled like a temperature, humidity divided by 10^6).

use std::collections::BTreeMap;
use std::path::Path;

use vigie_common::{MetricSet, MetricType};

use super::{
    class_entries, no_args, read_file, BuildCtx, CollectError, Collector, ScrapeCtx, Spec,
};

pub fn spec() -> Spec {
    Spec {
        name: "hwmon",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Hwmon)),
    }
}

struct Hwmon;

const SENSOR_TYPES: &[&str] = &[
    "vrm",
    "beep_enable",
    "update_interval",
    "in",
    "cpu",
    "fan",
    "pwm",
    "temp",
    "curr",
    "power",
    "energy",
    "humidity",
    "intrusion",
];

/// sensor (`temp1`) → element (`input`, `max`, "" for a bare file) → raw value.
type SensorData = BTreeMap<String, BTreeMap<String, String>>;

/// `temp1_crit_alarm` → ("temp", "1", "crit_alarm"); `beep_enable` →
/// ("beep_enable", "", ""). `None` when the name has no such shape.
fn explode(name: &str) -> Option<(&str, &str, &str)> {
    let type_end = name
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(name.len());
    if type_end == 0 {
        return None;
    }
    let kind = &name[..type_end];
    let rest = &name[type_end..];
    let id_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let id = &rest[..id_end];
    let rest = &rest[id_end..];
    if rest.is_empty() {
        return Some((kind, id, ""));
    }
    let prop = rest.strip_prefix('_').filter(|p| !p.is_empty())?;
    if id.is_empty() {
        // `[^0-9]+` already took the underscore: only digit-free names
        // reach here, and those were handled above.
        return None;
    }
    Some((kind, id, prop))
}

/// node_exporter's name cleaning: lower case, `[^a-z0-9:_]` → `_`, outer
/// underscores trimmed.
fn clean(s: &str) -> String {
    let lowered = s.to_lowercase();
    let replaced: String = lowered
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    replaced.trim_matches('_').to_owned()
}

fn trim_newlines(s: &str) -> &str {
    s.trim_matches('\n')
}

/// Reads the sensor files of `dir` into `data`; unreadable files are skipped.
fn collect_sensors(dir: &Path, data: &mut SensorData) -> Result<(), CollectError> {
    let rd = std::fs::read_dir(dir).map_err(|e| CollectError::io(dir, e))?;
    for e in rd.flatten() {
        let fname = e.file_name();
        let Some(fname) = fname.to_str() else {
            continue;
        };
        let Some((kind, id, prop)) = explode(fname) else {
            continue;
        };
        if !SENSOR_TYPES.contains(&kind) {
            continue;
        }
        let Ok(raw) = read_file(&e.path()) else {
            continue;
        };
        let id = if id.is_empty() { "0" } else { id };
        data.entry(format!("{kind}{id}"))
            .or_default()
            .insert(prop.to_owned(), trim_newlines(&raw).to_owned());
    }
    Ok(())
}

/// A stable chip name: `<bus>_<device>` from the device link, else the
/// `name` file, else the hwmon directory name.
fn chip_name(dir: &Path) -> Option<String> {
    if let Ok(dev) = std::fs::canonicalize(dir.join("device")) {
        let name = dev.file_name().map(|n| clean(&n.to_string_lossy()));
        let kind = dev
            .parent()
            .and_then(Path::file_name)
            .map(|n| clean(&n.to_string_lossy()));
        match (kind, name) {
            (Some(k), Some(n)) if !k.is_empty() && !n.is_empty() => {
                return Some(format!("{k}_{n}"))
            }
            (_, Some(n)) if !n.is_empty() => return Some(n),
            _ => {}
        }
    }
    if let Some(n) = human_name(dir) {
        return Some(n);
    }
    let real = std::fs::canonicalize(dir).ok()?;
    let n = clean(&real.file_name()?.to_string_lossy());
    (!n.is_empty()).then_some(n)
}

/// The cleaned content of the chip's `name` file.
fn human_name(dir: &Path) -> Option<String> {
    let raw = read_file(&dir.join("name")).ok()?;
    let n = clean(&raw);
    (!raw.is_empty() && !n.is_empty()).then_some(n)
}

/// Adds a sample unless the family exists with another help text (Go's
/// registry drops such inconsistent samples).
fn push(
    out: &mut MetricSet,
    name: &str,
    help: &str,
    kind: MetricType,
    labels: &[(&str, &str)],
    v: f64,
) {
    if let Some(f) = out.get(name) {
        if f.help != help {
            tracing::debug!(name, "hwmon sample with inconsistent help dropped");
            return;
        }
    }
    out.family(name, help, kind).add(labels, v);
}

fn emit_sensor(out: &mut MetricSet, chip: &str, sensor: &str, elems: &BTreeMap<String, String>) {
    let Some((kind, _, _)) = explode(sensor) else {
        return;
    };
    let labels = [("chip", chip), ("sensor", sensor)];
    let g = MetricType::Gauge;
    if let Some(label) = elems.get("label") {
        out.family(
            "node_hwmon_sensor_label",
            "Label for given chip and sensor",
            g,
        )
        .add(&[("chip", chip), ("sensor", sensor), ("label", label)], 1.0);
    }
    let bare = elems.get("");
    match kind {
        "beep_enable" => {
            let v = if bare.map(String::as_str) == Some("1") {
                1.0
            } else {
                0.0
            };
            push(
                out,
                "node_hwmon_beep_enabled",
                "Hardware beep enabled",
                g,
                &labels,
                v,
            );
            return;
        }
        "vrm" => {
            if let Some(v) = bare.and_then(|s| s.parse::<f64>().ok()) {
                push(
                    out,
                    "node_hwmon_voltage_regulator_version",
                    "Hardware voltage regulator",
                    g,
                    &labels,
                    v,
                );
            }
            return;
        }
        "update_interval" => {
            if let Some(v) = bare.and_then(|s| s.parse::<f64>().ok()) {
                push(
                    out,
                    "node_hwmon_update_interval_seconds",
                    "Hardware monitor update interval",
                    g,
                    &labels,
                    v * 0.001,
                );
            }
            return;
        }
        _ => {}
    }
    let prefix = format!("node_hwmon_{kind}");
    for (element, raw) in elems {
        if element == "label" {
            continue;
        }
        let mut name = prefix.clone();
        if element == "input" {
            if bare.is_some() {
                name.push_str("_input");
            }
        } else if !element.is_empty() {
            name.push('_');
            name.push_str(&clean(element));
        }
        let Ok(v) = raw.parse::<f64>() else {
            continue;
        };
        let el = element.as_str();
        let (suffix, help, kind_out, value) = match (kind, el) {
            (_, "fault" | "alarm") => ("", format!("Hardware sensor {el} status ({kind})"), g, v),
            (_, "beep") => ("_enabled", "Hardware monitor sensor has beeping enabled".to_owned(), g, v),
            ("in" | "cpu", _) => ("_volts", format!("Hardware monitor for voltage ({el})"), g, v * 0.001),
            ("temp", e) if e != "type" => {
                let e = if e.is_empty() { "input" } else { e };
                ("_celsius", format!("Hardware monitor for temperature ({e})"), g, v * 0.001)
            }
            ("curr", _) => ("_amps", format!("Hardware monitor for current ({el})"), g, v * 0.001),
            ("energy", _) => (
                "_joule_total",
                format!("Hardware monitor for joules used so far ({el})"),
                MetricType::Counter,
                v / 1_000_000.0,
            ),
            ("power", "accuracy") => ("", "Hardware monitor power meter accuracy, as a ratio".to_owned(), g, v / 1_000_000.0),
            ("power", "average_interval" | "average_interval_min" | "average_interval_max") => (
                "_seconds",
                format!("Hardware monitor power usage update interval ({el})"),
                g,
                v * 0.001,
            ),
            ("power", _) => ("_watt", format!("Hardware monitor for power usage in watts ({el})"), g, v / 1_000_000.0),
            ("humidity", _) => (
                "",
                format!("Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity as a percentage) ({el})"),
                g,
                v / 1_000_000.0,
            ),
            ("fan", "input" | "min" | "max" | "target") => (
                "_rpm",
                format!("Hardware monitor for fan revolutions per minute ({el})"),
                g,
                v,
            ),
            _ => ("", format!("Hardware monitor {kind} element {el}"), g, v),
        };
        name.push_str(suffix);
        push(out, &name, &help, kind_out, &labels, value);
    }
}

impl Hwmon {
    fn chip(&self, out: &mut MetricSet, dir: &Path) -> Result<(), CollectError> {
        let chip = chip_name(dir).ok_or_else(|| {
            CollectError::Other(format!(
                "Could not derive a monitoring name for {}",
                dir.display()
            ))
        })?;
        let mut data = SensorData::new();
        collect_sensors(dir, &mut data)?;
        let device = dir.join("device");
        if device.exists() {
            collect_sensors(&device, &mut data)?;
        }
        if let Some(human) = human_name(dir) {
            out.family(
                "node_hwmon_chip_names",
                "Annotation metric for human-readable chip names",
                MetricType::Gauge,
            )
            .add(&[("chip", &chip), ("chip_name", &human)], 1.0);
        }
        for (sensor, elems) in &data {
            emit_sensor(out, &chip, sensor, elems);
        }
        Ok(())
    }
}

impl Collector for Hwmon {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let base = ctx.roots.sys("class/hwmon");
        let dirs = class_entries(&base)?.into_iter().map(|n| base.join(n));
        for dir in dirs {
            // Entries are symlinks into /sys/devices; follow them.
            if std::fs::metadata(&dir).is_ok_and(|m| m.is_dir()) {
                self.chip(out, &dir)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensor_names() {
        assert_eq!(
            explode("temp1_crit_alarm"),
            Some(("temp", "1", "crit_alarm"))
        );
        assert_eq!(explode("beep_enable"), Some(("beep_enable", "", "")));
        assert_eq!(explode("pwm2"), Some(("pwm", "2", "")));
        assert_eq!(explode("cpu0_vid"), Some(("cpu", "0", "vid")));
        assert_eq!(explode("temp1_"), None);
        assert_eq!(explode("1abc"), None);
        assert_eq!(explode(""), None);
        assert_eq!(clean("ACPI Tz 2\n"), "acpi_tz_2");
        assert_eq!(clean("0000:00:03.0"), "0000:00:03_0");
    }

    #[test]
    fn odd_values_are_skipped() {
        let mut out = MetricSet::new();
        let mut e = BTreeMap::new();
        e.insert("input".to_owned(), "garbage".to_owned());
        e.insert("max".to_owned(), "".to_owned());
        emit_sensor(&mut out, "c", "temp1", &e);
        emit_sensor(&mut out, "c", "", &e);
        assert!(out.is_empty());
    }
}
