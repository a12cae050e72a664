//! One file per prober.

use tokio::time::Instant;

use crate::config::Module;
use crate::exporter::ProbeParams;
use crate::probe::Probe;

pub mod dns;
pub mod grpc;
pub mod http;
pub mod icmp;
pub mod tcp;

/// Runs the module's prober; the caller enforces `deadline` as well.
pub async fn run(
    probe: &mut Probe,
    module: &Module,
    params: &ProbeParams,
    deadline: Instant,
) -> bool {
    // Boxed: an in-flight probe then holds only its own prober's state, not
    // the largest of the five.
    match module.prober.as_str() {
        "http" => Box::pin(http::probe(probe, &module.http, params, deadline)).await,
        "tcp" => Box::pin(tcp::probe(probe, &module.tcp, deadline)).await,
        "icmp" => Box::pin(icmp::probe(probe, &module.icmp, deadline)).await,
        "dns" => Box::pin(dns::probe(probe, &module.dns, deadline)).await,
        "grpc" => {
            let cfg = module.grpc.clone().unwrap_or_default();
            Box::pin(grpc::probe(probe, &cfg, deadline)).await
        }
        other => probe.fail("config", format!("unknown prober {other}")),
    }
}

/// An io error as Go words it (`connect: connection refused`).
pub fn go_io_err(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connect: connection refused".to_owned(),
        K::ConnectionReset => "read: connection reset by peer".to_owned(),
        K::TimedOut => "i/o timeout".to_owned(),
        K::UnexpectedEof => "EOF".to_owned(),
        K::AddrNotAvailable => "bind: cannot assign requested address".to_owned(),
        _ => {
            let s = e.to_string();
            let s = match s.find(" (os error") {
                Some(i) => s[..i].to_owned(),
                None => s,
            };
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
                None => s,
            }
        }
    }
}

/// Dials TCP, binding `source` first when given.
pub async fn dial(
    ip: std::net::IpAddr,
    port: u16,
    source: Option<&str>,
) -> Result<tokio::net::TcpStream, String> {
    let addr = std::net::SocketAddr::new(ip, port);
    let sock = if ip.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(|e| format!("dial tcp {addr}: {}", go_io_err(&e)))?;
    if let Some(src) = source.filter(|s| !s.is_empty()) {
        let sip: std::net::IpAddr = src
            .parse()
            .map_err(|_| format!("invalid source_ip_address {src:?}"))?;
        sock.bind(std::net::SocketAddr::new(sip, 0))
            .map_err(|e| format!("dial tcp {addr}: {}", go_io_err(&e)))?;
    }
    let s = sock
        .connect(addr)
        .await
        .map_err(|e| format!("dial tcp {addr}: {}", go_io_err(&e)))?;
    let _ = s.set_nodelay(true);
    Ok(s)
}
