//! The binary's shared behaviour: --help, --version, /metrics through
//! promtool, port already in use.

#[test]
fn binary_basics() {
    let cfg = vigie_common::testkit::workspace_root().join("config/blackbox.yml");
    let arg = format!("--config.file={}", cfg.display());
    vigie_common::testkit::check_binary_basics(
        env!("CARGO_BIN_EXE_vigie-blackbox-exporter"),
        9115,
        &[&arg],
        &[],
    );
}
