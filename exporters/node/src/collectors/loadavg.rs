//! loadavg: `/proc/loadavg`.

use vigie_common::MetricSet;

use super::{no_args, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "loadavg",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(LoadAvg)),
    }
}

struct LoadAvg;

impl Collector for LoadAvg {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let path = ctx.roots.proc("loadavg");
        let text = ctx.read(&path)?;
        let loads = parse(&text)
            .ok_or_else(|| CollectError::parse(&path, 1, "expected three load averages"))?;
        for (name, help, v) in [
            ("node_load1", "1m load average.", loads[0]),
            ("node_load5", "5m load average.", loads[1]),
            ("node_load15", "15m load average.", loads[2]),
        ] {
            out.gauge(name, help, &[], v);
        }
        Ok(())
    }
}

fn parse(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            parse("0.21 0.37 0.39 1/120 2342\n"),
            Some([0.21, 0.37, 0.39])
        );
        assert_eq!(parse("0.21 x"), None);
        assert_eq!(parse(""), None);
    }
}
