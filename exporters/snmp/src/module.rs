//! Compiled modules: OIDs parsed to arcs, regexes compiled, auth validated,
//! the metric lookup table built — all once, when the config is loaded.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{
    AuthFile, DynamicFilterFile, Format, IndexFile, MetricFile, ModuleFile, SplitFile,
};

/// An OID as its arcs.
pub type Arcs = Vec<u32>;

/// The auth used when a 0.23+ scrape names none.
pub const DEFAULT_AUTH: &str = "public_v2";
/// The module used when a scrape names none (as snmp_exporter).
pub const DEFAULT_MODULE: &str = "if_mib";

/// A loaded, validated configuration.
#[derive(Debug, Default)]
pub struct Config {
    pub format: Option<Format>,
    pub modules: HashMap<String, Arc<Module>>,
    pub auths: HashMap<String, Arc<Auth>>,
    /// The file as parsed, for `/config` (secrets masked when serialised).
    pub raw: SplitFile,
}

impl Config {
    /// The text `/config` shows: the file re-serialised with secrets masked.
    pub fn to_yaml(&self) -> String {
        let res = match self.format {
            Some(Format::Split) => serde_norway::to_string(&self.raw),
            _ => serde_norway::to_string(&self.raw.modules),
        };
        res.unwrap_or_else(|e| format!("# cannot serialise the config: {e}\n"))
    }
}

/// SNMP security levels (v3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityLevel {
    NoAuthNoPriv,
    AuthNoPriv,
    AuthPriv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthProtocol {
    Md5,
    Sha,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivProtocol {
    Des,
    Aes,
    Aes192,
    Aes256,
    /// Cisco-style (Reeder) key extension.
    Aes192C,
    Aes256C,
}

/// Credentials and protocol version for a session.
#[derive(Debug, Clone)]
pub struct Auth {
    /// 1, 2 (v2c) or 3.
    pub version: u8,
    pub community: Vec<u8>,
    pub security_level: SecurityLevel,
    pub username: String,
    pub password: Vec<u8>,
    pub auth_protocol: AuthProtocol,
    pub priv_protocol: PrivProtocol,
    pub priv_password: Vec<u8>,
    pub context_name: String,
}

/// How a module walks.
#[derive(Debug, Clone)]
pub struct WalkParams {
    pub max_repetitions: u32,
    /// Retries after the first attempt.
    pub retries: u32,
    pub timeout: Duration,
    pub allow_nonincreasing_oids: bool,
    pub use_unconnected_udp_socket: bool,
}

/// How an index component or a lookup renders as a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    Gauge,
    OctetString,
    DisplayString,
    PhysAddress48,
    IpAddr,
    InetAddressIPv4,
    InetAddressIPv6,
    InetAddress,
    InetAddressMissingSize,
    Enum,
}

#[derive(Debug, Clone)]
pub struct Index {
    pub labelname: String,
    pub kind: IndexKind,
    pub fixed_size: usize,
    pub implied: bool,
    pub enum_values: BTreeMap<i64, String>,
}

#[derive(Debug, Clone)]
pub struct Lookup {
    /// Empty: delete `labelname` (what `drop_source_indexes` generates).
    pub labels: Vec<String>,
    pub labelname: String,
    pub oid: Arcs,
    /// The generator's type name, passed to the string rendering.
    pub kind: String,
}

#[derive(Debug, Clone)]
pub struct RegexExtract {
    pub regex: regex::Regex,
    pub value: String,
}

/// The metric types the generator emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Float,
    Double,
    DateAndTime,
    EnumAsInfo,
    EnumAsStateSet,
    Bits,
    /// Any string type: the value becomes a label (`OctetString`,
    /// `DisplayString`, `PhysAddress48`, `IpAddr`, `InetAddress*`, ...).
    String,
}

#[derive(Debug, Clone)]
pub struct Metric {
    pub name: String,
    pub oid: Arcs,
    pub kind: MetricKind,
    /// The type as written, used to render string values.
    pub type_name: String,
    pub help: String,
    pub indexes: Vec<Index>,
    pub lookups: Vec<Lookup>,
    /// Suffix → regexes, in file (sorted) order.
    pub regex_extracts: Vec<(String, Vec<RegexExtract>)>,
    pub enum_values: BTreeMap<i64, String>,
    pub offset: f64,
    pub scale: f64,
}

/// A dynamic filter (0.22+), compiled.
#[derive(Debug, Clone)]
pub struct DynamicFilter {
    /// The column walked first.
    pub oid: Arcs,
    /// Columns fetched only at the matching indices.
    pub targets: Vec<Arcs>,
    /// An index is kept when its value matches any of these (unanchored).
    pub values: Vec<regex::Regex>,
}

#[derive(Debug)]
pub struct Module {
    pub name: String,
    pub walk: Vec<Arcs>,
    pub get: Vec<Arcs>,
    /// Applied in order before the gets and walks, see `walk::apply_filters`.
    pub filters: Vec<DynamicFilter>,
    pub metrics: Vec<Metric>,
    /// Metric OID → index into `metrics`.
    pub by_oid: HashMap<Arcs, usize>,
    /// Shortest metric OID length, where prefix matching starts.
    pub min_oid_len: usize,
    pub params: WalkParams,
    /// 0.21 format: the module's own auth (with its version).
    pub auth: Option<Arc<Auth>>,
}

impl Module {
    /// The metric whose OID is the shortest prefix of `oid`, and the index arcs after it.
    pub fn metric_for<'a>(&self, oid: &'a [u32]) -> Option<(&Metric, &'a [u32])> {
        for len in self.min_oid_len.max(1)..=oid.len() {
            if let Some(&i) = self.by_oid.get(&oid[..len]) {
                return self.metrics.get(i).map(|m| (m, &oid[len..]));
            }
        }
        None
    }
}

/// Parses `1.3.6.1` (a leading dot is accepted) into arcs.
pub fn parse_oid(s: &str) -> Result<Arcs, String> {
    let t = s.trim().trim_start_matches('.');
    if t.is_empty() {
        return Err(format!("invalid OID {s:?}"));
    }
    let arcs: Result<Arcs, _> = t.split('.').map(str::parse::<u32>).collect();
    match arcs {
        Ok(a) if a.len() >= 2 => Ok(a),
        Ok(_) => Err(format!("invalid OID {s:?}: at least two arcs are needed")),
        Err(_) => Err(format!("invalid OID {s:?}")),
    }
}

pub fn oid_string(arcs: &[u32]) -> String {
    let mut s = String::with_capacity(arcs.len() * 4);
    for (i, a) in arcs.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        s.push_str(&a.to_string());
    }
    s
}

/// Validates and compiles a parsed file.
pub fn compile(format: Format, file: SplitFile) -> Result<Config, String> {
    let mut auths = HashMap::new();
    for (name, a) in &file.auths {
        let version = a.version.unwrap_or(2);
        auths.insert(
            name.clone(),
            Arc::new(compile_auth(a, version).map_err(|e| format!("auth {name}: {e}"))?),
        );
    }
    let mut modules = HashMap::new();
    for (name, m) in &file.modules {
        let module = compile_module(format, name, m).map_err(|e| format!("module {name}: {e}"))?;
        modules.insert(name.clone(), Arc::new(module));
    }
    Ok(Config {
        format: Some(format),
        modules,
        auths,
        raw: file,
    })
}

fn compile_auth(a: &AuthFile, version: i64) -> Result<Auth, String> {
    if !(1..=3).contains(&version) {
        return Err(format!("SNMP version must be 1, 2 or 3. Got: {version}"));
    }
    let security_level = match a.security_level.as_deref().unwrap_or("noAuthNoPriv") {
        "noAuthNoPriv" => SecurityLevel::NoAuthNoPriv,
        "authNoPriv" => SecurityLevel::AuthNoPriv,
        "authPriv" => SecurityLevel::AuthPriv,
        other => {
            return Err(format!(
                "security level must be one of authPriv, authNoPriv or noAuthNoPriv, got {other:?}"
            ))
        }
    };
    let auth_protocol = match a.auth_protocol.as_deref().unwrap_or("MD5") {
        "MD5" => AuthProtocol::Md5,
        "SHA" => AuthProtocol::Sha,
        "SHA224" => AuthProtocol::Sha224,
        "SHA256" => AuthProtocol::Sha256,
        "SHA384" => AuthProtocol::Sha384,
        "SHA512" => AuthProtocol::Sha512,
        other => {
            return Err(format!(
                "auth protocol must be SHA, SHA224, SHA256, SHA384, SHA512 or MD5, got {other:?}"
            ))
        }
    };
    let priv_protocol = match a.priv_protocol.as_deref().unwrap_or("DES") {
        "DES" => PrivProtocol::Des,
        "AES" => PrivProtocol::Aes,
        "AES192" => PrivProtocol::Aes192,
        "AES256" => PrivProtocol::Aes256,
        "AES192C" => PrivProtocol::Aes192C,
        "AES256C" => PrivProtocol::Aes256C,
        other => {
            return Err(format!(
                "priv protocol must be DES, AES, AES192, AES192C, AES256 or AES256C, got {other:?}"
            ))
        }
    };
    let secret =
        |s: &Option<crate::config::Secret>| s.as_ref().map(|s| s.0.clone()).unwrap_or_default();
    let auth = Auth {
        version: version as u8,
        community: a
            .community
            .as_ref()
            .map_or_else(|| b"public".to_vec(), |c| c.0.as_bytes().to_vec()),
        security_level,
        username: a.username.clone().unwrap_or_default(),
        password: secret(&a.password).into_bytes(),
        auth_protocol,
        priv_protocol,
        priv_password: secret(&a.priv_password).into_bytes(),
        context_name: a.context_name.clone().unwrap_or_default(),
    };
    if version == 3 {
        if auth.username.is_empty() {
            return Err("auth username is missing, required for SNMPv3".into());
        }
        if security_level != SecurityLevel::NoAuthNoPriv && auth.password.is_empty() {
            return Err("auth password is missing, required for SNMPv3 with auth.".into());
        }
        if security_level == SecurityLevel::AuthPriv && auth.priv_password.is_empty() {
            return Err("priv password is missing, required for SNMPv3 with priv.".into());
        }
    }
    Ok(auth)
}

fn compile_module(format: Format, name: &str, m: &ModuleFile) -> Result<Module, String> {
    let wp = m.walk_params.clone().unwrap_or_default();
    let pick = |a: Option<i64>, b: Option<i64>| a.or(b);
    let version = pick(m.version, wp.version);
    if format == Format::Split && version.is_some() {
        return Err("`version` belongs in the auth in this format (auths: ... version:)".into());
    }
    let retries = pick(m.retries, wp.retries).unwrap_or(3);
    if !(0..=100).contains(&retries) {
        return Err(format!("retries must be between 0 and 100, got {retries}"));
    }
    let timeout = m
        .timeout
        .or(wp.timeout)
        .map_or(Duration::from_secs(5), |d| d.0);
    if timeout.is_zero() {
        return Err("timeout must be greater than 0".into());
    }
    let params = WalkParams {
        max_repetitions: m
            .max_repetitions
            .or(wp.max_repetitions)
            .unwrap_or(25)
            .min(65_535),
        retries: retries as u32,
        timeout,
        allow_nonincreasing_oids: m
            .allow_nonincreasing_oids
            .or(wp.allow_nonincreasing_oids)
            .unwrap_or(false),
        use_unconnected_udp_socket: m
            .use_unconnected_udp_socket
            .or(wp.use_unconnected_udp_socket)
            .unwrap_or(false),
    };
    let auth_file: Option<&AuthFile> = m.auth.as_ref().or(wp.auth.as_ref());
    let auth = match format {
        Format::Flat => {
            let a = auth_file.cloned().unwrap_or_default();
            Some(Arc::new(compile_auth(&a, version.unwrap_or(2))?))
        }
        Format::Split => {
            if auth_file.is_some() {
                return Err(
                    "`auth` belongs in the top-level `auths:` section in this format".into(),
                );
            }
            None
        }
    };
    let walk = m
        .walk
        .iter()
        .map(|o| parse_oid(o))
        .collect::<Result<Vec<_>, _>>()?;
    let get = m
        .get
        .iter()
        .map(|o| parse_oid(o))
        .collect::<Result<Vec<_>, _>>()?;
    let filters = m
        .filters
        .0
        .iter()
        .enumerate()
        .map(|(i, f)| compile_filter(f).map_err(|e| format!("filters[{i}]: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut metrics = Vec::with_capacity(m.metrics.len());
    let mut by_oid = HashMap::new();
    for mf in &m.metrics {
        let metric = compile_metric(mf).map_err(|e| format!("metric {}: {e}", mf.name))?;
        // Two metrics on one OID: the later one wins, as in snmp_exporter.
        by_oid.insert(metric.oid.clone(), metrics.len());
        metrics.push(metric);
    }
    let min_oid_len = metrics.iter().map(|m| m.oid.len()).min().unwrap_or(1);
    Ok(Module {
        name: name.to_owned(),
        walk,
        get,
        filters,
        metrics,
        by_oid,
        min_oid_len,
        params,
        auth,
    })
}

/// Targets and the filter OID must be numeric: the generator copies them
/// verbatim from generator.yml, and Go only matches them against the
/// (numeric) walk list and sends `target.index` as an OID, so a MIB name
/// could never work there.
fn compile_filter(f: &DynamicFilterFile) -> Result<DynamicFilter, String> {
    let oid = parse_oid(&f.oid).map_err(|e| format!("oid: {e}"))?;
    let targets = f
        .targets
        .iter()
        .map(|t| parse_oid(t).map_err(|e| format!("targets: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    // Go compiles these at scrape time with MustCompile (a bad one panics
    // there); here a bad one fails the load instead.
    let values = f
        .values
        .iter()
        .map(|v| regex::Regex::new(v).map_err(|e| format!("values: invalid regex {v:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DynamicFilter {
        oid,
        targets,
        values,
    })
}

fn metric_kind(t: &str) -> Result<MetricKind, String> {
    Ok(match t {
        "counter" => MetricKind::Counter,
        "gauge" => MetricKind::Gauge,
        "Float" => MetricKind::Float,
        "Double" => MetricKind::Double,
        "DateAndTime" => MetricKind::DateAndTime,
        "EnumAsInfo" => MetricKind::EnumAsInfo,
        "EnumAsStateSet" => MetricKind::EnumAsStateSet,
        "Bits" => MetricKind::Bits,
        "OctetString"
        | "DisplayString"
        | "PhysAddress48"
        | "IpAddr"
        | "InetAddressIPv4"
        | "InetAddressIPv6"
        | "InetAddress"
        | "InetAddressMissingSize"
        | "LldpPortId"
        | "NTPTimeStamp"
        | "ParseDateAndTime" => MetricKind::String,
        other => return Err(format!("unknown metric type {other:?}")),
    })
}

fn index_kind(t: &str) -> Result<IndexKind, String> {
    Ok(match t {
        "gauge" | "counter" | "Integer32" | "Integer" | "Unsigned32" => IndexKind::Gauge,
        "OctetString" => IndexKind::OctetString,
        "DisplayString" => IndexKind::DisplayString,
        "PhysAddress48" => IndexKind::PhysAddress48,
        "IpAddr" => IndexKind::IpAddr,
        "InetAddressIPv4" => IndexKind::InetAddressIPv4,
        "InetAddressIPv6" => IndexKind::InetAddressIPv6,
        "InetAddress" => IndexKind::InetAddress,
        "InetAddressMissingSize" => IndexKind::InetAddressMissingSize,
        "EnumAsInfo" | "EnumAsStateSet" => IndexKind::Enum,
        other => return Err(format!("unknown index type {other:?}")),
    })
}

fn compile_index(i: &IndexFile) -> Result<Index, String> {
    if !vigie_common::expo::is_valid_label_name(&i.labelname) {
        return Err(format!("invalid index label name {:?}", i.labelname));
    }
    Ok(Index {
        labelname: i.labelname.clone(),
        kind: index_kind(&i.kind)?,
        fixed_size: i.fixed_size.unwrap_or(0),
        implied: i.implied.unwrap_or(false),
        enum_values: i.enum_values.clone(),
    })
}

fn compile_metric(m: &MetricFile) -> Result<Metric, String> {
    if !vigie_common::expo::is_valid_metric_name(&m.name) {
        return Err(format!("invalid metric name {:?}", m.name));
    }
    let kind = metric_kind(&m.kind)?;
    let indexes = m
        .indexes
        .iter()
        .map(compile_index)
        .collect::<Result<Vec<_>, _>>()?;
    let mut lookups = Vec::new();
    for l in &m.lookups {
        if !vigie_common::expo::is_valid_label_name(&l.labelname) {
            return Err(format!("invalid lookup label name {:?}", l.labelname));
        }
        let oid = if l.labels.is_empty() {
            Vec::new()
        } else {
            parse_oid(&l.oid).map_err(|e| format!("lookup {}: {e}", l.labelname))?
        };
        lookups.push(Lookup {
            labels: l.labels.clone(),
            labelname: l.labelname.clone(),
            oid,
            kind: l.kind.clone(),
        });
    }
    let mut regex_extracts = Vec::new();
    for (suffix, list) in &m.regex_extracts {
        let mut compiled = Vec::new();
        for r in list {
            // Anchored, as snmp_exporter's config loader does.
            let re = regex::Regex::new(&format!("^(?:{})$", r.regex))
                .map_err(|e| format!("regex_extracts {suffix:?}: {e}"))?;
            compiled.push(RegexExtract {
                regex: re,
                value: r.value.clone(),
            });
        }
        regex_extracts.push((suffix.clone(), compiled));
    }
    Ok(Metric {
        name: m.name.clone(),
        oid: parse_oid(&m.oid)?,
        kind,
        type_name: m.kind.clone(),
        help: m.help.clone(),
        indexes,
        lookups,
        regex_extracts,
        enum_values: m.enum_values.clone(),
        offset: m.offset.unwrap_or(0.0),
        scale: m.scale.unwrap_or(0.0),
    })
}
