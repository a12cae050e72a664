//! vigie-snmp-exporter: a drop-in replacement for node_exporter.
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use vigie_common::cli::{LogArgs, WebArgs};
use vigie_common::selfmetrics::BuildInfo;
use vigie_common::{Exporter, MetricSet, Reply, Request, ServeSpec};

/// Prometheus exporter for hardware and OS metrics exposed by *NIX kernels,
/// compatible with node_exporter.
#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    web: WebArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn spec() -> ServeSpec {
    ServeSpec {
        binary: "vigie-snmp-exporter",
        title: "SNMP Exporter",
        description: "Polls SNMP devices (Vigie, compatible with snmp_exporter).",
        build: BuildInfo::new("snmp_exporter", env!("CARGO_PKG_VERSION")),
        default_port: 9116,
        go_counterpart: "prometheus-snmp-exporter",
        links: vec![],
    }
}

struct Stub;

impl Exporter for Stub {
    async fn metrics(&self, _req: Request) -> Reply {
        Reply::Metrics(MetricSet::new())
    }
}

fn main() -> ExitCode {
    let spec = spec();
    let cli: Cli = vigie_common::cli::parse(&spec);
    cli.log.init();
    tracing::info!(version = spec.build.version, "Starting vigie-snmp-exporter");
    vigie_common::serve::run(spec, &cli.web, Arc::new(Stub))
}
