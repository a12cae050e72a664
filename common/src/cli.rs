//! Command-line flags every exporter shares, spelled as the Go exporters
//! spell them (`--web.listen-address`, `--log.level`, ...).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::ArgAction;

use crate::log::{LogFormat, LogLevel};
use crate::serve::ServeSpec;

/// `--web.*` flags.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Web server")]
pub struct WebArgs {
    /// Address on which to expose metrics and web interface. Repeatable to
    /// listen on several addresses (e.g. ":9100" for all addresses,
    /// "127.0.0.1:9100", "[::1]:9100").
    #[arg(id = "web.listen-address", long = "web.listen-address", value_name = "ADDRESS", action = ArgAction::Append)]
    pub listen_address: Vec<String>,

    /// Path to a configuration file that can enable TLS or authentication
    /// (the exporter-toolkit web config format). Re-read when it changes.
    #[arg(id = "web.config.file", long = "web.config.file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,

    /// Path under which to expose metrics.
    #[arg(
        id = "web.telemetry-path",
        long = "web.telemetry-path",
        value_name = "PATH",
        default_value = "/metrics"
    )]
    pub telemetry_path: String,

    /// Maximum number of parallel scrape requests; excess requests get 503 at
    /// once. 0 disables the limit.
    #[arg(
        id = "web.max-requests",
        long = "web.max-requests",
        value_name = "N",
        default_value_t = 40
    )]
    pub max_requests: usize,

    /// Answer in OpenMetrics 1.0 when the client's Accept header prefers it.
    /// Off by default, as in the Go exporters: Prometheus then gets the text
    /// format 0.0.4 and counter names stay as they are.
    #[arg(id = "web.enable-openmetrics", long = "web.enable-openmetrics")]
    pub enable_openmetrics: bool,

    /// Exclude metrics about the exporter itself (process_*, *_build_info,
    /// promhttp_*).
    #[arg(
        id = "web.disable-exporter-metrics",
        long = "web.disable-exporter-metrics"
    )]
    pub disable_exporter_metrics: bool,

    /// Use systemd socket activation listeners instead of port listeners
    /// (Linux only); --web.listen-address is then ignored.
    #[arg(id = "web.systemd-socket", long = "web.systemd-socket")]
    pub systemd_socket: bool,
}

/// `--log.*` flags.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Logging")]
pub struct LogArgs {
    /// Only log messages with the given severity or above.
    #[arg(
        id = "log.level",
        long = "log.level",
        value_enum,
        default_value = "info"
    )]
    pub level: LogLevel,

    /// Output format of log messages.
    #[arg(
        id = "log.format",
        long = "log.format",
        value_enum,
        default_value = "logfmt"
    )]
    pub format: LogFormat,
}

impl LogArgs {
    pub fn init(&self) {
        crate::log::init(self.level, self.format);
    }
}

/// Parses the process's command line for an exporter whose `C` flattens
/// [`WebArgs`] and [`LogArgs`], filling in its default port and version.
/// Exits with a message on `--help`, `--version` or bad flags.
pub fn parse<C: clap::Parser>(spec: &ServeSpec) -> C {
    parse_from(spec, std::env::args_os())
}

/// As [`parse`], from the given arguments (the first is the program name).
pub fn parse_from<C, I, T>(spec: &ServeSpec, args: I) -> C
where
    C: clap::Parser,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    parse_augmented(spec, args, |cmd| cmd).0
}

/// As [`parse_from`], letting the caller add arguments built at run time
/// (e.g. one `--collector.<name>` flag per collector); returns the matches too.
pub fn parse_augmented<C, I, T>(
    spec: &ServeSpec,
    args: I,
    augment: impl FnOnce(clap::Command) -> clap::Command,
) -> (C, clap::ArgMatches)
where
    C: clap::Parser,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let version = spec.build.version_text(spec.binary);
    // clap prints "<name> <long_version>"; drop our leading binary name.
    let long = version
        .strip_prefix(spec.binary)
        .map(|s| s.trim_start_matches(", ").to_owned())
        .unwrap_or(version.clone());
    let cmd = C::command()
        .name(spec.binary)
        .version(spec.build.version)
        .long_version(long)
        .mut_arg("web.listen-address", |a| {
            a.default_value(format!(":{}", spec.default_port))
        });
    let matches = augment(cmd).get_matches_from(args);
    let parsed = C::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    (parsed, matches)
}
