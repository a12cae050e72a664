//! vigie-e2e holds no library code: its tests (`tests/`) start the four
//! built exporters, snmpd and a real Prometheus with the shipped scrape jobs
//! and rules, and check the shipped Prometheus and Grafana configuration
//! with promtool. See `tests/e2e.rs` and `tests/shipped_config.rs`.
