//! time: the clock, the local time zone offset, and the clocksources
//! in `/sys/devices/system/clocksource`.
// System calls (libc) without a safe std equivalent; each block says why it is sound.
#![allow(unsafe_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use vigie_common::MetricSet;

use super::{no_args, read_sysfs, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "time",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Time)),
    }
}

struct Time;

/// The local zone's abbreviation and offset from UTC in seconds.
fn zone() -> (String, f64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    // SAFETY: localtime_r writes into our tm; tm_zone points to static data.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&now, &mut tm) }.is_null() {
        return ("UTC".to_owned(), 0.0);
    }
    let name = if tm.tm_zone.is_null() {
        String::new()
    } else {
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    };
    (name, tm.tm_gmtoff as f64)
}

impl Collector for Time {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as f64 / 1e9)
            .unwrap_or(0.0);
        out.gauge(
            "node_time_seconds",
            "System time in seconds since epoch (1970).",
            &[],
            now,
        );
        let (name, off) = zone();
        out.gauge(
            "node_time_zone_offset_seconds",
            "System time zone offset in seconds.",
            &[("time_zone", &name)],
            off,
        );
        let base = ctx.roots.sys("devices/system/clocksource");
        let Ok(dir) = std::fs::read_dir(&base) else {
            tracing::debug!("couldn't read clocksources");
            return Ok(());
        };
        let mut devices: Vec<String> = dir
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix("clocksource"))
                    .map(str::to_owned)
            })
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        devices.sort();
        for dev in devices {
            let d = base.join(format!("clocksource{dev}"));
            if let Ok(avail) = read_sysfs(&d.join("available_clocksource")) {
                for cs in avail.split_ascii_whitespace() {
                    out.gauge(
                        "node_time_clocksource_available_info",
                        "Available clocksources read from '/sys/devices/system/clocksource'.",
                        &[("clocksource", cs), ("device", &dev)],
                        1.0,
                    );
                }
            }
            if let Ok(cur) = read_sysfs(&d.join("current_clocksource")) {
                out.gauge(
                    "node_time_clocksource_current_info",
                    "Current clocksource read from '/sys/devices/system/clocksource'.",
                    &[("clocksource", cur.trim()), ("device", &dev)],
                    1.0,
                );
            }
        }
        Ok(())
    }
}
