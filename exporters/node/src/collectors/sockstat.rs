//! sockstat: `/proc/net/sockstat` and `/proc/net/sockstat6`.

use vigie_common::MetricSet;

use super::{no_args, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "sockstat",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Sockstat { page: page_size() })),
    }
}

fn page_size() -> f64 {
    vigie_common::sys::page_size() as f64
}

struct Sockstat {
    page: f64,
}

/// `(protocol, key, value)` for each "PROTO: key value key value" pair.
pub fn parse(text: &str) -> Result<Vec<(String, String, f64)>, usize> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some((proto, rest)) = line.split_once(':') else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(i + 1);
        };
        let f: Vec<&str> = rest.split_ascii_whitespace().collect();
        if f.len() % 2 != 0 {
            return Err(i + 1);
        }
        for kv in f.chunks(2) {
            let v = kv[1].parse::<u64>().map_err(|_| i + 1)?;
            out.push((proto.to_owned(), kv[0].to_owned(), v as f64));
        }
    }
    Ok(out)
}

impl Sockstat {
    fn emit(&self, fields: Vec<(String, String, f64)>, out: &mut MetricSet) {
        for (proto, key, v) in fields {
            if proto == "sockets" && key == "used" {
                out.gauge(
                    "node_sockstat_sockets_used",
                    "Number of IPv4 sockets in use.",
                    &[],
                    v,
                );
                continue;
            }
            if proto == "sockets" {
                continue;
            }
            let mut put = |k: &str, v: f64| {
                let name = format!("node_sockstat_{proto}_{k}");
                if vigie_common::expo::is_valid_metric_name(&name) {
                    out.gauge(
                        &name,
                        &format!("Number of {proto} sockets in state {k}."),
                        &[],
                        v,
                    );
                }
            };
            put(&key, v);
            // "mem" is in pages; node_exporter adds the byte count.
            if key == "mem" {
                put("mem_bytes", v * self.page);
            }
        }
    }
}

impl Collector for Sockstat {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let p4 = ctx.roots.proc("net/sockstat");
        match ctx.read(&p4) {
            Ok(t) => self.emit(
                parse(&t).map_err(|l| CollectError::parse(&p4, l, "malformed line"))?,
                out,
            ),
            Err(e) if e.is_not_found() => {
                tracing::debug!("IPv4 sockstat statistics not found, skipping")
            }
            Err(e) => return Err(e),
        }
        let p6 = ctx.roots.proc("net/sockstat6");
        match ctx.read(&p6) {
            Ok(t) => self.emit(
                parse(&t).map_err(|l| CollectError::parse(&p6, l, "malformed line"))?,
                out,
            ),
            Err(e) if e.is_not_found() => {
                tracing::debug!("IPv6 sockstat statistics not found, skipping")
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses() {
        let f = super::parse("sockets: used 21\nTCP: inuse 2 mem 3\n").unwrap();
        assert_eq!(f.len(), 3);
        assert!(super::parse("TCP: inuse\n").is_err());
        assert!(super::parse("TCP: inuse x\n").is_err());
        assert!(super::parse("garbage\n").is_err());
    }
}
