//! TLS client side shared by the http, tcp, dns and grpc probers: client
//! configs from `tls_config`, a verifier that keeps the peer's certificates
//! even when verification fails (so certificate metrics are exported for an
//! expired or wrongly named certificate), and the TLS metrics.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::config::TlsConfig;
use crate::probe::Probe;

pub const H_EARLIEST: &str = "Returns last SSL chain expiry in unixtime";
pub const H_LAST_CHAIN: &str = "Returns last SSL chain expiry in timestamp";
pub const H_CHAIN_INFO: &str = "Contains SSL leaf certificate information";
pub const H_TLS_VERSION: &str = "Returns the TLS version used or NaN when unknown";

/// Go's zero time as a Unix timestamp (reported when no chain was verified).
pub const GO_ZERO_TIME: f64 = -62_135_596_800.0;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static P: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    Arc::clone(P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())))
}

/// A trusted root's subject and expiry (webpki's trust anchors have no NotAfter).
#[derive(Debug, Clone)]
pub struct RootInfo {
    subject: Vec<u8>,
    not_after: i64,
}

fn root_infos(ders: &[CertificateDer<'static>]) -> Arc<Vec<RootInfo>> {
    Arc::new(
        ders.iter()
            .filter_map(|d| parse_cert(d))
            .map(|c| RootInfo {
                subject: c.raw_subject,
                not_after: c.not_after,
            })
            .collect(),
    )
}

/// System roots, loaded once, with their expiry read once.
fn system_roots() -> &'static (Arc<RootCertStore>, Arc<Vec<RootInfo>>) {
    static R: OnceLock<(Arc<RootCertStore>, Arc<Vec<RootInfo>>)> = OnceLock::new();
    R.get_or_init(|| {
        let mut store = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        let mut ders = Vec::new();
        for c in native.certs {
            if store.add(c.clone()).is_ok() {
                ders.push(c);
            }
        }
        if store.is_empty() {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        (Arc::new(store), root_infos(&ders))
    })
}

/// Loads the system roots in the background so the first https probe does not pay for it.
pub fn preload_roots() {
    std::thread::spawn(|| {
        let _ = system_roots();
    });
}

/// The verification outcome and what the peer presented.
#[derive(Debug, Default)]
pub struct Captured {
    pub certs: Vec<CertificateDer<'static>>,
    pub verified: bool,
    pub error: Option<rustls::Error>,
}

/// Wraps the WebPKI verifier (or none, for `insecure_skip_verify`) and
/// records the presented chain.
#[derive(Debug)]
pub struct CapturingVerifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    pub captured: Mutex<Captured>,
    pub roots: Arc<Vec<RootInfo>>,
}

impl ServerCertVerifier for CapturingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = match &self.inner {
            None => Ok(ServerCertVerified::assertion()),
            Some(v) => v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now),
        };
        if let Ok(mut c) = self.captured.lock() {
            c.certs = std::iter::once(end_entity.clone().into_owned())
                .chain(intermediates.iter().map(|c| c.clone().into_owned()))
                .collect();
            c.verified = result.is_ok() && self.inner.is_some();
            c.error = result.as_ref().err().cloned();
        }
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client config for one connection, and the verifier that watches it.
pub struct Client {
    pub config: Arc<rustls::ClientConfig>,
    pub verifier: Arc<CapturingVerifier>,
}

fn read_file(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path)
        .map_err(|e| format!("unable to load specified CA cert {path}: {e}"))?;
    let mut buf = Vec::new();
    f.take(16 << 20)
        .read_to_end(&mut buf)
        .map_err(|e| format!("unable to read {path}: {e}"))?;
    Ok(buf)
}

fn version(v: &str) -> Result<Option<&'static rustls::SupportedProtocolVersion>, String> {
    match v {
        "" => Ok(None),
        "TLS12" => Ok(Some(&rustls::version::TLS12)),
        "TLS13" => Ok(Some(&rustls::version::TLS13)),
        "TLS10" | "TLS11" => Err(format!(
            "TLS version {v} is not supported (rustls implements TLS 1.2 and 1.3)"
        )),
        _ => Err(format!("unknown TLS version: {v}")),
    }
}

/// Builds a client for `tls` (None = defaults) with ALPN protocols `alpn`.
pub fn client(tls: Option<&TlsConfig>, alpn: &[&[u8]]) -> Result<Client, String> {
    let def = TlsConfig::default();
    let tls = tls.unwrap_or(&def);
    let (inner, roots) = if tls.insecure_skip_verify {
        (None, Arc::new(Vec::new()))
    } else if let Some(ca) = &tls.ca_file {
        let pem = read_file(ca)?;
        let mut store = RootCertStore::empty();
        let mut ders = Vec::new();
        for c in rustls_pemfile::certs(&mut pem.as_slice()) {
            let c = c.map_err(|e| format!("unable to parse CA cert {ca}: {e}"))?;
            store
                .add(c.clone())
                .map_err(|e| format!("unable to use CA cert {ca}: {e}"))?;
            ders.push(c);
        }
        if store.is_empty() {
            return Err(format!("unable to use specified CA cert {ca}"));
        }
        let v = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider())
            .build()
            .map_err(|e| e.to_string())?;
        (Some(v), root_infos(&ders))
    } else {
        let (store, ders) = system_roots();
        let v = WebPkiServerVerifier::builder_with_provider(Arc::clone(store), provider())
            .build()
            .map_err(|e| e.to_string())?;
        (Some(v), Arc::clone(ders))
    };
    let verifier = Arc::new(CapturingVerifier {
        inner,
        captured: Mutex::new(Captured::default()),
        roots,
    });
    let min = version(tls.min_version.as_deref().unwrap_or(""))?;
    let max = version(tls.max_version.as_deref().unwrap_or(""))?;
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> =
        vec![&rustls::version::TLS12, &rustls::version::TLS13];
    if min == Some(&rustls::version::TLS13) {
        versions.retain(|v| v.version == rustls::ProtocolVersion::TLSv1_3);
    }
    if max == Some(&rustls::version::TLS12) {
        versions.retain(|v| v.version == rustls::ProtocolVersion::TLSv1_2);
    }
    if versions.is_empty() {
        return Err("min_version is greater than max_version".to_owned());
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions)
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone() as Arc<dyn ServerCertVerifier>);
    let mut config = match (&tls.cert_file, &tls.key_file) {
        (Some(c), Some(k)) => {
            let certs: Vec<CertificateDer<'static>> =
                rustls_pemfile::certs(&mut read_file(c)?.as_slice())
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("unable to parse client cert {c}: {e}"))?;
            let key = rustls_pemfile::private_key(&mut read_file(k)?.as_slice())
                .map_err(|e| format!("unable to parse client key {k}: {e}"))?
                .ok_or_else(|| format!("no private key in {k}"))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("unable to use client cert: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("client cert file and key file must both be set".to_owned()),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Client {
        config: Arc::new(config),
        verifier,
    })
}

/// The SNI name: `server_name`, else the host.
pub fn server_name(tls: Option<&TlsConfig>, host: &str) -> Result<ServerName<'static>, String> {
    let name = tls
        .and_then(|t| t.server_name.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| crate::resolve::bare_host(host).to_owned());
    ServerName::try_from(name.clone()).map_err(|_| format!("invalid TLS server name {name:?}"))
}

/// A Go-like message for a handshake error.
pub fn describe_error(e: &std::io::Error, name: &str) -> String {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                "x509: certificate signed by unknown authority".to_owned()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "x509: certificate has expired or is not yet valid".to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "x509: certificate has expired or is not yet valid".to_owned()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("x509: certificate is not valid for {name}")
            }
            other => format!("x509: {other:?}"),
        },
        Some(other) => format!("tls: {other}"),
        None => e.to_string(),
    }
}

/// A parsed certificate's fields that the metrics need.
struct CertInfo {
    not_after: i64,
    subject: String,
    issuer: String,
    sans: String,
    raw_subject: Vec<u8>,
    raw_issuer: Vec<u8>,
}

fn parse_cert(der: &[u8]) -> Option<CertInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let sans = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|g| match g {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    Some(CertInfo {
        not_after: cert.validity().not_after.timestamp(),
        subject: go_name(cert.subject()),
        issuer: go_name(cert.issuer()),
        sans,
        raw_subject: cert.subject().as_raw().to_vec(),
        raw_issuer: cert.issuer().as_raw().to_vec(),
    })
}

/// Go's `pkix.Name.String()`: known attributes in Go's fixed order
/// (reversed: SERIALNUMBER, CN, OU, O, POSTALCODE, STREET, L, ST, C), then
/// other attributes as `OID=#hex`.
fn go_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    // (oid, label) in ToRDNSequence order; printed reversed.
    const ORDER: &[(&str, &str)] = &[
        ("2.5.4.6", "C"),
        ("2.5.4.8", "ST"),
        ("2.5.4.7", "L"),
        ("2.5.4.9", "STREET"),
        ("2.5.4.17", "POSTALCODE"),
        ("2.5.4.10", "O"),
        ("2.5.4.11", "OU"),
        ("2.5.4.3", "CN"),
        ("2.5.4.5", "SERIALNUMBER"),
    ];
    let mut rdns: Vec<String> = Vec::new();
    // Non-standard attributes first, so they print last.
    for atv in name.iter_attributes() {
        let oid = atv.attr_type().to_id_string();
        if ORDER.iter().any(|(o, _)| *o == oid) {
            continue;
        }
        let mut hex = String::from("#");
        let data = atv.attr_value().data;
        let tag = atv.attr_value().header.tag().0 as u8;
        let _ = write!(hex, "{tag:02x}");
        let _ = write!(hex, "{:02x}", data.len().min(127));
        for b in data {
            let _ = write!(hex, "{b:02x}");
        }
        rdns.push(format!("{oid}={hex}"));
    }
    for (oid, label) in ORDER {
        let values: Vec<String> = name
            .iter_attributes()
            .filter(|a| a.attr_type().to_id_string() == *oid)
            .filter_map(|a| a.as_str().ok().map(|s| format!("{label}={}", escape_dn(s))))
            .collect();
        if !values.is_empty() {
            rdns.push(values.join("+"));
        }
    }
    rdns.reverse();
    rdns.join(",")
}

fn escape_dn(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let n = s.chars().count();
    for (i, c) in s.chars().enumerate() {
        let esc = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i == n - 1 && c == ' ');
        if esc {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Exports the TLS metrics for a connection: version, earliest expiry over
/// the presented certificates, last chain expiry (Go zero time when no chain
/// was verified) and the leaf's info.
pub fn record(
    probe: &mut Probe,
    captured: &Captured,
    version: Option<rustls::ProtocolVersion>,
    roots: &[RootInfo],
    last_chain: bool,
) {
    let infos: Vec<CertInfo> = captured
        .certs
        .iter()
        .filter_map(|c| parse_cert(c))
        .collect();
    if let Some(v) = version {
        let name = match v {
            rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2",
            rustls::ProtocolVersion::TLSv1_1 => "TLS 1.1",
            rustls::ProtocolVersion::TLSv1_0 => "TLS 1.0",
            _ => "unknown",
        };
        probe.gauge_l(
            "probe_tls_version_info",
            H_TLS_VERSION,
            &[("version", name)],
            1.0,
        );
    }
    if let Some(earliest) = infos.iter().map(|i| i.not_after).min() {
        probe.gauge(
            "probe_ssl_earliest_cert_expiry",
            H_EARLIEST,
            earliest as f64,
        );
    }
    if last_chain {
        let v = if captured.verified {
            chain_expiry(&infos, roots)
        } else {
            GO_ZERO_TIME
        };
        probe.gauge(
            "probe_ssl_last_chain_expiry_timestamp_seconds",
            H_LAST_CHAIN,
            v,
        );
    }
    if let (Some(leaf), Some(der)) = (infos.first(), captured.certs.first()) {
        let fp = Sha256::digest(der.as_ref());
        let mut hex = String::with_capacity(64);
        for b in fp {
            let _ = write!(hex, "{b:02x}");
        }
        probe.gauge_l(
            "probe_ssl_last_chain_info",
            H_CHAIN_INFO,
            &[
                ("fingerprint_sha256", &hex),
                ("issuer", &leaf.issuer),
                ("subject", &leaf.subject),
                ("subjectalternative", &leaf.sans),
            ],
            1.0,
        );
    }
}

/// Earliest NotAfter along the chain from the leaf up to a trusted root.
fn chain_expiry(infos: &[CertInfo], roots: &[RootInfo]) -> f64 {
    let Some(leaf) = infos.first() else {
        return GO_ZERO_TIME;
    };
    let mut min = leaf.not_after;
    let mut cur = leaf;
    let mut guard = 0;
    while cur.raw_issuer != cur.raw_subject && guard < 10 {
        guard += 1;
        if let Some(next) = infos[1..].iter().find(|i| i.raw_subject == cur.raw_issuer) {
            min = min.min(next.not_after);
            cur = next;
            continue;
        }
        if let Some(root) = roots.iter().find(|r| r.subject == cur.raw_issuer) {
            min = min.min(root.not_after);
        }
        break;
    }
    min as f64
}
