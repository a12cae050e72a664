//! vigie-blackbox-exporter: probes endpoints over HTTP(S), TCP, ICMP, DNS
//! and gRPC, compatible with blackbox_exporter 0.23.

pub mod allow;
pub mod config;
pub mod exporter;
pub mod oauth2;
pub mod probe;
pub mod probers;
pub mod resolve;
pub mod tlsutil;
