//! vigie-snmp-exporter: an snmp_exporter-compatible SNMP poller.
//!
//! - [`config`]: snmp.yml in the 0.21 and 0.23+ layouts, one or several files;
//! - [`glob`]: `--config.file` patterns, as Go's `filepath.Glob`;
//! - [`module`]: the compiled form (arcs, regexes, auth);
//! - [`client`]: sessions on snmp2 with timeouts, retries, bounded concurrency;
//! - [`walk`]: gets and GETBULK/GETNEXT walks;
//! - [`convert`]: PDUs to samples with snmp_exporter's rules.

pub mod client;
pub mod config;
pub mod convert;
pub mod glob;
pub mod module;
pub mod walk;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::StatusCode;
use tokio::sync::Semaphore;
use vigie_common::config::ConfigCell;
use vigie_common::expo::{MetricSet, MetricType};
use vigie_common::{Exporter, Reply, Request};

use crate::config::Format;
use crate::module::{Auth, Config, Module, DEFAULT_AUTH, DEFAULT_MODULE};

/// Most modules one scrape may name.
pub const MAX_MODULES_PER_SCRAPE: usize = 32;
/// Scrape deadline when Prometheus sends no scrape timeout header.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);
/// Taken off Prometheus' scrape timeout so the answer arrives in time.
pub const DEADLINE_OFFSET: Duration = Duration::from_millis(250);

/// Behaviour switches from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--snmp.wrap-large-counters` (default on, as upstream).
    pub wrap_counters: bool,
    /// `--snmp.partial-results`: a failed module/subtree keeps what was collected.
    pub partial_results: bool,
    /// `--snmp.max-concurrent-requests`: SNMP requests in flight, all scrapes together.
    pub max_concurrent_requests: usize,
    /// `--snmp.walk-concurrency`: subtrees of one module walked at once (v1/v2c).
    pub walk_concurrency: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            wrap_counters: true,
            partial_results: false,
            max_concurrent_requests: 256,
            walk_concurrency: 1,
        }
    }
}

#[derive(Debug, Default)]
struct Telemetry {
    /// module → (count, sum of seconds), for `snmp_collection_duration_seconds`.
    durations: HashMap<String, (u64, f64)>,
    request_errors: u64,
}

/// The exporter: config, options and the process-wide request limiter.
pub struct SnmpExporter {
    /// `--config.file` values (paths or patterns), re-expanded on reload.
    paths: Vec<PathBuf>,
    config: ConfigCell<Config>,
    opts: Options,
    limiter: Arc<Semaphore>,
    telemetry: Mutex<Telemetry>,
}

/// What went wrong with the query parameters (400).
fn bad(msg: impl Into<String>) -> Reply {
    Reply::bad_request(msg)
}

/// snmp_exporter's 500 body for a failed scrape (promhttp's error text).
pub fn go_error_body(err: &str) -> String {
    format!(
        "An error has occurred while serving metrics:\n\nerror collecting metric Desc{{fqName: \"snmp_error\", help: \"Error scraping target\", constLabels: {{}}, variableLabels: []}}: {err}\n"
    )
}

struct Plan {
    target: String,
    modules: Vec<Arc<Module>>,
    /// The 0.23+ auth picked by `auth=`, when the file has that layout.
    auth: Option<Arc<Auth>>,
    /// `snmp_context=` (0.26+): overrides the v3 context name.
    context: Option<String>,
}

impl SnmpExporter {
    pub fn new(paths: Vec<PathBuf>, config: Config, opts: Options) -> Self {
        let permits = opts
            .max_concurrent_requests
            .clamp(1, Semaphore::MAX_PERMITS);
        SnmpExporter {
            paths,
            config: ConfigCell::new(config),
            limiter: Arc::new(Semaphore::new(permits)),
            opts,
            telemetry: Mutex::new(Telemetry::default()),
        }
    }

    fn plan(&self, req: &Request) -> Result<Plan, Reply> {
        let targets: Vec<&str> = req.params("target").collect();
        if targets.len() != 1 || targets[0].is_empty() {
            return Err(bad("'target' parameter must be specified once"));
        }
        let target = targets[0].to_owned();
        if let Err(e) = client::split_target(&target) {
            return Err(bad(format!("invalid 'target' parameter: {e}")));
        }
        let cfg = self.config.get();
        // module=a,b and module=a&module=b both name several modules (0.24+).
        let mut names: Vec<&str> = Vec::new();
        for v in req.params("module") {
            names.extend(v.split(',').map(str::trim).filter(|n| !n.is_empty()));
        }
        if names.is_empty() {
            names.push(DEFAULT_MODULE);
        }
        if names.len() > MAX_MODULES_PER_SCRAPE {
            return Err(bad(format!(
                "at most {MAX_MODULES_PER_SCRAPE} modules per scrape"
            )));
        }
        let mut modules = Vec::with_capacity(names.len());
        for n in names {
            let n = n.trim();
            match cfg.modules.get(n) {
                Some(m) if !modules.iter().any(|x: &Arc<Module>| x.name == n) => {
                    modules.push(Arc::clone(m))
                }
                Some(_) => {}
                None => return Err(bad(format!("Unknown module '{n}'"))),
            }
        }
        let auths: Vec<&str> = req.params("auth").collect();
        if auths.len() > 1 {
            return Err(bad("'auth' parameter must only be specified once"));
        }
        let auth = if cfg.format == Some(Format::Split) {
            let name = auths.first().copied().unwrap_or(DEFAULT_AUTH);
            match cfg.auths.get(name) {
                Some(a) => Some(Arc::clone(a)),
                None if name == DEFAULT_AUTH => Some(Arc::new(default_public_v2())),
                None => return Err(bad(format!("Unknown auth '{name}'"))),
            }
        } else {
            // 0.21 files carry the auth in each module; like 0.21, `auth=` is ignored.
            None
        };
        let contexts: Vec<&str> = req.params("snmp_context").collect();
        if contexts.len() > 1 {
            return Err(bad("'snmp_context' parameter must only be specified once"));
        }
        Ok(Plan {
            target,
            modules,
            auth,
            context: contexts.first().map(|c| (*c).to_owned()),
        })
    }

    fn deadline(req: &Request) -> Instant {
        let budget = req
            .scrape_timeout()
            .map(Duration::from_secs_f64)
            .map(|d| {
                d.saturating_sub(DEADLINE_OFFSET)
                    .max(Duration::from_millis(500))
            })
            .unwrap_or(DEFAULT_DEADLINE);
        Instant::now() + budget
    }

    /// `/snmp`.
    pub async fn scrape(&self, req: &Request) -> Reply {
        let plan = match self.plan(req) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let deadline = Self::deadline(req);
        let (set, errors) = self.collect(&plan, deadline).await;
        if !errors.is_empty() && !self.opts.partial_results {
            if let Ok(mut t) = self.telemetry.lock() {
                t.request_errors += 1;
            }
            let first = &errors[0];
            tracing::info!(target = %plan.target, err = %first, "Error scraping target");
            let body = if first.starts_with("collected metric") {
                // The Go client lists every duplicate.
                let dups: Vec<&String> = errors
                    .iter()
                    .filter(|e| e.starts_with("collected metric"))
                    .collect();
                if dups.len() == 1 {
                    format!("An error has occurred while serving metrics:\n\n{first}\n")
                } else {
                    let list: String = dups.iter().map(|e| format!("* {e}\n")).collect();
                    format!("An error has occurred while serving metrics:\n\n{} error(s) occurred:\n{list}", dups.len())
                }
            } else {
                go_error_body(first)
            };
            return Reply::text(StatusCode::INTERNAL_SERVER_ERROR, body);
        }
        Reply::Metrics(set)
    }

    async fn collect(&self, plan: &Plan, deadline: Instant) -> (MetricSet, Vec<String>) {
        let mut set = MetricSet::new();
        let mut errors = Vec::new();
        let (host, _) = client::split_target(&plan.target).unwrap_or((plan.target.as_str(), 161));
        let multi = plan.modules.len() > 1;
        let addr = client::resolve(&plan.target, deadline).await;
        for module in &plan.modules {
            let start = Instant::now();
            let mlabel: Vec<(&str, &str)> = if multi {
                vec![("module", module.name.as_str())]
            } else {
                vec![]
            };
            let mut module_errors = Vec::new();
            let mut auth = plan
                .auth
                .clone()
                .or_else(|| module.auth.clone())
                .unwrap_or_else(|| Arc::new(default_public_v2()));
            if let Some(ctx) = &plan.context {
                let mut a = (*auth).clone();
                a.context_name.clone_from(ctx);
                auth = Arc::new(a);
            }
            let mut stats = client::Stats::default();
            let mut pdus_returned = 0usize;
            let mut module_set = MetricSet::new();
            match &addr {
                Err(e) => module_errors.push(format!("error connecting to target {host}: {e}")),
                Ok(addr) => {
                    if module.params.use_unconnected_udp_socket {
                        tracing::debug!(module = %module.name, "use_unconnected_udp_socket is accepted but sockets are always connected");
                    }
                    let make = || {
                        client::Client::new(
                            *addr,
                            Arc::clone(&auth),
                            module.params.clone(),
                            deadline,
                            Arc::clone(&self.limiter),
                        )
                    };
                    // v3 sessions each need an engine discovery; keep them sequential
                    // so packet counts stay those of snmp_exporter.
                    let fetched = if self.opts.walk_concurrency > 1
                        && auth.version != 3
                        && module.walk.len() > 1
                    {
                        let (f, s) = walk::fetch_concurrent(
                            make,
                            module,
                            host,
                            self.opts.partial_results,
                            self.opts.walk_concurrency,
                        )
                        .await;
                        stats = s;
                        f
                    } else {
                        let mut c = make();
                        let f = walk::fetch(&mut c, module, host, self.opts.partial_results).await;
                        stats = c.stats;
                        f
                    };
                    pdus_returned = fetched.pdus.len();
                    module_errors.extend(fetched.errors);
                    let walk_secs = start.elapsed().as_secs_f64();
                    if module_errors.is_empty() || self.opts.partial_results {
                        let render_errors = convert::render(
                            module,
                            &fetched.pdus,
                            self.opts.wrap_counters,
                            &mut module_set,
                        );
                        module_errors.extend(render_errors);
                    }
                    set.gauge(
                        "snmp_scrape_walk_duration_seconds",
                        "Time SNMP walk/bulkwalk took.",
                        &mlabel,
                        walk_secs,
                    );
                }
            }
            if !module_errors.is_empty() && !self.opts.partial_results {
                errors.extend(module_errors);
                return (set, errors);
            }
            set.merge(module_set);
            set.gauge(
                "snmp_scrape_packets_sent",
                "Packets sent for get, bulkget, and walk; including retries.",
                &mlabel,
                stats.sent as f64,
            );
            set.gauge(
                "snmp_scrape_packets_retried",
                "Packets retried for get, bulkget, and walk.",
                &mlabel,
                stats.retried as f64,
            );
            set.gauge(
                "snmp_scrape_pdus_returned",
                "PDUs returned from get, bulkget, and walk.",
                &mlabel,
                pdus_returned as f64,
            );
            let secs = start.elapsed().as_secs_f64();
            set.gauge(
                "snmp_scrape_duration_seconds",
                "Total SNMP time scrape took (walk and processing).",
                &mlabel,
                secs,
            );
            if let Ok(mut t) = self.telemetry.lock() {
                let e = t.durations.entry(module.name.clone()).or_default();
                e.0 += 1;
                e.1 += secs;
            }
            if self.opts.partial_results {
                let ok = module_errors.is_empty();
                set.gauge(
                    "snmp_scrape_module_success",
                    "Whether every get and walk of the module succeeded (Vigie --snmp.partial-results).",
                    &[("module", module.name.as_str())],
                    if ok { 1.0 } else { 0.0 },
                );
                if let Some(first) = module_errors.first() {
                    set.gauge(
                        "snmp_scrape_module_error_info",
                        "The first error of a module that failed, as reason (Vigie --snmp.partial-results).",
                        &[("module", module.name.as_str()), ("reason", first.as_str())],
                        1.0,
                    );
                }
                errors.extend(module_errors);
            }
        }
        (set, errors)
    }

    fn telemetry_metrics(&self) -> MetricSet {
        let mut set = MetricSet::new();
        if let Ok(t) = self.telemetry.lock() {
            let fam = set.family(
                "snmp_collection_duration_seconds",
                "Duration of collections by the SNMP exporter",
                MetricType::Summary,
            );
            let mut names: Vec<_> = t.durations.iter().collect();
            names.sort_by(|a, b| a.0.cmp(b.0));
            for (m, (count, sum)) in names {
                fam.add_summary(
                    vec![("module".into(), m.clone())],
                    Vec::new(),
                    *sum,
                    *count as f64,
                );
            }
            set.counter(
                "snmp_request_errors_total",
                "Errors in requests to the SNMP exporter",
                &[],
                t.request_errors as f64,
            );
        }
        set
    }
}

/// The auth 0.23+ uses when a file defines no `public_v2`.
pub fn default_public_v2() -> Auth {
    use crate::module::{AuthProtocol, PrivProtocol, SecurityLevel};
    Auth {
        version: 2,
        community: b"public".to_vec(),
        security_level: SecurityLevel::NoAuthNoPriv,
        username: String::new(),
        password: Vec::new(),
        auth_protocol: AuthProtocol::Md5,
        priv_protocol: PrivProtocol::Des,
        priv_password: Vec::new(),
        context_name: String::new(),
    }
}

impl Exporter for SnmpExporter {
    async fn metrics(&self, _req: Request) -> Reply {
        Reply::Metrics(self.telemetry_metrics())
    }

    async fn handle(&self, req: Request) -> Option<Reply> {
        match req.path.as_str() {
            "/snmp" => Some(self.scrape(&req).await),
            "/config" => Some(Reply::text(StatusCode::OK, self.config.get().to_yaml())),
            _ => None,
        }
    }

    fn reload(&self) -> Result<(), String> {
        let cfg = config::load_configs(&self.paths).map_err(|e| e.to_string())?;
        self.config.set(cfg);
        Ok(())
    }

    fn has_config(&self) -> bool {
        true
    }

    fn is_limited(&self, path: &str) -> bool {
        path == "/snmp"
    }

    fn landing_html(&self) -> String {
        "<form action=\"/snmp\">\n<label>Target:</label> <input type=\"text\" name=\"target\" placeholder=\"X.X.X.X\" value=\"1.2.3.4\"><br>\n<label>Module:</label> <input type=\"text\" name=\"module\" placeholder=\"module\" value=\"if_mib\"><br>\n<label>Auth:</label> <input type=\"text\" name=\"auth\" placeholder=\"auth\" value=\"public_v2\"><br>\n<input type=\"submit\" value=\"Submit\">\n</form>\n<p><a href=\"/config\">Config</a></p>\n".to_owned()
    }
}
