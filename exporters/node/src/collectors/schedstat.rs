//! schedstat: `/proc/schedstat` per-CPU running/waiting time and timeslices.

use vigie_common::MetricSet;

use super::{no_args, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "schedstat",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Schedstat)),
    }
}

struct Schedstat;

/// `(cpu, running ns, waiting ns, timeslices)` per `cpuN` line.
pub fn parse(text: &str) -> Vec<(String, u64, u64, u64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        let Some(cpu) = f.first().and_then(|c| c.strip_prefix("cpu")) else {
            continue;
        };
        if f.len() < 10 || cpu.is_empty() || !cpu.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let n = |i: usize| f[i].parse::<u64>().ok();
        if let (Some(r), Some(w), Some(t)) = (n(7), n(8), n(9)) {
            out.push((cpu.to_owned(), r, w, t));
        }
    }
    out
}

impl Collector for Schedstat {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let path = ctx.roots.proc("schedstat");
        let text = match ctx.read(&path) {
            Ok(t) => t,
            Err(e) if e.is_not_found() => {
                tracing::debug!("schedstat file does not exist");
                return Err(CollectError::NoData);
            }
            Err(e) => return Err(e),
        };
        for (cpu, run, wait, slices) in parse(&text) {
            let l = [("cpu", cpu.as_str())];
            out.counter(
                "node_schedstat_running_seconds_total",
                "Number of seconds CPU spent running a process.",
                &l,
                run as f64 / 1e9,
            );
            out.counter(
                "node_schedstat_waiting_seconds_total",
                "Number of seconds spent by processing waiting for this CPU.",
                &l,
                wait as f64 / 1e9,
            );
            out.counter(
                "node_schedstat_timeslices_total",
                "Number of timeslices executed by CPU.",
                &l,
                slices as f64,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses() {
        let t = "version 15\ntimestamp 1\ncpu0 0 0 0 0 0 0 2045936778163039 343796328169361 4767485306\ndomain0 3 1\ncpu1 1 2\ncpux 0 0 0 0 0 0 1 2 3\n";
        assert_eq!(
            super::parse(t),
            vec![("0".into(), 2045936778163039, 343796328169361, 4767485306)]
        );
    }
}
