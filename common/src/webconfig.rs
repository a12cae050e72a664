//! `--web.config.file`: the exporter-toolkit YAML format (TLS, basic auth,
//! response headers), re-read when the file changes; a bad file is reported
//! and the last good one kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{parse_yaml, read_config_text, ConfigError};

/// The exporter-toolkit web config file, key for key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfigFile {
    #[serde(default)]
    pub tls_server_config: Option<TlsServerConfig>,
    #[serde(default)]
    pub http_server_config: Option<HttpServerConfig>,
    #[serde(default)]
    pub basic_auth_users: BTreeMap<String, String>,
    #[serde(default)]
    pub rate_limit: Option<serde_norway::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub cert: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub client_auth_type: Option<String>,
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub client_ca: Option<String>,
    /// `None` and `Some(vec![])` differ: as in the toolkit, an empty list
    /// still installs the check, and then no certificate matches.
    #[serde(default)]
    pub client_allowed_sans: Option<Vec<String>>,
    #[serde(default)]
    pub min_version: Option<String>,
    #[serde(default)]
    pub max_version: Option<String>,
    #[serde(default)]
    pub cipher_suites: Vec<String>,
    #[serde(default)]
    pub curve_preferences: Vec<String>,
    #[serde(default)]
    pub prefer_server_cipher_suites: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpServerConfig {
    #[serde(default)]
    pub http2: Option<bool>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Response headers the exporter-toolkit allows in `http_server_config.headers`.
const ALLOWED_HEADERS: &[&str] = &[
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "X-XSS-Protection",
    "Strict-Transport-Security",
];

/// A validated web config, ready to serve with.
pub struct WebConfig {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub http2: bool,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    users: BTreeMap<String, String>,
    auth_cache: Mutex<Vec<[u8; 32]>>,
    /// One bcrypt at a time, as in the toolkit: wrong passwords cannot burn every core.
    bcrypt_lock: Mutex<()>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("http2", &self.http2)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Bound on remembered good credentials.
const AUTH_CACHE_SIZE: usize = 256;
/// Checked for unknown users so that timing does not reveal which users exist.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        bcrypt::hash("vigie-dummy-password", bcrypt::DEFAULT_COST).unwrap_or_default()
    })
}

impl WebConfig {
    /// No TLS, no auth: what an absent `--web.config.file` means.
    pub fn plain() -> Self {
        WebConfig {
            tls: None,
            http2: true,
            headers: Vec::new(),
            users: BTreeMap::new(),
            auth_cache: Mutex::new(Vec::new()),
            bcrypt_lock: Mutex::new(()),
        }
    }

    /// Reads, parses and validates a web config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read_config_text(path)?;
        let file: WebConfigFile = if text.trim().is_empty() {
            WebConfigFile::default()
        } else {
            parse_yaml(path, &text)?
        };
        Self::build(path, file)
    }

    fn build(path: &Path, file: WebConfigFile) -> Result<Self, ConfigError> {
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let http = file.http_server_config.unwrap_or_default();
        let http2 = http.http2.unwrap_or(true);
        let mut headers = Vec::new();
        for (name, value) in &http.headers {
            let Some(canonical) = ALLOWED_HEADERS
                .iter()
                .find(|h| h.eq_ignore_ascii_case(name))
            else {
                return Err(ConfigError::invalid(
                    path,
                    format!(
                        "http_server_config.headers: header {name:?} is not allowed; allowed are {}",
                        ALLOWED_HEADERS.join(", ")
                    ),
                ));
            };
            check_header_value(path, canonical, value)?;
            let hn = http::HeaderName::from_bytes(canonical.as_bytes()).map_err(|e| {
                ConfigError::invalid(path, format!("http_server_config.headers: {name}: {e}"))
            })?;
            let hv = http::HeaderValue::from_str(value).map_err(|e| {
                ConfigError::invalid(path, format!("http_server_config.headers: {name}: {e}"))
            })?;
            headers.push((hn, hv));
        }
        if file.rate_limit.is_some() {
            return Err(ConfigError::invalid(
                path,
                "rate_limit is not supported by Vigie; use Prometheus' scrape interval or a reverse proxy",
            ));
        }
        for (user, hash) in &file.basic_auth_users {
            if user.contains(':') {
                return Err(ConfigError::invalid(
                    path,
                    format!("basic_auth_users: user name {user:?} must not contain ':'"),
                ));
            }
            if !(hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$")) {
                return Err(ConfigError::invalid(
                    path,
                    format!(
                        "basic_auth_users: the password of {user:?} is not a bcrypt hash (make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n')"
                    ),
                ));
            }
        }
        let tls = match file.tls_server_config {
            Some(t) => Some(Arc::new(build_tls(path, base, &t, http2)?)),
            None => None,
        };
        Ok(WebConfig {
            tls,
            http2,
            headers,
            users: file.basic_auth_users,
            auth_cache: Mutex::new(Vec::new()),
            bcrypt_lock: Mutex::new(()),
        })
    }

    /// True when basic auth is required.
    pub fn requires_auth(&self) -> bool {
        !self.users.is_empty()
    }

    /// True when these credentials were verified before (no bcrypt).
    pub fn is_cached(&self, authorization: Option<&str>) -> bool {
        if self.users.is_empty() {
            return true;
        }
        let Some((user, pass)) = authorization.and_then(decode_basic) else {
            return false;
        };
        match self.users.get(&user) {
            Some(hash) => self.cached(&cache_key(&user, hash, &pass)),
            None => false,
        }
    }

    /// Checks an `Authorization` header value. Runs bcrypt (blocking) only
    /// for credentials not verified before.
    pub fn check_basic_auth(&self, authorization: Option<&str>) -> bool {
        if self.users.is_empty() {
            return true;
        }
        let Some((user, pass)) = authorization.and_then(decode_basic) else {
            return false;
        };
        let hash = self.users.get(&user);
        let key = cache_key(&user, hash.map_or("", String::as_str), &pass);
        if hash.is_some() && self.cached(&key) {
            return true;
        }
        let _one_at_a_time = self.bcrypt_lock.lock();
        let ok = match hash {
            Some(h) => bcrypt::verify(&pass, h).unwrap_or(false),
            None => {
                let _ = bcrypt::verify(&pass, dummy_hash());
                false
            }
        };
        if ok {
            if let Ok(mut cache) = self.auth_cache.lock() {
                if cache.len() >= AUTH_CACHE_SIZE {
                    cache.remove(0);
                }
                cache.push(key);
            }
        }
        ok
    }

    fn cached(&self, key: &[u8; 32]) -> bool {
        let Ok(cache) = self.auth_cache.lock() else {
            return false;
        };
        // Constant time over the whole cache: no early exit on a match.
        let mut found = subtle::Choice::from(0u8);
        for k in cache.iter() {
            found |= k.ct_eq(key);
        }
        bool::from(found)
    }
}

fn check_header_value(path: &Path, name: &str, value: &str) -> Result<(), ConfigError> {
    let ok = match name {
        "X-Frame-Options" => {
            value.eq_ignore_ascii_case("deny") || value.eq_ignore_ascii_case("sameorigin")
        }
        "X-Content-Type-Options" => value.eq_ignore_ascii_case("nosniff"),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            path,
            format!("http_server_config.headers: invalid value {value:?} for {name}"),
        ))
    }
}

fn cache_key(user: &str, hash: &str, pass: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [user, hash, pass] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// Decodes `Basic base64(user:pass)`.
fn decode_basic(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64_decode(rest.trim())?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a') as u32 + 26,
            b'0'..=b'9' => (c - b'0') as u32 + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    }
    let s = s.trim_end_matches('=');
    if s.len() > 16 * 1024 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn tls_version(
    path: &Path,
    key: &str,
    v: &str,
) -> Result<&'static rustls::SupportedProtocolVersion, ConfigError> {
    match v {
        "TLS13" => Ok(&rustls::version::TLS13),
        "TLS12" => Ok(&rustls::version::TLS12),
        "TLS10" | "TLS11" => Err(ConfigError::invalid(
            path,
            format!("tls_server_config.{key}: {v} is not supported (rustls implements only TLS 1.2 and 1.3); use TLS12 or TLS13"),
        )),
        other => Err(ConfigError::invalid(
            path,
            format!("tls_server_config.{key}: unknown TLS version {other:?} (use TLS12 or TLS13)"),
        )),
    }
}

fn build_tls(
    path: &Path,
    base: &Path,
    t: &TlsServerConfig,
    http2: bool,
) -> Result<rustls::ServerConfig, ConfigError> {
    use rustls::crypto::ring as provider;
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_owned()
        } else {
            base.join(p)
        }
    };
    let cert_pem = match (&t.cert, &t.cert_file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                path,
                "tls_server_config: cert and cert_file are mutually exclusive",
            ))
        }
        (Some(inline), None) => inline.clone().into_bytes(),
        (None, Some(f)) => read_file(path, "cert_file", &resolve(f))?,
        (None, None) => {
            return Err(ConfigError::invalid(
                path,
                "tls_server_config: missing cert_file (or cert)",
            ))
        }
    };
    let key_pem = match (&t.key, &t.key_file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                path,
                "tls_server_config: key and key_file are mutually exclusive",
            ))
        }
        (Some(inline), None) => inline.clone().into_bytes(),
        (None, Some(f)) => read_file(path, "key_file", &resolve(f))?,
        (None, None) => {
            return Err(ConfigError::invalid(
                path,
                "tls_server_config: missing key_file (or key)",
            ))
        }
    };
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| ConfigError::invalid(path, format!("tls_server_config: cert: {e}")))?;
    if certs.is_empty() {
        return Err(ConfigError::invalid(
            path,
            "tls_server_config: no PEM certificate found in cert_file",
        ));
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| ConfigError::invalid(path, format!("tls_server_config: key: {e}")))?
        .ok_or_else(|| {
            ConfigError::invalid(
                path,
                "tls_server_config: no PEM private key found in key_file",
            )
        })?;

    let min = tls_version(
        path,
        "min_version",
        t.min_version.as_deref().unwrap_or("TLS12"),
    )?;
    let max = tls_version(
        path,
        "max_version",
        t.max_version.as_deref().unwrap_or("TLS13"),
    )?;
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    let rank = |v: &rustls::SupportedProtocolVersion| {
        if v.version == rustls::ProtocolVersion::TLSv1_3 {
            13
        } else {
            12
        }
    };
    for v in [&rustls::version::TLS12, &rustls::version::TLS13] {
        if rank(v) >= rank(min) && rank(v) <= rank(max) {
            versions.push(v);
        }
    }
    if versions.is_empty() {
        return Err(ConfigError::invalid(
            path,
            "tls_server_config: min_version is above max_version",
        ));
    }

    let mut prov = provider::default_provider();
    if !t.cipher_suites.is_empty() {
        let mut chosen: Vec<rustls::SupportedCipherSuite> = Vec::new();
        for name in &t.cipher_suites {
            let suite = match name.as_str() {
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
                    provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                }
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
                    provider::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
                }
                other => {
                    return Err(ConfigError::invalid(
                        path,
                        format!("tls_server_config.cipher_suites: {other} is not supported (rustls offers only ECDHE with AES-GCM or ChaCha20-Poly1305)"),
                    ))
                }
            };
            chosen.push(suite);
        }
        // As in Go, cipher_suites applies to TLS 1.2 only; TLS 1.3 suites stay.
        let tls13: Vec<_> = prov
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .cloned()
            .collect();
        chosen.extend(tls13);
        prov.cipher_suites = chosen;
    }
    if !t.curve_preferences.is_empty() {
        let mut groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup> = Vec::new();
        for name in &t.curve_preferences {
            let g: &'static dyn rustls::crypto::SupportedKxGroup = match name.as_str() {
                "X25519" => provider::kx_group::X25519,
                "CurveP256" => provider::kx_group::SECP256R1,
                "CurveP384" => provider::kx_group::SECP384R1,
                other => {
                    return Err(ConfigError::invalid(
                        path,
                        format!("tls_server_config.curve_preferences: {other} is not supported (use X25519, CurveP256 or CurveP384)"),
                    ))
                }
            };
            groups.push(g);
        }
        prov.kx_groups = groups;
    }
    let prov = Arc::new(prov);
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&prov))
        .with_protocol_versions(&versions)
        .map_err(|e| ConfigError::invalid(path, format!("tls_server_config: {e}")))?;

    let ca_pem = match (&t.client_ca, &t.client_ca_file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                path,
                "tls_server_config: client_ca and client_ca_file are mutually exclusive",
            ))
        }
        (Some(inline), None) => Some(inline.clone().into_bytes()),
        (None, Some(f)) => Some(read_file(path, "client_ca_file", &resolve(f))?),
        (None, None) => None,
    };
    let auth_type = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let roots = match &ca_pem {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_pemfile::certs(&mut &pem[..]) {
                let c = c.map_err(|e| {
                    ConfigError::invalid(path, format!("tls_server_config: client_ca: {e}"))
                })?;
                roots.add(c).map_err(|e| {
                    ConfigError::invalid(path, format!("tls_server_config: client_ca: {e}"))
                })?;
            }
            if roots.is_empty() {
                return Err(ConfigError::invalid(
                    path,
                    "tls_server_config: no certificate found in client_ca_file",
                ));
            }
            Some(Arc::new(roots))
        }
        None => None,
    };
    let verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>> = match auth_type {
        "NoClientCert" | "" => {
            if roots.is_some() {
                return Err(ConfigError::invalid(
                    path,
                    "tls_server_config: a client CA is configured without client_auth_type; set client_auth_type: RequireAndVerifyClientCert",
                ));
            }
            None
        }
        "RequestClientCert" => Some(Arc::new(AnyClientCert { mandatory: false, provider: Arc::clone(&prov) })),
        "RequireAnyClientCert" | "RequireClientCert" => {
            Some(Arc::new(AnyClientCert { mandatory: true, provider: Arc::clone(&prov) }))
        }
        "VerifyClientCertIfGiven" | "RequireAndVerifyClientCert" => {
            let Some(roots) = roots else {
                return Err(ConfigError::invalid(
                    path,
                    format!("tls_server_config: client_auth_type {auth_type} needs client_ca_file"),
                ));
            };
            let mut b = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&prov));
            if auth_type == "VerifyClientCertIfGiven" {
                b = b.allow_unauthenticated();
            }
            Some(b.build().map_err(|e| ConfigError::invalid(path, format!("tls_server_config: {e}")))?)
        }
        other => {
            return Err(ConfigError::invalid(
                path,
                format!("tls_server_config: invalid client_auth_type {other:?} (NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert)"),
            ))
        }
    };
    let verifier = match (&t.client_allowed_sans, verifier) {
        (None, v) => v,
        (Some(allowed), Some(inner))
            if matches!(
                auth_type,
                "RequireAnyClientCert" | "RequireClientCert" | "RequireAndVerifyClientCert"
            ) =>
        {
            Some(Arc::new(AllowedSans {
                inner,
                allowed: allowed.clone(),
            }) as Arc<dyn rustls::server::danger::ClientCertVerifier>)
        }
        // With NoClientCert the list would be silently ignored, and the optional
        // types let a client in with no certificate at all: nothing to match.
        (Some(_), _) => {
            return Err(ConfigError::invalid(
                path,
                format!("tls_server_config.client_allowed_sans requires client_auth_type to be one of RequireAnyClientCert or RequireAndVerifyClientCert, not {}", if auth_type.is_empty() { "NoClientCert" } else { auth_type }),
            ))
        }
    };
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(certs, key).map_err(|e| {
        ConfigError::invalid(path, format!("tls_server_config: certificate and key: {e}"))
    })?;
    cfg.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    cfg.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(cfg)
}

fn read_file(cfg: &Path, key: &str, p: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(p).map_err(|e| {
        ConfigError::invalid(
            cfg,
            format!("tls_server_config.{key}: cannot read {}: {e}", p.display()),
        )
    })
}

/// Accepts any client certificate whose handshake signature is valid, as Go's
/// RequestClientCert and RequireAnyClientCert do.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::server::danger::ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Why a client certificate failed `client_allowed_sans`.
#[derive(Debug, thiserror::Error)]
pub enum SanError {
    #[error("cannot parse the client certificate: {0}")]
    Malformed(String),
    #[error("client certificate SANs [{}] match none of tls_server_config.client_allowed_sans [{}]", .found.join(", "), .allowed.join(", "))]
    NotAllowed {
        found: Vec<String>,
        allowed: Vec<String>,
    },
}

/// The SANs of a DER certificate the toolkit compares, as Go's crypto/x509
/// spells them: DNS names, e-mail addresses, IP addresses, URIs.
pub fn certificate_sans(der: &[u8]) -> Result<Vec<String>, SanError> {
    use x509_parser::extensions::GeneralName;
    let (rest, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| SanError::Malformed(e.to_string()))?;
    // Go's x509.ParseCertificate refuses trailing bytes too.
    if !rest.is_empty() {
        return Err(SanError::Malformed(format!(
            "{} trailing bytes after the certificate",
            rest.len()
        )));
    }
    let Some(ext) = cert
        .subject_alternative_name()
        .map_err(|e| SanError::Malformed(format!("subjectAltName: {e}")))?
    else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for name in &ext.value.general_names {
        match name {
            GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                out.push((*s).to_owned())
            }
            GeneralName::IPAddress(raw) => out.push(go_ip_string(raw)?),
            // Go does not match other name types (nor the subject CN).
            _ => {}
        }
    }
    Ok(out)
}

/// Go's net.IP.String(): IPv4-mapped IPv6 addresses print as IPv4.
fn go_ip_string(raw: &[u8]) -> Result<String, SanError> {
    if let Ok(v4) = <[u8; 4]>::try_from(raw) {
        return Ok(std::net::Ipv4Addr::from(v4).to_string());
    }
    if let Ok(v6) = <[u8; 16]>::try_from(raw) {
        let v6 = std::net::Ipv6Addr::from(v6);
        return Ok(match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        });
    }
    // Go's x509 rejects the whole certificate for this.
    Err(SanError::Malformed(format!(
        "IP address SAN of length {}",
        raw.len()
    )))
}

/// Exact, case-sensitive comparison of the leaf certificate's SANs, as the
/// toolkit does: one match is enough.
pub fn check_allowed_sans(der: &[u8], allowed: &[String]) -> Result<(), SanError> {
    let found = certificate_sans(der)?;
    if found.iter().any(|s| allowed.contains(s)) {
        Ok(())
    } else {
        Err(SanError::NotAllowed {
            found,
            allowed: allowed.to_vec(),
        })
    }
}

/// `client_allowed_sans`: the chain is checked first by the verifier for the
/// configured `client_auth_type`, then the leaf's SANs against the list.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    allowed: Vec<String>,
}

impl rustls::server::danger::ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }
    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        match check_allowed_sans(end_entity.as_ref(), &self.allowed) {
            Ok(()) => Ok(verified),
            Err(e) => {
                // Handshake errors are only logged at debug level by the
                // server; a refused client deserves to be visible by default.
                tracing::warn!(err = %e, "TLS handshake refused");
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::Other(rustls::OtherError(Arc::new(e))),
                ))
            }
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }
}

/// The web config in force, re-read when its file changes (checked at most
/// once per second). A bad new file is logged and the last good one kept.
pub struct WebConfigWatcher {
    path: Option<PathBuf>,
    state: Mutex<WatchState>,
}

struct WatchState {
    current: Arc<WebConfig>,
    stamp: Option<(SystemTime, u64)>,
    checked: std::time::Instant,
    failed_stamp: Option<(SystemTime, u64)>,
}

impl WebConfigWatcher {
    /// Loads the file (if any); a bad file at start is an error.
    pub fn new(path: Option<PathBuf>) -> Result<Self, ConfigError> {
        let (current, stamp) = match &path {
            Some(p) => (WebConfig::load(p)?, file_stamp(p)),
            None => (WebConfig::plain(), None),
        };
        Ok(WebConfigWatcher {
            path,
            state: Mutex::new(WatchState {
                current: Arc::new(current),
                stamp,
                checked: std::time::Instant::now(),
                failed_stamp: None,
            }),
        })
    }

    /// The config to use now, reloading it if the file changed.
    pub fn current(&self) -> Arc<WebConfig> {
        let Ok(mut st) = self.state.lock() else {
            return Arc::new(WebConfig::plain());
        };
        if let Some(path) = &self.path {
            if st.checked.elapsed() >= std::time::Duration::from_secs(1) {
                st.checked = std::time::Instant::now();
                let stamp = file_stamp(path);
                if stamp != st.stamp && stamp != st.failed_stamp {
                    match WebConfig::load(path) {
                        Ok(cfg) => {
                            tracing::info!(file = %path.display(), "Reloaded web config file");
                            st.current = Arc::new(cfg);
                            st.stamp = stamp;
                            st.failed_stamp = None;
                        }
                        Err(e) => {
                            tracing::error!(err = %e, "Failed to reload web config file, keeping the previous one");
                            st.failed_stamp = stamp;
                        }
                    }
                }
            }
        }
        Arc::clone(&st.current)
    }

    /// Forces a re-read now (SIGHUP, /-/reload). Errors keep the old config.
    pub fn reload_now(&self) -> Result<(), ConfigError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let cfg = WebConfig::load(path)?;
        if let Ok(mut st) = self.state.lock() {
            st.current = Arc::new(cfg);
            st.stamp = file_stamp(path);
            st.failed_stamp = None;
        }
        Ok(())
    }
}

fn file_stamp(p: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str) -> Result<WebConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.yml");
        std::fs::write(&p, text).unwrap();
        WebConfig::load(&p)
    }

    #[test]
    fn base64_roundtrip() {
        assert_eq!(base64_decode("cHJvbTpzZWNyZXQ=").unwrap(), b"prom:secret");
        assert!(base64_decode("***").is_none());
        assert_eq!(
            decode_basic("Basic cHJvbTpzZWNyZXQ="),
            Some(("prom".into(), "secret".into()))
        );
        assert_eq!(decode_basic("Bearer x"), None);
    }

    #[test]
    fn basic_auth_checks_and_caches() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let cfg = load_str(&format!("basic_auth_users:\n  prom: '{hash}'\n")).unwrap();
        assert!(cfg.requires_auth());
        assert!(!cfg.check_basic_auth(None));
        assert!(!cfg.check_basic_auth(Some("Basic cHJvbTp3cm9uZw==")));
        assert!(!cfg.check_basic_auth(Some("Basic bm9ib2R5OnNlY3JldA==")));
        assert!(cfg.check_basic_auth(Some("Basic cHJvbTpzZWNyZXQ=")));
        // Second time comes from the cache.
        assert!(cfg.check_basic_auth(Some("Basic cHJvbTpzZWNyZXQ=")));
    }

    #[test]
    fn dummy_hash_is_valid_bcrypt() {
        assert!(bcrypt::verify("x", dummy_hash()).is_ok());
    }

    #[test]
    fn ip_sans_print_as_go_does() {
        assert_eq!(go_ip_string(&[10, 1, 2, 3]).unwrap(), "10.1.2.3");
        let mapped: std::net::Ipv6Addr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(go_ip_string(&mapped.octets()).unwrap(), "10.1.2.3");
        let v6: std::net::Ipv6Addr = "2001:0db8:0:0:0:0:0:0007".parse().unwrap();
        assert_eq!(go_ip_string(&v6.octets()).unwrap(), "2001:db8::7");
        assert!(matches!(
            go_ip_string(&[1, 2, 3]),
            Err(SanError::Malformed(_))
        ));
    }

    #[test]
    fn malformed_certificates_are_errors() {
        let allowed = vec!["prom.example".to_owned()];
        for der in [&[][..], &[0x30, 0x03, 0x02, 0x01, 0x00], &[0xff; 40]] {
            let err = check_allowed_sans(der, &allowed).unwrap_err();
            assert!(matches!(err, SanError::Malformed(_)), "{err}");
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["prom.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().to_vec();
        check_allowed_sans(&der, &allowed).unwrap();
        for cut in [1, der.len() / 2, der.len() - 1] {
            assert!(check_allowed_sans(&der[..cut], &allowed).is_err());
        }
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(matches!(
            check_allowed_sans(&trailing, &allowed),
            Err(SanError::Malformed(_))
        ));
        let err = check_allowed_sans(&der, &["other".to_owned()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "client certificate SANs [prom.example] match none of tls_server_config.client_allowed_sans [other]"
        );
    }

    #[test]
    fn empty_allowed_list_still_checks() {
        let file: WebConfigFile =
            serde_norway::from_str("tls_server_config:\n  client_allowed_sans: []\n").unwrap();
        let t = file.tls_server_config.unwrap();
        assert_eq!(t.client_allowed_sans, Some(Vec::new()));
        let file: WebConfigFile =
            serde_norway::from_str("tls_server_config:\n  client_allowed_sans:\n").unwrap();
        assert_eq!(file.tls_server_config.unwrap().client_allowed_sans, None);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["prom.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert!(matches!(
            check_allowed_sans(cert.der(), &[]),
            Err(SanError::NotAllowed { .. })
        ));
    }

    #[test]
    fn rejects_bad_files() {
        for (text, want) in [
            ("basic_auth_users:\n  prom: plain\n", "not a bcrypt hash"),
            (
                "http_server_config:\n  headers:\n    X-Foo: bar\n",
                "not allowed",
            ),
            (
                "http_server_config:\n  headers:\n    X-Frame-Options: maybe\n",
                "invalid value",
            ),
            (
                "tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n",
                "cannot read",
            ),
            ("tls_server_config: {}\n", "missing cert_file"),
            ("bogus: 1\n", "bogus"),
        ] {
            let err = load_str(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
