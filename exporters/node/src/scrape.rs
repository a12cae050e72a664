//! One scrape: pick the collectors (`collect[]`), run them in parallel on
//! blocking threads under a deadline, add `node_scrape_collector_*`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
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
    /// Runs in progress per collector (a timed-out run keeps its thread).
    pub running: Arc<Running>,
}

/// How many runs of one collector may be in progress at once. A collector
/// stuck in the kernel keeps its blocking thread after the scrape gave up
/// on it; beyond this many, later scrapes report it failed at once instead
/// of piling up threads.
pub const MAX_RUNS_PER_COLLECTOR: usize = 2;

/// Counts of in-progress runs, by collector.
#[derive(Debug, Default)]
pub struct Running(Mutex<HashMap<&'static str, usize>>);

impl Running {
    /// Takes a run slot for `name`, or None when all are in use.
    pub fn acquire(self: &Arc<Self>, name: &'static str) -> Option<RunSlot> {
        let mut m = self.0.lock().ok()?;
        let n = m.entry(name).or_insert(0);
        if *n >= MAX_RUNS_PER_COLLECTOR {
            return None;
        }
        *n += 1;
        Some(RunSlot {
            running: Arc::clone(self),
            name,
        })
    }

    /// Runs of `name` in progress.
    pub fn count(&self, name: &str) -> usize {
        self.0
            .lock()
            .map(|m| m.get(name).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

/// Released when the collector's run ends, even after its scrape gave up.
pub struct RunSlot {
    running: Arc<Running>,
    name: &'static str,
}

impl Drop for RunSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.running.0.lock() {
            if let Some(n) = m.get_mut(self.name) {
                *n = n.saturating_sub(1);
            }
        }
    }
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
        let mut results: Vec<(&'static str, f64, bool)> = Vec::new();
        for (name, c) in selected {
            let Some(slot) = self.running.acquire(name) else {
                tracing::error!(
                    name,
                    "collector still running from earlier scrapes; reported as failed"
                );
                results.push((name, 0.0, false));
                continue;
            };
            let ctx = ctx.clone();
            pending.push(name);
            set.spawn_blocking(move || {
                let _slot = slot;
                run_one(name, c.as_ref(), &ctx)
            });
        }
        let mut out = MetricSet::new();
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
