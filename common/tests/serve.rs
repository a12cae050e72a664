#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The shared server over real loopback connections: TLS (certificates made
//! here with rcgen), basic auth, client certificates, gzip, both exposition
//! formats, reload, max-requests, web config changes, promtool.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use vigie_common::cli::WebArgs;
use vigie_common::selfmetrics::BuildInfo;
use vigie_common::serve::Server;
use vigie_common::{Exporter, MetricSet, Reply, Request, ServeSpec};

struct TestExporter {
    reload_ok: AtomicBool,
    slow: bool,
}

impl Exporter for TestExporter {
    async fn metrics(&self, _req: Request) -> Reply {
        if self.slow {
            tokio::time::sleep(Duration::from_millis(800)).await;
        }
        let mut set = MetricSet::new();
        set.counter(
            "test_requests_total",
            "Requests seen.",
            &[("code", "200")],
            3.0,
        );
        set.gauge("test_value", "A value.", &[], 1e6);
        Reply::Metrics(set)
    }
    async fn handle(&self, req: Request) -> Option<Reply> {
        match req.path.as_str() {
            "/echo" => Some(match req.param("x") {
                Some(x) => Reply::text(http::StatusCode::OK, x.to_owned()),
                None => Reply::bad_request("missing parameter x"),
            }),
            _ => None,
        }
    }
    fn reload(&self) -> Result<(), String> {
        if self.reload_ok.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("test.yml:1:1: broken".into())
        }
    }
    fn has_config(&self) -> bool {
        true
    }
}

fn spec() -> ServeSpec {
    ServeSpec {
        binary: "vigie-test-exporter",
        title: "Test Exporter",
        description: "test",
        build: BuildInfo::new("test_exporter", "0.0.1"),
        default_port: 9999,
        go_counterpart: "nothing",
        links: vec![("/echo", "Echo")],
    }
}

fn args(web_config: Option<&Path>, max_requests: usize, openmetrics: bool) -> WebArgs {
    WebArgs {
        listen_address: vec!["127.0.0.1:0".into()],
        config_file: web_config.map(Path::to_path_buf),
        telemetry_path: "/metrics".into(),
        max_requests,
        enable_openmetrics: openmetrics,
        disable_exporter_metrics: false,
        systemd_socket: false,
    }
}

struct Running {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    exporter: Arc<TestExporter>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn start(a: WebArgs, slow: bool) -> Running {
    let exporter = Arc::new(TestExporter {
        reload_ok: AtomicBool::new(true),
        slow,
    });
    let server = Server::bind(spec(), &a, Arc::clone(&exporter))
        .await
        .expect("bind");
    let addr = server.local_addrs()[0];
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        stop: Some(tx),
        exporter,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_gzip().build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_endpoints_and_formats() {
    let r = start(args(None, 40, false), false).await;
    let base = format!("http://{}", r.addr);
    let c = client();

    let resp = c.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = resp.text().await.unwrap();
    assert!(body.contains("test_value 1e+06\n"), "{body}");
    assert!(body.contains("test_exporter_build_info{"), "{body}");
    assert!(body.contains("process_resident_memory_bytes "), "{body}");
    assert!(
        body.contains("test_exporter_config_last_reload_successful 1\n"),
        "{body}"
    );

    // Prometheus 2.x prefers OpenMetrics, but without the flag we answer 0.0.4.
    let prom_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let resp = c
        .get(format!("{base}/metrics"))
        .header("Accept", prom_accept)
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));

    // gzip.
    let resp = c
        .get(format!("{base}/metrics"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let raw = resp.bytes().await.unwrap();
    let mut text = String::new();
    flate2_read(&raw, &mut text);
    assert!(text.contains("test_requests_total{code=\"200\"} 3\n"));

    // Landing page, health, 404, bad query parameter.
    let landing = c
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(landing.contains("<a href=\"/metrics\">"));
    assert!(landing.contains("<a href=\"/echo\">Echo</a>"));
    assert_eq!(
        c.get(format!("{base}/-/healthy"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(format!("{base}/-/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(format!("{base}/nope")).send().await.unwrap().status(),
        404
    );
    let resp = c.get(format!("{base}/echo")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("missing parameter x"));
    assert_eq!(
        c.get(format!("{base}/echo?x=hi"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "hi"
    );

    // Reload: GET is refused, good POST succeeds, bad POST keeps state and reports.
    assert_eq!(
        c.get(format!("{base}/-/reload"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    assert_eq!(
        c.post(format!("{base}/-/reload"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    r.exporter.reload_ok.store(false, Ordering::SeqCst);
    let resp = c.post(format!("{base}/-/reload")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    assert!(resp.text().await.unwrap().contains("broken"));
    let body = c
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("test_exporter_config_last_reload_successful 0\n"),
        "{body}"
    );

    // The real promtool accepts the output.
    if vigie_common::testkit::which("promtool").is_some() || std::env::var_os("CI").is_some() {
        vigie_common::testkit::promtool_check(&body, &[]).unwrap();
    }
}

fn flate2_read(raw: &[u8], out: &mut String) {
    // reqwest's gzip feature brings flate2's decoder through async-compression;
    // decode by hand with a minimal gunzip via the `gzip` CLI to stay dependency-free.
    let mut child = std::process::Command::new("gzip")
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(raw).unwrap();
    child.stdout.take().unwrap().read_to_string(out).unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openmetrics_when_enabled() {
    let r = start(args(None, 40, true), false).await;
    let resp = client()
        .get(format!("http://{}/metrics", r.addr))
        .header(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text; version=1.0.0"));
    let body = resp.text().await.unwrap();
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert!(body.contains("# TYPE test_requests counter\n"));
    // Plain clients still get text.
    let resp = client()
        .get(format!("http://{}/metrics", r.addr))
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_requests_gives_503() {
    let r = start(args(None, 1, false), true).await;
    let url = format!("http://{}/metrics", r.addr);
    let c = client();
    let first = tokio::spawn({
        let c = c.clone();
        let url = url.clone();
        async move { c.get(url).send().await.unwrap().status() }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = std::time::Instant::now();
    let second = c.get(&url).send().await.unwrap();
    assert_eq!(second.status(), 503);
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "503 must come at once"
    );
    assert!(second
        .text()
        .await
        .unwrap()
        .contains("Limit of concurrent requests reached (1)"));
    assert_eq!(first.await.unwrap(), 200);
}

fn write(p: &Path, s: &str) {
    std::fs::write(p, s).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_and_web_config_changes() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    let hash = bcrypt::hash("secret", 4).unwrap();
    write(
        &web,
        &format!("basic_auth_users:\n  prom: '{hash}'\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n"),
    );
    let r = start(args(Some(&web), 40, false), false).await;
    let url = format!("http://{}/metrics", r.addr);
    let c = client();

    let resp = c.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Basic");
    assert_eq!(resp.headers()["x-frame-options"], "deny");
    assert_eq!(
        c.get(&url)
            .basic_auth("prom", Some("wrong"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        c.get(&url)
            .basic_auth("nobody", Some("secret"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        c.get(&url)
            .basic_auth("prom", Some("secret"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Health is behind auth too, as with the exporter-toolkit.
    assert_eq!(
        c.get(format!("http://{}/-/healthy", r.addr))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // A broken file is reported and the last good one kept.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    write(&web, "basic_auth_users: [not, a, map\n");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        c.get(&url)
            .basic_auth("prom", Some("secret"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(c.get(&url).send().await.unwrap().status(), 401);

    // A good new file takes effect without restart.
    let hash2 = bcrypt::hash("other", 4).unwrap();
    write(&web, &format!("basic_auth_users:\n  admin: '{hash2}'\n"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        c.get(&url)
            .basic_auth("admin", Some("other"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(&url)
            .basic_auth("prom", Some("secret"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

struct Pki {
    ca_pem: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn make_pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Vigie test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let srv_key = KeyPair::generate().unwrap();
    let srv = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&srv_key, &ca, &ca_key)
        .unwrap();
    let cli_key = KeyPair::generate().unwrap();
    let mut cli_params = CertificateParams::new(vec!["client".to_string()]).unwrap();
    cli_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cli = cli_params.signed_by(&cli_key, &ca, &ca_key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        server_cert: srv.pem(),
        server_key: srv_key.serialize_pem(),
        client_cert: cli.pem(),
        client_key: cli_key.serialize_pem(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki();
    write(&dir.path().join("ca.pem"), &pki.ca_pem);
    write(&dir.path().join("server.crt"), &pki.server_cert);
    write(&dir.path().join("server.key"), &pki.server_key);
    let web = dir.path().join("web.yml");
    // Relative paths resolve against the web config's directory.
    write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  min_version: TLS12\n",
    );
    let r = start(args(Some(&web), 40, false), false).await;
    let ca = reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap();
    let url = format!("https://localhost:{}/metrics", r.addr.port());

    // Without a client certificate the handshake fails.
    let no_cert = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca.clone())
        .resolve("localhost", r.addr)
        .build()
        .unwrap();
    assert!(no_cert.get(&url).send().await.is_err());

    // With one signed by the CA it works.
    let identity =
        reqwest::Identity::from_pem(format!("{}{}", pki.client_cert, pki.client_key).as_bytes())
            .unwrap();
    let with_cert = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca)
        .identity(identity)
        .resolve("localhost", r.addr)
        .build()
        .unwrap();
    let resp = with_cert.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("test_value"));

    // Plain HTTP to the TLS port gets Go's explanatory 400.
    let (status, _, body) = tokio::task::spawn_blocking({
        let a = r.addr;
        move || vigie_common::testkit::http_get(&format!("http://{a}/metrics"))
    })
    .await
    .unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("Client sent an HTTP request to an HTTPS server."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_server_only() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki();
    write(&dir.path().join("server.crt"), &pki.server_cert);
    write(&dir.path().join("server.key"), &pki.server_key);
    let web = dir.path().join("web.yml");
    write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    );
    let r = start(args(Some(&web), 40, false), false).await;
    let ca = reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap();
    let c = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca)
        .resolve("localhost", r.addr)
        .build()
        .unwrap();
    let resp = c
        .get(format!("https://localhost:{}/metrics", r.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_tls_settings_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki();
    write(&dir.path().join("server.crt"), &pki.server_cert);
    write(&dir.path().join("server.key"), &pki.server_key);
    for (extra, want) in [
        ("  min_version: TLS10\n", "TLS10 is not supported"),
        (
            "  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
            "TLS_RSA_WITH_RC4_128_SHA is not supported",
        ),
        (
            "  curve_preferences: [CurveP521]\n",
            "CurveP521 is not supported",
        ),
        ("  client_ca_file: server.crt\n", "without client_auth_type"),
        (
            "  client_auth_type: Sometimes\n",
            "invalid client_auth_type",
        ),
    ] {
        let web = dir.path().join("web.yml");
        write(
            &web,
            &format!(
                "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n{extra}"
            ),
        );
        let err = vigie_common::webconfig::WebConfig::load(&web)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{extra}: {err}");
    }
    // Supported restrictions load.
    let web = dir.path().join("web.yml");
    write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n  curve_preferences: [X25519, CurveP256]\n  max_version: TLS13\n",
    );
    vigie_common::webconfig::WebConfig::load(&web).unwrap();
}

// --- tls_server_config.client_allowed_sans ---------------------------------

/// A CA that can sign client certificates with any SANs.
struct SanCa {
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
    pki: Pki,
}

fn san_ca() -> SanCa {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let pki = make_pki();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Vigie SAN test CA");
    let cert = params.self_signed(&key).unwrap();
    // The server keeps its make_pki certificate; clients are signed by this CA.
    SanCa { key, cert, pki }
}

fn dns(s: &str) -> rcgen::SanType {
    rcgen::SanType::DnsName(rcgen::Ia5String::try_from(s).unwrap())
}
fn email(s: &str) -> rcgen::SanType {
    rcgen::SanType::Rfc822Name(rcgen::Ia5String::try_from(s).unwrap())
}
fn uri(s: &str) -> rcgen::SanType {
    rcgen::SanType::URI(rcgen::Ia5String::try_from(s).unwrap())
}
fn ip(s: &str) -> rcgen::SanType {
    rcgen::SanType::IpAddress(s.parse().unwrap())
}

/// PEM of a client certificate and key; `signer` None means self-signed.
fn client_identity(signer: Option<&SanCa>, sans: Vec<rcgen::SanType>) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "prom.example");
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = match signer {
        Some(ca) => params.signed_by(&key, &ca.cert, &ca.key).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    format!("{}{}", cert.pem(), key.serialize_pem())
}

fn write_san_dir(dir: &Path, ca: &SanCa) {
    write(&dir.join("clients-ca.pem"), &ca.cert.pem());
    write(&dir.join("server.crt"), &ca.pki.server_cert);
    write(&dir.join("server.key"), &ca.pki.server_key);
}

fn san_web_config(auth_type: &str, sans: &[&str]) -> String {
    let list: Vec<String> = sans.iter().map(|s| format!("    - {s:?}\n")).collect();
    format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: {auth_type}\n  client_ca_file: clients-ca.pem\n  client_allowed_sans:\n{}",
        list.concat()
    )
}

/// The status of a scrape with this client identity, or None when the
/// server refused the TLS handshake (no HTTP response at all).
async fn scrape_with(
    server_ca_pem: &str,
    addr: std::net::SocketAddr,
    identity: &str,
) -> Option<u16> {
    let c = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(server_ca_pem.as_bytes()).unwrap())
        .identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap())
        .resolve("localhost", addr)
        .build()
        .unwrap();
    match c
        .get(format!("https://localhost:{}/metrics", addr.port()))
        .send()
        .await
    {
        Ok(resp) => Some(resp.status().as_u16()),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_allowed_sans_require_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let ca = san_ca();
    write_san_dir(dir.path(), &ca);
    let web = dir.path().join("web.yml");
    write(
        &web,
        &san_web_config(
            "RequireAndVerifyClientCert",
            &[
                "prom.example",
                "10.1.2.3",
                "2001:db8::7",
                "prom@example.org",
                "spiffe://example.org/prometheus",
            ],
        ),
    );
    let r = start(args(Some(&web), 40, false), false).await;
    let server_ca = ca.pki.ca_pem.clone();
    let other_ca = san_ca();

    for (what, identity, want) in [
        (
            "allowed DNS SAN",
            client_identity(Some(&ca), vec![dns("prom.example")]),
            Some(200),
        ),
        (
            "allowed DNS SAN among others",
            client_identity(Some(&ca), vec![dns("a.example"), dns("prom.example")]),
            Some(200),
        ),
        (
            "allowed IPv4 SAN",
            client_identity(Some(&ca), vec![ip("10.1.2.3")]),
            Some(200),
        ),
        (
            "allowed IPv6 SAN",
            client_identity(Some(&ca), vec![ip("2001:db8:0:0:0:0:0:7")]),
            Some(200),
        ),
        (
            "IPv4-mapped IPv6 SAN compares as IPv4",
            client_identity(Some(&ca), vec![ip("::ffff:10.1.2.3")]),
            Some(200),
        ),
        (
            "allowed e-mail SAN",
            client_identity(Some(&ca), vec![email("prom@example.org")]),
            Some(200),
        ),
        (
            "allowed URI SAN",
            client_identity(Some(&ca), vec![uri("spiffe://example.org/prometheus")]),
            Some(200),
        ),
        (
            "SAN not in the list",
            client_identity(Some(&ca), vec![dns("other.example")]),
            None,
        ),
        (
            "comparison is case-sensitive",
            client_identity(Some(&ca), vec![dns("PROM.example")]),
            None,
        ),
        (
            "no wildcard matching",
            client_identity(Some(&ca), vec![dns("*.example")]),
            None,
        ),
        (
            "IP SAN not in the list",
            client_identity(Some(&ca), vec![ip("10.1.2.4")]),
            None,
        ),
        // Go compares the SAN strings whatever their type.
        (
            "a DNS SAN spelled as a listed IP",
            client_identity(Some(&ca), vec![dns("10.1.2.3")]),
            Some(200),
        ),
        // The subject CN is prom.example in every certificate here: not a SAN.
        (
            "no SAN at all (CN is not consulted)",
            client_identity(Some(&ca), vec![]),
            None,
        ),
        (
            "allowed SAN from an untrusted CA",
            client_identity(Some(&other_ca), vec![dns("prom.example")]),
            None,
        ),
        (
            "allowed SAN, self-signed",
            client_identity(None, vec![dns("prom.example")]),
            None,
        ),
    ] {
        assert_eq!(
            scrape_with(&server_ca, r.addr, &identity).await,
            want,
            "{what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_allowed_sans_require_any() {
    let dir = tempfile::tempdir().unwrap();
    let ca = san_ca();
    write_san_dir(dir.path(), &ca);
    let web = dir.path().join("web.yml");
    // As in Go, RequireAnyClientCert checks no chain: the SAN is the only gate.
    write(
        &web,
        &san_web_config("RequireAnyClientCert", &["prom.example"])
            .replace("  client_ca_file: clients-ca.pem\n", ""),
    );
    let r = start(args(Some(&web), 40, false), false).await;
    let server_ca = ca.pki.ca_pem.clone();
    assert_eq!(
        scrape_with(
            &server_ca,
            r.addr,
            &client_identity(None, vec![dns("prom.example")])
        )
        .await,
        Some(200)
    );
    assert_eq!(
        scrape_with(
            &server_ca,
            r.addr,
            &client_identity(None, vec![dns("other.example")])
        )
        .await,
        None
    );

    // A leaf that is not a certificate at all fails the handshake; the server
    // goes on serving.
    for garbage in [vec![0x30, 0x03, 0x02, 0x01, 0x00], vec![0xff; 40], {
        let id = client_identity(None, vec![dns("prom.example")]);
        let der = rustls_pemfile::certs(&mut id.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        der[..der.len() / 2].to_vec()
    }] {
        assert!(!raw_tls_scrape(&server_ca, r.addr, garbage).await);
    }
    assert_eq!(
        scrape_with(
            &server_ca,
            r.addr,
            &client_identity(None, vec![dns("prom.example")])
        )
        .await,
        Some(200)
    );
}

/// Sends `leaf` as the client certificate (signing with an unrelated key) and
/// reports whether an HTTP response came back.
async fn raw_tls_scrape(server_ca_pem: &str, addr: std::net::SocketAddr, leaf: Vec<u8>) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    #[derive(Debug)]
    struct Fixed(Arc<rustls::sign::CertifiedKey>);
    impl rustls::client::ResolvesClientCert for Fixed {
        fn resolve(
            &self,
            _: &[&[u8]],
            _: &[rustls::SignatureScheme],
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(Arc::clone(&self.0))
        }
        fn has_certs(&self) -> bool {
            true
        }
    }
    let key = rcgen::KeyPair::generate().unwrap();
    let key_der = rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let signer = rustls::crypto::ring::sign::any_supported_type(&key_der).unwrap();
    let certified =
        rustls::sign::CertifiedKey::new(vec![rustls_pki_types::CertificateDer::from(leaf)], signer);
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut server_ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_cert_resolver(Arc::new(Fixed(Arc::new(certified))));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let Ok(mut tls) = connector.connect(name, tcp).await else {
        return false;
    };
    if tls
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
    buf.starts_with(b"HTTP/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_allowed_sans_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ca = san_ca();
    write_san_dir(dir.path(), &ca);
    let web = dir.path().join("web.yml");
    for auth in ["RequestClientCert", "VerifyClientCertIfGiven"] {
        write(&web, &san_web_config(auth, &["prom.example"]));
        let err = vigie_common::webconfig::WebConfig::load(&web)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("client_allowed_sans requires client_auth_type to be one of RequireAnyClientCert or RequireAndVerifyClientCert")
                && err.contains(auth),
            "{auth}: {err}"
        );
    }
    // Without client_auth_type the list would be silently ignored: refused too.
    write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_allowed_sans: [prom.example]\n",
    );
    let err = vigie_common::webconfig::WebConfig::load(&web)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("client_allowed_sans") && err.contains("NoClientCert"),
        "{err}"
    );
    // The legacy RequireClientCert spelling is RequireAnyClientCert.
    write(
        &web,
        &san_web_config("RequireClientCert", &["prom.example"]),
    );
    vigie_common::webconfig::WebConfig::load(&web).unwrap();
    write(
        &web,
        &san_web_config("RequireAndVerifyClientCert", &["prom.example"]),
    );
    vigie_common::webconfig::WebConfig::load(&web).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_allowed_sans_follow_web_config_changes() {
    let dir = tempfile::tempdir().unwrap();
    let ca = san_ca();
    write_san_dir(dir.path(), &ca);
    let web = dir.path().join("web.yml");
    write(
        &web,
        &san_web_config("RequireAndVerifyClientCert", &["a.example"]),
    );
    let r = start(args(Some(&web), 40, false), false).await;
    let server_ca = ca.pki.ca_pem.clone();
    let a = client_identity(Some(&ca), vec![dns("a.example")]);
    let b = client_identity(Some(&ca), vec![dns("bb.example")]);
    assert_eq!(scrape_with(&server_ca, r.addr, &a).await, Some(200));
    assert_eq!(scrape_with(&server_ca, r.addr, &b).await, None);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    write(
        &web,
        &san_web_config("RequireAndVerifyClientCert", &["bb.example"]),
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let _ = scrape_with(&server_ca, r.addr, &b).await; // triggers the re-read
    assert_eq!(scrape_with(&server_ca, r.addr, &a).await, None);
    assert_eq!(scrape_with(&server_ca, r.addr, &b).await, Some(200));

    // A bad new file (the list with an optional client certificate) keeps the last good one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    write(
        &web,
        &san_web_config("VerifyClientCertIfGiven", &["a.example"]),
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let _ = scrape_with(&server_ca, r.addr, &b).await;
    assert_eq!(scrape_with(&server_ca, r.addr, &b).await, Some(200));
    assert_eq!(scrape_with(&server_ca, r.addr, &a).await, None);

    // Removing the key lets every client of the CA in again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients-ca.pem\n",
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let _ = scrape_with(&server_ca, r.addr, &b).await;
    assert_eq!(scrape_with(&server_ca, r.addr, &a).await, Some(200));
}
