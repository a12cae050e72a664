//! vigie-jitsi-exporter: Jitsi Videobridge, Jicofo and Prosody metrics from
//! one exporter, with systemli's names for the videobridge.
//!
//! At each scrape the configured upstreams are fetched concurrently, each
//! within the scrape timeout; a failed upstream contributes only
//! `jitsi_up{upstream="..."} 0`.

pub mod config;
pub mod fetch;
pub mod jicofo;
pub mod json;
pub mod jvb;
pub mod prosody;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use vigie_common::config::ConfigCell;
use vigie_common::expo::{MetricSet, MetricType};
use vigie_common::{Exporter, Reply, Request};

use crate::config::Settings;
use crate::fetch::{Kind, Upstream};

/// Name of the per-upstream up gauge.
pub const UP_METRIC: &str = "jitsi_up";

/// Time kept back from Prometheus' scrape timeout header so the answer
/// arrives before Prometheus gives up.
const TIMEOUT_MARGIN: Duration = Duration::from_millis(250);

/// The exporter: its config (reloadable) and where it came from.
pub struct JitsiExporter {
    settings: ConfigCell<Settings>,
    /// Last state per upstream (0 unknown, 1 up, 2 down), so a failure is
    /// logged at warn when it starts and at debug while it lasts.
    last_state: [AtomicU8; 3],
    config_file: Option<PathBuf>,
    videobridge_url: Option<String>,
}

impl JitsiExporter {
    /// Loads the config (see [`config::load`]).
    pub fn new(
        config_file: Option<PathBuf>,
        videobridge_url: Option<String>,
    ) -> Result<Self, String> {
        let settings = config::load(config_file.as_deref(), videobridge_url.as_deref())
            .map_err(|e| e.to_string())?;
        Ok(JitsiExporter {
            settings: ConfigCell::new(settings),
            last_state: Default::default(),
            config_file,
            videobridge_url,
        })
    }

    /// The current settings.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.get()
    }

    /// One scrape of every upstream, bounded by `timeout`.
    pub async fn scrape(&self, timeout: Duration) -> MetricSet {
        let settings = self.settings.get();
        let deadline = Instant::now() + timeout;
        let by_kind = |k: Kind| settings.upstreams.iter().find(|u| u.kind == k).cloned();
        let (jvb, jicofo, prosody) = tokio::join!(
            scrape_opt(by_kind(Kind::Jvb), deadline),
            scrape_opt(by_kind(Kind::Jicofo), deadline),
            scrape_opt(by_kind(Kind::Prosody), deadline),
        );
        let mut out = MetricSet::new();
        let up_help = "1 when the upstream answered 200 with a document that parses, else 0.";
        for (kind, result) in [
            (Kind::Jvb, jvb),
            (Kind::Jicofo, jicofo),
            (Kind::Prosody, prosody),
        ] {
            let Some(result) = result else { continue };
            let state = &self.last_state[kind as usize];
            let up = match result {
                Ok(set) => {
                    merge_upstream(&mut out, set);
                    if state.swap(1, Ordering::Relaxed) == 2 {
                        tracing::info!(upstream = kind.name(), "upstream is back");
                    }
                    1.0
                }
                Err(e) => {
                    if state.swap(2, Ordering::Relaxed) == 2 {
                        tracing::debug!(upstream = kind.name(), err = %e, "scrape of upstream failed");
                    } else {
                        tracing::warn!(upstream = kind.name(), err = %e, "scrape of upstream failed");
                    }
                    0.0
                }
            };
            out.family(UP_METRIC, up_help, MetricType::Gauge)
                .add(&[("upstream", kind.name())], up);
        }
        out
    }
}

async fn scrape_opt(
    up: Option<Arc<Upstream>>,
    deadline: Instant,
) -> Option<Result<MetricSet, String>> {
    let up = up?;
    Some(scrape_one(&up, deadline).await)
}

/// Fetches and maps one upstream by `deadline`.
pub async fn scrape_one(up: &Upstream, deadline: Instant) -> Result<MetricSet, String> {
    let fetched = match tokio::time::timeout_at(deadline, up.fetch()).await {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => return Err(format!("{}: {e}", up.url)),
        Err(_) => return Err(format!("{}: timed out", up.url)),
    };
    let mut set = MetricSet::new();
    match up.kind {
        Kind::Jvb | Kind::Jicofo => {
            let doc = json::parse(&fetched.body).map_err(|e| format!("{}: {e}", up.url))?;
            if up.kind == Kind::Jvb {
                jvb::collect(&doc, &mut set)?;
            } else {
                jicofo::collect(&doc, &mut set)?;
            }
        }
        Kind::Prosody => {
            let text = String::from_utf8_lossy(&fetched.body);
            let openmetrics = fetched
                .content_type
                .starts_with("application/openmetrics-text");
            prosody::parse(&text, openmetrics, &mut set).map_err(|e| format!("{}: {e}", up.url))?;
        }
    }
    Ok(set)
}

/// Names the exporter owns; an upstream family of such a name is dropped.
fn reserved(name: &str) -> bool {
    name == UP_METRIC
        || name.starts_with("jitsi_exporter_")
        || name.starts_with("process_")
        || name.starts_with("promhttp_")
}

/// Moves an upstream's families into `out`, skipping reserved names and
/// families whose name already exists with another type.
fn merge_upstream(out: &mut MetricSet, mut set: MetricSet) {
    let names: Vec<String> = set.families().map(|f| f.name.clone()).collect();
    for name in names {
        let Some(fam) = set.remove(&name) else {
            continue;
        };
        if reserved(&name) {
            tracing::debug!(family = %name, "upstream family uses a reserved name, skipped");
            continue;
        }
        if out.get(&name).is_some_and(|f| f.kind != fam.kind) {
            tracing::debug!(family = %name, "family exists with another type, skipped");
            continue;
        }
        out.insert(fam);
    }
}

impl Exporter for JitsiExporter {
    async fn metrics(&self, req: Request) -> Reply {
        let mut timeout = self.settings.get().timeout;
        if let Some(t) = req.scrape_timeout() {
            let header = Duration::from_secs_f64(t.min(3600.0)).saturating_sub(TIMEOUT_MARGIN);
            if !header.is_zero() {
                timeout = timeout.min(header);
            }
        }
        Reply::Metrics(self.scrape(timeout).await)
    }

    fn reload(&self) -> Result<(), String> {
        if self.config_file.is_none() {
            return Ok(());
        }
        let s = config::load(self.config_file.as_deref(), self.videobridge_url.as_deref())
            .map_err(|e| e.to_string())?;
        tracing::info!(upstreams = s.upstreams.len(), "Loaded config file");
        self.settings.set(s);
        Ok(())
    }

    fn has_config(&self) -> bool {
        self.config_file.is_some()
    }

    fn landing_html(&self) -> String {
        let s = self.settings.get();
        let mut html = String::from("<h2>Upstreams</h2><ul>");
        for u in &s.upstreams {
            html.push_str(&format!(
                "<li>{}: {}</li>",
                u.kind.name(),
                vigie_common::serve::html_escape(&u.url.to_string())
            ));
        }
        html.push_str("</ul>");
        html
    }
}
