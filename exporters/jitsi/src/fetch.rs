//! Fetching one upstream document over HTTP(S): hyper's client with rustls,
//! optional basic auth, a bounded body. The caller bounds the time.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Largest upstream document read; a larger one fails that upstream.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Which Jitsi Meet server an upstream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Jvb,
    Jicofo,
    Prosody,
}

impl Kind {
    /// The `upstream` label value and config key.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Jvb => "jvb",
            Kind::Jicofo => "jicofo",
            Kind::Prosody => "prosody",
        }
    }

    pub fn default_url(self) -> &'static str {
        match self {
            Kind::Jvb => "http://localhost:8080/colibri/stats",
            Kind::Jicofo => "http://localhost:8888/stats",
            Kind::Prosody => "http://localhost:5280/metrics",
        }
    }

    fn accept(self) -> &'static str {
        match self {
            Kind::Jvb | Kind::Jicofo => "application/json",
            Kind::Prosody => "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        }
    }
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("request failed: {0}")]
    Request(String),
    #[error("unexpected status {0}")]
    Status(StatusCode),
    #[error("reading the body failed: {0}")]
    Body(String),
    #[error("body larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
}

/// A fetched document.
#[derive(Debug)]
pub struct Fetched {
    pub content_type: String,
    pub body: Bytes,
}

/// One configured upstream with its own client (TLS settings differ).
pub struct Upstream {
    pub kind: Kind,
    pub url: Uri,
    pub authorization: Option<HeaderValue>,
    pub client: HttpClient,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("basic_auth", &self.authorization.is_some())
            .finish()
    }
}

impl Upstream {
    /// GETs the document: 200 and a body within [`MAX_BODY_BYTES`], else an error.
    pub async fn fetch(&self) -> Result<Fetched, FetchError> {
        let mut req = http::Request::get(self.url.clone())
            .header(ACCEPT, self.kind.accept())
            .header(
                USER_AGENT,
                concat!("vigie-jitsi-exporter/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(auth) = &self.authorization {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        let req = req
            .body(Empty::<Bytes>::new())
            .map_err(|e| FetchError::Request(e.to_string()))?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| FetchError::Request(error_chain(&e)))?;
        if resp.status() != StatusCode::OK {
            return Err(FetchError::Status(resp.status()));
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let mut body = resp.into_body();
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| FetchError::Body(error_chain(&e)))?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > MAX_BODY_BYTES {
                    return Err(FetchError::TooLarge);
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(Fetched {
            content_type,
            body: buf.freeze(),
        })
    }
}

/// An error and its sources on one line ("client error (Connect): tcp connect error: Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}

/// Builds the client for one upstream from a rustls config (the config's
/// roots are only consulted for https URLs).
pub fn client(
    tls: rustls::ClientConfig,
    server_name: Option<rustls_pki_types::ServerName<'static>>,
) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    let builder = match server_name {
        Some(name) => {
            builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
        }
        None => builder,
    };
    let connector = builder.enable_http1().wrap_connector(http);
    // Idle connections are kept briefly: back-to-back scrapes reuse them,
    // but one idle for a whole scrape interval may be closed by the server
    // just as a request goes out (a spurious failure), so it is dropped first.
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(std::time::Duration::from_secs(5))
        .pool_max_idle_per_host(2)
        .build(connector)
}

/// A verifier for `insecure_skip_verify: true`: any certificate is
/// accepted, handshake signatures are still checked.
#[derive(Debug)]
pub struct NoVerify(pub Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
