//! The binary's shared behaviour: --help, --version, /metrics through
//! promtool, port already in use.

#[test]
fn binary_basics() {
    // A closed loopback port: the videobridge is "down", the scrape still answers.
    let url = format!(
        "--videobridge-url=http://127.0.0.1:{}/colibri/stats",
        vigie_common::testkit::free_port()
    );
    vigie_common::testkit::check_binary_basics(
        env!("CARGO_BIN_EXE_vigie-jitsi-exporter"),
        9888,
        &[&url],
        &[],
    );
}
