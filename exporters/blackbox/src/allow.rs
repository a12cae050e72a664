//! `--probe.allow-target`: which targets /probe may contact (Vigie addition).
//! An entry is a CIDR (`127.0.0.0/8`, `::1/128`), a plain IP, or a host name
//! glob (`*.example.com`, `db?.lan`). IP targets match CIDRs or globs; names
//! match globs only (no lookup is made to decide).

use std::net::IpAddr;

use crate::resolve::{bare_host, split_host_port};

#[derive(Debug, Clone)]
enum Rule {
    Cidr(IpAddr, u8),
    Glob(String),
}

#[derive(Debug, Clone, Default)]
pub struct AllowList {
    rules: Vec<Rule>,
}

impl AllowList {
    pub fn parse(items: &[String]) -> Result<Self, String> {
        let mut rules = Vec::new();
        for it in items {
            let it = it.trim();
            if it.is_empty() {
                return Err("empty --probe.allow-target".to_owned());
            }
            if let Some((ip, len)) = it.split_once('/') {
                let ip: IpAddr = ip.parse().map_err(|_| format!("invalid CIDR {it:?}"))?;
                let len: u8 = len.parse().map_err(|_| format!("invalid CIDR {it:?}"))?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                if len > max {
                    return Err(format!("invalid CIDR {it:?}: prefix longer than {max}"));
                }
                rules.push(Rule::Cidr(ip, len));
            } else if let Ok(ip) = bare_host(it).parse::<IpAddr>() {
                rules.push(Rule::Cidr(ip, if ip.is_ipv4() { 32 } else { 128 }));
            } else {
                rules.push(Rule::Glob(it.to_ascii_lowercase()));
            }
        }
        Ok(AllowList { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// True when the host (name or IP literal) is allowed.
    pub fn allows_host(&self, host: &str) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        let host = bare_host(host).trim_end_matches('.').to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        self.rules.iter().any(|r| match r {
            Rule::Cidr(net, len) => ip.is_some_and(|ip| in_cidr(ip, *net, *len)),
            Rule::Glob(g) => glob(g.as_bytes(), host.as_bytes()),
        })
    }

    /// Extracts the host of a target the way the prober will read it.
    pub fn allows_target(&self, prober: &str, target: &str) -> bool {
        self.allows_host(&target_host(prober, target))
    }
}

/// The host part of a target for a prober.
pub fn target_host(prober: &str, target: &str) -> String {
    match prober {
        "http" => {
            let t = if target.contains("://") {
                target.to_owned()
            } else {
                format!("http://{target}")
            };
            url::Url::parse(&t)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default()
        }
        "icmp" => target.to_owned(),
        _ => split_host_port(target)
            .map(|(h, _)| h)
            .unwrap_or_else(|_| target.to_owned()),
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    let to_v6 = |a: IpAddr| match a {
        IpAddr::V4(v4) => (v4.to_ipv6_mapped().octets(), 96u32),
        IpAddr::V6(v6) => (v6.octets(), 0u32),
    };
    let (a, _) = to_v6(ip);
    let (b, off) = to_v6(net);
    if ip.is_ipv4() != net.is_ipv4() {
        return false;
    }
    let bits = off + u32::from(len);
    let (a, b) = (u128::from_be_bytes(a), u128::from_be_bytes(b));
    if bits == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - bits);
    a & mask == b & mask
}

/// `*` matches any run (including dots), `?` one character.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rules() {
        let a = AllowList::parse(&["127.0.0.0/8".into(), "*.example.com".into(), "::1".into()])
            .unwrap();
        assert!(a.allows_host("127.1.2.3"));
        assert!(a.allows_host("[::1]"));
        assert!(!a.allows_host("10.0.0.1"));
        assert!(a.allows_host("www.example.com"));
        assert!(!a.allows_host("example.org"));
        assert!(a.allows_target("http", "http://127.0.0.1:80/x"));
        assert!(!a.allows_target("http", "http://192.0.2.1/"));
        assert!(a.allows_target("tcp", "127.0.0.1:22"));
        assert!(!a.allows_target("icmp", "192.0.2.1"));
        assert!(AllowList::parse(&["1.2.3.4/33".into()]).is_err());
    }
}
