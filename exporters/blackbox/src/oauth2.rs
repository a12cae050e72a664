//! The oauth2 client-credentials grant of prometheus/common's HTTP client
//! config (`oauth2:` in an http module), as golang.org/x/oauth2's
//! clientcredentials package performs it.
//!
//! blackbox_exporter builds a new client per probe and so fetches a token
//! for every probe; here a token is kept per module until shortly before
//! it expires, which spares the token server one request per probe.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use url::Url;

use crate::config::OAuth2;
use crate::probers::http::{
    authority, base64, connect_tunnel, lookup_any, read_secret, AbortOnDrop, Proxy, Stream,
    USER_AGENT,
};
use crate::tlsutil;

/// x/oauth2's expiryDelta: a token this close to its expiry is not used.
const EXPIRY_DELTA: Duration = Duration::from_secs(10);
/// x/oauth2 reads no more than this of a token response.
const MAX_RESPONSE: usize = 1 << 20;
/// Bounds the cache when modules come and go over reloads.
const MAX_CACHED: usize = 1024;

/// Where the client credentials go (x/oauth2 `AuthStyle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthStyle {
    /// HTTP basic auth on the token request.
    Header,
    /// `client_id` / `client_secret` in the form body.
    Params,
}

struct Cached {
    authorization: String,
    usable_until: Instant,
}

#[derive(Default)]
struct Cache {
    tokens: HashMap<String, Cached>,
    /// The style a token server accepted, so it is not probed again
    /// (x/oauth2's authStyleCache).
    styles: HashMap<String, AuthStyle>,
}

fn cache() -> MutexGuard<'static, Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    // A poisoned lock only means another probe panicked mid-update; the
    // map itself is still usable.
    CACHE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The `Authorization` value to send, and where it is cached.
pub struct Grant {
    pub authorization: String,
    key: String,
}

/// Returns the cached token of `module`, or fetches one from `token_url`.
pub async fn authorize(module: &str, cfg: &OAuth2) -> Result<Grant, String> {
    let secret = client_secret(cfg)?;
    // The secret is part of the key so that a rotated secret file (or a
    // reloaded config) fetches a new token.
    let key = format!("{module}\n{cfg:?}\n{secret}");
    if let Some(c) = cache().tokens.get(&key) {
        if Instant::now() < c.usable_until {
            return Ok(Grant {
                authorization: c.authorization.clone(),
                key,
            });
        }
    }
    let token = fetch(cfg, &secret).await?;
    let authorization = token.authorization();
    // Without expires_in the token's lifetime is unknown: fetch it again
    // next time, as blackbox_exporter does for every probe.
    if let Some(lifetime) = token.lifetime().and_then(|l| l.checked_sub(EXPIRY_DELTA)) {
        let mut c = cache();
        let now = Instant::now();
        c.tokens.retain(|_, t| t.usable_until > now);
        if c.tokens.len() < MAX_CACHED {
            c.tokens.insert(
                key.clone(),
                Cached {
                    authorization: authorization.clone(),
                    usable_until: now + lifetime,
                },
            );
        }
    }
    Ok(Grant { authorization, key })
}

/// Drops a token the target refused, so that the next probe fetches a new one.
pub fn forget(grant: &Grant) {
    cache().tokens.remove(&grant.key);
}

fn client_secret(cfg: &OAuth2) -> Result<String, String> {
    match (&cfg.client_secret_file, &cfg.client_secret) {
        (Some(f), _) if !f.is_empty() => {
            read_secret(f).map_err(|e| format!("oauth2: client_secret_file: {e}"))
        }
        (_, Some(s)) => Ok(s.0.clone()),
        _ => Ok(String::new()),
    }
}

/// x/oauth2's AuthStyleAutoDetect: basic auth first; when that request
/// fails in any way, the credentials in the body; the style that worked is
/// remembered per token URL and client.
async fn fetch(cfg: &OAuth2, secret: &str) -> Result<Token, String> {
    let form = grant_form(cfg)?;
    let style_key = format!("{}\n{}", cfg.token_url, cfg.client_id);
    let known = cache().styles.get(&style_key).copied();
    let styles = match known {
        Some(s) => vec![s],
        None => vec![AuthStyle::Header, AuthStyle::Params],
    };
    let mut last = String::new();
    for style in styles {
        match request_token(cfg, secret, &form, style).await {
            Ok(t) => {
                if known.is_none() {
                    let mut c = cache();
                    if c.styles.len() < MAX_CACHED {
                        c.styles.insert(style_key, style);
                    }
                }
                return Ok(t);
            }
            // x/oauth2 reports the error of the last attempt.
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The form fields without the client credentials (sorted, as Go's
/// `url.Values.Encode` writes them).
fn grant_form(cfg: &OAuth2) -> Result<BTreeMap<String, String>, String> {
    let mut v = BTreeMap::new();
    v.insert("grant_type".to_owned(), "client_credentials".to_owned());
    if !cfg.scopes.is_empty() {
        v.insert("scope".to_owned(), cfg.scopes.join(" "));
    }
    for (k, p) in &cfg.endpoint_params {
        // grant_type may be overridden for servers that want another value.
        if v.contains_key(k) && k != "grant_type" {
            return Err(format!("oauth2: cannot overwrite parameter {k:?}"));
        }
        v.insert(k.clone(), p.clone());
    }
    Ok(v)
}

async fn request_token(
    cfg: &OAuth2,
    secret: &str,
    form: &BTreeMap<String, String>,
    style: AuthStyle,
) -> Result<Token, String> {
    let mut fields = form.clone();
    let basic = match style {
        AuthStyle::Header => Some(format!(
            "Basic {}",
            base64(format!("{}:{}", query_escape(&cfg.client_id), query_escape(secret)).as_bytes())
        )),
        AuthStyle::Params => {
            if !cfg.client_id.is_empty() {
                fields.insert("client_id".to_owned(), cfg.client_id.clone());
            }
            if !secret.is_empty() {
                fields.insert("client_secret".to_owned(), secret.to_owned());
            }
            None
        }
    };
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&fields)
        .finish();
    let resp = post_form(cfg, body, basic.as_deref())
        .await
        .map_err(|e| format!("Post {:?}: {e}", cfg.token_url))?;
    parse_token(&resp)
}

/// Go's `url.QueryEscape`, which x/oauth2 applies to basic auth credentials.
fn query_escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

struct RawResponse {
    status: http::StatusCode,
    content_type: String,
    body: Vec<u8>,
}

/// Opens the connection to the token server: direct, or through
/// `proxy_url` (absolute-form for http, a CONNECT tunnel for https).
/// Returns the proxy when the request goes to it in absolute form.
async fn open(
    cfg: &OAuth2,
    url: &Url,
    https: bool,
) -> Result<(Box<dyn Stream>, Option<Proxy>), String> {
    let host = url.host_str().unwrap_or_default();
    let port = url
        .port_or_known_default()
        .unwrap_or(if https { 443 } else { 80 });
    let proxy = match cfg.proxy_url.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(Proxy::parse(p)?),
        None => None,
    };
    let tcp = match &proxy {
        None => {
            let ip = lookup_any(host, true)
                .await
                .map_err(|e| format!("dial tcp: lookup {host}: {e}"))?;
            crate::probers::dial(ip, port, None).await?
        }
        Some(p) => {
            let phost = p.url.host_str().unwrap_or_default();
            let pip = lookup_any(phost, true)
                .await
                .map_err(|e| format!("proxyconnect tcp: lookup {phost}: {e}"))?;
            let mut s =
                crate::probers::dial(pip, p.url.port_or_known_default().unwrap_or(80), None)
                    .await
                    .map_err(|e| format!("proxyconnect tcp: {e}"))?;
            if https {
                connect_tunnel(
                    &mut s,
                    &authority_with_port(url, port),
                    &[],
                    p.auth.as_deref(),
                )
                .await
                .map_err(|e| format!("proxyconnect tcp: {e}"))?;
            }
            s
        }
    };
    if !https {
        return Ok((Box::new(tcp), proxy));
    }
    let tls = cfg.tls_config.as_ref();
    let client = tlsutil::client(tls, &[b"http/1.1"])?;
    let name = tlsutil::server_name(tls, host)?;
    let s = tokio_rustls::TlsConnector::from(client.config)
        .connect(name.clone(), tcp)
        .await
        .map_err(|e| tlsutil::describe_error(&e, &name.to_str()))?;
    Ok((Box::new(s), None))
}

fn authority_with_port(url: &Url, port: u16) -> String {
    let h = url.host_str().unwrap_or_default();
    if h.contains(':') && !h.starts_with('[') {
        format!("[{h}]:{port}")
    } else {
        format!("{h}:{port}")
    }
}

async fn post_form(cfg: &OAuth2, body: String, basic: Option<&str>) -> Result<RawResponse, String> {
    let url = Url::parse(&cfg.token_url).map_err(|e| format!("invalid token_url: {e}"))?;
    let https = match url.scheme() {
        "https" => true,
        "http" => false,
        s => return Err(format!("unsupported protocol scheme {s:?}")),
    };
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no Host in request URL".to_owned());
    }
    let (stream, via) = open(cfg, &url, https).await?;
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .handshake::<_, Full<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let _driver = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let uri = if via.is_some() {
        url.as_str().to_owned()
    } else {
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    };
    let mut req = http::Request::builder()
        .method(http::Method::POST)
        .uri(uri)
        .header(http::header::HOST, authority(&url))
        .header(http::header::USER_AGENT, USER_AGENT)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::CONNECTION, "close");
    if let Some(b) = basic {
        req = req.header(http::header::AUTHORIZATION, b);
    }
    if let Some(a) = via.as_ref().and_then(|p| p.auth.as_deref()) {
        req = req.header(http::header::PROXY_AUTHORIZATION, a);
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let (parts, mut incoming) = resp.into_parts();
    let mut data = Vec::new();
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Ok(chunk) = frame.into_data() {
            let room = MAX_RESPONSE.saturating_sub(data.len());
            data.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if room <= chunk.len() {
                break;
            }
        }
    }
    Ok(RawResponse {
        status: parts.status,
        content_type: parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body: data,
    })
}

#[derive(Debug, Default, Deserialize)]
struct Token {
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    token_type: String,
    /// A number, or a string holding one (both occur; x/oauth2 takes both).
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

impl Token {
    /// x/oauth2's `Token.Type`: canonical case for the known types, Bearer when empty.
    fn kind(&self) -> &str {
        let t = self.token_type.as_str();
        if t.is_empty() || t.eq_ignore_ascii_case("bearer") {
            "Bearer"
        } else if t.eq_ignore_ascii_case("mac") {
            "MAC"
        } else if t.eq_ignore_ascii_case("basic") {
            "Basic"
        } else {
            t
        }
    }

    fn authorization(&self) -> String {
        format!("{} {}", self.kind(), self.access_token)
    }

    fn lifetime(&self) -> Option<Duration> {
        let secs = match self.expires_in.as_ref()? {
            serde_json::Value::Number(n) => n.as_f64()?,
            serde_json::Value::String(s) => s.trim().parse().ok()?,
            _ => return None,
        };
        (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)))
    }
}

fn parse_token(resp: &RawResponse) -> Result<Token, String> {
    if !resp.status.is_success() {
        return Err(format!(
            "oauth2: cannot fetch token: {} {}\nResponse: {}",
            resp.status.as_str(),
            resp.status.canonical_reason().unwrap_or(""),
            String::from_utf8_lossy(&resp.body)
        ));
    }
    let media = resp
        .content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let token = match media.as_str() {
        "application/x-www-form-urlencoded" | "text/plain" => token_from_form(&resp.body),
        _ => serde_json::from_slice::<Token>(&resp.body)
            .map_err(|e| format!("oauth2: cannot parse json: {e}"))?,
    };
    if token.access_token.is_empty() {
        return Err("oauth2: server response missing access_token".to_owned());
    }
    Ok(token)
}

fn token_from_form(body: &[u8]) -> Token {
    let mut t = Token::default();
    for (k, v) in url::form_urlencoded::parse(body) {
        match k.as_ref() {
            "access_token" => t.access_token = v.into_owned(),
            "token_type" => t.token_type = v.into_owned(),
            "expires_in" => t.expires_in = Some(serde_json::Value::String(v.into_owned())),
            _ => {}
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(status: u16, ct: &str, body: &str) -> RawResponse {
        RawResponse {
            status: http::StatusCode::from_u16(status).unwrap_or_default(),
            content_type: ct.to_owned(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn token_responses() {
        let t = parse_token(&raw(
            200,
            "application/json",
            r#"{"access_token":"abc","token_type":"bearer","expires_in":3600}"#,
        ))
        .ok();
        assert_eq!(
            t.as_ref().map(Token::authorization).as_deref(),
            Some("Bearer abc")
        );
        assert_eq!(
            t.and_then(|t| t.lifetime()),
            Some(Duration::from_secs(3600))
        );
        let t = parse_token(&raw(
            200,
            "text/plain; charset=utf-8",
            "access_token=x%20y&token_type=MAC&expires_in=60",
        ))
        .ok();
        assert_eq!(
            t.as_ref().map(Token::authorization).as_deref(),
            Some("MAC x y")
        );
        assert_eq!(t.and_then(|t| t.lifetime()), Some(Duration::from_secs(60)));
        let t = parse_token(&raw(200, "", r#"{"access_token":"a","expires_in":"90"}"#)).ok();
        assert_eq!(t.and_then(|t| t.lifetime()), Some(Duration::from_secs(90)));
        let t = parse_token(&raw(200, "", r#"{"access_token":"a"}"#)).ok();
        assert_eq!(t.and_then(|t| t.lifetime()), None);
        assert_eq!(
            parse_token(&raw(200, "", r#"{"token_type":"bearer"}"#))
                .err()
                .as_deref(),
            Some("oauth2: server response missing access_token")
        );
        assert!(parse_token(&raw(200, "", "not json")).is_err());
        assert_eq!(
            parse_token(&raw(401, "", "denied")).err().as_deref(),
            Some("oauth2: cannot fetch token: 401 Unauthorized\nResponse: denied")
        );
    }

    #[test]
    fn form_fields() {
        let mut cfg = OAuth2 {
            client_id: "id".into(),
            scopes: vec!["a".into(), "b".into()],
            ..OAuth2::default()
        };
        cfg.endpoint_params.insert("audience".into(), "x".into());
        let f = grant_form(&cfg).unwrap_or_default();
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&f)
            .finish();
        assert_eq!(body, "audience=x&grant_type=client_credentials&scope=a+b");
        cfg.endpoint_params.insert("scope".into(), "c".into());
        assert!(grant_form(&cfg).is_err());
        cfg.endpoint_params.clear();
        cfg.endpoint_params
            .insert("grant_type".into(), "other".into());
        assert_eq!(
            grant_form(&cfg)
                .ok()
                .and_then(|f| f.get("grant_type").cloned())
                .as_deref(),
            Some("other")
        );
        assert_eq!(query_escape("a b&c"), "a+b%26c");
    }
}
