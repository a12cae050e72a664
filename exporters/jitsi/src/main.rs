//! vigie-jitsi-exporter: Jitsi Videobridge, Jicofo and Prosody metrics,
//! a drop-in replacement for systemli's prometheus-jitsi-meet-exporter.
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser};
use vigie_common::cli::{LogArgs, WebArgs};
use vigie_common::selfmetrics::BuildInfo;
use vigie_common::ServeSpec;
use vigie_jitsi_exporter::JitsiExporter;

/// Prometheus exporter for Jitsi Meet: the videobridge's /colibri/stats
/// (with systemli's metric names), Jicofo's /stats and Prosody's /metrics.
#[derive(Debug, Parser)]
struct Cli {
    /// Jitsi exporter configuration file (timeout, jvb, jicofo, prosody).
    /// Without it only the videobridge is scraped, as systemli's exporter does.
    #[arg(id = "config.file", long = "config.file", value_name = "FILE")]
    config_file: Option<PathBuf>,

    /// Validate the configuration files (this and --web.config.file), then exit.
    #[arg(id = "config.check", long = "config.check")]
    config_check: bool,

    /// Jitsi Videobridge /colibri/stats URL (systemli's flag; also accepted
    /// as -videobridge-url). Overrides jvb.url of the config file.
    #[arg(id = "videobridge-url", long = "videobridge-url", value_name = "URL")]
    videobridge_url: Option<String>,

    #[command(flatten)]
    web: WebArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn spec() -> ServeSpec {
    ServeSpec {
        binary: "vigie-jitsi-exporter",
        title: "Jitsi Exporter",
        description: "Exports Jitsi Videobridge, Jicofo and Prosody metrics (Vigie).",
        build: BuildInfo::new("jitsi_exporter", env!("CARGO_PKG_VERSION")),
        default_port: 9888,
        go_counterpart: "prometheus-jitsi-meet-exporter",
        links: vec![],
    }
}

/// Go's `flag` package takes `-name` as well as `--name`: systemli's unit
/// files say `-videobridge-url ...` and `-web.listen-address ...`. Rewrites
/// a single-dash form of any of our long flags to the double-dash form.
fn go_style_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let cmd = Cli::command();
    let longs: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .chain(["help".to_owned(), "version".to_owned()])
        .collect();
    let mut out = Vec::new();
    let mut rest_are_values = false;
    for (i, arg) in args.into_iter().enumerate() {
        let rewritten = match arg.to_str() {
            _ if i == 0 || rest_are_values => None,
            Some("--") => {
                rest_are_values = true;
                None
            }
            Some(s) if s.starts_with('-') && !s.starts_with("--") && s.len() > 2 => {
                let name = s[1..].split('=').next().unwrap_or("");
                longs
                    .iter()
                    .any(|l| l == name)
                    .then(|| OsString::from(format!("-{s}")))
            }
            _ => None,
        };
        out.push(rewritten.unwrap_or(arg));
    }
    out
}

fn main() -> ExitCode {
    let spec = spec();
    let cli: Cli = vigie_common::cli::parse_from(&spec, go_style_args(std::env::args_os()));
    cli.log.init();
    if cli.config_check {
        return check(&cli);
    }
    tracing::info!(
        version = spec.build.version,
        "Starting vigie-jitsi-exporter"
    );
    let exporter = match JitsiExporter::new(cli.config_file.clone(), cli.videobridge_url.clone()) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(err = %e, "Error loading config");
            eprintln!("{}: {e}", spec.binary);
            return ExitCode::FAILURE;
        }
    };
    for u in &exporter.settings().upstreams {
        tracing::info!(upstream = u.kind.name(), url = %u.url, "Scraping upstream");
    }
    vigie_common::serve::run(spec, &cli.web, Arc::new(exporter))
}

/// `--config.check`: loads every config file, prints the verdict, exits 0 or 1.
fn check(cli: &Cli) -> ExitCode {
    let mut ok = true;
    match vigie_jitsi_exporter::config::load(
        cli.config_file.as_deref(),
        cli.videobridge_url.as_deref(),
    ) {
        Ok(s) => {
            let what = cli
                .config_file
                .as_ref()
                .map_or_else(|| "command line".to_owned(), |p| p.display().to_string());
            println!(
                "{what}: OK ({} upstreams, timeout {:?})",
                s.upstreams.len(),
                s.timeout
            );
        }
        Err(e) => {
            eprintln!("{e}");
            ok = false;
        }
    }
    if let Some(web) = &cli.web.config_file {
        match vigie_common::webconfig::WebConfig::load(web) {
            Ok(_) => println!("{}: OK", web.display()),
            Err(e) => {
                eprintln!("{e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(args: &[&str]) -> Vec<String> {
        go_style_args(args.iter().map(OsString::from))
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn single_dash_long_flags_are_rewritten() {
        assert_eq!(
            rewrite(&[
                "x",
                "-videobridge-url",
                "http://a/",
                "-web.listen-address=:1",
                "-h",
                "--config.file=f"
            ]),
            [
                "x",
                "--videobridge-url",
                "http://a/",
                "--web.listen-address=:1",
                "-h",
                "--config.file=f"
            ]
        );
        assert_eq!(rewrite(&["x", "-unknown-flag"]), ["x", "-unknown-flag"]);
        assert_eq!(
            rewrite(&["x", "--", "-videobridge-url"]),
            ["x", "--", "-videobridge-url"]
        );
    }

    #[test]
    fn cli_parses() {
        Cli::command().debug_assert();
    }
}
