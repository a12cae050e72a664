//! vigie-snmp-exporter: a drop-in replacement for snmp_exporter.
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use vigie_common::cli::{LogArgs, WebArgs};
use vigie_common::selfmetrics::BuildInfo;
use vigie_common::ServeSpec;
use vigie_snmp_exporter::{config, Options, SnmpExporter};

/// Prometheus exporter for SNMP devices, compatible with snmp_exporter
/// (snmp.yml of 0.21 and of 0.23+), with a pfSense module.
#[derive(Debug, Parser)]
struct Cli {
    /// Path to configuration file. May be repeated, and may be a glob
    /// pattern (`snmp.d/*.yml`); modules and auths of all files are merged.
    #[arg(
        id = "config.file",
        long = "config.file",
        value_name = "FILE",
        default_value = "snmp.yml",
        action = clap::ArgAction::Append
    )]
    config_file: Vec<PathBuf>,

    /// Only verify the configuration (and the web config) and exit.
    #[arg(id = "config.check", long = "config.check", alias = "dry-run")]
    config_check: bool,

    /// Wrap 64-bit counters to avoid floating point rounding (default on).
    #[arg(
        id = "snmp.wrap-large-counters",
        long = "snmp.wrap-large-counters",
        overrides_with = "no-snmp.wrap-large-counters"
    )]
    wrap: bool,

    /// Do not wrap 64-bit counters at 2^53.
    #[arg(
        id = "no-snmp.wrap-large-counters",
        long = "no-snmp.wrap-large-counters"
    )]
    no_wrap: bool,

    /// Vigie addition: when a module or subtree fails, return what was
    /// collected plus snmp_scrape_module_success{module} and
    /// snmp_scrape_module_error_info{module,reason}, instead of HTTP 500.
    #[arg(id = "snmp.partial-results", long = "snmp.partial-results")]
    partial: bool,

    /// Vigie addition: SNMP requests in flight at once, over all scrapes.
    #[arg(
        id = "snmp.max-concurrent-requests",
        long = "snmp.max-concurrent-requests",
        default_value_t = 256
    )]
    max_concurrent: usize,

    /// Vigie addition: subtrees of one module walked at the same time, each
    /// on its own socket (SNMPv1/v2c; v3 stays sequential). Same samples and
    /// packet counts; the agent sees up to N requests in flight.
    #[arg(
        id = "snmp.walk-concurrency",
        long = "snmp.walk-concurrency",
        default_value_t = 1
    )]
    walk_concurrency: usize,

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
        links: vec![("/config", "Config")],
    }
}

fn main() -> ExitCode {
    let spec = spec();
    let cli: Cli = vigie_common::cli::parse(&spec);
    cli.log.init();
    tracing::info!(version = spec.build.version, "Starting vigie-snmp-exporter");
    let cfg = match config::load_configs(&cli.config_file) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(err = %e, "Error parsing config file");
            eprintln!("vigie-snmp-exporter: error parsing config file: {e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.config_check {
        if let Some(w) = &cli.web.config_file {
            if let Err(e) = vigie_common::webconfig::WebConfig::load(w) {
                eprintln!("vigie-snmp-exporter: {e}");
                return ExitCode::FAILURE;
            }
        }
        println!(
            "Configuration parsed successfully ({} modules)",
            cfg.modules.len()
        );
        return ExitCode::SUCCESS;
    }
    let opts = Options {
        wrap_counters: !cli.no_wrap,
        partial_results: cli.partial,
        max_concurrent_requests: cli.max_concurrent,
        walk_concurrency: cli.walk_concurrency.max(1),
    };
    let files: Vec<String> = cli
        .config_file
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    tracing::info!(modules = cfg.modules.len(), file = %files.join(","), "Loaded config file");
    let exp = SnmpExporter::new(cli.config_file.clone(), cfg, opts);
    vigie_common::serve::run(spec, &cli.web, Arc::new(exp))
}
