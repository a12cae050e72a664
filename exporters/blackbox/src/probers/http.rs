//! The http prober. It dials, handshakes and reads on its own connection
//! for each hop (no pooled client), so it times the phases itself:
//! resolve, connect, tls, processing (request written -> response head) and
//! transfer (head -> end of body), summed over redirects as blackbox does.

use std::io::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use url::Url;

use crate::config::{ip_protocol, HttpProbe};
use crate::exporter::ProbeParams;
use crate::probe::Probe;
use crate::resolve::{bare_host, choose};
use crate::tlsutil;

const CALLER: &str = "http.rs";
pub const USER_AGENT: &str = "Blackbox Exporter/0.23.0 (Vigie)";
const MAX_REDIRECTS: u32 = 10;

const H_PHASE: &str = "Duration of http request by phase, summed over all redirects";
const H_CLEN: &str = "Length of http content response";
const H_BLEN: &str = "Length of uncompressed response body";
const H_REDIR: &str = "The number of redirects";
const H_SSL: &str = "Indicates if SSL was used for the final redirect";
const H_STATUS: &str = "Response HTTP status code";
const H_VERSION: &str = "Returns the version of HTTP of the probe response";
const H_REGEX: &str = "Indicates if probe failed due to regex";
const H_LASTMOD: &str = "Returns the Last-Modified HTTP response header in unixtime";

pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Aborts the spawned connection driver when the hop is over (or cancelled).
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn phase(probe: &mut Probe, name: &str, d: Duration) {
    probe.add_l(
        "probe_http_duration_seconds",
        H_PHASE,
        &[("phase", name)],
        d.as_secs_f64(),
    );
}

/// What the final response gave.
struct Final {
    status: u16,
    version: http::Version,
    headers: http::HeaderMap,
    tls: bool,
    body_len: u64,
    body: Option<Vec<u8>>,
    /// The body could not be read to its end (metrics are still exported).
    read_error: Option<String>,
}

pub async fn probe(
    probe: &mut Probe,
    cfg: &HttpProbe,
    params: &ProbeParams,
    deadline: Instant,
) -> bool {
    let proxy = match cfg.proxy_url.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => match Proxy::parse(p) {
            Ok(p) => Some(p),
            Err(e) => {
                probe.error(CALLER, "Error generating HTTP client", &[("err", &e)]);
                return probe.fail("connect", e);
            }
        },
        None => None,
    };
    let skip_resolve = cfg.skip_resolve_phase_with_proxy && proxy.is_some();
    for (n, h) in [
        ("probe_http_content_length", H_CLEN),
        ("probe_http_uncompressed_body_length", H_BLEN),
        ("probe_http_redirects", H_REDIR),
        ("probe_http_ssl", H_SSL),
        ("probe_http_status_code", H_STATUS),
        ("probe_http_version", H_VERSION),
        ("probe_failed_due_to_regex", H_REGEX),
    ] {
        probe.gauge(n, h, 0.0);
    }
    let raw = probe.target.clone();
    let with_scheme = if raw.contains("://") {
        raw
    } else {
        format!("http://{raw}")
    };
    let mut url = match Url::parse(&with_scheme) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
        Ok(u) => {
            let e = format!(
                "unsupported protocol scheme {:?} or missing host",
                u.scheme()
            );
            probe.error(CALLER, "Could not parse target URL", &[("err", &e)]);
            return probe.fail("resolve", e);
        }
        Err(e) => {
            let e = format!("parse {with_scheme:?}: {e}");
            probe.error(CALLER, "Could not parse target URL", &[("err", &e)]);
            return probe.fail("resolve", e);
        }
    };
    let host = url.host_str().unwrap_or_default().to_owned();
    let mut ip = if skip_resolve {
        // The proxy resolves the name: it may know names the prober does not.
        None
    } else {
        match choose(
            probe,
            CALLER,
            &host,
            ip_protocol(&cfg.preferred_ip_protocol),
            cfg.ip_protocol_fallback,
        )
        .await
        {
            Ok((a, lookup)) => {
                phase(probe, "resolve", lookup);
                Some(a)
            }
            Err(e) => {
                phase(probe, "resolve", Duration::ZERO);
                probe.error(CALLER, "Error resolving address", &[("err", &e)]);
                return probe.fail("resolve", e);
            }
        }
    };
    // As 0.23: the other phases exist once the target is resolved; with the
    // resolve phase skipped it has no sample unless a redirect adds one.
    for p in ["connect", "tls", "processing", "transfer"] {
        probe.gauge_l("probe_http_duration_seconds", H_PHASE, &[("phase", p)], 0.0);
    }

    let alpn: Vec<&[u8]> = if cfg.enable_http2 {
        vec![b"h2", b"http/1.1"]
    } else {
        vec![b"http/1.1"]
    };
    // Built at the first https hop: plain http probes never pay for it.
    let mut client: Option<tlsutil::Client> = None;
    let (mut headers, connect_headers) =
        match request_headers(cfg).and_then(|h| Ok((h, proxy_connect_headers(cfg)?))) {
            Ok(h) => h,
            Err(e) => {
                probe.error(CALLER, "Error creating request", &[("err", &e)]);
                return probe.fail("http", e);
            }
        };
    let host_override = params.hostname.clone().or_else(|| {
        cfg.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.clone())
    });
    let limit = cfg
        .body_size_limit
        .map(|b| b.0)
        .filter(|b| *b > 0)
        .or(Some(params.default_body_limit).filter(|b| *b > 0));
    let keep_body = !cfg.fail_if_body_matches_regexp.is_empty()
        || !cfg.fail_if_body_not_matches_regexp.is_empty();
    let mut method = if cfg.method.is_empty() {
        "GET".to_owned()
    } else {
        cfg.method.to_ascii_uppercase()
    };
    let grant = match &cfg.oauth2 {
        Some(o) => match oauth2_grant(probe, o, deadline, &mut headers).await {
            Ok(g) => Some(g),
            Err(e) => {
                let full = format!("{} {:?}: {e}", title(&method), url.as_str());
                probe.error(CALLER, "Error for HTTP request", &[("err", &full)]);
                return probe.fail("http", e);
            }
        },
        None => None,
    };
    let mut body = cfg.body.clone();
    let mut redirects = 0u32;
    let mut first = true;
    let mut referer: Option<String> = None;
    let fin = loop {
        let hop_host = url.host_str().unwrap_or_default().to_owned();
        if !first {
            if !params.allow.allows_host(&hop_host) {
                let e = format!("redirect to {hop_host} is not allowed by --probe.allow-target");
                probe.error(CALLER, "Error for HTTP request", &[("err", &e)]);
                return probe.fail("http", e);
            }
            if proxy.is_some() {
                // Go dials the proxy, never the redirect host: nothing to
                // resolve, but the hop still adds to the phase.
                phase(probe, "resolve", Duration::ZERO);
            } else if !hop_host.eq_ignore_ascii_case(&host) {
                let t = StdInstant::now();
                match lookup_any(&hop_host, ip.is_none_or(|a| a.is_ipv4())).await {
                    Ok(a) => ip = Some(a),
                    Err(e) => {
                        phase(probe, "resolve", t.elapsed());
                        let e = format!("Get {:?}: dial tcp: lookup {hop_host}: {e}", url.as_str());
                        probe.error(CALLER, "Error for HTTP request", &[("err", &e)]);
                        return probe.fail("resolve", e);
                    }
                }
                phase(probe, "resolve", t.elapsed());
            }
        }
        let host_header = match (&host_override, first) {
            (Some(h), true) => h.clone(),
            _ => authority(&url),
        };
        if url.scheme() == "https" && client.is_none() {
            match tlsutil::client(cfg.tls_config.as_ref(), &alpn) {
                Ok(c) => client = Some(c),
                Err(e) => {
                    probe.error(CALLER, "Error generating HTTP client", &[("err", &e)]);
                    return probe.fail("tls", e);
                }
            }
        }
        probe.info(
            CALLER,
            "Making HTTP request",
            &[("url", &url.as_str()), ("host", &host_header)],
        );
        let hop = Hop {
            url: &url,
            ip,
            method: &method,
            body: &body,
            headers: &headers,
            connect_headers: &connect_headers,
            host_header: &host_header,
            sni_host: if first {
                host_override.as_deref().map(strip_port)
            } else {
                None
            },
            client: client.as_ref(),
            proxy: proxy.as_ref(),
            resolved: first && !skip_resolve,
            referer: referer.as_deref(),
            cfg,
            limit,
            keep_body,
        };
        let res = match do_hop(probe, &hop).await {
            Ok(r) => r,
            Err((phase_name, e)) => {
                let full = format!("{} {:?}: {e}", title(&method), url.as_str());
                probe.error(CALLER, "Error for HTTP request", &[("err", &full)]);
                probe.gauge("probe_http_redirects", H_REDIR, f64::from(redirects));
                return probe.fail(phase_name, e);
            }
        };
        let sent = sent_url(&hop);
        first = false;
        let location = res
            .headers
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if matches!(res.status, 301 | 302 | 303 | 307 | 308)
            && location.is_some()
            && res.read_error.is_none()
        {
            redirects += 1;
            probe.gauge("probe_http_redirects", H_REDIR, f64::from(redirects));
            if !cfg.follow() {
                break res;
            }
            if redirects > MAX_REDIRECTS {
                let e = format!("Get {:?}: stopped after 10 redirects", url.as_str());
                probe.error(CALLER, "Error for HTTP request", &[("err", &e)]);
                // Go keeps the last response's status line.
                probe.gauge("probe_http_status_code", H_STATUS, f64::from(res.status));
                probe.gauge(
                    "probe_http_version",
                    H_VERSION,
                    version_number(res.version).0,
                );
                return probe.fail("http", "stopped after 10 redirects");
            }
            let loc = location.unwrap_or_default();
            match url.join(&loc) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {
                    referer = referer_for(&sent, &u);
                    url = u;
                }
                _ => {
                    let e = format!("failed to parse Location header {loc:?}");
                    probe.error(CALLER, "Error for HTTP request", &[("err", &e)]);
                    return probe.fail("http", e);
                }
            }
            probe.info(CALLER, "Received redirect", &[("location", &url.as_str())]);
            if res.status == 303 || ((res.status == 301 || res.status == 302) && method == "POST") {
                if method != "HEAD" {
                    method = "GET".to_owned();
                }
                body.clear();
            }
            continue;
        }
        break res;
    };
    if let (Some(g), 401) = (&grant, fin.status) {
        crate::oauth2::forget(g);
    }
    finish(probe, cfg, fin)
}

/// Fetches (or reuses) the oauth2 token within the probe's deadline and
/// puts it in `headers`, replacing any configured Authorization.
async fn oauth2_grant(
    probe: &mut Probe,
    cfg: &crate::config::OAuth2,
    deadline: Instant,
    headers: &mut Vec<(http::HeaderName, http::HeaderValue)>,
) -> Result<crate::oauth2::Grant, String> {
    probe.phase = "http";
    let grant = tokio::time::timeout_at(deadline, crate::oauth2::authorize(&probe.module, cfg))
        .await
        .map_err(|_| "oauth2: token request: context deadline exceeded".to_owned())??;
    let value = http::HeaderValue::from_str(&grant.authorization)
        .map_err(|_| "oauth2: the token is not a valid header value".to_owned())?;
    headers.retain(|(k, _)| k != http::header::AUTHORIZATION);
    headers.push((http::header::AUTHORIZATION, value));
    probe.debug(
        CALLER,
        "Got an oauth2 token",
        &[("token_url", &cfg.token_url)],
    );
    Ok(grant)
}

/// Judges the final response and exports its metrics.
fn finish(probe: &mut Probe, cfg: &HttpProbe, fin: Final) -> bool {
    probe.info(
        CALLER,
        "Received HTTP response",
        &[("status_code", &fin.status)],
    );
    probe.gauge("probe_http_status_code", H_STATUS, f64::from(fin.status));
    let clen = content_length(&fin.headers);
    probe.gauge("probe_http_content_length", H_CLEN, clen);
    probe.gauge(
        "probe_http_uncompressed_body_length",
        H_BLEN,
        fin.body_len as f64,
    );
    let (vnum, vname) = version_number(fin.version);
    probe.gauge("probe_http_version", H_VERSION, vnum);
    probe.gauge("probe_http_ssl", H_SSL, if fin.tls { 1.0 } else { 0.0 });
    if let Some(lm) = fin
        .headers
        .get(http::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(ts) = parse_http_date(lm) {
            probe.gauge(
                "probe_http_last_modified_timestamp_seconds",
                H_LASTMOD,
                ts as f64,
            );
        }
    }

    if !fin.tls {
        // TLS metrics describe the final response only (an https hop may have redirected to http).
        for f in [
            "probe_ssl_earliest_cert_expiry",
            "probe_ssl_last_chain_expiry_timestamp_seconds",
            "probe_ssl_last_chain_info",
            "probe_tls_version_info",
        ] {
            probe.remove(f);
        }
    }
    if let Some(e) = &fin.read_error {
        return probe.fail("http", format!("reading body: {e}"));
    }
    let valid = if cfg.valid_status_codes.is_empty() {
        (200..300).contains(&fin.status)
    } else {
        cfg.valid_status_codes.contains(&fin.status)
    };
    if !valid {
        probe.info(
            CALLER,
            "Invalid HTTP response status code, wanted 2xx",
            &[("status_code", &fin.status)],
        );
        return probe.fail("http", format!("invalid status code {}", fin.status));
    }
    if !headers_ok(probe, cfg, &fin.headers) {
        probe.gauge("probe_failed_due_to_regex", H_REGEX, 1.0);
        return false;
    }
    if let Some(body) = &fin.body {
        let text = String::from_utf8_lossy(body);
        for re in &cfg.fail_if_body_matches_regexp {
            if re.re.is_match(&text) {
                probe.error(
                    CALLER,
                    "Body matched regular expression",
                    &[("regexp", &re.source)],
                );
                probe.gauge("probe_failed_due_to_regex", H_REGEX, 1.0);
                return probe.fail("regex", format!("body matched {}", re.source));
            }
        }
        for re in &cfg.fail_if_body_not_matches_regexp {
            if !re.re.is_match(&text) {
                probe.error(
                    CALLER,
                    "Body did not match regular expression",
                    &[("regexp", &re.source)],
                );
                probe.gauge("probe_failed_due_to_regex", H_REGEX, 1.0);
                return probe.fail("regex", format!("body did not match {}", re.source));
            }
        }
    }
    if !fin.tls && cfg.fail_if_not_ssl {
        probe.error(CALLER, "Final request was not over SSL", &[]);
        return probe.fail("http", "final request was not over SSL");
    }
    if fin.tls && cfg.fail_if_ssl {
        probe.error(CALLER, "Final request was over SSL", &[]);
        return probe.fail("http", "final request was over SSL");
    }
    if !cfg.valid_http_versions.is_empty() && !cfg.valid_http_versions.iter().any(|v| v == vname) {
        probe.error(
            CALLER,
            "Invalid HTTP version number",
            &[("version", &vname)],
        );
        return probe.fail("http", format!("invalid HTTP version {vname}"));
    }
    true
}

/// `Content-Length`, or -1 when absent (Go's `resp.ContentLength`).
fn content_length(h: &http::HeaderMap) -> f64 {
    h.get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(-1.0)
}

fn version_number(v: http::Version) -> (f64, &'static str) {
    match v {
        http::Version::HTTP_10 => (1.0, "HTTP/1.0"),
        http::Version::HTTP_11 => (1.1, "HTTP/1.1"),
        http::Version::HTTP_2 => (2.0, "HTTP/2.0"),
        http::Version::HTTP_3 => (3.0, "HTTP/3.0"),
        _ => (0.0, "HTTP/0.9"),
    }
}

fn headers_ok(probe: &mut Probe, cfg: &HttpProbe, headers: &http::HeaderMap) -> bool {
    for m in &cfg.fail_if_header_matches {
        let values: Vec<&str> = headers
            .get_all(m.header.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            if m.allow_missing {
                continue;
            }
            probe.error(CALLER, "Missing required header", &[("header", &m.header)]);
            return probe.fail("regex", format!("missing header {}", m.header));
        }
        if values.iter().any(|v| m.regexp.re.is_match(v)) {
            probe.error(
                CALLER,
                "Header matched regular expression",
                &[("header", &m.header), ("regexp", &m.regexp.source)],
            );
            return probe.fail(
                "regex",
                format!("header {} matched {}", m.header, m.regexp.source),
            );
        }
    }
    for m in &cfg.fail_if_header_not_matches {
        let values: Vec<&str> = headers
            .get_all(m.header.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            if m.allow_missing {
                continue;
            }
            probe.error(CALLER, "Missing required header", &[("header", &m.header)]);
            return probe.fail("regex", format!("missing header {}", m.header));
        }
        if !values.iter().any(|v| m.regexp.re.is_match(v)) {
            probe.error(
                CALLER,
                "Header did not match regular expression",
                &[("header", &m.header), ("regexp", &m.regexp.source)],
            );
            return probe.fail(
                "regex",
                format!("header {} did not match {}", m.header, m.regexp.source),
            );
        }
    }
    true
}

struct Hop<'a> {
    url: &'a Url,
    /// None only when the resolve phase is skipped for the proxy.
    ip: Option<IpAddr>,
    method: &'a str,
    body: &'a str,
    headers: &'a [(http::HeaderName, http::HeaderValue)],
    connect_headers: &'a [ConnectHeader],
    host_header: &'a str,
    sni_host: Option<&'a str>,
    client: Option<&'a tlsutil::Client>,
    proxy: Option<&'a Proxy>,
    /// The prober resolved this hop's host itself (the first hop): as in
    /// Go, where the target URL then holds the IP, a proxy is asked for
    /// the IP, not the name.
    resolved: bool,
    /// The previous hop's URL, for a redirected request.
    referer: Option<&'a str>,
    cfg: &'a HttpProbe,
    limit: Option<u64>,
    keep_body: bool,
}

type HopError = (&'static str, String);

/// One request/response on a fresh connection.
async fn do_hop(probe: &mut Probe, hop: &Hop<'_>) -> Result<Final, HopError> {
    let https = hop.url.scheme() == "https";
    let port = hop
        .url
        .port_or_known_default()
        .unwrap_or(if https { 443 } else { 80 });
    let proxy = hop.proxy;
    probe.phase = "connect";
    let t_connect = StdInstant::now();
    let mut stream: Box<dyn Stream> = match proxy {
        None => {
            let Some(ip) = hop.ip else {
                return Err(("connect", "no address to dial".to_owned()));
            };
            Box::new(
                super::dial(ip, port, None)
                    .await
                    .map_err(|e| ("connect", e))?,
            )
        }
        Some(p) => {
            let phost = p.url.host_str().unwrap_or_default().to_owned();
            let pport = p.url.port_or_known_default().unwrap_or(80);
            let pip = lookup_any(&phost, true)
                .await
                .map_err(|e| ("connect", format!("proxy lookup {phost}: {e}")))?;
            let mut s = super::dial(pip, pport, None)
                .await
                .map_err(|e| ("connect", format!("proxyconnect tcp: {e}")))?;
            if https {
                let auth = p.auth.as_deref();
                connect_tunnel(
                    &mut s,
                    &proxy_authority(hop, port),
                    hop.connect_headers,
                    auth,
                )
                .await
                .map_err(|e| ("connect", format!("proxyconnect tcp: {e}")))?;
            }
            Box::new(s)
        }
    };
    phase(probe, "connect", t_connect.elapsed());
    let mut h2 = false;
    if https {
        probe.phase = "tls";
        let t_tls = StdInstant::now();
        let name_host = hop
            .sni_host
            .unwrap_or_else(|| hop.url.host_str().unwrap_or_default());
        let name =
            tlsutil::server_name(hop.cfg.tls_config.as_ref(), name_host).map_err(|e| ("tls", e))?;
        let Some(client) = hop.client else {
            return Err(("tls", "no TLS client".to_owned()));
        };
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&client.config));
        match connector.connect(name.clone(), stream).await {
            Ok(s) => {
                phase(probe, "tls", t_tls.elapsed());
                let (_, conn) = s.get_ref();
                h2 = conn.alpn_protocol() == Some(b"h2");
                let version = conn.protocol_version();
                if let Ok(c) = client.verifier.captured.lock() {
                    // Recorded per hop; the final hop's values win, as in Go.
                    probe.remove("probe_tls_version_info");
                    probe.remove("probe_ssl_last_chain_info");
                    tlsutil::record(probe, &c, version, &client.verifier.roots, true);
                }
                stream = Box::new(s);
            }
            Err(e) => {
                // Vigie addition: certificate metrics even when verification fails.
                if let Ok(c) = client.verifier.captured.lock() {
                    tlsutil::record(probe, &c, None, &client.verifier.roots, false);
                }
                return Err(("tls", tlsutil::describe_error(&e, &name.to_str())));
            }
        }
    }
    probe.phase = "http";
    let t_req = StdInstant::now();
    let io = TokioIo::new(stream);
    let (mut sender, driver) = if h2 {
        let (s, c) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| ("http", format!("http2: {e}")))?;
        (
            Sender::H2(s),
            AbortOnDrop(tokio::spawn(async move {
                let _ = c.await;
            })),
        )
    } else {
        let (s, c) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(1 << 20)
            // Header names as Go writes them (some servers are picky).
            .title_case_headers(true)
            .handshake(io)
            .await
            .map_err(|e| ("http", e.to_string()))?;
        (
            Sender::H1(s),
            AbortOnDrop(tokio::spawn(async move {
                let _ = c.await;
            })),
        )
    };
    let req = build_request(hop, h2, proxy.filter(|_| !https)).map_err(|e| ("http", e))?;
    let resp = sender
        .send(req)
        .await
        .map_err(|e| ("http", hyper_err(&e)))?;
    phase(probe, "processing", t_req.elapsed());
    let t_body = StdInstant::now();
    let (parts, mut incoming) = resp.into_parts();
    let mut sink = Sink::new(hop.limit, hop.keep_body);
    let decoder = hop.cfg.compression.as_str();
    let mut dec = Decoder::new(decoder, &mut sink).map_err(|e| ("http", e))?;
    let mut read_err = None;
    while let Some(frame) = incoming.frame().await {
        match frame {
            Ok(f) => {
                if let Ok(data) = f.into_data() {
                    if let Err(e) = dec.write(&data) {
                        read_err = Some(e);
                        break;
                    }
                }
            }
            Err(e) => {
                read_err = Some(hyper_err(&e));
                break;
            }
        }
    }
    if read_err.is_none() {
        if let Err(e) = dec.finish() {
            read_err = Some(e);
        }
    }
    drop(dec);
    drop(driver);
    phase(probe, "transfer", t_body.elapsed());
    if let Some(e) = &read_err {
        probe.error(CALLER, "Failed to read HTTP response body", &[("err", e)]);
    }
    Ok(Final {
        status: parts.status.as_u16(),
        version: parts.version,
        headers: parts.headers,
        tls: https,
        // As Go: what was read before a limit error.
        body_len: hop.limit.map_or(sink.count, |l| sink.count.min(l)),
        body: sink.kept,
        read_error: read_err,
    })
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    async fn send(
        &mut self,
        req: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper::Error> {
        match self {
            Sender::H1(s) => s.send_request(req).await,
            Sender::H2(s) => s.send_request(req).await,
        }
    }
}

fn hyper_err(e: &hyper::Error) -> String {
    use std::error::Error as _;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    if e.is_incomplete_message() || s.contains("connection closed before message completed") {
        return "EOF".to_owned();
    }
    s
}

/// `via`: the proxy of a plain-http request (absolute-form, its credentials).
fn build_request(
    hop: &Hop<'_>,
    h2: bool,
    via: Option<&Proxy>,
) -> Result<http::Request<Full<Bytes>>, String> {
    let path = match hop.url.query() {
        Some(q) => format!("{}?{q}", hop.url.path()),
        None => hop.url.path().to_owned(),
    };
    // Through a proxy Go's absolute form names the Host header, not the
    // URL (which holds the resolved IP): the proxy gets the name.
    let uri = if h2 || via.is_some() {
        format!("{}://{}{}", hop.url.scheme(), hop.host_header, path)
    } else {
        path
    };
    let mut b = http::Request::builder()
        .method(http::Method::from_bytes(hop.method.as_bytes()).map_err(|e| e.to_string())?)
        .uri(uri);
    if !h2 {
        b = b.header(http::header::HOST, hop.host_header);
    }
    let mut has_ua = false;
    let mut referer = hop.referer;
    for (k, v) in hop.headers {
        if k == http::header::USER_AGENT {
            has_ua = true;
        }
        // In name order among the module's headers, as Go writes them.
        if k.as_str() > "referer" {
            if let Some(r) = referer.take() {
                b = b.header(http::header::REFERER, r);
            }
        }
        b = b.header(k, v);
    }
    if let Some(r) = referer {
        b = b.header(http::header::REFERER, r);
    }
    // Credentials in the URL become basic auth, as Go's client does.
    if !hop.url.username().is_empty()
        && !hop
            .headers
            .iter()
            .any(|(k, _)| k == http::header::AUTHORIZATION)
    {
        let user = url_decode(hop.url.username());
        let pass = url_decode(hop.url.password().unwrap_or(""));
        b = b.header(
            http::header::AUTHORIZATION,
            format!("Basic {}", base64(format!("{user}:{pass}").as_bytes())),
        );
    }
    if !has_ua {
        b = b.header(http::header::USER_AGENT, USER_AGENT);
    }
    if !h2 {
        // Keep-alive is off, as in blackbox_exporter: one request per connection.
        b = b.header(http::header::CONNECTION, "close");
    }
    if !hop.body.is_empty() {
        b = b.header(http::header::CONTENT_LENGTH, hop.body.len());
    }
    // Last, as Go writes it (with the transport's extra headers).
    if let Some(auth) = via.and_then(|p| p.auth.as_deref()) {
        b = b.header(http::header::PROXY_AUTHORIZATION, auth);
    }
    b.body(Full::new(Bytes::from(hop.body.to_owned())))
        .map_err(|e| e.to_string())
}

/// The URL as the request names it: the first hop holds the resolved IP.
fn sent_url(hop: &Hop<'_>) -> Url {
    let mut u = hop.url.clone();
    if let (true, Some(ip)) = (hop.resolved, hop.ip) {
        let _ = u.set_ip_host(ip);
    }
    u
}

/// Go's client sends the previous URL (without credentials) as Referer on
/// a redirect, except from https to http.
fn referer_for(last: &Url, next: &Url) -> Option<String> {
    if last.scheme() == "https" && next.scheme() == "http" {
        return None;
    }
    let mut r = last.clone();
    let _ = r.set_username("");
    let _ = r.set_password(None);
    Some(r.as_str().to_owned())
}

/// `host:port` of the CONNECT request.
fn proxy_authority(hop: &Hop<'_>, port: u16) -> String {
    match (hop.resolved, hop.ip) {
        (true, Some(ip)) => std::net::SocketAddr::new(ip, port).to_string(),
        _ => format!("{}:{port}", bracket(hop.url.host_str().unwrap_or_default())),
    }
}

/// `proxy_url`, parsed once per probe.
pub(crate) struct Proxy {
    pub(crate) url: Url,
    /// `Proxy-Authorization` from the URL's credentials.
    pub(crate) auth: Option<String>,
}

impl Proxy {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let url = Url::parse(s).map_err(|e| format!("invalid proxy_url: {e}"))?;
        let auth = proxy_authorization(&url);
        Ok(Proxy { url, auth })
    }
}

/// Basic credentials from `user:pass@` in a proxy URL, decoded as Go's
/// `url.Userinfo` does (a user without a password sends `user:`).
pub(crate) fn proxy_authorization(url: &Url) -> Option<String> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let user = url_decode(url.username());
    let pass = url_decode(url.password().unwrap_or(""));
    Some(format!(
        "Basic {}",
        base64(format!("{user}:{pass}").as_bytes())
    ))
}

fn url_decode(s: &str) -> String {
    crate::exporter::query_unescape(&s.replace('+', "%2B")).unwrap_or_else(|| s.to_owned())
}

/// Module headers plus auth, computed once per probe.
fn request_headers(cfg: &HttpProbe) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, String> {
    let mut out = Vec::new();
    let hv =
        |s: &str| http::HeaderValue::from_str(s).map_err(|e| format!("invalid header value: {e}"));
    // `compression` only says how to decode: 0.23 sends no Accept-Encoding
    // for it (checked against the Go binary), only the one in `headers`.
    for (k, v) in &cfg.headers {
        if k.eq_ignore_ascii_case("host") {
            continue;
        }
        let name = http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| format!("invalid header name {k:?}: {e}"))?;
        out.push((name, hv(v)?));
    }
    if let Some(ba) = &cfg.basic_auth {
        let pw = match (&ba.password, &ba.password_file) {
            (_, Some(f)) => read_secret(f)?,
            (Some(p), None) => p.0.clone(),
            (None, None) => String::new(),
        };
        let token = base64(format!("{}:{pw}", ba.username).as_bytes());
        out.push((http::header::AUTHORIZATION, hv(&format!("Basic {token}"))?));
    } else if let Some(a) = &cfg.authorization {
        let kind = a.kind.clone().unwrap_or_else(|| "Bearer".to_owned());
        let cred = match (&a.credentials, &a.credentials_file) {
            (_, Some(f)) => read_secret(f)?,
            (Some(c), None) => c.0.clone(),
            (None, None) => String::new(),
        };
        out.push((http::header::AUTHORIZATION, hv(&format!("{kind} {cred}"))?));
    } else if let Some(t) = &cfg.bearer_token {
        out.push((http::header::AUTHORIZATION, hv(&format!("Bearer {}", t.0))?));
    } else if let Some(f) = &cfg.bearer_token_file {
        out.push((
            http::header::AUTHORIZATION,
            hv(&format!("Bearer {}", read_secret(f)?))?,
        ));
    }
    Ok(out)
}

/// A `proxy_connect_header` entry: the name as written (Go sends the map
/// keys as they are, sorted), the value checked.
pub(crate) type ConnectHeader = (String, http::HeaderValue);

/// `proxy_connect_header`, checked once per probe so that neither a name
/// nor a value can smuggle a line break into the CONNECT request.
fn proxy_connect_headers(cfg: &HttpProbe) -> Result<Vec<ConnectHeader>, String> {
    let mut out = Vec::new();
    for (k, values) in &cfg.proxy_connect_header {
        http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| format!("invalid proxy_connect_header name {k:?}: {e}"))?;
        for v in values {
            let value = http::HeaderValue::from_str(&v.0)
                .map_err(|e| format!("invalid proxy_connect_header value for {k:?}: {e}"))?;
            out.push((k.clone(), value));
        }
    }
    Ok(out)
}

pub(crate) fn read_secret(path: &str) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("unable to read {path}: {e}"))?;
    let mut s = String::new();
    f.take(64 * 1024)
        .read_to_string(&mut s)
        .map_err(|e| format!("unable to read {path}: {e}"))?;
    Ok(s.trim().to_owned())
}

pub(crate) fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `host[:port]` as Go puts it in the Host header (port only when in the URL).
pub(crate) fn authority(url: &Url) -> String {
    let h = bracket(url.host_str().unwrap_or_default());
    match url.port() {
        Some(p) => format!("{h}:{p}"),
        None => h,
    }
}

fn bracket(h: &str) -> String {
    if h.contains(':') && !h.starts_with('[') {
        format!("[{h}]")
    } else {
        h.to_owned()
    }
}

fn strip_port(h: &str) -> &str {
    if h.starts_with('[') {
        return h
            .split(']')
            .next()
            .map(|s| s.trim_start_matches('['))
            .unwrap_or(h);
    }
    match h.rsplit_once(':') {
        Some((a, p)) if !a.contains(':') && p.chars().all(|c| c.is_ascii_digit()) => a,
        _ => h,
    }
}

fn title(m: &str) -> String {
    let mut c = m.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
        None => String::new(),
    }
}

/// Resolves a redirect or proxy host, preferring the family already in use.
pub(crate) async fn lookup_any(host: &str, v4: bool) -> Result<IpAddr, String> {
    let h = bare_host(host);
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Ok(ip);
    }
    let addrs: Vec<IpAddr> = tokio::net::lookup_host((h, 0))
        .await
        .map_err(|_| "no such host".to_owned())?
        .map(|a| a.ip())
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4() == v4)
        .or(addrs.first())
        .copied()
        .ok_or_else(|| "no such host".to_owned())
}

/// HTTP CONNECT through a proxy, with `proxy_connect_header` in `extra`
/// and the proxy URL's credentials in `auth`.
pub(crate) async fn connect_tunnel(
    s: &mut tokio::net::TcpStream,
    authority: &str,
    extra: &[ConnectHeader],
    auth: Option<&str>,
) -> Result<(), String> {
    let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n").into_bytes();
    // As Go's Request.Write: a connect header spelt exactly "User-Agent"
    // replaces the default one, in its place.
    let ua = extra
        .iter()
        .find(|(k, _)| k == "User-Agent")
        .map_or(USER_AGENT.as_bytes(), |(_, v)| v.as_bytes());
    req.extend_from_slice(b"User-Agent: ");
    req.extend_from_slice(ua);
    req.extend_from_slice(b"\r\n");
    for (k, v) in connect_header_lines(extra, auth) {
        req.extend_from_slice(k.as_bytes());
        req.extend_from_slice(b": ");
        req.extend_from_slice(v);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    s.write_all(&req).await.map_err(|e| super::go_io_err(&e))?;
    let mut buf = Vec::with_capacity(512);
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if buf.len() > 16 * 1024 {
            return Err("proxy response head too large".to_owned());
        }
        let n = s.read(&mut byte).await.map_err(|e| super::go_io_err(&e))?;
        if n == 0 {
            return Err("EOF".to_owned());
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf);
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!(
            "proxy refused CONNECT: {}",
            head.lines().next().unwrap_or("")
        ));
    }
    Ok(())
}

/// The CONNECT header lines after Host and User-Agent, sorted by name as
/// Go's `Header.Write` does; the credentials replace a configured
/// `Proxy-Authorization` (Go's `Header.Set`).
fn connect_header_lines<'a>(
    extra: &'a [ConnectHeader],
    auth: Option<&'a str>,
) -> Vec<(&'a str, &'a [u8])> {
    let mut lines: Vec<(&str, &[u8])> = extra
        .iter()
        .filter(|(k, _)| k != "User-Agent" && k != "Host")
        .filter(|(k, _)| auth.is_none() || k != "Proxy-Authorization")
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    if let Some(a) = auth {
        lines.push(("Proxy-Authorization", a.as_bytes()));
    }
    lines.sort_by(|a, b| a.0.cmp(b.0));
    lines
}

/// Counts the (decompressed) body, keeps it only when a regex needs it, and
/// enforces the size limit.
struct Sink {
    count: u64,
    limit: Option<u64>,
    kept: Option<Vec<u8>>,
}

/// Most body bytes kept for regex matching when no limit is configured.
const MAX_KEPT: usize = 64 << 20;

impl Sink {
    fn new(limit: Option<u64>, keep: bool) -> Self {
        Sink {
            count: 0,
            limit,
            kept: keep.then(Vec::new),
        }
    }
}

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.count += buf.len() as u64;
        if let Some(l) = self.limit {
            if self.count > l {
                return Err(std::io::Error::other(format!(
                    "http: response body too large (limit {l} bytes)"
                )));
            }
        }
        if let Some(k) = &mut self.kept {
            let room = MAX_KEPT.saturating_sub(k.len());
            k.extend_from_slice(&buf[..buf.len().min(room)]);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Decoder<'a> {
    Plain(&'a mut Sink),
    Gzip(flate2::write::GzDecoder<&'a mut Sink>),
    Deflate(flate2::write::DeflateDecoder<&'a mut Sink>),
    // Boxed: the brotli state is a few KiB, the other variants a few words.
    Brotli(Box<brotli_decompressor::DecompressorWriter<&'a mut Sink>>),
}

/// Output buffer of the brotli decoder (what it hands the sink per write).
const BROTLI_BUF: usize = 16 << 10;

impl<'a> Decoder<'a> {
    fn new(kind: &str, sink: &'a mut Sink) -> Result<Self, String> {
        match kind {
            "" | "identity" => Ok(Decoder::Plain(sink)),
            "gzip" => Ok(Decoder::Gzip(flate2::write::GzDecoder::new(sink))),
            "deflate" => Ok(Decoder::Deflate(flate2::write::DeflateDecoder::new(sink))),
            "br" => Ok(Decoder::Brotli(Box::new(
                brotli_decompressor::DecompressorWriter::new(sink, BROTLI_BUF),
            ))),
            other => Err(format!("compression {other:?} is not supported")),
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), String> {
        let r = match self {
            Decoder::Plain(s) => s.write_all(data),
            Decoder::Gzip(d) => d.write_all(data),
            Decoder::Deflate(d) => d.write_all(data),
            Decoder::Brotli(d) => d.write_all(data),
        };
        r.map_err(|e| self.describe(&e))
    }

    fn finish(&mut self) -> Result<(), String> {
        let r = match self {
            Decoder::Plain(_) => Ok(()),
            Decoder::Gzip(d) => d.try_finish(),
            Decoder::Deflate(d) => d.try_finish(),
            // Fails when the stream stopped before its last meta-block.
            Decoder::Brotli(d) => d.close(),
        };
        r.map_err(|e| self.describe(&e))
    }

    /// The brotli decoder words every bad stream as a bare "Invalid Data".
    fn describe(&self, e: &std::io::Error) -> String {
        match self {
            Decoder::Brotli(_) if e.kind() == std::io::ErrorKind::InvalidData => {
                "brotli: invalid or truncated data".to_owned()
            }
            _ => e.to_string(),
        }
    }
}

/// An HTTP date (`Mon, 02 Jan 2006 15:04:05 GMT`) as a Unix timestamp.
fn parse_http_date(s: &str) -> Option<i64> {
    let fmt = time::format_description::well_known::Rfc2822;
    time::OffsetDateTime::parse(s.trim(), &fmt)
        .ok()
        .map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(
            parse_http_date("Mon, 23 Nov 2026 07:34:16 GMT"),
            Some(1_795_419_256)
        );
        assert_eq!(strip_port("localhost:443"), "localhost");
        assert_eq!(strip_port("[::1]:443"), "::1");
        assert_eq!(title("GET"), "Get");
    }
}
