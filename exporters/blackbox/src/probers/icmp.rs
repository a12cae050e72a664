//! The icmp prober: one echo request per probe, IPv4 and IPv6.
//!
//! Socket choice as blackbox_exporter: an unprivileged datagram ping socket
//! first (allowed when the process's group is in `net.ipv4.ping_group_range`),
//! a raw socket otherwise (root or CAP_NET_RAW). `dont_fragment` needs a raw
//! IPv4 socket with a header we build. The socket is connected to the
//! target, so the kernel only hands us that host's packets; replies are
//! matched by type, id (raw sockets) and sequence number.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::OnceLock;
use std::time::Instant as StdInstant;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::time::Instant;

use crate::config::{ip_protocol, IcmpProbe};
use crate::probe::Probe;
use crate::resolve::choose;

const CALLER: &str = "icmp.rs";
const H_PHASE: &str = "Duration of icmp request by phase";
const H_HOP: &str = "Replied packet hop limit (TTL for ipv4)";
const PAYLOAD: &[u8] = b"Prometheus Blackbox Exporter";

/// Sequence numbers: one global counter from a random start, so concurrent
/// probes of one host never share a sequence number.
fn next_seq() -> u16 {
    static SEQ: OnceLock<AtomicU16> = OnceLock::new();
    SEQ.get_or_init(|| AtomicU16::new(random_u16()))
        .fetch_add(1, Ordering::Relaxed)
}

fn random_u16() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish() as u16
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Unprivileged ping socket: the kernel owns the id and strips the IP header.
    Dgram,
    /// Raw socket: IPv4 replies arrive with their IP header.
    Raw,
    /// Raw IPv4 socket with IP_HDRINCL (we write the header, with DF).
    RawHdrIncl,
}

pub async fn probe(probe: &mut Probe, cfg: &IcmpProbe, _deadline: Instant) -> bool {
    for p in ["resolve", "setup", "rtt"] {
        probe.gauge_l("probe_icmp_duration_seconds", H_PHASE, &[("phase", p)], 0.0);
    }
    let target = probe.target.clone();
    let (ip, lookup) = match choose(
        probe,
        CALLER,
        &target,
        ip_protocol(&cfg.preferred_ip_protocol),
        cfg.ip_protocol_fallback,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            probe.error(CALLER, "Error resolving address", &[("err", &e)]);
            return probe.fail("resolve", e);
        }
    };
    probe.gauge_l(
        "probe_icmp_duration_seconds",
        H_PHASE,
        &[("phase", "resolve")],
        lookup.as_secs_f64(),
    );

    probe.phase = "icmp";
    let t_setup = StdInstant::now();
    probe.info(CALLER, "Creating socket", &[]);
    let (sock, kind) = match open(probe, ip, cfg) {
        Ok(s) => s,
        Err(e) => {
            probe.error(CALLER, "Error listening to socket", &[("err", &e)]);
            return probe.fail("icmp", e);
        }
    };
    // tokio's UdpSocket only issues send/recv on the fd, which is what a
    // ping or raw socket needs; this keeps the code free of unsafe.
    let fd = match tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(sock)) {
        Ok(fd) => fd,
        Err(e) => return probe.fail("icmp", format!("socket: {e}")),
    };
    // Reply TTL / hop limit as a control message where the header is not ours to read.
    if ip.is_ipv6() {
        let _ =
            nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::Ipv6RecvHopLimit, &true);
    } else if kind == Kind::Dgram {
        let _ = nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::Ipv4RecvTtl, &true);
    }
    let seq = next_seq();
    let id = if kind == Kind::Dgram { 0 } else { random_u16() };
    probe.info(
        CALLER,
        "Creating ICMP packet",
        &[("seq", &seq), ("id", &id)],
    );
    let mut payload = PAYLOAD.to_vec();
    if cfg.payload_size > 0 {
        payload = vec![0u8; cfg.payload_size.min(65_000)];
        let n = PAYLOAD.len().min(payload.len());
        payload[..n].copy_from_slice(&PAYLOAD[..n]);
    }
    let mut pkt = echo_request(ip.is_ipv6(), id, seq, &payload);
    if kind == Kind::RawHdrIncl {
        if let IpAddr::V4(dst) = ip {
            let ttl = if cfg.ttl > 0 { cfg.ttl as u8 } else { 64 };
            pkt = ipv4_header(dst, ttl, pkt.len())
                .into_iter()
                .chain(pkt)
                .collect();
        }
    }
    probe.gauge_l(
        "probe_icmp_duration_seconds",
        H_PHASE,
        &[("phase", "setup")],
        t_setup.elapsed().as_secs_f64(),
    );
    probe.info(CALLER, "Writing out packet", &[]);
    let t_rtt = StdInstant::now();
    if let Err(e) = fd.send(&pkt).await {
        let e = format!("write: {}", super::go_io_err(&e));
        probe.error(CALLER, "Error writing to socket", &[("err", &e)]);
        return probe.fail("icmp", e);
    }
    probe.info(CALLER, "Waiting for reply packets", &[]);
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, cmsg_hops) = match recv(&fd, &mut buf).await {
            Ok(r) => r,
            Err(e) => {
                let e = format!("read: {}", super::go_io_err(&e));
                probe.error(CALLER, "Error reading from socket", &[("err", &e)]);
                return probe.fail("icmp", e);
            }
        };
        let data = &buf[..n];
        let (icmp, ttl) = if ip.is_ipv4() && kind != Kind::Dgram {
            // Raw IPv4 sockets deliver the IP header.
            let ihl = usize::from(data.first().map_or(0, |b| b & 0x0f)) * 4;
            if ihl < 20 || data.len() < ihl + 8 {
                continue;
            }
            (&data[ihl..], Some(data[8]))
        } else {
            (data, cmsg_hops)
        };
        if is_reply(icmp, ip.is_ipv6(), kind, id, seq) {
            probe.gauge_l(
                "probe_icmp_duration_seconds",
                H_PHASE,
                &[("phase", "rtt")],
                t_rtt.elapsed().as_secs_f64(),
            );
            probe.info(CALLER, "Found matching reply packet", &[]);
            if let Some(t) = ttl {
                probe.gauge("probe_icmp_reply_hop_limit", H_HOP, f64::from(t));
            }
            return true;
        }
    }
}

fn is_reply(icmp: &[u8], v6: bool, kind: Kind, id: u16, seq: u16) -> bool {
    if icmp.len() < 8 {
        return false;
    }
    let want_type = if v6 { 129 } else { 0 };
    let rid = u16::from_be_bytes([icmp[4], icmp[5]]);
    let rseq = u16::from_be_bytes([icmp[6], icmp[7]]);
    icmp[0] == want_type && icmp[1] == 0 && rseq == seq && (kind == Kind::Dgram || rid == id)
}

/// Opens a socket as blackbox does: unprivileged first, then raw.
fn open(probe: &mut Probe, ip: IpAddr, cfg: &IcmpProbe) -> Result<(Socket, Kind), String> {
    let (domain, proto, fam) = if ip.is_ipv4() {
        (Domain::IPV4, Protocol::ICMPV4, "ip4:icmp 0.0.0.0")
    } else {
        (Domain::IPV6, Protocol::ICMPV6, "ip6:ipv6-icmp ::")
    };
    let df = cfg.dont_fragment && ip.is_ipv4();
    let mut last_err = String::new();
    let mut result = None;
    if !df {
        match Socket::new(domain, Type::DGRAM, Some(proto)) {
            Ok(s) => result = Some((s, Kind::Dgram)),
            Err(e) => {
                let e = format!("socket: {}", super::go_io_err(&e));
                probe.debug(
                    CALLER,
                    "Unable to do unprivileged listen on socket, will attempt privileged",
                    &[("err", &e)],
                );
                last_err = e;
            }
        }
    }
    if result.is_none() {
        match Socket::new(domain, Type::RAW, Some(proto)) {
            Ok(s) => result = Some((s, if df { Kind::RawHdrIncl } else { Kind::Raw })),
            Err(e) => {
                last_err = format!("listen {fam}: socket: {}", super::go_io_err(&e));
            }
        }
    }
    let Some((sock, kind)) = result else {
        return Err(format!(
            "{last_err} (needs a group in net.ipv4.ping_group_range for unprivileged ping sockets, or CAP_NET_RAW{})",
            if df { "; dont_fragment always needs CAP_NET_RAW" } else { "" }
        ));
    };
    let io = |what: &str, e: std::io::Error| format!("{what}: {}", super::go_io_err(&e));
    if kind == Kind::RawHdrIncl {
        sock.set_header_included_v4(true)
            .map_err(|e| io("setsockopt IP_HDRINCL", e))?;
    }
    if cfg.ttl > 0 {
        let ttl = cfg.ttl as u32;
        if ip.is_ipv4() {
            probe.debug(CALLER, "Setting TTL", &[("ttl", &ttl)]);
            sock.set_ttl(ttl).map_err(|e| io("setsockopt IP_TTL", e))?;
        } else {
            probe.debug(CALLER, "Setting TTL (IPv6)", &[("ttl", &ttl)]);
            sock.set_unicast_hops_v6(ttl)
                .map_err(|e| io("setsockopt IPV6_UNICAST_HOPS", e))?;
        }
    }
    if let Some(src) = cfg.source_ip_address.as_deref().filter(|s| !s.is_empty()) {
        let sip: IpAddr = src
            .parse()
            .map_err(|_| format!("invalid source_ip_address {src:?}"))?;
        sock.bind(&SockAddr::from(SocketAddr::new(sip, 0)))
            .map_err(|e| io("bind", e))?;
    }
    sock.set_nonblocking(true)
        .map_err(|e| io("set nonblocking", e))?;
    sock.connect(&SockAddr::from(SocketAddr::new(ip, 0)))
        .map_err(|e| io("connect", e))?;
    Ok((sock, kind))
}

/// Receives one packet and the TTL / hop limit control message, if any.
async fn recv(fd: &tokio::net::UdpSocket, buf: &mut [u8]) -> std::io::Result<(usize, Option<u8>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::AsRawFd;
    loop {
        fd.readable().await?;
        let res = fd.try_io(tokio::io::Interest::READABLE, || {
            let mut iov = [std::io::IoSliceMut::new(&mut *buf)];
            let mut cmsg = nix::cmsg_space!(i32, i32);
            let msg = recvmsg::<()>(fd.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty())
                .map_err(std::io::Error::from)?;
            let mut hops = None;
            if let Ok(it) = msg.cmsgs() {
                for c in it {
                    match c {
                        ControlMessageOwned::Ipv4Ttl(t) => hops = u8::try_from(t).ok(),
                        ControlMessageOwned::Ipv6HopLimit(h) => hops = u8::try_from(h).ok(),
                        _ => {}
                    }
                }
            }
            Ok((msg.bytes, hops))
        });
        match res {
            Ok(r) => return Ok(r),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// An echo request (ICMPv4 type 8 or ICMPv6 type 128) with checksum.
/// (The kernel fills in the ICMPv6 checksum, which needs the pseudo-header.)
fn echo_request(v6: bool, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + payload.len());
    p.push(if v6 { 128 } else { 8 });
    p.push(0);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(payload);
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// An IPv4 header with DF set; the kernel fills in id, source and checksum.
fn ipv4_header(dst: std::net::Ipv4Addr, ttl: u8, payload_len: usize) -> Vec<u8> {
    let total = u16::try_from(20 + payload_len).unwrap_or(u16::MAX);
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0x40, 0x00, ttl, 1, 0, 0, 0, 0, 0, 0]);
    h.extend_from_slice(&dst.octets());
    h
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from_be_bytes([chunk[0], 0])
        };
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_checksum_verifies() {
        let p = echo_request(false, 0x1234, 7, PAYLOAD);
        assert_eq!(checksum(&p), 0);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
    }

    #[test]
    fn reply_matching() {
        let mut r = echo_request(false, 5, 9, b"x");
        r[0] = 0;
        assert!(is_reply(&r, false, Kind::Raw, 5, 9));
        assert!(!is_reply(&r, false, Kind::Raw, 6, 9));
        assert!(is_reply(&r, false, Kind::Dgram, 6, 9));
        assert!(!is_reply(&r[..4], false, Kind::Raw, 5, 9));
    }
}
