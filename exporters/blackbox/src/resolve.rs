//! Target address selection, as blackbox_exporter's `chooseProtocol`: one
//! lookup, the first address of the preferred family, the other family only
//! when the preferred one has none and fallback is on. Never a retry.

use std::net::IpAddr;
use std::time::Instant;

use crate::config::IpProtocol;
use crate::probe::Probe;

pub const H_IP_PROTOCOL: &str = "Specifies whether probe ip protocol is IP4 or IP6";
pub const H_IP_HASH: &str =
    "Specifies the hash of IP address. It's useful to detect if the IP address changes.";
pub const H_LOOKUP: &str = "Returns the time taken for probe dns lookup in seconds";

/// FNV-32a of the address bytes (4 for IPv4, 16 for IPv6).
pub fn ip_hash(ip: IpAddr) -> u32 {
    let bytes: Vec<u8> = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Strips the brackets of an IPv6 literal.
pub fn bare_host(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Resolves `host`, records `probe_ip_protocol`, `probe_ip_addr_hash` and
/// `probe_dns_lookup_time_seconds`, and returns the address and the lookup time.
pub async fn choose(
    probe: &mut Probe,
    caller: &str,
    host: &str,
    pref: IpProtocol,
    fallback: bool,
) -> Result<(IpAddr, std::time::Duration), String> {
    probe.gauge("probe_ip_protocol", H_IP_PROTOCOL, 0.0);
    probe.gauge("probe_ip_addr_hash", H_IP_HASH, 0.0);
    probe.gauge("probe_dns_lookup_time_seconds", H_LOOKUP, 0.0);
    let want = match pref {
        IpProtocol::Ip4 => "ip4",
        IpProtocol::Ip6 => "ip6",
    };
    probe.info(
        caller,
        "Resolving target address",
        &[("target", &host), ("ip_protocol", &want)],
    );
    probe.phase = "resolve";
    let start = Instant::now();
    let host = bare_host(host);
    let addrs: Vec<IpAddr> = if let Ok(ip) = host.parse::<IpAddr>() {
        vec![ip]
    } else if host.is_empty()
        || host.len() > 253
        || host.contains(|c: char| c.is_whitespace() || c.is_control())
    {
        let e = format!("lookup {host}: invalid host name");
        probe.error(
            caller,
            "Resolution with IP protocol failed",
            &[("target", &host), ("err", &e)],
        );
        return Err(e);
    } else {
        match tokio::net::lookup_host((host, 0)).await {
            Ok(it) => it.map(|sa| sa.ip()).collect(),
            Err(e) => {
                let e = format!("lookup {host}: {}", friendly_lookup_error(&e));
                probe.gauge(
                    "probe_dns_lookup_time_seconds",
                    H_LOOKUP,
                    start.elapsed().as_secs_f64(),
                );
                probe.error(
                    caller,
                    "Resolution with IP protocol failed",
                    &[("target", &host), ("err", &e)],
                );
                return Err(e);
            }
        }
    };
    let elapsed = start.elapsed();
    probe.gauge(
        "probe_dns_lookup_time_seconds",
        H_LOOKUP,
        elapsed.as_secs_f64(),
    );
    let is_pref = |ip: &IpAddr| match pref {
        IpProtocol::Ip4 => ip.is_ipv4(),
        IpProtocol::Ip6 => ip.is_ipv6(),
    };
    let chosen = addrs.iter().copied().find(is_pref).or_else(|| {
        if fallback {
            addrs.first().copied()
        } else {
            None
        }
    });
    let Some(ip) = chosen else {
        let e = if addrs.is_empty() {
            format!("lookup {host}: no such host")
        } else {
            format!("unable to find ip; no fallback: lookup {host}: no suitable address found")
        };
        probe.error(
            caller,
            "Resolution with IP protocol failed",
            &[("target", &host), ("err", &e)],
        );
        return Err(e);
    };
    probe.gauge(
        "probe_ip_protocol",
        H_IP_PROTOCOL,
        if ip.is_ipv4() { 4.0 } else { 6.0 },
    );
    probe.gauge("probe_ip_addr_hash", H_IP_HASH, f64::from(ip_hash(ip)));
    probe.info(
        caller,
        "Resolved target address",
        &[("target", &host), ("ip", &ip)],
    );
    Ok((ip, elapsed))
}

fn friendly_lookup_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    if s.contains("Name or service not known")
        || s.contains("No address associated")
        || s.contains("nodename nor servname")
    {
        "no such host".to_owned()
    } else {
        s
    }
}

/// Splits `host:port` as Go's `net.SplitHostPort` does.
pub fn split_host_port(s: &str) -> Result<(String, String), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Err(format!("address {s}: missing ']' in address"));
        };
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let Some(port) = after.strip_prefix(':') else {
            return Err(format!("address {s}: missing port in address"));
        };
        return Ok((host.to_owned(), port.to_owned()));
    }
    match s.rfind(':') {
        None => Err(format!("address {s}: missing port in address")),
        Some(i) => {
            let host = &s[..i];
            if host.contains(':') {
                return Err(format!("address {s}: too many colons in address"));
            }
            Ok((host.to_owned(), s[i + 1..].to_owned()))
        }
    }
}

/// Parses a port (numeric only; service names are not looked up).
pub fn parse_port(p: &str) -> Result<u16, String> {
    p.parse::<u16>().map_err(|_| format!("unknown port {p:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_go() {
        assert_eq!(
            ip_hash("127.0.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))),
            3_668_918_509
        );
    }

    #[test]
    fn split() {
        assert_eq!(split_host_port("a:1"), Ok(("a".into(), "1".into())));
        assert_eq!(split_host_port("[::1]:53"), Ok(("::1".into(), "53".into())));
        assert!(split_host_port("127.0.0.1")
            .unwrap_err()
            .contains("missing port"));
        assert!(split_host_port("::1").is_err());
    }
}
