//! `/etc/vigie/jitsi.yml`: the scrape timeout and the three upstreams.
//!
//! ```yaml
//! timeout: 5s
//! jvb:
//!   url: http://localhost:8080/colibri/stats
//! jicofo:
//!   url: http://localhost:8888/stats
//! prosody:
//!   url: http://localhost:5280/metrics
//!   basic_auth: {username: u, password_file: /etc/vigie/prosody.pass}
//!   tls_config: {ca_file: ca.pem, server_name: xmpp.example.org}
//! ```
//!
//! Each upstream is optional; an upstream given without `url` (even `jvb:`
//! alone) uses its default URL. Relative file paths are resolved against
//! the config file's directory. Every file named is read at load time, so
//! `--config.check` and reloads report missing files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64_lite::encode as b64;
use http::header::HeaderValue;
use http::Uri;
use serde::{Deserialize, Deserializer};
use vigie_common::config::{load_yaml_file, ConfigError, PromDuration};

use crate::fetch::{self, Kind, Upstream};

/// Scrape timeout when the file gives none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Bound on the whole scrape (every upstream is fetched within it).
    #[serde(default)]
    pub timeout: Option<PromDuration>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub jvb: Option<UpstreamConfig>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub jicofo: Option<UpstreamConfig>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub prosody: Option<UpstreamConfig>,
}

/// `jvb:` with no value means "this upstream, default settings".
fn null_is_default<'de, D: Deserializer<'de>>(d: D) -> Result<Option<UpstreamConfig>, D::Error> {
    Ok(Some(
        Option::<UpstreamConfig>::deserialize(d)?.unwrap_or_default(),
    ))
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub url: Option<String>,
    pub basic_auth: Option<BasicAuth>,
    pub tls_config: Option<TlsConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM CA bundle that replaces the built-in (Mozilla) roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for mutual TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Name checked in the server's certificate (and sent as SNI).
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// The loaded, ready-to-scrape configuration.
#[derive(Debug)]
pub struct Settings {
    pub timeout: Duration,
    pub upstreams: Vec<Arc<Upstream>>,
}

/// Loads `path` (when given) and applies `--videobridge-url` (which
/// replaces `jvb.url`, or is the only upstream without a file). With
/// neither, the videobridge at its default URL is the only upstream, as
/// in systemli's exporter.
pub fn load(path: Option<&Path>, videobridge_url: Option<&str>) -> Result<Settings, ConfigError> {
    let (mut file, base) = match path {
        Some(p) => (
            load_yaml_file::<FileConfig>(p)?,
            p.parent().map(Path::to_path_buf),
        ),
        None => (
            FileConfig {
                jvb: Some(UpstreamConfig::default()),
                ..FileConfig::default()
            },
            None,
        ),
    };
    let shown = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("--videobridge-url"));
    if let Some(url) = videobridge_url {
        file.jvb.get_or_insert_with(UpstreamConfig::default).url = Some(url.to_owned());
    }
    build(&file, base.as_deref(), &shown)
}

/// Turns a parsed file into [`Settings`], reading the files it names.
pub fn build(
    file: &FileConfig,
    base: Option<&Path>,
    shown: &Path,
) -> Result<Settings, ConfigError> {
    let timeout = file.timeout.map_or(DEFAULT_TIMEOUT, |t| t.0);
    if timeout.is_zero() || timeout > Duration::from_secs(600) {
        return Err(ConfigError::invalid(
            shown,
            "timeout: must be more than 0 and at most 10m",
        ));
    }
    let mut upstreams = Vec::new();
    for (kind, cfg) in [
        (Kind::Jvb, &file.jvb),
        (Kind::Jicofo, &file.jicofo),
        (Kind::Prosody, &file.prosody),
    ] {
        if let Some(cfg) = cfg {
            let up = upstream(kind, cfg, base)
                .map_err(|m| ConfigError::invalid(shown, format!("{}: {m}", kind.name())))?;
            upstreams.push(Arc::new(up));
        }
    }
    Ok(Settings { timeout, upstreams })
}

fn resolve(base: Option<&Path>, p: &Path) -> PathBuf {
    match base {
        Some(b) if p.is_relative() => b.join(p),
        _ => p.to_path_buf(),
    }
}

fn upstream(kind: Kind, cfg: &UpstreamConfig, base: Option<&Path>) -> Result<Upstream, String> {
    let url_text = cfg.url.as_deref().unwrap_or(kind.default_url());
    let url: Uri = url_text
        .parse()
        .map_err(|e| format!("url {url_text:?}: {e}"))?;
    let https = match url.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => {
            return Err(format!(
                "url {url_text:?}: the scheme must be http or https"
            ))
        }
    };
    if url.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(format!(
            "url {url_text:?}: credentials in the URL are not supported, use basic_auth"
        ));
    }
    if url.host().is_none_or(str::is_empty) {
        return Err(format!("url {url_text:?}: no host"));
    }
    let authorization = match &cfg.basic_auth {
        Some(a) => Some(basic_auth(a, base)?),
        None => None,
    };
    let tls = cfg.tls_config.clone().unwrap_or_default();
    let client_config = tls_client_config(&tls, https, base)?;
    let server_name = match &tls.server_name {
        Some(n) => Some(
            rustls_pki_types::ServerName::try_from(n.clone())
                .map_err(|e| format!("tls_config.server_name {n:?}: {e}"))?,
        ),
        None => None,
    };
    Ok(Upstream {
        kind,
        url,
        authorization,
        client: fetch::client(client_config, server_name),
    })
}

fn basic_auth(a: &BasicAuth, base: Option<&Path>) -> Result<HeaderValue, String> {
    let password = match (&a.password, &a.password_file) {
        (Some(_), Some(_)) => {
            return Err("basic_auth: give password or password_file, not both".into())
        }
        (Some(p), None) => p.clone(),
        (None, Some(f)) => {
            let f = resolve(base, f);
            let text = std::fs::read_to_string(&f)
                .map_err(|e| format!("basic_auth.password_file {}: {e}", f.display()))?;
            text.trim_end_matches(['\n', '\r']).to_owned()
        }
        (None, None) => String::new(),
    };
    let token = b64(format!("{}:{password}", a.username).as_bytes());
    let mut v =
        HeaderValue::from_str(&format!("Basic {token}")).map_err(|e| format!("basic_auth: {e}"))?;
    v.set_sensitive(true);
    Ok(v)
}

fn read_pem_certs(path: &Path) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut data.as_slice()).collect();
    let certs = certs.map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate found", path.display()));
    }
    Ok(certs)
}

fn tls_client_config(
    tls: &TlsConfig,
    https: bool,
    base: Option<&Path>,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls_config: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca_file {
        Some(ca) => {
            let ca = resolve(base, ca);
            for cert in read_pem_certs(&ca).map_err(|e| format!("tls_config.ca_file {e}"))? {
                roots
                    .add(cert)
                    .map_err(|e| format!("tls_config.ca_file {}: {e}", ca.display()))?;
            }
        }
        // The built-in roots cost memory; plain-HTTP upstreams never use them.
        None if https => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        None => {}
    }
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(fetch::NoVerify(provider)))
    } else {
        builder.with_root_certificates(roots)
    };
    match (&tls.cert_file, &tls.key_file) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert), Some(key)) => {
            let cert = resolve(base, cert);
            let key = resolve(base, key);
            let certs = read_pem_certs(&cert).map_err(|e| format!("tls_config.cert_file {e}"))?;
            let data = std::fs::read(&key)
                .map_err(|e| format!("tls_config.key_file {}: {e}", key.display()))?;
            let key_der = rustls_pemfile::private_key(&mut data.as_slice())
                .map_err(|e| format!("tls_config.key_file {}: {e}", key.display()))?
                .ok_or_else(|| {
                    format!(
                        "tls_config.key_file {}: no PEM private key found",
                        key.display()
                    )
                })?;
            builder
                .with_client_auth_cert(certs, key_der)
                .map_err(|e| format!("tls_config: client certificate: {e}"))
        }
        _ => Err("tls_config: cert_file and key_file go together".into()),
    }
}

/// Standard base64 (RFC 4648, padded), for the basic auth header.
mod base64_lite {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(data: &[u8]) -> String {
        let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("jitsi.yml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn base64() {
        assert_eq!(b64(b""), "");
        assert_eq!(b64(b"f"), "Zg==");
        assert_eq!(b64(b"fo"), "Zm8=");
        assert_eq!(b64(b"foo"), "Zm9v");
        assert_eq!(b64(b"user:pass"), "dXNlcjpwYXNz");
    }

    #[test]
    fn defaults_and_nulls() {
        let d = tempfile::tempdir().unwrap();
        let s = load(Some(&write(d.path(), "jvb:\nprosody: {}\n")), None).unwrap();
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        let urls: Vec<String> = s.upstreams.iter().map(|u| u.url.to_string()).collect();
        assert_eq!(
            urls,
            [
                "http://localhost:8080/colibri/stats",
                "http://localhost:5280/metrics"
            ]
        );
        let s = load(None, None).unwrap();
        assert_eq!(s.upstreams.len(), 1);
        assert_eq!(s.upstreams[0].kind, Kind::Jvb);
        let s = load(None, Some("http://127.0.0.1:1/colibri/stats")).unwrap();
        assert_eq!(
            s.upstreams[0].url.to_string(),
            "http://127.0.0.1:1/colibri/stats"
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let d = tempfile::tempdir().unwrap();
        for (text, want) in [
            ("timeot: 5s\n", "unknown field"),
            ("jvb:\n  urll: x\n", "unknown field"),
            ("timeout: 0s\n", "timeout"),
            ("jvb:\n  url: ftp://x/\n", "scheme"),
            ("jvb:\n  url: http://u:p@x/\n", "basic_auth"),
            ("jvb:\n  url: \"http://\"\n", "jvb"),
            (
                "prosody:\n  basic_auth: {username: u, password_file: nope}\n",
                "password_file",
            ),
            ("prosody:\n  tls_config: {ca_file: nope.pem}\n", "ca_file"),
            (
                "prosody:\n  tls_config: {cert_file: c.pem}\n",
                "go together",
            ),
        ] {
            let err = load(Some(&write(d.path(), text)), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text}: {err}");
            assert!(err.contains("jitsi.yml"), "{err}");
        }
    }

    #[test]
    fn basic_auth_from_file_relative_to_config() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("pw"), "s3cret\n").unwrap();
        let s = load(
            Some(&write(
                d.path(),
                "timeout: 2s\njicofo:\n  basic_auth: {username: u, password_file: pw}\n",
            )),
            None,
        )
        .unwrap();
        assert_eq!(s.timeout, Duration::from_secs(2));
        let auth = s.upstreams[0].authorization.as_ref().unwrap();
        assert_eq!(
            auth.to_str().unwrap(),
            format!("Basic {}", b64(b"u:s3cret"))
        );
    }
}
