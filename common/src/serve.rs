//! Serving: hyper 1 on tokio, the Go exporters' endpoints and behaviour.
//!
//! Common to every exporter: listeners on one or more `--web.listen-address`,
//! TLS and basic auth from `--web.config.file`, the landing page,
//! `/-/healthy`, `/-/ready`, `POST /-/reload` and SIGHUP, the telemetry path
//! with self metrics, `--web.max-requests`, gzip, content negotiation and
//! graceful shutdown on SIGTERM/SIGINT. Each exporter supplies an
//! [`Exporter`] with its metrics and its own routes.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::cli::WebArgs;
use crate::config::ConfigError;
use crate::expo::{MetricSet, MetricType, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};
use crate::selfmetrics::{write_process_metrics, BuildInfo};
use crate::webconfig::WebConfigWatcher;

/// How long a client may take to send its request head (and TLS handshake).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long in-flight requests get to finish after SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What distinguishes one exporter's server from another's.
#[derive(Debug, Clone)]
pub struct ServeSpec {
    /// Binary name, e.g. `vigie-node-exporter`.
    pub binary: &'static str,
    /// Landing page title, e.g. `Node Exporter`.
    pub title: &'static str,
    /// One sentence shown on the landing page.
    pub description: &'static str,
    pub build: BuildInfo,
    pub default_port: u16,
    /// The Go exporter that usually holds the default port, named when it is taken.
    pub go_counterpart: &'static str,
    /// Extra landing page links `(href, text)`, after the telemetry path.
    pub links: Vec<(&'static str, &'static str)>,
}

/// One HTTP request, as an exporter sees it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub path: String,
    /// Decoded query parameters in order.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub remote: Option<SocketAddr>,
}

impl Request {
    /// First value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a (repeatable) query parameter.
    pub fn params<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.query
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `X-Prometheus-Scrape-Timeout-Seconds`, when present and valid.
    pub fn scrape_timeout(&self) -> Option<f64> {
        self.header("X-Prometheus-Scrape-Timeout-Seconds")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v > 0.0)
    }

    /// Builds a request from parts; used by tests and by the server.
    pub fn new(method: Method, path_and_query: &str) -> Self {
        let (path, q) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Request {
            method,
            path: path.to_owned(),
            query: form_urlencoded::parse(q.as_bytes()).into_owned().collect(),
            headers: HeaderMap::new(),
            remote: None,
        }
    }
}

/// An exporter's answer.
#[derive(Debug)]
pub enum Reply {
    /// Metrics, encoded as the client negotiated (text 0.0.4, OpenMetrics, gzip).
    Metrics(MetricSet),
    /// Anything else.
    Body {
        status: StatusCode,
        content_type: &'static str,
        body: Bytes,
    },
}

impl Reply {
    pub fn text(status: StatusCode, body: impl Into<String>) -> Self {
        Reply::Body {
            status,
            content_type: "text/plain; charset=utf-8",
            body: Bytes::from(body.into()),
        }
    }

    pub fn html(body: impl Into<String>) -> Self {
        Reply::Body {
            status: StatusCode::OK,
            content_type: "text/html; charset=utf-8",
            body: Bytes::from(body.into()),
        }
    }

    pub fn json(body: impl Into<String>) -> Self {
        Reply::Body {
            status: StatusCode::OK,
            content_type: "application/json",
            body: Bytes::from(body.into()),
        }
    }

    /// 400 with a message saying what is wrong with the request.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        let mut m = msg.into();
        if !m.ends_with('\n') {
            m.push('\n');
        }
        Reply::text(StatusCode::BAD_REQUEST, m)
    }

    pub fn not_found() -> Self {
        Reply::text(StatusCode::NOT_FOUND, "404 page not found\n")
    }
}

/// What an exporter plugs into the server.
pub trait Exporter: Send + Sync + 'static {
    /// Metrics for the telemetry path. Self metrics (`process_*`, build
    /// info, reload status) are added by the server.
    fn metrics(&self, req: Request) -> impl Future<Output = Reply> + Send;

    /// Other paths (`/probe`, `/snmp`, `/config`, ...). `None`: 404.
    fn handle(&self, req: Request) -> impl Future<Output = Option<Reply>> + Send {
        let _ = req;
        async { None }
    }

    /// Re-reads the configuration (SIGHUP, `POST /-/reload`). On error the
    /// exporter keeps its last good config.
    fn reload(&self) -> Result<(), String> {
        Ok(())
    }

    /// True when the exporter has a config file: then
    /// `<exporter>_config_last_reload_successful` is exported.
    fn has_config(&self) -> bool {
        false
    }

    /// Extra HTML for the landing page (forms, recent probes).
    fn landing_html(&self) -> String {
        String::new()
    }

    /// Paths (besides the telemetry path) bounded by `--web.max-requests`.
    fn is_limited(&self, path: &str) -> bool {
        let _ = path;
        false
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    WebConfig(#[from] ConfigError),
    #[error("invalid --web.listen-address {addr:?}: {msg}")]
    BadAddress { addr: String, msg: String },
    #[error("listen tcp {addr}: {source}{hint}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
        hint: String,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("--web.systemd-socket: {0}")]
    SystemdSocket(String),
}

#[derive(Debug)]
struct ReloadStatus {
    success: bool,
    last_success: f64,
}

#[derive(Debug, Default)]
struct HttpStats {
    ok: AtomicU64,
    e500: AtomicU64,
    e503: AtomicU64,
    in_flight: AtomicU64,
}

struct Shared<E> {
    exporter: Arc<E>,
    spec: ServeSpec,
    web: WebConfigWatcher,
    telemetry_path: String,
    openmetrics: bool,
    exporter_metrics: bool,
    limiter: Option<Arc<Semaphore>>,
    max_requests: usize,
    reload: Mutex<ReloadStatus>,
    stats: HttpStats,
}

/// A bound, not yet running server.
pub struct Server<E> {
    shared: Arc<Shared<E>>,
    listeners: Vec<TcpListener>,
}

impl<E: Exporter> Server<E> {
    /// Loads the web config and binds every listen address. Must be called
    /// inside a tokio runtime.
    pub async fn bind(
        spec: ServeSpec,
        args: &WebArgs,
        exporter: Arc<E>,
    ) -> Result<Self, ServeError> {
        let web = WebConfigWatcher::new(args.config_file.clone())?;
        let addrs = if args.listen_address.is_empty() {
            vec![format!(":{}", spec.default_port)]
        } else {
            args.listen_address.clone()
        };
        let mut listeners = Vec::new();
        if args.systemd_socket {
            for l in crate::sys::systemd_listeners().map_err(ServeError::SystemdSocket)? {
                listeners.push(TcpListener::from_std(l).map_err(|e| {
                    ServeError::SystemdSocket(format!("socket activation listener: {e}"))
                })?);
            }
        } else {
            for a in &addrs {
                listeners.push(bind_one(a, &spec).await?);
            }
        }
        let limiter = (args.max_requests > 0).then(|| Arc::new(Semaphore::new(args.max_requests)));
        Ok(Server {
            shared: Arc::new(Shared {
                exporter,
                spec,
                web,
                telemetry_path: args.telemetry_path.clone(),
                openmetrics: args.enable_openmetrics,
                exporter_metrics: !args.disable_exporter_metrics,
                limiter,
                max_requests: args.max_requests,
                reload: Mutex::new(ReloadStatus {
                    success: true,
                    last_success: unix_now(),
                }),
                stats: HttpStats::default(),
            }),
            listeners,
        })
    }

    /// The addresses actually bound (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Serves until `shutdown` completes, then drains in-flight requests.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let tls_on = self.shared.web.current().tls.is_some();
        for l in &self.listeners {
            if let Ok(a) = l.local_addr() {
                tracing::info!(address = %a, "Listening on");
                if tls_on {
                    tracing::info!(http2 = self.shared.web.current().http2, address = %a, "TLS is enabled.");
                } else {
                    tracing::info!(http2 = false, address = %a, "TLS is disabled.");
                }
            }
        }
        let (conn_tx, mut conn_rx) = tokio::sync::mpsc::channel::<(TcpStream, SocketAddr)>(64);
        let mut accept_tasks = Vec::new();
        for l in self.listeners {
            let tx = conn_tx.clone();
            accept_tasks.push(tokio::spawn(accept_loop(l, tx)));
        }
        drop(conn_tx);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                conn = conn_rx.recv() => {
                    let Some((stream, peer)) = conn else { break };
                    let shared = Arc::clone(&self.shared);
                    let watcher = &graceful;
                    serve_connection(shared, stream, peer, watcher);
                }
                _ = &mut shutdown => {
                    tracing::info!("Received shutdown signal, stopping");
                    break;
                }
            }
        }
        for t in accept_tasks {
            t.abort();
        }
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(SHUTDOWN_GRACE) => {
                tracing::warn!("In-flight requests did not finish in time");
            }
        }
    }

    /// A handle to trigger reloads from outside (SIGHUP).
    fn shared(&self) -> Arc<Shared<E>> {
        Arc::clone(&self.shared)
    }
}

async fn accept_loop(
    listener: TcpListener,
    tx: tokio::sync::mpsc::Sender<(TcpStream, SocketAddr)>,
) {
    loop {
        match listener.accept().await {
            Ok((s, peer)) => {
                let _ = s.set_nodelay(true);
                if tx.send((s, peer)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::error!(err = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn do_reload<E: Exporter>(shared: &Arc<Shared<E>>) -> Result<(), String> {
    let s = Arc::clone(shared);
    let result = tokio::task::spawn_blocking(move || {
        let web = s.web.reload_now().map_err(|e| e.to_string());
        let exp = s.exporter.reload();
        web.and(exp)
    })
    .await
    .unwrap_or_else(|e| Err(format!("reload task failed: {e}")));
    if let Ok(mut st) = shared.reload.lock() {
        st.success = result.is_ok();
        if result.is_ok() {
            st.last_success = unix_now();
        }
    }
    match &result {
        Ok(()) => tracing::info!("Reloaded config file"),
        Err(e) => tracing::error!(err = %e, "Error reloading config, keeping the previous one"),
    }
    result
}

fn serve_connection<E: Exporter>(
    shared: Arc<Shared<E>>,
    stream: TcpStream,
    peer: SocketAddr,
    graceful: &hyper_util::server::graceful::GracefulShutdown,
) {
    let web = shared.web.current();
    let http2 = web.http2;
    let watcher = graceful.watcher();
    match web.tls.clone() {
        None => {
            let io = TokioIo::new(stream);
            let svc = make_service(shared, peer);
            let builder = http_builder(false);
            let conn = watcher.watch(builder.serve_connection(io, svc).into_owned());
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(err = %e, peer = %peer, "connection error");
                }
            });
        }
        Some(tls) => {
            tokio::spawn(async move {
                let Some(stream) = tls_handshake(stream, tls).await else {
                    return;
                };
                let io = TokioIo::new(stream);
                let svc = make_service(shared, peer);
                let builder = http_builder(http2);
                let conn = watcher.watch(builder.serve_connection(io, svc).into_owned());
                if let Err(e) = conn.await {
                    tracing::debug!(err = %e, peer = %peer, "TLS connection error");
                }
            });
        }
    }
}

fn http_builder(http2: bool) -> hyper_util::server::conn::auto::Builder<TokioExecutor> {
    let mut b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    b.http2().timer(TokioTimer::new());
    if http2 {
        b
    } else {
        b.http1_only()
    }
}

async fn tls_handshake(
    stream: TcpStream,
    cfg: Arc<rustls::ServerConfig>,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(HEADER_READ_TIMEOUT, stream.peek(&mut first)).await;
    match peeked {
        Ok(Ok(1)) if first[0] != 0x16 => {
            // Plain HTTP to a TLS port: say so, as Go's server does.
            let mut stream = stream;
            let _ = stream
                .write_all(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
                .await;
            let _ = stream.shutdown().await;
            return None;
        }
        Ok(Ok(1)) => {}
        _ => return None,
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::debug!(err = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            None
        }
    }
}

fn make_service<E: Exporter>(
    shared: Arc<Shared<E>>,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    http::Request<Incoming>,
    Response = http::Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Future<Output = Result<http::Response<Full<Bytes>>, Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(handle(shared, req, peer).await) }
    })
}

async fn handle<E: Exporter>(
    shared: Arc<Shared<E>>,
    req: http::Request<Incoming>,
    peer: SocketAddr,
) -> http::Response<Full<Bytes>> {
    let web = shared.web.current();
    let mut resp = route(&shared, Arc::clone(&web), req, peer).await;
    for (k, v) in &web.headers {
        resp.headers_mut().insert(k.clone(), v.clone());
    }
    resp
}

async fn route<E: Exporter>(
    shared: &Arc<Shared<E>>,
    web: Arc<crate::webconfig::WebConfig>,
    req: http::Request<Incoming>,
    peer: SocketAddr,
) -> http::Response<Full<Bytes>> {
    if web.requires_auth() {
        let authz = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Verified credentials are answered inline; only new ones pay bcrypt, off the runtime.
        let ok = web.is_cached(authz.as_deref())
            || tokio::task::spawn_blocking(move || web.check_basic_auth(authz.as_deref()))
                .await
                .unwrap_or(false);
        if !ok {
            let mut r = plain(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            r.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic"),
            );
            return r;
        }
    }
    let (parts, _body) = req.into_parts();
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = Request::new(parts.method.clone(), path_and_query);
    request.headers = parts.headers;
    request.remote = Some(peer);
    let accept = request.header("accept").unwrap_or("").to_owned();
    let gzip = accepts_gzip(request.header("accept-encoding").unwrap_or(""));

    let path = request.path.clone();
    if path == shared.telemetry_path {
        return limited(shared, async {
            let reply = shared.exporter.metrics(request).await;
            match reply {
                Reply::Metrics(mut set) => {
                    if shared.exporter_metrics {
                        add_self_metrics(shared, &mut set);
                    }
                    shared.stats.ok.fetch_add(1, Ordering::Relaxed);
                    encode_metrics(&set, &accept, gzip, shared.openmetrics)
                }
                other => finish(other, &accept, gzip, shared.openmetrics),
            }
        })
        .await;
    }
    match path.as_str() {
        "/" => {
            return http::Response::builder()
                .header(http::header::CONTENT_TYPE, "text/html; charset=utf-8")
                .body(Full::new(Bytes::from(landing_page(shared))))
                .unwrap_or_default()
        }
        "/-/healthy" => return plain(StatusCode::OK, "Healthy"),
        "/-/ready" => return plain(StatusCode::OK, "Ready"),
        "/-/reload" => {
            if request.method != Method::POST && request.method != Method::PUT {
                return plain(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "This endpoint requires a POST request.\n",
                );
            }
            return match do_reload(shared).await {
                Ok(()) => plain(StatusCode::OK, ""),
                Err(e) => plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("failed to reload config: {e}\n"),
                ),
            };
        }
        _ => {}
    }
    let is_limited = shared.exporter.is_limited(&path);
    let fut = async {
        match shared.exporter.handle(request).await {
            Some(reply) => finish(reply, &accept, gzip, shared.openmetrics),
            None => plain(StatusCode::NOT_FOUND, "404 page not found\n"),
        }
    };
    if is_limited {
        limited(shared, fut).await
    } else {
        fut.await
    }
}

async fn limited<E: Exporter>(
    shared: &Arc<Shared<E>>,
    fut: impl Future<Output = http::Response<Full<Bytes>>>,
) -> http::Response<Full<Bytes>> {
    let _permit = match &shared.limiter {
        Some(sem) => match Arc::clone(sem).try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                shared.stats.e503.fetch_add(1, Ordering::Relaxed);
                return plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "Limit of concurrent requests reached ({}), try again later.\n",
                        shared.max_requests
                    ),
                );
            }
        },
        None => None,
    };
    shared.stats.in_flight.fetch_add(1, Ordering::Relaxed);
    let resp = fut.await;
    shared.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    if resp.status().is_server_error() {
        shared.stats.e500.fetch_add(1, Ordering::Relaxed);
    }
    resp
}

fn finish(
    reply: Reply,
    accept: &str,
    gzip: bool,
    openmetrics: bool,
) -> http::Response<Full<Bytes>> {
    match reply {
        Reply::Metrics(set) => encode_metrics(&set, accept, gzip, openmetrics),
        Reply::Body {
            status,
            content_type,
            body,
        } => http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Full::new(body))
            .unwrap_or_default(),
    }
}

fn plain(status: StatusCode, body: impl Into<String>) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("X-Content-Type-Options", "nosniff")
        .body(Full::new(Bytes::from(body.into())))
        .unwrap_or_default()
}

/// Encodes a metric set as negotiated, gzipped when asked.
pub fn encode_metrics(
    set: &MetricSet,
    accept: &str,
    gzip: bool,
    openmetrics: bool,
) -> http::Response<Full<Bytes>> {
    let om = openmetrics && prefers_openmetrics(accept);
    let (text, ctype) = if om {
        (set.encode_openmetrics(), OPENMETRICS_CONTENT_TYPE)
    } else {
        (set.encode_text(), TEXT_CONTENT_TYPE)
    };
    let mut b = http::Response::builder().header(http::header::CONTENT_TYPE, ctype);
    let body = if gzip {
        match gzip_bytes(text.as_bytes()) {
            Ok(z) => {
                b = b.header(http::header::CONTENT_ENCODING, "gzip");
                Bytes::from(z)
            }
            Err(_) => Bytes::from(text),
        }
    } else {
        Bytes::from(text)
    };
    b.body(Full::new(body)).unwrap_or_default()
}

fn gzip_bytes(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(data)?;
    enc.finish()
}

/// True when `Accept-Encoding` allows gzip (q > 0).
pub fn accepts_gzip(header: &str) -> bool {
    header.split(',').any(|part| {
        let mut it = part.split(';');
        let coding = it.next().unwrap_or("").trim();
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && quality(it) > 0.0
    })
}

/// True when the highest-ranked type in `Accept` is OpenMetrics.
pub fn prefers_openmetrics(accept: &str) -> bool {
    let mut best: Option<(f64, bool)> = None;
    for part in accept.split(',') {
        let mut it = part.split(';');
        let mt = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let params: Vec<&str> = it.collect();
        let q = quality(params.iter().copied());
        let is_om = mt == "application/openmetrics-text"
            && params
                .iter()
                .all(|p| !p.trim().starts_with("version=") || p.trim() == "version=1.0.0");
        let is_text = mt == "text/plain" || mt == "*/*";
        if !(is_om || is_text) || q <= 0.0 {
            continue;
        }
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, is_om));
        }
    }
    best.is_some_and(|(_, om)| om)
}

fn quality<'a>(params: impl Iterator<Item = &'a str>) -> f64 {
    for p in params {
        if let Some(v) = p.trim().strip_prefix("q=") {
            return v.trim().parse().unwrap_or(0.0);
        }
    }
    1.0
}

fn add_self_metrics<E: Exporter>(shared: &Arc<Shared<E>>, set: &mut MetricSet) {
    shared.spec.build.write(set);
    write_process_metrics(set);
    let exp = shared.spec.build.exporter;
    if shared.exporter.has_config() {
        if let Ok(st) = shared.reload.lock() {
            set.gauge(
                &format!("{exp}_config_last_reload_successful"),
                &format!("{} config loaded successfully.", title_case(exp)),
                &[],
                if st.success { 1.0 } else { 0.0 },
            );
            set.gauge(
                &format!("{exp}_config_last_reload_success_timestamp_seconds"),
                "Timestamp of the last successful configuration reload.",
                &[],
                st.last_success,
            );
        }
    }
    let st = &shared.stats;
    let fam = set.family(
        "promhttp_metric_handler_requests_total",
        "Total number of scrapes by HTTP status code.",
        MetricType::Counter,
    );
    fam.add(&[("code", "200")], st.ok.load(Ordering::Relaxed) as f64);
    fam.add(&[("code", "500")], st.e500.load(Ordering::Relaxed) as f64);
    fam.add(&[("code", "503")], st.e503.load(Ordering::Relaxed) as f64);
    set.gauge(
        "promhttp_metric_handler_requests_in_flight",
        "Current number of scrapes being served.",
        &[],
        st.in_flight.load(Ordering::Relaxed) as f64,
    );
}

fn title_case(exporter: &str) -> String {
    exporter
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn landing_page<E: Exporter>(shared: &Arc<Shared<E>>) -> String {
    let spec = &shared.spec;
    let mut links = format!(
        "<li><a href=\"{0}\">Metrics</a></li>\n",
        html_escape(&shared.telemetry_path)
    );
    for (href, text) in &spec.links {
        links.push_str(&format!(
            "<li><a href=\"{}\">{}</a></li>\n",
            html_escape(href),
            html_escape(text)
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>{title}</title>\n\
         <style>body{{font-family:sans-serif;max-width:60em;margin:1em auto;padding:0 1em}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .5em;text-align:left}}</style></head>\n\
         <body>\n<h1>{title}</h1>\n<p>{desc}</p>\n<ul>\n{links}</ul>\n{extra}\n\
         <p><small>{binary} {version} (revision {rev}, rustc {rustc})</small></p>\n</body>\n</html>\n",
        title = html_escape(spec.title),
        desc = html_escape(spec.description),
        links = links,
        extra = shared.exporter.landing_html(),
        binary = spec.binary,
        version = spec.build.version,
        rev = spec.build.revision,
        rustc = spec.build.rustc_version,
    )
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Parses a Go-style listen address: `:9100`, `host:port`, `[v6]:port`.
pub fn parse_listen_address(a: &str) -> Result<(Option<String>, u16), String> {
    let (host, port) = a
        .rsplit_once(':')
        .ok_or_else(|| "missing port (use host:port or :port)".to_owned())?;
    let port: u16 = port.parse().map_err(|_| format!("invalid port {port:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok(((!host.is_empty()).then(|| host.to_owned()), port))
}

async fn bind_one(a: &str, spec: &ServeSpec) -> Result<TcpListener, ServeError> {
    let bad = |msg: String| ServeError::BadAddress {
        addr: a.to_owned(),
        msg,
    };
    let (host, port) = parse_listen_address(a).map_err(bad)?;
    let bind_err = |source: std::io::Error| {
        let hint = if source.kind() == std::io::ErrorKind::AddrInUse && port == spec.default_port {
            format!(
                " (port {port} is the default of {go}: stop it with 'systemctl disable --now {go}' or choose another --web.listen-address)",
                go = spec.go_counterpart
            )
        } else if source.kind() == std::io::ErrorKind::AddrInUse {
            " (another process holds this port; choose another --web.listen-address)".to_owned()
        } else {
            String::new()
        };
        ServeError::Bind {
            addr: a.to_owned(),
            source,
            hint,
        }
    };
    let addr: SocketAddr = match host {
        None => {
            // All addresses: dual-stack [::] where IPv6 exists, else 0.0.0.0.
            let v6 = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port));
            match listen(v6, true) {
                Ok(l) => return Ok(l),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => return Err(bind_err(e)),
                Err(_) => SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, port)),
            }
        }
        Some(h) => match h.parse::<std::net::IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, port),
            Err(_) => tokio::net::lookup_host((h.as_str(), port))
                .await
                .map_err(|e| bad(format!("cannot resolve {h:?}: {e}")))?
                .next()
                .ok_or_else(|| bad(format!("{h:?} has no address")))?,
        },
    };
    listen(addr, false).map_err(bind_err)
}

fn listen(addr: SocketAddr, dual_stack: bool) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if dual_stack {
        sock.set_only_v6(false)?;
    }
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    TcpListener::from_std(sock.into())
}

/// Everything a `main` needs: logging is set up by the caller; this raises
/// the fd limit, starts the runtime, binds, serves until SIGTERM/SIGINT and
/// reloads on SIGHUP. Returns the process exit code.
pub fn run<E: Exporter>(
    spec: ServeSpec,
    args: &WebArgs,
    exporter: Arc<E>,
) -> std::process::ExitCode {
    match crate::sys::raise_nofile_limit() {
        Ok(n) => tracing::debug!(limit = n, "open file limit"),
        Err(e) => tracing::warn!(err = %e, "could not raise the open file limit"),
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}: {}", spec.binary, ServeError::Runtime(e));
            return std::process::ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let server = match Server::bind(spec.clone(), args, exporter).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(err = %e, "cannot start");
                eprintln!("{}: {e}", spec.binary);
                return std::process::ExitCode::FAILURE;
            }
        };
        let shared = server.shared();
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                tracing::info!("Received SIGHUP, reloading config");
                let _ = do_reload(&shared).await;
            }
        });
        server.run(shutdown_signal()).await;
        std::process::ExitCode::SUCCESS
    })
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {}
                _ = i.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}

/// Reads a request body with a size bound (for exporters that accept POSTs).
pub async fn read_limited<R: AsyncRead + Unpin>(
    mut r: R,
    limit: usize,
) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    (&mut r)
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .await?;
    if buf.len() > limit {
        return Err(std::io::Error::other("body too large"));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen_address(":9100").unwrap(), (None, 9100));
        assert_eq!(
            parse_listen_address("127.0.0.1:1").unwrap(),
            (Some("127.0.0.1".into()), 1)
        );
        assert_eq!(
            parse_listen_address("[::1]:9100").unwrap(),
            (Some("::1".into()), 9100)
        );
        assert!(parse_listen_address("9100").is_err());
        assert!(parse_listen_address(":99999").is_err());
    }

    #[test]
    fn negotiation() {
        let prom2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(prefers_openmetrics(prom2));
        assert!(!prefers_openmetrics("text/plain;version=0.0.4"));
        assert!(!prefers_openmetrics(""));
        assert!(!prefers_openmetrics(
            "application/openmetrics-text;version=1.0.0;q=0.1,text/plain"
        ));
        assert!(accepts_gzip("gzip, deflate"));
        assert!(accepts_gzip("br;q=1.0, gzip;q=0.8"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("identity"));
    }

    #[test]
    fn request_params() {
        let r = Request::new(
            Method::GET,
            "/probe?target=a%20b&module=x&collect[]=1&collect[]=2",
        );
        assert_eq!(r.param("target"), Some("a b"));
        assert_eq!(r.params("collect[]").collect::<Vec<_>>(), vec!["1", "2"]);
        assert_eq!(r.param("none"), None);
    }
}
