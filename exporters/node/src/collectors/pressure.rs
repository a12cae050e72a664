//! pressure: `/proc/pressure/{cpu,io,memory}` (PSI totals, microseconds).

use vigie_common::MetricSet;

use super::{no_args, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "pressure",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Pressure)),
    }
}

struct Pressure;

/// `(some total, full total)` in microseconds.
pub fn parse(text: &str) -> (Option<u64>, Option<u64>) {
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let kind = it.next();
        let total = it
            .find_map(|f| f.strip_prefix("total="))
            .and_then(|v| v.parse::<u64>().ok());
        match kind {
            Some("some") => some = total,
            Some("full") => full = total,
            _ => {}
        }
    }
    (some, full)
}

fn seconds(us: u64) -> f64 {
    us as f64 / 1000.0 / 1000.0
}

impl Collector for Pressure {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        for res in ["cpu", "io", "memory"] {
            let path = ctx.roots.proc(&format!("pressure/{res}"));
            let text = match ctx.read(&path) {
                Ok(t) => t,
                Err(e) if e.is_not_found() => {
                    tracing::debug!("pressure information is unavailable, you need a Linux kernel >= 4.20 and/or CONFIG_PSI enabled for your kernel");
                    return Err(CollectError::NoData);
                }
                Err(e) => return Err(e),
            };
            let (some, full) = parse(&text);
            let some = some.ok_or_else(|| CollectError::parse(&path, 1, "no \"some\" line"))?;
            match res {
                "cpu" => out.counter(
                    "node_pressure_cpu_waiting_seconds_total",
                    "Total time in seconds that processes have waited for CPU time",
                    &[],
                    seconds(some),
                ),
                "io" => {
                    out.counter(
                        "node_pressure_io_waiting_seconds_total",
                        "Total time in seconds that processes have waited due to IO congestion",
                        &[],
                        seconds(some),
                    );
                    out.counter(
                        "node_pressure_io_stalled_seconds_total",
                        "Total time in seconds no process could make progress due to IO congestion",
                        &[],
                        seconds(full.unwrap_or(0)),
                    );
                }
                _ => {
                    out.counter(
                        "node_pressure_memory_waiting_seconds_total",
                        "Total time in seconds that processes have waited for memory",
                        &[],
                        seconds(some),
                    );
                    out.counter("node_pressure_memory_stalled_seconds_total", "Total time in seconds no process could make progress due to memory congestion", &[], seconds(full.unwrap_or(0)));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses() {
        let (s, f) = super::parse(
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=47705952\nfull avg10=0 total=5\n",
        );
        assert_eq!((s, f), (Some(47705952), Some(5)));
        assert_eq!(super::parse("some total=x\nfull"), (None, None));
        assert_eq!(super::seconds(47705952).to_string(), "47.705951999999996");
    }
}
