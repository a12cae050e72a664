//! The binary's shared behaviour: --help, --version, /metrics through
//! promtool, port already in use, systemd socket activation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use vigie_common::testkit;

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

/// `--web.systemd-socket` under systemd's own socket-activation helper:
/// it listens, then execs the exporter with the socket as fd 3 on the first
/// connection (the exporter keeps its PID).
#[test]
fn systemd_socket_activation() {
    let Some(activate) = testkit::require("systemd-socket-activate") else {
        return;
    };
    let port = testkit::free_port();
    let url = format!(
        "--videobridge-url=http://127.0.0.1:{}/colibri/stats",
        testkit::free_port()
    );
    let mut child = std::process::Command::new(activate)
        .args([
            "-l",
            &format!("127.0.0.1:{port}"),
            env!("CARGO_BIN_EXE_vigie-jitsi-exporter"),
            "--web.systemd-socket",
            // ignored under socket activation, as in exporter-toolkit
            "--web.listen-address=127.0.0.1:1",
            &url,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200))
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "activation socket not listening"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (code, _, body) = testkit::http_get(&format!("http://127.0.0.1:{port}/metrics"));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("jitsi_up"), "{body}");
}

/// Without systemd's variables the flag is a clear start-up error.
#[test]
fn systemd_socket_without_activation_fails_clearly() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigie-jitsi-exporter"))
        .arg("--web.systemd-socket")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no socket activation file descriptors found"),
        "{err}"
    );
}
