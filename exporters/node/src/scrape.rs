//! One scrape: pick the collectors (`collect[]`), run them in parallel on
//! blocking threads under a deadline, add `node_scrape_collector_*`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
    /// The threads collectors run on.
    pub pool: Pool,
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
        let mut results: Vec<(&'static str, f64, bool)> = Vec::new();
        let mut jobs = Vec::with_capacity(selected.len());
        for (name, c) in selected {
            let Some(slot) = self.running.acquire(name) else {
                tracing::error!(
                    name,
                    "collector still running from earlier scrapes; reported as failed"
                );
                results.push((name, 0.0, false));
                continue;
            };
            jobs.push(Job {
                name,
                collector: c,
                slot: Mutex::new(Some(slot)),
                finished: AtomicBool::new(false),
            });
        }
        let mut out = MetricSet::new();
        if !jobs.is_empty() {
            let batch = Arc::new(Batch {
                remaining: AtomicUsize::new(jobs.len()),
                jobs,
                ctx,
                next: AtomicUsize::new(0),
                cancelled: AtomicBool::new(false),
                results: Mutex::new(Vec::new()),
                done: tokio::sync::Notify::new(),
            });
            self.pool.submit(&batch);
            let tokio_deadline = tokio::time::Instant::from_std(deadline);
            let mut timed_out = false;
            // Helpers come early enough to finish before a short deadline.
            let help_after = HELP_AFTER.min(deadline.saturating_duration_since(Instant::now()) / 4);
            loop {
                let until = (tokio::time::Instant::now() + help_after).min(tokio_deadline);
                match tokio::time::timeout_at(until, batch.done.notified()).await {
                    Ok(()) => break,
                    Err(_) if until >= tokio_deadline => {
                        timed_out = true;
                        break;
                    }
                    Err(_) => {
                        // Slow collectors hold the workers and others wait:
                        // add a helper (it retires after this batch).
                        if batch.next.load(Ordering::SeqCst) < batch.jobs.len() {
                            self.pool.help(&batch);
                        }
                    }
                }
            }
            if timed_out {
                batch.cancelled.store(true, Ordering::SeqCst);
            }
            let outcomes = batch
                .results
                .lock()
                .map(|mut r| std::mem::take(&mut *r))
                .unwrap_or_default();
            for (name, elapsed, ok, metrics) in outcomes {
                results.push((name, elapsed, ok));
                out.merge(metrics);
            }
            if timed_out {
                let claimed = batch.next.load(Ordering::SeqCst);
                for (i, job) in batch.jobs.iter().enumerate() {
                    if job.finished.load(Ordering::SeqCst) {
                        continue;
                    }
                    if i < claimed {
                        // Its worker is stuck in the collector: replace it.
                        self.pool.replace_stuck();
                    } else if let Ok(mut slot) = job.slot.lock() {
                        // Never started: release its run slot now.
                        slot.take();
                    }
                    tracing::error!(name = job.name, "collector timed out; reported as failed");
                    results.push((job.name, 0.0, false));
                }
            }
        }
        let pending: Vec<&'static str> = Vec::new();
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

type Outcome = (&'static str, f64, bool, MetricSet);

/// One collector of a batch.
struct Job {
    name: &'static str,
    collector: Arc<dyn Collector>,
    /// Released when the run ends (or at once if it never starts).
    slot: Mutex<Option<RunSlot>>,
    finished: AtomicBool,
}

/// The collectors of one scrape. Workers claim jobs with one atomic
/// increment; the scrape is woken once, when the last job is done.
struct Batch {
    jobs: Vec<Job>,
    ctx: ScrapeCtx,
    next: AtomicUsize,
    remaining: AtomicUsize,
    cancelled: AtomicBool,
    results: Mutex<Vec<Outcome>>,
    done: tokio::sync::Notify,
}

impl Batch {
    /// Runs jobs until none is left (or the scrape gave up).
    fn work(&self) {
        loop {
            if self.cancelled.load(Ordering::SeqCst) {
                return;
            }
            let i = self.next.fetch_add(1, Ordering::SeqCst);
            let Some(job) = self.jobs.get(i) else {
                return;
            };
            let name = job.name;
            let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_one(name, job.collector.as_ref(), &self.ctx)
            }));
            if let Ok(mut slot) = job.slot.lock() {
                slot.take();
            }
            let outcome = res.unwrap_or_else(|_| {
                // A panicking collector must not take the scrape down.
                tracing::error!(name, "collector panicked; reported as failed");
                (name, 0.0, false, MetricSet::new())
            });
            if let Ok(mut r) = self.results.lock() {
                r.push(outcome);
            }
            job.finished.store(true, Ordering::SeqCst);
            if self.remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
                self.done.notify_one();
            }
        }
    }
}

/// A small set of threads running collectors (instead of one
/// blocking thread per collector per scrape: fewer wake-ups and stacks).
/// A worker stuck in a collector past the deadline is replaced; the pool
/// shrinks back when the stuck one returns. Bounded by [`MAX_THREADS`].
pub struct Pool {
    tx: Mutex<std::sync::mpsc::Sender<Arc<Batch>>>,
    rx: Arc<Mutex<std::sync::mpsc::Receiver<Arc<Batch>>>>,
    target: usize,
    live: Arc<AtomicUsize>,
}

/// How long a batch waits on busy workers before a helper thread joins
/// (at most a quarter of the time left to the deadline).
const HELP_AFTER: Duration = Duration::from_millis(250);

/// Upper bound on collector threads, stuck ones included.
pub const MAX_THREADS: usize = 16;

impl Pool {
    /// `workers` threads (at least 1), started lazily.
    pub fn new(workers: usize) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        Pool {
            tx: Mutex::new(tx),
            rx: Arc::new(Mutex::new(rx)),
            target: workers.max(1),
            live: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// One worker: collectors are short and mostly wait in the kernel, so
    /// running them one after the other costs less CPU, memory and latency
    /// than spreading them (measured, bench/node); a slow one gets a helper
    /// after [`HELP_AFTER`], a stuck one is replaced at the deadline.
    pub fn default_size() -> usize {
        1
    }

    fn spawn_worker(&self) {
        if self.live.fetch_add(1, Ordering::SeqCst) >= MAX_THREADS {
            self.live.fetch_sub(1, Ordering::SeqCst);
            tracing::error!("collector thread limit reached; not replacing a stuck worker");
            return;
        }
        let rx = Arc::clone(&self.rx);
        let live = Arc::clone(&self.live);
        let target = self.target;
        let spawned = std::thread::Builder::new()
            .name("collector".into())
            .spawn(move || worker(rx, live, target));
        if spawned.is_err() {
            self.live.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Hands a batch to the workers (one message each; idle ones take it).
    fn submit(&self, batch: &Arc<Batch>) {
        while self.live.load(Ordering::SeqCst) < self.target {
            let before = self.live.load(Ordering::SeqCst);
            self.spawn_worker();
            if self.live.load(Ordering::SeqCst) <= before {
                break;
            }
        }
        let n = self.target.min(batch.jobs.len());
        if let Ok(tx) = self.tx.lock() {
            for _ in 0..n {
                // Fails only if every worker is gone: the scrape then times out.
                let _ = tx.send(Arc::clone(batch));
            }
        }
    }

    /// One more worker for `batch` (bounded by [`MAX_THREADS`]).
    fn help(&self, batch: &Arc<Batch>) {
        let before = self.live.load(Ordering::SeqCst);
        self.spawn_worker();
        if self.live.load(Ordering::SeqCst) > before {
            if let Ok(tx) = self.tx.lock() {
                let _ = tx.send(Arc::clone(batch));
            }
        }
    }

    fn replace_stuck(&self) {
        self.spawn_worker();
    }

    /// Threads alive now (stuck ones included).
    pub fn threads(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
}

impl Default for Pool {
    fn default() -> Self {
        Pool::new(Pool::default_size())
    }
}

fn worker(
    rx: Arc<Mutex<std::sync::mpsc::Receiver<Arc<Batch>>>>,
    live: Arc<AtomicUsize>,
    target: usize,
) {
    loop {
        let batch = {
            let Ok(guard) = rx.lock() else { break };
            match guard.recv() {
                Ok(b) => b,
                Err(_) => break,
            }
        };
        batch.work();
        drop(batch);
        // A replacement took over while this one was stuck: retire.
        let n = live.load(Ordering::SeqCst);
        if n > target
            && live
                .compare_exchange(n, n - 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            return;
        }
    }
    live.fetch_sub(1, Ordering::SeqCst);
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
