//! meminfo: `/proc/meminfo`, every line as a gauge like node_exporter 1.5.0
//! (`Active(anon)` -> `Active_anon`; kB lines get `_bytes` and x1024).

use vigie_common::MetricSet;

use super::{no_args, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "meminfo",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Meminfo)),
    }
}

struct Meminfo;

/// `(metric suffix, value)` per line; None on a malformed line.
pub fn parse(text: &str) -> Result<Vec<(String, f64)>, (usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.split_ascii_whitespace().collect();
        if parts.is_empty() {
            continue;
        }
        let bad = || (i + 1, format!("invalid line: {line:?}"));
        let v: f64 = parts
            .get(1)
            .ok_or_else(bad)?
            .parse::<f64>()
            .map_err(|_| bad())?;
        let key = parts[0].trim_end_matches(':');
        let mut key = key.replace('(', "_").replace(')', "");
        let v = match parts.len() {
            2 => v,
            3 if parts[2] == "kB" => {
                key.push_str("_bytes");
                v * 1024.0
            }
            _ => return Err(bad()),
        };
        out.push((key, v));
    }
    Ok(out)
}

impl Collector for Meminfo {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let path = ctx.roots.proc("meminfo");
        let fields = parse(&ctx.read(&path)?).map_err(|(l, m)| CollectError::parse(&path, l, m))?;
        if fields.is_empty() {
            return Err(CollectError::parse(&path, 0, "no fields"));
        }
        for (k, v) in fields {
            let name = format!("node_memory_{k}");
            if !vigie_common::expo::is_valid_metric_name(&name) {
                continue;
            }
            out.gauge(&name, &format!("Memory information field {k}."), &[], v);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_1_5_0() {
        let f = parse("MemTotal:  100 kB\nActive(anon):   2 kB\nHugePages_Total:  3\n").unwrap();
        assert_eq!(
            f,
            vec![
                ("MemTotal_bytes".into(), 102400.0),
                ("Active_anon_bytes".into(), 2048.0),
                ("HugePages_Total".into(), 3.0)
            ]
        );
        assert!(parse("MemTotal:\n").is_err());
        assert!(parse("MemTotal: x kB\n").is_err());
        assert!(parse("MemTotal: 1 kB extra\n").is_err());
    }
}
