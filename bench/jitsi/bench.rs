//! Benchmark of vigie-jitsi-exporter (not written yet).
fn main() {}
