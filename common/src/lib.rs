//! vigie-common: what every Vigie exporter shares.
//!
//! - [`serve`]: the HTTP server (listeners, TLS, auth, endpoints, reload, shutdown);
//! - [`webconfig`]: the exporter-toolkit `--web.config.file` format;
//! - [`expo`]: metric sets and their text/OpenMetrics encoders;
//! - [`config`]: strict, bounded YAML config loading;
//! - [`cli`]: the shared `--web.*` and `--log.*` flags;
//! - [`log`]: logfmt/json logging;
//! - [`selfmetrics`]: build info and `process_*`.

pub mod cli;
pub mod config;
pub mod expo;
pub mod log;
pub mod selfmetrics;
pub mod serve;
pub mod sys;
pub mod timefmt;
pub mod webconfig;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use expo::{Family, MetricSet, MetricType};
pub use serve::{Exporter, Reply, Request, ServeSpec};
