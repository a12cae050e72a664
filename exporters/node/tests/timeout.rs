//! `--collector.timeout`: a collector that hangs is reported with
//! `node_scrape_collector_success 0`, the scrape is answered on time with
//! the other collectors' data, and a collector stuck across scrapes does
//! not pile up threads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_common::MetricSet;
use vigie_node_exporter::collectors::{CollectError, Collector, ScrapeCtx};
use vigie_node_exporter::roots::FsRoots;
use vigie_node_exporter::scrape::{Node, MAX_RUNS_PER_COLLECTOR, MAX_THREADS};

struct Hang(Duration);
impl Collector for Hang {
    fn update(&self, _: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        std::thread::sleep(self.0);
        out.gauge("late_metric", "never seen", &[], 1.0);
        Ok(())
    }
}

struct Fast;
impl Collector for Fast {
    fn update(&self, _: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        out.gauge("fast_metric", "seen", &[], 1.0);
        Ok(())
    }
}

fn node(hang: Duration) -> Node {
    let mut collectors: BTreeMap<&'static str, Arc<dyn Collector>> = BTreeMap::new();
    collectors.insert("a_hang", Arc::new(Hang(hang)));
    collectors.insert("b_fast", Arc::new(Fast));
    Node {
        collectors,
        known: vec!["a_hang", "b_fast"],
        roots: Arc::new(FsRoots::default()),
        timeout: Duration::from_millis(200),
        running: Default::default(),
        pool: Default::default(),
    }
}

fn success(set: &MetricSet, name: &str) -> Option<f64> {
    let text = set.encode_text();
    let key = format!("node_scrape_collector_success{{collector=\"{name}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(|v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_collector_times_out_and_the_rest_is_served() {
    let n = node(Duration::from_secs(3));
    let t = Instant::now();
    let sel = n.select(&[]).unwrap();
    let set = n.scrape(sel, Instant::now() + n.timeout).await;
    let took = t.elapsed();
    assert!(took < Duration::from_millis(1000), "scrape took {took:?}");
    assert_eq!(success(&set, "a_hang"), Some(0.0));
    assert_eq!(success(&set, "b_fast"), Some(1.0));
    assert!(set.get("fast_metric").is_some());
    assert!(set.get("late_metric").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_collector_does_not_pile_up_threads() {
    let n = node(Duration::from_secs(3));
    for _ in 0..MAX_RUNS_PER_COLLECTOR {
        let set = n
            .scrape(
                n.select(&["a_hang"]).unwrap(),
                Instant::now() + Duration::from_millis(50),
            )
            .await;
        assert_eq!(success(&set, "a_hang"), Some(0.0));
    }
    assert_eq!(n.running.count("a_hang"), MAX_RUNS_PER_COLLECTOR);
    // Further scrapes fail it at once without starting another run.
    let t = Instant::now();
    let set = n
        .scrape(
            n.select(&[]).unwrap(),
            Instant::now() + Duration::from_secs(2),
        )
        .await;
    assert!(t.elapsed() < Duration::from_millis(500));
    assert_eq!(success(&set, "a_hang"), Some(0.0));
    assert_eq!(success(&set, "b_fast"), Some(1.0));
    assert_eq!(n.running.count("a_hang"), MAX_RUNS_PER_COLLECTOR);
    // Stuck workers were replaced, within the bound.
    assert!(n.pool.threads() <= MAX_THREADS, "{}", n.pool.threads());
    assert!(n.pool.threads() >= MAX_RUNS_PER_COLLECTOR);
}

/// Slow (not hung) collectors get a helper thread: the others do not wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_collector_does_not_delay_the_others() {
    let mut n = node(Duration::from_millis(900));
    n.timeout = Duration::from_secs(5);
    let t = Instant::now();
    let set = n
        .scrape(n.select(&[]).unwrap(), Instant::now() + n.timeout)
        .await;
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(success(&set, "a_hang"), Some(1.0));
    assert_eq!(success(&set, "b_fast"), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_filter_errors_use_node_exporter_wording() {
    let n = node(Duration::from_millis(1));
    let e = n.select(&["nosuch"]).err().unwrap().to_string();
    assert_eq!(e, "couldn't create collector: missing collector: nosuch");
}
