//! One scrape: pick the collectors (`collect[]`), run them in parallel on
//! blocking threads under a deadline, add `node_scrape_collector_*`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_common::{MetricSet, MetricType};

use crate::collectors::{CollectError, Collector, ScrapeCtx};
use crate::roots::FsRoots;

/// Collectors picked for one scrape, by name.
pub type Selected = Vec<(&'static str, Arc<dyn Collector>)>;

/// The enabled collectors, built once at start.
pub struct Node {
    pub collectors: BTreeMap<&'static str, Arc<dyn Collector>>,
    /// Every known name (to tell "missing" from "disabled" in `collect[]`).
    pub known: Vec<&'static str>,
    pub roots: Arc<FsRoots>,
    /// `--collector.timeout`.
    pub timeout: Duration,
}

/// Why a `collect[]` filter is refused (node_exporter's wording).
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("couldn't create collector: missing collector: {0}")]
    Missing(String),
    #[error("couldn't create collector: disabled collector: {0}")]
    Disabled(String),
}

impl Node {
    /// The collectors named in `collect[]` (all enabled ones when empty).
    pub fn select(&self, wanted: &[&str]) -> Result<Selected, FilterError> {
        if wanted.is_empty() {
            return Ok(self
                .collectors
                .iter()
                .map(|(n, c)| (*n, Arc::clone(c)))
                .collect());
        }
        let mut out = Vec::new();
        for w in wanted {
            match self.collectors.get_key_value(*w) {
                Some((n, c)) => {
                    if !out.iter().any(|(m, _): &(&str, _)| m == n) {
                        out.push((*n, Arc::clone(c)));
                    }
                }
                None if self.known.contains(w) => {
                    return Err(FilterError::Disabled((*w).to_owned()))
                }
                None => return Err(FilterError::Missing((*w).to_owned())),
            }
        }
        Ok(out)
    }

    /// Runs the given collectors in parallel and merges their output. A
    /// collector still running at the deadline is reported as failed.
    pub async fn scrape(&self, selected: Selected, deadline: Instant) -> MetricSet {
        let ctx = ScrapeCtx {
            roots: Arc::clone(&self.roots),
            deadline,
        };
        let mut set = tokio::task::JoinSet::new();
        let mut pending: Vec<&'static str> = Vec::with_capacity(selected.len());
        for (name, c) in selected {
            let ctx = ctx.clone();
            pending.push(name);
            set.spawn_blocking(move || run_one(name, c.as_ref(), &ctx));
        }
        let mut out = MetricSet::new();
        let mut results: Vec<(&'static str, f64, bool)> = Vec::new();
        let tokio_deadline = tokio::time::Instant::from_std(deadline);
        loop {
            match tokio::time::timeout_at(tokio_deadline, set.join_next()).await {
                Ok(Some(Ok((name, elapsed, ok, metrics)))) => {
                    pending.retain(|n| *n != name);
                    results.push((name, elapsed, ok));
                    out.merge(metrics);
                }
                Ok(Some(Err(e))) => {
                    // A panicking collector must not take the scrape down.
                    tracing::error!(err = %e, "collector task failed");
                }
                Ok(None) => break,
                Err(_) => {
                    for name in pending.drain(..) {
                        tracing::error!(name, "collector timed out; reported as failed");
                        results.push((
                            name,
                            deadline
                                .saturating_duration_since(Instant::now())
                                .as_secs_f64(),
                            false,
                        ));
                    }
                    set.detach_all();
                    break;
                }
            }
        }
        // Panicked collectors left names in `pending` without a result.
        for name in pending {
            results.push((name, 0.0, false));
        }
        let dur = out.family(
            "node_scrape_collector_duration_seconds",
            "node_exporter: Duration of a collector scrape.",
            MetricType::Gauge,
        );
        for (name, elapsed, _) in &results {
            dur.add(&[("collector", name)], *elapsed);
        }
        let succ = out.family(
            "node_scrape_collector_success",
            "node_exporter: Whether a collector succeeded.",
            MetricType::Gauge,
        );
        for (name, _, ok) in &results {
            succ.add(&[("collector", name)], if *ok { 1.0 } else { 0.0 });
        }
        out
    }
}

fn run_one(
    name: &'static str,
    c: &dyn Collector,
    ctx: &ScrapeCtx,
) -> (&'static str, f64, bool, MetricSet) {
    let start = Instant::now();
    let mut metrics = MetricSet::new();
    let res = c.update(ctx, &mut metrics);
    let elapsed = start.elapsed().as_secs_f64();
    let ok = match res {
        Ok(()) => true,
        Err(CollectError::NoData) => {
            tracing::debug!(name, "collector returned no data");
            false
        }
        Err(e) => {
            tracing::error!(name, duration_seconds = elapsed, err = %e, "collector failed");
            false
        }
    };
    (name, elapsed, ok, metrics)
}
