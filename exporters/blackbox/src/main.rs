//! vigie-blackbox-exporter: a drop-in replacement for blackbox_exporter.
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use vigie_blackbox::allow::AllowList;
use vigie_blackbox::config::{ByteSize, Config};
use vigie_blackbox::exporter::{Blackbox, Options};
use vigie_common::cli::{LogArgs, WebArgs};
use vigie_common::selfmetrics::BuildInfo;
use vigie_common::ServeSpec;

/// Probes endpoints over HTTP(S), TCP, ICMP, DNS and gRPC, compatible with
/// blackbox_exporter (/probe?target=...&module=...).
#[derive(Debug, Parser)]
struct Cli {
    /// Blackbox exporter configuration file.
    #[arg(
        id = "config.file",
        long = "config.file",
        value_name = "FILE",
        default_value = "blackbox.yml"
    )]
    config_file: PathBuf,

    /// Offset to subtract from timeout in seconds.
    #[arg(
        id = "timeout-offset",
        long = "timeout-offset",
        value_name = "SECONDS",
        default_value_t = 0.5
    )]
    timeout_offset: f64,

    /// If true validate the config file and then exit.
    #[arg(id = "config.check", long = "config.check")]
    config_check: bool,

    /// The maximum amount of items to keep in the history.
    #[arg(
        id = "history.limit",
        long = "history.limit",
        value_name = "N",
        default_value_t = 100
    )]
    history_limit: usize,

    /// Only probe targets matching one of these (CIDR, IP or host name glob
    /// such as "*.example.com"); others get 403 and are not contacted.
    /// Repeatable. Default: any target.
    #[arg(id = "probe.allow-target", long = "probe.allow-target", value_name = "CIDR|GLOB", action = clap::ArgAction::Append)]
    allow_target: Vec<String>,

    /// Largest response body read by the http prober when the module sets no
    /// body_size_limit (e.g. 10MB; 0 = no limit, the body is counted, not kept).
    #[arg(
        id = "probe.body-size-limit",
        long = "probe.body-size-limit",
        value_name = "SIZE",
        default_value = "0"
    )]
    body_size_limit: String,

    /// Accepted for compatibility; links are relative (not used).
    #[arg(
        id = "web.external-url",
        long = "web.external-url",
        value_name = "URL",
        hide = true
    )]
    external_url: Option<String>,

    /// Accepted for compatibility; only "/" is supported.
    #[arg(
        id = "web.route-prefix",
        long = "web.route-prefix",
        value_name = "PATH",
        hide = true
    )]
    route_prefix: Option<String>,

    #[command(flatten)]
    web: WebArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn spec() -> ServeSpec {
    ServeSpec {
        binary: "vigie-blackbox-exporter",
        title: "Blackbox Exporter",
        description: "Probes endpoints over HTTP, HTTPS, TCP, ICMP, DNS and gRPC (Vigie, compatible with blackbox_exporter).",
        build: BuildInfo::new("blackbox_exporter", env!("CARGO_PKG_VERSION")),
        default_port: 9115,
        go_counterpart: "prometheus-blackbox-exporter",
        links: vec![("config", "Configuration")],
    }
}

fn main() -> ExitCode {
    let spec = spec();
    let cli: Cli = vigie_common::cli::parse(&spec);
    cli.log.init();
    tracing::info!(
        version = spec.build.version,
        "Starting vigie-blackbox-exporter"
    );
    let config = match Config::load(&cli.config_file) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(err = %e, "Error loading config");
            return ExitCode::from(1);
        }
    };
    if cli.config_check {
        if let Some(w) = &cli.web.config_file {
            if let Err(e) = vigie_common::webconfig::WebConfig::load(w) {
                tracing::error!(err = %e, "Error loading web config");
                return ExitCode::from(1);
            }
        }
        tracing::info!("Config file is ok exiting...");
        return ExitCode::SUCCESS;
    }
    tracing::info!("Loaded config file");
    vigie_blackbox::tlsutil::preload_roots();
    let allow = match AllowList::parse(&cli.allow_target) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(err = %e, "Invalid --probe.allow-target");
            return ExitCode::from(1);
        }
    };
    let body_limit = match ByteSize::parse(&cli.body_size_limit) {
        Ok(b) => b.0,
        Err(e) => {
            tracing::error!(err = %e, "Invalid --probe.body-size-limit");
            return ExitCode::from(1);
        }
    };
    if !cli.timeout_offset.is_finite() || cli.timeout_offset < 0.0 {
        tracing::error!("--timeout-offset must be a non-negative number");
        return ExitCode::from(1);
    }
    if cli.route_prefix.as_deref().is_some_and(|p| p != "/") || cli.external_url.is_some() {
        tracing::warn!(
            "--web.external-url and --web.route-prefix are accepted but not used: routes stay at /"
        );
    }
    let opts = Options {
        config_file: cli.config_file.clone(),
        timeout_offset: cli.timeout_offset,
        history_limit: cli.history_limit,
        allow,
        default_body_limit: body_limit,
    };
    vigie_common::serve::run(spec, &cli.web, Arc::new(Blackbox::new(opts, config)))
}
