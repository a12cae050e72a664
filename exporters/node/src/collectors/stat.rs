//! stat: `/proc/stat` (boot time, context switches, forks, interrupts,
//! running/blocked processes). Per-CPU times are the cpu collector's.

use vigie_common::MetricSet;

use super::{BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "stat",
        default_enabled: true,
        args: || {
            super::bool_args("collector.stat.softirq", "Export softirq calls per vector").into()
        },
        build: |ctx: &BuildCtx| {
            Ok(Box::new(Stat {
                softirq: ctx.bool_or("collector.stat.softirq", false),
            }))
        },
    }
}

struct Stat {
    softirq: bool,
}

/// The `softirq` line's columns after the total, in the kernel's order,
/// as node_exporter names them.
const SOFTIRQ_VECTORS: [&str; 10] = [
    "hi",
    "timer",
    "net_tx",
    "net_rx",
    "block",
    "block_iopoll",
    "tasklet",
    "sched",
    "hrtimer",
    "rcu",
];

/// The fields of /proc/stat this collector reports.
#[derive(Debug, Default, PartialEq)]
pub struct Totals {
    pub btime: Option<f64>,
    pub ctxt: Option<f64>,
    pub processes: Option<f64>,
    pub intr: Option<f64>,
    pub running: Option<f64>,
    pub blocked: Option<f64>,
    /// Calls per vector (SOFTIRQ_VECTORS order); empty without the line.
    pub softirq: Vec<f64>,
}

pub fn parse(text: &str) -> Totals {
    let mut t = Totals::default();
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let (Some(key), Some(v)) = (it.next(), it.next()) else {
            continue;
        };
        let v = v.parse::<u64>().ok().map(|v| v as f64);
        match key {
            "btime" => t.btime = v,
            "ctxt" => t.ctxt = v,
            "processes" => t.processes = v,
            "intr" => t.intr = v,
            "procs_running" => t.running = v,
            "procs_blocked" => t.blocked = v,
            "softirq" => {
                t.softirq = it
                    .map_while(|x| x.parse::<u64>().ok())
                    .map(|x| x as f64)
                    .collect();
            }
            _ => {}
        }
    }
    t
}

impl Collector for Stat {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let path = ctx.roots.proc("stat");
        let t = parse(&ctx.read(&path)?);
        let fields = [
            (
                t.intr,
                "node_intr_total",
                "Total number of interrupts serviced.",
                true,
            ),
            (
                t.ctxt,
                "node_context_switches_total",
                "Total number of context switches.",
                true,
            ),
            (
                t.processes,
                "node_forks_total",
                "Total number of forks.",
                true,
            ),
            (
                t.btime,
                "node_boot_time_seconds",
                "Node boot time, in unixtime.",
                false,
            ),
            (
                t.running,
                "node_procs_running",
                "Number of processes in runnable state.",
                false,
            ),
            (
                t.blocked,
                "node_procs_blocked",
                "Number of processes blocked waiting for I/O to complete.",
                false,
            ),
        ];
        // A missing line reads as 0, as in node_exporter.
        for (v, name, help, counter) in fields {
            let v = v.unwrap_or_default();
            if counter {
                out.counter(name, help, &[], v);
            } else {
                out.gauge(name, help, &[], v);
            }
        }
        if self.softirq {
            for (vector, v) in SOFTIRQ_VECTORS.iter().zip(&t.softirq) {
                out.counter(
                    "node_softirqs_total",
                    "Number of softirq calls.",
                    &[("vector", vector)],
                    *v,
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
    fn parses_odd_input() {
        let t = parse("cpu 1 2 3\nintr 55 1 2\nctxt 9\nbtime 100\nprocesses 7\nprocs_running 2\nprocs_blocked 0\n");
        assert_eq!(t.intr, Some(55.0));
        assert_eq!(t.btime, Some(100.0));
        let t = parse("softirq 30 1 2 3 4 5 6 7 8 9 10 11\n");
        assert_eq!(t.softirq.len(), 11);
        assert_eq!(t.softirq[0], 1.0);
        let t = parse("ctxt\nbtime x\n\0\0");
        assert_eq!(t, Totals::default());
    }
}
