//! netstat: `/proc/net/{netstat,snmp,snmp6}`, the `<Group>_<Field>` names
//! matching `--collector.netstat.fields`, untyped like node_exporter.

use vigie_common::MetricSet;

use super::{str_arg, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

const FIELDS: &str = "collector.netstat.fields";
const DEFAULT_FIELDS: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";

pub fn spec() -> Spec {
    Spec {
        name: "netstat",
        default_enabled: true,
        args: || {
            vec![str_arg(
                FIELDS,
                Some(DEFAULT_FIELDS),
                "Regexp of fields to return for netstat collector.",
            )]
        },
        build: |ctx: &BuildCtx| {
            Ok(Box::new(Netstat {
                fields: super::FieldFilter::new(ctx.regex(FIELDS)?),
            }))
        },
    }
}

struct Netstat {
    /// None (empty flag) matches everything, as an empty Go regexp does.
    fields: super::FieldFilter,
}

/// Pairs of "Group: names..." / "Group: values..." lines. Values are kept
/// as text: node_exporter parses them as floats only when exported.
pub fn parse_pairs(text: &str) -> Result<Vec<(String, String, String)>, usize> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    for (i, pair) in lines.chunks(2).enumerate() {
        let [names, values] = pair else {
            return Err(i * 2 + 1);
        };
        let (g1, n) = names.split_once(':').ok_or(i * 2 + 1)?;
        let (g2, v) = values.split_once(':').ok_or(i * 2 + 2)?;
        if g1 != g2 {
            return Err(i * 2 + 2);
        }
        let n: Vec<&str> = n.split_ascii_whitespace().collect();
        let v: Vec<&str> = v.split_ascii_whitespace().collect();
        if n.len() != v.len() {
            return Err(i * 2 + 2);
        }
        for (k, val) in n.into_iter().zip(v) {
            out.push((g1.to_owned(), k.to_owned(), val.to_owned()));
        }
    }
    Ok(out)
}

/// `/proc/net/snmp6`: "Ip6InReceives 123"; the group ends at the first '6'.
pub fn parse_snmp6(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(k), Some(v)) = (f.next(), f.next()) else {
            continue;
        };
        if let Some(i) = k.find('6') {
            out.push((k[..=i].to_owned(), k[i + 1..].to_owned(), v.to_owned()));
        }
    }
    out
}

impl Netstat {
    fn emit(
        &self,
        path: &std::path::Path,
        stats: Vec<(String, String, String)>,
        out: &mut MetricSet,
    ) -> Result<(), CollectError> {
        for (group, name, value) in stats {
            let key = format!("{group}_{name}");
            if !self.fields.matches(&key) {
                continue;
            }
            let v: f64 = value.parse().map_err(|_| {
                CollectError::parse(path, 0, format!("invalid value {value:?} for {key}"))
            })?;
            let metric = format!("node_netstat_{key}");
            if vigie_common::expo::is_valid_metric_name(&metric) {
                out.untyped(&metric, &format!("Statistic {group}{name}."), &[], v);
            }
        }
        Ok(())
    }
}

impl Collector for Netstat {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        // All files are parsed before anything is emitted: an error in one
        // fails the whole collector, as in node_exporter.
        let mut all = Vec::new();
        for file in ["net/netstat", "net/snmp"] {
            let path = ctx.roots.proc(file);
            let text = ctx.read(&path)?;
            let stats = parse_pairs(&text)
                .map_err(|l| CollectError::parse(&path, l, "names and values do not pair up"))?;
            all.push((path, stats));
        }
        let p6 = ctx.roots.proc("net/snmp6");
        match ctx.read(&p6) {
            Ok(text) => all.push((p6, parse_snmp6(&text))),
            // IPv6 disabled: node_exporter skips it quietly.
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let mut staged = MetricSet::new();
        for (path, stats) in all {
            self.emit(&path, stats, &mut staged)?;
        }
        out.merge(staged);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_and_snmp6() {
        let p = parse_pairs("Tcp: A B\nTcp: 1 2\nUdp: C\nUdp: 3\n").unwrap();
        assert_eq!(p.len(), 3);
        assert!(parse_pairs("Tcp: A B\nTcp: 1\n").is_err());
        assert!(parse_pairs("Tcp: A\nUdp: 1\n").is_err());
        assert!(parse_pairs("Tcp: A\n").is_err());
        let s = parse_snmp6("Ip6InReceives 5\nUdpLite6InErrors 0\nnosix 1\nbroken\n");
        assert_eq!(s[1], ("UdpLite6".into(), "InErrors".into(), "0".into()));
        assert_eq!(s.len(), 2);
    }
}
