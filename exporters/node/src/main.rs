//! vigie-node-exporter: a drop-in replacement for node_exporter.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Arg, ArgAction, ArgMatches, Parser};
use vigie_common::cli::{LogArgs, WebArgs};
use vigie_common::selfmetrics::BuildInfo;
use vigie_common::{Exporter, Reply, Request, ServeSpec};
use vigie_node_exporter::collectors::{registry, BuildCtx, Spec};
use vigie_node_exporter::roots::FsRoots;
use vigie_node_exporter::scrape::Node;

/// Prometheus exporter for hardware and OS metrics exposed by the Linux
/// kernel, compatible with node_exporter 1.5 (same metrics, flags and
/// defaults). Each collector is switched with --collector.<name> /
/// --no-collector.<name>.
#[derive(Debug, Parser)]
struct Cli {
    /// procfs mountpoint.
    #[arg(long = "path.procfs", default_value = "/proc", value_name = "PATH")]
    procfs: PathBuf,
    /// sysfs mountpoint.
    #[arg(long = "path.sysfs", default_value = "/sys", value_name = "PATH")]
    sysfs: PathBuf,
    /// rootfs mountpoint.
    #[arg(long = "path.rootfs", default_value = "/", value_name = "PATH")]
    rootfs: PathBuf,
    /// udev data path.
    #[arg(
        long = "path.udev.data",
        default_value = "/run/udev/data",
        value_name = "PATH"
    )]
    udev_data: PathBuf,
    /// Set all collectors to disabled by default; enable them one by one with --collector.<name>.
    #[arg(long = "collector.disable-defaults")]
    disable_defaults: bool,
    /// Longest a scrape waits for its collectors; a collector not done by
    /// then is reported with node_scrape_collector_success 0. The
    /// X-Prometheus-Scrape-Timeout-Seconds header (minus 0.5 s) lowers it.
    #[arg(long = "collector.timeout", default_value = "9s", value_parser = parse_duration, value_name = "DURATION")]
    collector_timeout: Duration,
    #[command(flatten)]
    web: WebArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    vigie_common::config::PromDuration::parse(s).map(|d| d.0)
}

fn spec() -> ServeSpec {
    ServeSpec {
        binary: "vigie-node-exporter",
        title: "Node Exporter",
        description: "Prometheus exporter for hardware and OS metrics (Vigie, compatible with node_exporter).",
        build: BuildInfo::new("node_exporter", env!("CARGO_PKG_VERSION")),
        default_port: 9100,
        go_counterpart: "prometheus-node-exporter",
        links: vec![],
    }
}

/// Adds `--collector.<name>` / `--no-collector.<name>` and each collector's
/// option flags.
fn collector_args(mut cmd: clap::Command, specs: &[Spec]) -> clap::Command {
    cmd = cmd.next_help_heading("Collectors");
    for s in specs {
        let on = format!("collector.{}", s.name);
        let off = format!("no-collector.{}", s.name);
        let state = if s.default_enabled {
            "enabled"
        } else {
            "disabled"
        };
        cmd = cmd
            .arg(
                Arg::new(on.clone())
                    .long(on.clone())
                    .action(ArgAction::SetTrue)
                    .overrides_with(off.clone())
                    .help(format!(
                        "Enable the {} collector (default: {state}; --no-{on} disables).",
                        s.name
                    )),
            )
            .arg(
                Arg::new(off.clone())
                    .long(off.clone())
                    .action(ArgAction::SetTrue)
                    .overrides_with(on)
                    .hide(true),
            );
        for a in (s.args)() {
            cmd = cmd.arg(a);
        }
    }
    cmd
}

fn enabled(spec: &Spec, m: &ArgMatches, disable_defaults: bool) -> bool {
    if m.get_flag(&format!("collector.{}", spec.name)) {
        return true;
    }
    if m.get_flag(&format!("no-collector.{}", spec.name)) {
        return false;
    }
    spec.default_enabled && !disable_defaults
}

struct NodeExporter {
    node: Node,
}

impl Exporter for NodeExporter {
    async fn metrics(&self, req: Request) -> Reply {
        let wanted: Vec<&str> = req.params("collect[]").collect();
        let selected = match self.node.select(&wanted) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(err = %e, "Couldn't create filtered metrics handler:");
                return Reply::bad_request(format!(
                    "Couldn't create filtered metrics handler: {e}"
                ));
            }
        };
        let mut timeout = self.node.timeout;
        if let Some(t) = req.scrape_timeout() {
            let t = Duration::from_secs_f64((t - 0.5).max(0.1));
            timeout = timeout.min(t);
        }
        Reply::Metrics(self.node.scrape(selected, Instant::now() + timeout).await)
    }

    fn is_limited(&self, _path: &str) -> bool {
        false
    }
}

/// One malloc arena for all threads, and big buffers (the encoded scrape)
/// from mmap and returned on free: a scrape's memory is short-lived, and
/// per-thread arenas only raise the resident high-water mark.
#[allow(unsafe_code)]
fn tune_malloc() {
    // SAFETY: mallopt only sets allocator parameters; called before any
    // thread exists. M_ARENA_MAX = -8, M_MMAP_THRESHOLD = -3 (malloc.h).
    unsafe {
        libc::mallopt(-8, 1);
        libc::mallopt(-3, 64 * 1024);
    }
}

fn main() -> ExitCode {
    tune_malloc();
    let spec = spec();
    let specs = registry();
    let (cli, matches): (Cli, ArgMatches) =
        vigie_common::cli::parse_augmented(&spec, std::env::args_os(), |cmd| {
            collector_args(cmd, &specs)
        });
    cli.log.init();
    tracing::info!(version = spec.build.version, "Starting vigie-node-exporter");
    if vigie_common::sys::euid() == 0 {
        tracing::warn!("Node Exporter is running as root user. This exporter is designed to run as unprivileged user, root is not required.");
    }
    let roots = Arc::new(FsRoots {
        procfs: cli.procfs.clone(),
        sysfs: cli.sysfs.clone(),
        rootfs: cli.rootfs.clone(),
        udev_data: cli.udev_data.clone(),
    });
    let ctx = BuildCtx {
        roots: Arc::clone(&roots),
        matches: &matches,
    };
    let mut collectors = BTreeMap::new();
    for s in &specs {
        if !enabled(s, &matches, cli.disable_defaults) {
            continue;
        }
        match (s.build)(&ctx) {
            Ok(c) => {
                collectors.insert(s.name, Arc::from(c));
            }
            Err(e) => {
                eprintln!("vigie-node-exporter: collector {}: {e}", s.name);
                tracing::error!(collector = s.name, err = %e, "cannot create collector");
                return ExitCode::FAILURE;
            }
        }
    }
    tracing::info!("Enabled collectors");
    for name in collectors.keys() {
        tracing::info!(collector = *name, "");
    }
    let node = Node {
        collectors,
        known: specs.iter().map(|s| s.name).collect(),
        roots,
        timeout: cli.collector_timeout,
        running: Default::default(),
        pool: Default::default(),
    };
    vigie_common::serve::run(spec, &cli.web, Arc::new(NodeExporter { node }))
}
