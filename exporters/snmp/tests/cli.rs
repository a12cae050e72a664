//! The binary's shared behaviour: --help, --version, /metrics through
//! promtool, port already in use.

#[test]
fn binary_basics() {
    vigie_common::testkit::check_binary_basics(
        env!("CARGO_BIN_EXE_vigie-snmp-exporter"),
        9116,
        &[&format!(
            "--config.file={}/../../config/snmp.yml",
            env!("CARGO_MANIFEST_DIR")
        )],
        &[],
    );
}
