//! systemd: unit states, timers, sockets and the manager's state over
//! D-Bus (zbus, blocking API).
//!
//! As node_exporter does, it connects to the system bus and, when that
//! fails and it runs as root, to systemd's private socket
//! `/run/systemd/private`. Without systemd (containers, this test VM) the
//! scrape reports `node_scrape_collector_success{collector="systemd"} 0`
//! and logs "couldn't get dbus connection". Every call has a timeout
//! bounded by the scrape deadline.

use std::time::{Duration, Instant};

use clap::{Arg, ArgAction};
use regex::Regex;
use vigie_common::{MetricSet, MetricType};
use zbus::blocking::{connection, Connection, Proxy};
use zbus::proxy::CacheProperties;
use zbus::zvariant::OwnedObjectPath;

use super::{BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "systemd",
        default_enabled: true,
        args,
        build: |ctx: &BuildCtx| {
            let pick = |new: &str, old: &str| -> Result<Regex, String> {
                // The deprecated whitelist/blacklist names win when given.
                let raw = ctx
                    .string(old)
                    .filter(|s| !s.is_empty())
                    .or_else(|| ctx.string(new))
                    .unwrap_or_default();
                tracing::info!(flag = raw.as_str(), "Parsed flag --{new}");
                Regex::new(&format!("^(?:{raw})$"))
                    .map_err(|e| format!("--{new}: invalid regular expression: {e}"))
            };
            let include = pick(
                "collector.systemd.unit-include",
                "collector.systemd.unit-whitelist",
            )?;
            let exclude = pick(
                "collector.systemd.unit-exclude",
                "collector.systemd.unit-blacklist",
            )?;
            Ok(Box::new(Systemd {
                include,
                exclude,
                private: ctx.flag("collector.systemd.private"),
                tasks: ctx.flag("collector.systemd.enable-task-metrics"),
                restarts: ctx.flag("collector.systemd.enable-restarts-metrics"),
                start_time: ctx.flag("collector.systemd.enable-start-time-metrics"),
            }))
        },
    }
}

fn args() -> Vec<Arg> {
    let s = |name: &'static str, default: &'static str, help: &'static str| {
        Arg::new(name)
            .long(name)
            .default_value(default)
            .value_name("REGEX")
            .help(help)
    };
    let hidden = |name: &'static str| Arg::new(name).long(name).hide(true).value_name("REGEX");
    let b = |name: &'static str, help: &'static str| {
        Arg::new(name)
            .long(name)
            .action(ArgAction::SetTrue)
            .help(help)
    };
    vec![
        s("collector.systemd.unit-include", ".+", "Regexp of systemd units to include. Units must both match include and not match exclude to be included."),
        s("collector.systemd.unit-exclude", r".+\.(automount|device|mount|scope|slice|target)", "Regexp of systemd units to exclude. Units must both match include and not match exclude to be included."),
        hidden("collector.systemd.unit-whitelist"),
        hidden("collector.systemd.unit-blacklist"),
        b("collector.systemd.private", "Establish a private, direct connection to systemd without dbus (Strongly discouraged since it requires root. For testing purposes only).").hide(true),
        b("collector.systemd.enable-task-metrics", "Enables service unit tasks metrics unit_tasks_current and unit_tasks_max"),
        b("collector.systemd.enable-restarts-metrics", "Enables service unit metric service_restart_total"),
        b("collector.systemd.enable-start-time-metrics", "Enables service unit metric unit_start_time_seconds"),
    ]
}

struct Systemd {
    include: Regex,
    exclude: Regex,
    private: bool,
    tasks: bool,
    restarts: bool,
    start_time: bool,
}

const DEST: &str = "org.freedesktop.systemd1";
const STATES: &[&str] = &["activating", "active", "deactivating", "failed", "inactive"];
/// Longest single D-Bus call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// One entry of `ListUnits`.
type UnitTuple = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

struct Unit {
    name: String,
    load_state: String,
    active_state: String,
    path: OwnedObjectPath,
}

fn dbus_err(e: zbus::Error) -> CollectError {
    CollectError::Other(e.to_string())
}

fn connect(private: bool, timeout: Duration) -> Result<Connection, zbus::Error> {
    let private_conn = || {
        connection::Builder::address("unix:path=/run/systemd/private")?
            .p2p()
            .method_timeout(timeout)
            .build()
    };
    if private {
        return private_conn();
    }
    match connection::Builder::system().and_then(|b| b.method_timeout(timeout).build()) {
        Ok(c) => Ok(c),
        Err(_) if vigie_common::sys::euid() == 0 => private_conn(),
        Err(e) => Err(e),
    }
}

fn proxy<'a>(
    conn: &'a Connection,
    path: &'a str,
    iface: &'a str,
) -> Result<Proxy<'a>, zbus::Error> {
    zbus::blocking::proxy::Builder::new(conn)
        .destination(DEST)?
        .path(path)?
        .interface(iface)?
        .cache_properties(CacheProperties::No)
        .build()
}

/// `252.22-1~deb12u1` → 252.22 (the first `NNN[.N]`).
fn parse_version(v: &str) -> Option<f64> {
    let start = v.find(|c: char| c.is_ascii_digit())?;
    let rest = &v[start..];
    let end = rest
        .char_indices()
        .scan(false, |dot, (i, c)| {
            if c.is_ascii_digit() {
                Some(i + 1)
            } else if c == '.' && !*dot {
                *dot = true;
                Some(i)
            } else {
                None
            }
        })
        .last()?;
    rest[..end].trim_end_matches('.').parse().ok()
}

impl Systemd {
    fn wanted(&self, u: &Unit) -> bool {
        self.include.is_match(&u.name)
            && !self.exclude.is_match(&u.name)
            && u.load_state == "loaded"
    }

    fn collect(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let left = ctx.deadline.saturating_duration_since(Instant::now());
        let conn = connect(self.private, left.min(CALL_TIMEOUT))
            .map_err(|e| CollectError::Other(format!("couldn't get dbus connection: {e}")))?;
        let manager = proxy(
            &conn,
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
        )
        .map_err(dbus_err)?;
        let g = MetricType::Gauge;

        if let Ok(version) = manager.get_property::<String>("Version") {
            let version = version.trim_matches('"').to_owned();
            if let Some(v) = parse_version(&version) {
                out.family("node_systemd_version", "Detected systemd version", g)
                    .add(&[("version", &version)], v);
            }
        }
        let units: Vec<UnitTuple> = manager
            .call("ListUnits", &())
            .map_err(|e| CollectError::Other(format!("couldn't get units: {e}")))?;
        let units: Vec<Unit> = units
            .into_iter()
            .map(|t| Unit {
                name: t.0,
                load_state: t.2,
                active_state: t.3,
                path: t.6,
            })
            .collect();
        for s in STATES {
            let n = units.iter().filter(|u| u.active_state == *s).count();
            out.gauge(
                "node_systemd_units",
                "Summary of systemd unit states",
                &[("state", s)],
                n as f64,
            );
        }
        for u in units.iter().filter(|u| self.wanted(u)) {
            if Instant::now() >= ctx.deadline {
                return Err(CollectError::Other(
                    "systemd: scrape deadline reached".into(),
                ));
            }
            self.unit(&conn, u, out);
        }
        let state: String = manager
            .get_property("SystemState")
            .map_err(|e| CollectError::Other(format!("couldn't get system state: {e}")))?;
        out.gauge(
            "node_systemd_system_running",
            "Whether the system is operational (see 'systemctl is-system-running')",
            &[],
            if state == "running" { 1.0 } else { 0.0 },
        );
        Ok(())
    }

    /// The per-unit series; a failing property read skips that series.
    fn unit(&self, conn: &Connection, u: &Unit, out: &mut MetricSet) {
        let g = MetricType::Gauge;
        let path = u.path.as_str();
        let name = u.name.as_str();
        let is = |suffix: &str| name.ends_with(suffix);
        let get_u64 = |iface: &str, prop: &str| -> Option<u64> {
            let p = proxy(conn, path, iface).ok()?;
            p.get_property::<u64>(prop).ok()
        };
        let get_u32 = |iface: &str, prop: &str| -> Option<u32> {
            let p = proxy(conn, path, iface).ok()?;
            p.get_property::<u32>(prop).ok()
        };
        let svc_type = if is(".service") {
            proxy(conn, path, "org.freedesktop.systemd1.Service")
                .ok()
                .and_then(|p| p.get_property::<String>("Type").ok())
                .unwrap_or_default()
        } else {
            String::new()
        };
        for s in STATES {
            out.family("node_systemd_unit_state", "Systemd unit", g)
                .add(
                    &[("name", name), ("state", s), ("type", &svc_type)],
                    if u.active_state == *s { 1.0 } else { 0.0 },
                );
        }
        if self.start_time {
            let v = if u.active_state == "active" {
                get_u64("org.freedesktop.systemd1.Unit", "ActiveEnterTimestamp").unwrap_or(0) as f64
                    / 1e6
            } else {
                0.0
            };
            out.gauge(
                "node_systemd_unit_start_time_seconds",
                "Start time of the unit since unix epoch in seconds.",
                &[("name", name)],
                v,
            );
        }
        if is(".service") {
            if self.tasks {
                if let Some(v) = get_u64("org.freedesktop.systemd1.Service", "TasksCurrent")
                    .filter(|v| *v != u64::MAX)
                {
                    out.gauge(
                        "node_systemd_unit_tasks_current",
                        "Current number of tasks per Systemd unit",
                        &[("name", name)],
                        v as f64,
                    );
                }
                if let Some(v) = get_u64("org.freedesktop.systemd1.Service", "TasksMax")
                    .filter(|v| *v != u64::MAX)
                {
                    out.gauge(
                        "node_systemd_unit_tasks_max",
                        "Maximum number of tasks per Systemd unit",
                        &[("name", name)],
                        v as f64,
                    );
                }
            }
            if self.restarts {
                if let Some(v) = get_u32("org.freedesktop.systemd1.Service", "NRestarts") {
                    out.counter(
                        "node_systemd_service_restart_total",
                        "Service unit count of Restart triggers",
                        &[("name", name)],
                        f64::from(v),
                    );
                }
            }
        }
        if is(".timer") {
            if let Some(v) = get_u64("org.freedesktop.systemd1.Timer", "LastTriggerUSec") {
                out.gauge(
                    "node_systemd_timer_last_trigger_seconds",
                    "Seconds since epoch of last trigger.",
                    &[("name", name)],
                    v as f64 / 1e6,
                );
            }
        }
        if is(".socket") {
            let sock = "org.freedesktop.systemd1.Socket";
            if let Some(v) = get_u32(sock, "NAccepted") {
                out.counter(
                    "node_systemd_socket_accepted_connections_total",
                    "Total number of accepted socket connections",
                    &[("name", name)],
                    f64::from(v),
                );
            }
            if let Some(v) = get_u32(sock, "NConnections") {
                out.gauge(
                    "node_systemd_socket_current_connections",
                    "Current number of socket connections",
                    &[("name", name)],
                    f64::from(v),
                );
            }
            if let Some(v) = get_u32(sock, "NRefused") {
                out.counter(
                    "node_systemd_socket_refused_connections_total",
                    "Total number of refused socket connections",
                    &[("name", name)],
                    f64::from(v),
                );
            }
        }
    }
}

impl Collector for Systemd {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        self.collect(ctx, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("252.22-1~deb12u1"), Some(252.22));
        assert_eq!(parse_version("\"249\""), Some(249.0));
        assert_eq!(parse_version("v255.4.1"), Some(255.4));
        assert_eq!(parse_version("none"), None);
        assert_eq!(parse_version(""), None);
    }
}
