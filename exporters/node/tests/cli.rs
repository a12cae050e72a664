//! The binary's shared behaviour: --help, --version, /metrics through
//! promtool, port already in use.

/// Names imposed by node_exporter compatibility that promtool's linter
/// dislikes (CamelCase, "bits"); upstream's checkmetrics.sh filters the same.
pub const CONTRACT_NAMES: &[&str] = &[
    "node_entropy_",
    "node_memory_",
    "node_netstat_",
    "node_wifi_station_",
];

#[test]
fn binary_basics() {
    vigie_common::testkit::check_binary_basics(
        env!("CARGO_BIN_EXE_vigie-node-exporter"),
        9100,
        &[],
        CONTRACT_NAMES,
    );
}
