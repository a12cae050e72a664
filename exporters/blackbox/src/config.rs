//! blackbox.yml: the modules file as blackbox_exporter 0.23 reads it.
//!
//! Every key 0.23 accepts is accepted here, anything else is an error that
//! names the file, line and key path (through `vigie_common::config`).
//! Regular expressions are compiled once at load time.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use vigie_common::config::{load_yaml_file, parse_yaml, ConfigError, PromDuration};

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub modules: BTreeMap<String, Module>,
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn yes() -> bool {
    true
}

/// One module.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Module {
    pub prober: String,
    #[serde(default, skip_serializing_if = "is_zero_duration")]
    pub timeout: PromDuration,
    #[serde(default)]
    pub http: HttpProbe,
    #[serde(default)]
    pub tcp: TcpProbe,
    #[serde(default)]
    pub icmp: IcmpProbe,
    #[serde(default)]
    pub dns: DnsProbe,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcProbe>,
}

fn is_zero_duration(d: &PromDuration) -> bool {
    d.0.is_zero()
}

/// A regular expression compiled at load, shown as written.
#[derive(Debug, Clone)]
pub struct Regex {
    pub source: String,
    pub re: regex::Regex,
}

impl Regex {
    pub fn new(source: &str) -> Result<Self, String> {
        let re = match regex::Regex::new(source) {
            Ok(re) => re,
            // RE2 (Go) accepts a repeated empty-width assertion such as the
            // `^+OK` of the upstream pop3s_banner example, where it means `^OK`.
            Err(first) => {
                let fixed = source
                    .replace("^+", "^")
                    .replace("^*", "^")
                    .replace("$+", "$");
                regex::Regex::new(&fixed).map_err(|_| {
                    format!("\"Could not compile regular expression\" regexp={source:?}: {first}")
                })?
            }
        };
        Ok(Regex {
            source: source.to_owned(),
            re,
        })
    }
}

impl<'de> Deserialize<'de> for Regex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Regex::new(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Regex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

/// `preferred_ip_protocol` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpProtocol {
    Ip4,
    #[default]
    Ip6,
}

/// A URL as `/config` shows it: the password as `xxxxx`, as Go's
/// `url.URL.Redacted`.
fn ser_redacted_url<S: serde::Serializer>(u: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match u {
        Some(u) => s.serialize_str(&redacted_url(u)),
        None => s.serialize_none(),
    }
}

/// On the text, not a parsed URL: a parsed one would gain a `/` path Go
/// does not show.
fn redacted_url(u: &str) -> String {
    let Some((scheme, rest)) = u.split_once("://") else {
        return u.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return u.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:xxxxx@{host}{tail}"),
        None => u.to_owned(),
    }
}

fn de_ip_protocol<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    match s.as_str() {
        "ip4" | "ip6" | "" => Ok(Some(s)),
        // Go accepts any value and treats what is not ip4 as ip6.
        _ => Ok(Some(s)),
    }
}

/// Reads `preferred_ip_protocol` the way the Go prober does.
pub fn ip_protocol(s: &Option<String>) -> IpProtocol {
    match s.as_deref() {
        Some("ip4") => IpProtocol::Ip4,
        _ => IpProtocol::Ip6,
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    #[serde(default)]
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2 {
    #[serde(default)]
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub token_url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoint_params: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(
        default,
        serialize_with = "ser_redacted_url",
        skip_serializing_if = "Option::is_none"
    )]
    pub proxy_url: Option<String>,
}

/// A secret: read from the file, shown as `<secret>` as Go does.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<secret>")
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    pub header: String,
    pub regexp: Regex,
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_missing: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProbe {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub valid_status_codes: Vec<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub valid_http_versions: Vec<String>,
    #[serde(
        default,
        deserialize_with = "de_ip_protocol",
        skip_serializing_if = "Option::is_none"
    )]
    pub preferred_ip_protocol: Option<String>,
    #[serde(default = "yes")]
    pub ip_protocol_fallback: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_resolve_phase_with_proxy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_follow_redirects: Option<bool>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub fail_if_ssl: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub fail_if_not_ssl: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_if_body_matches_regexp: Vec<Regex>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_if_body_not_matches_regexp: Vec<Regex>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_if_header_matches: Vec<HeaderMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_if_header_not_matches: Vec<HeaderMatch>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    // prometheus/common HTTPClientConfig, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(
        default,
        serialize_with = "ser_redacted_url",
        skip_serializing_if = "Option::is_none"
    )]
    pub proxy_url: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub proxy_connect_header: BTreeMap<String, Vec<Secret>>,
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    #[serde(default = "yes")]
    pub enable_http2: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub compression: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_size_limit: Option<ByteSize>,
}

impl Default for HttpProbe {
    fn default() -> Self {
        HttpProbe {
            valid_status_codes: vec![],
            valid_http_versions: vec![],
            preferred_ip_protocol: None,
            ip_protocol_fallback: true,
            skip_resolve_phase_with_proxy: false,
            no_follow_redirects: None,
            fail_if_ssl: false,
            fail_if_not_ssl: false,
            method: String::new(),
            headers: BTreeMap::new(),
            fail_if_body_matches_regexp: vec![],
            fail_if_body_not_matches_regexp: vec![],
            fail_if_header_matches: vec![],
            fail_if_header_not_matches: vec![],
            body: String::new(),
            basic_auth: None,
            authorization: None,
            oauth2: None,
            bearer_token: None,
            bearer_token_file: None,
            tls_config: None,
            proxy_url: None,
            proxy_connect_header: BTreeMap::new(),
            follow_redirects: true,
            enable_http2: true,
            compression: String::new(),
            body_size_limit: None,
        }
    }
}

impl HttpProbe {
    /// `follow_redirects`, with the deprecated `no_follow_redirects` winning when set.
    pub fn follow(&self) -> bool {
        match self.no_follow_redirects {
            Some(no) => !no,
            None => self.follow_redirects,
        }
    }
}

/// A byte size in Go's `units.Base2Bytes` syntax (`10MB` = 10 MiB, `512KiB`, `1024`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("invalid byte size {s:?}"))?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "K" | "KB" | "KiB" => 1 << 10,
            "M" | "MB" | "MiB" => 1 << 20,
            "G" | "GB" | "GiB" => 1 << 30,
            "T" | "TB" | "TiB" => 1 << 40,
            "P" | "PB" | "PiB" => 1 << 50,
            u => return Err(format!("invalid byte size {s:?}: unknown unit {u:?}")),
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("byte size out of range: {s:?}"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueryResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Regex>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub send: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub starttls: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TcpProbe {
    #[serde(
        default,
        deserialize_with = "de_ip_protocol",
        skip_serializing_if = "Option::is_none"
    )]
    pub preferred_ip_protocol: Option<String>,
    #[serde(default = "yes")]
    pub ip_protocol_fallback: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_response: Vec<QueryResponse>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
}

impl Default for TcpProbe {
    fn default() -> Self {
        TcpProbe {
            preferred_ip_protocol: None,
            ip_protocol_fallback: true,
            source_ip_address: None,
            query_response: vec![],
            tls: false,
            tls_config: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IcmpProbe {
    #[serde(
        default,
        deserialize_with = "de_ip_protocol",
        skip_serializing_if = "Option::is_none"
    )]
    pub preferred_ip_protocol: Option<String>,
    #[serde(default = "yes")]
    pub ip_protocol_fallback: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero_usize")]
    pub payload_size: usize,
    #[serde(default, skip_serializing_if = "is_false")]
    pub dont_fragment: bool,
    #[serde(default = "default_ttl")]
    pub ttl: i64,
}

fn is_zero_usize(n: &usize) -> bool {
    *n == 0
}
fn default_ttl() -> i64 {
    64
}

impl Default for IcmpProbe {
    fn default() -> Self {
        IcmpProbe {
            preferred_ip_protocol: None,
            ip_protocol_fallback: true,
            source_ip_address: None,
            payload_size: 0,
            dont_fragment: false,
            ttl: 64,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsRrValidator {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_if_matches_regexp: Vec<Regex>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_if_all_match_regexp: Vec<Regex>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_if_not_matches_regexp: Vec<Regex>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_if_none_matches_regexp: Vec<Regex>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsProbe {
    #[serde(
        default,
        deserialize_with = "de_ip_protocol",
        skip_serializing_if = "Option::is_none"
    )]
    pub preferred_ip_protocol: Option<String>,
    #[serde(default = "yes")]
    pub ip_protocol_fallback: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub dns_over_tls: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub transport_protocol: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query_class: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query_type: String,
    #[serde(default = "yes")]
    pub recursion_desired: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub valid_rcodes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate_answer_rrs: Option<DnsRrValidator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate_authority_rrs: Option<DnsRrValidator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate_additional_rrs: Option<DnsRrValidator>,
}

impl Default for DnsProbe {
    fn default() -> Self {
        DnsProbe {
            preferred_ip_protocol: None,
            ip_protocol_fallback: true,
            dns_over_tls: false,
            tls_config: None,
            source_ip_address: None,
            transport_protocol: String::new(),
            query_class: String::new(),
            query_name: String::new(),
            query_type: String::new(),
            recursion_desired: true,
            valid_rcodes: vec![],
            validate_answer_rrs: None,
            validate_authority_rrs: None,
            validate_additional_rrs: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcProbe {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(default = "yes")]
    pub ip_protocol_fallback: bool,
    #[serde(
        default,
        deserialize_with = "de_ip_protocol",
        skip_serializing_if = "Option::is_none"
    )]
    pub preferred_ip_protocol: Option<String>,
}

impl Default for GrpcProbe {
    fn default() -> Self {
        GrpcProbe {
            service: String::new(),
            tls: false,
            tls_config: None,
            ip_protocol_fallback: true,
            preferred_ip_protocol: None,
        }
    }
}

/// DNS query type names accepted (miekg's names for the common types).
pub const DNS_TYPES: &[(&str, u16)] = &[
    ("A", 1),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("PTR", 12),
    ("HINFO", 13),
    ("MX", 15),
    ("TXT", 16),
    ("RP", 17),
    ("AAAA", 28),
    ("LOC", 29),
    ("SRV", 33),
    ("NAPTR", 35),
    ("CERT", 37),
    ("DNAME", 39),
    ("OPT", 41),
    ("DS", 43),
    ("SSHFP", 44),
    ("RRSIG", 46),
    ("NSEC", 47),
    ("DNSKEY", 48),
    ("NSEC3", 50),
    ("NSEC3PARAM", 51),
    ("TLSA", 52),
    ("CDS", 59),
    ("CDNSKEY", 60),
    ("OPENPGPKEY", 61),
    ("SVCB", 64),
    ("HTTPS", 65),
    ("SPF", 99),
    ("TKEY", 249),
    ("TSIG", 250),
    ("IXFR", 251),
    ("AXFR", 252),
    ("ANY", 255),
    ("URI", 256),
    ("CAA", 257),
];

pub const DNS_CLASSES: &[(&str, u16)] = &[
    ("IN", 1),
    ("CS", 2),
    ("CH", 3),
    ("HS", 4),
    ("NONE", 254),
    ("ANY", 255),
];

pub const DNS_RCODES: &[(&str, u16)] = &[
    ("NOERROR", 0),
    ("FORMERR", 1),
    ("SERVFAIL", 2),
    ("NXDOMAIN", 3),
    ("NOTIMP", 4),
    ("REFUSED", 5),
    ("YXDOMAIN", 6),
    ("YXRRSET", 7),
    ("NXRRSET", 8),
    ("NOTAUTH", 9),
    ("NOTZONE", 10),
    ("BADSIG", 16),
    ("BADKEY", 17),
    ("BADTIME", 18),
    ("BADMODE", 19),
    ("BADNAME", 20),
    ("BADALG", 21),
    ("BADTRUNC", 22),
    ("BADCOOKIE", 23),
];

pub fn lookup(table: &[(&str, u16)], name: &str) -> Option<u16> {
    table
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

impl Config {
    /// Loads and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let cfg: Config = load_yaml_file(path)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Parses text (tests).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = parse_yaml(path, text)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// prometheus/common's checks of an `oauth2` block (in its order).
    fn oauth2_problem(h: &HttpProbe, o: &OAuth2) -> Option<&'static str> {
        let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
        let secret = o.client_secret.as_ref().is_some_and(|s| !s.0.is_empty());
        if h.bearer_token.is_some() || set(&h.bearer_token_file) {
            Some("at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured")
        } else if h.basic_auth.is_some() || h.authorization.is_some() {
            Some("at most one of basic_auth, oauth2 & authorization must be configured")
        } else if o.client_id.is_empty() {
            Some("oauth2 client_id must be configured")
        } else if !secret && !set(&o.client_secret_file) {
            Some("either oauth2 client_secret or client_secret_file must be configured")
        } else if o.token_url.is_empty() {
            Some("oauth2 token_url must be configured")
        } else if secret && set(&o.client_secret_file) {
            Some("at most one of oauth2 client_secret & client_secret_file must be configured")
        } else {
            None
        }
    }

    /// The checks 0.23 makes after decoding.
    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        for (name, m) in &self.modules {
            let bad = |msg: String| ConfigError::invalid(path, format!("module {name}: {msg}"));
            if m.icmp.ttl < 0 {
                return Err(bad("\"ttl\" cannot be negative".into()));
            }
            if m.icmp.ttl > 255 {
                return Err(bad("\"ttl\" cannot exceed 255".into()));
            }
            let d = &m.dns;
            if !d.query_type.is_empty() && lookup(DNS_TYPES, &d.query_type).is_none() {
                return Err(bad(format!("query type '{}' is not valid", d.query_type)));
            }
            if !d.query_class.is_empty() && lookup(DNS_CLASSES, &d.query_class).is_none() {
                return Err(bad(format!("query class '{}' is not valid", d.query_class)));
            }
            for rc in &d.valid_rcodes {
                if lookup(DNS_RCODES, rc).is_none() {
                    return Err(bad(format!("invalid rcode '{rc}'")));
                }
            }
            let h = &m.http;
            if h.bearer_token.is_some() && h.bearer_token_file.is_some() {
                return Err(bad(
                    "at most one of bearer_token & bearer_token_file must be configured".into(),
                ));
            }
            if let Some(o) = &h.oauth2 {
                if let Some(msg) = Self::oauth2_problem(h, o) {
                    return Err(bad(msg.into()));
                }
            }
            if !h.proxy_connect_header.is_empty()
                && h.proxy_url.as_deref().is_none_or(str::is_empty)
            {
                return Err(bad(
                    "if proxy_connect_header is configured proxy_url must also be configured"
                        .into(),
                ));
            }
            if !h.compression.is_empty()
                && !["gzip", "br", "deflate", "identity"].contains(&h.compression.as_str())
            {
                return Err(bad(format!("invalid compression {:?}", h.compression)));
            }
            if let Some(ae) = h
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("accept-encoding"))
                .map(|(_, v)| v)
            {
                if !h.compression.is_empty() && !ae.contains(&h.compression) && !ae.contains('*') {
                    return Err(bad(format!(
                        "invalid configuration \"Accept-Encoding: {ae}\", \"compression: {}\"",
                        h.compression
                    )));
                }
            }
            if !["http", "tcp", "icmp", "dns", "grpc"].contains(&m.prober.as_str()) {
                // 0.23 accepts the file and fails the probe; keep that, but say so.
                tracing::warn!(module = %name, prober = %m.prober, "Unknown prober in module; probes with it will fail");
            }
        }
        Ok(())
    }

    /// The config as YAML with defaults filled in (for /config).
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).unwrap_or_else(|e| format!("error: {e}\n"))
    }
}

impl Module {
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).unwrap_or_else(|e| format!("error: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(t: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("blackbox.yml"), t)
    }

    #[test]
    fn unknown_key_has_line() {
        let e = parse("modules:\n  a:\n    prober: http\n    http:\n      metod: GET\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("blackbox.yml:5:"), "{e}");
        assert!(e.contains("metod"), "{e}");
    }

    #[test]
    fn defaults() {
        let c = parse("modules:\n  a:\n    prober: icmp\n").unwrap();
        let m = &c.modules["a"];
        assert_eq!(m.icmp.ttl, 64);
        assert!(m.http.follow());
        assert!(m.dns.recursion_desired);
    }

    #[test]
    fn validation() {
        assert!(parse("modules:\n  a:\n    prober: icmp\n    icmp:\n      ttl: 300\n").is_err());
        assert!(parse("modules:\n  a:\n    prober: dns\n    dns:\n      query_name: x\n      query_type: BOGUS\n").is_err());
        assert!(parse("modules:\n  a:\n    prober: http\n    http:\n      fail_if_body_matches_regexp: ['(']\n").is_err());
        assert!(parse("modules:\n  a:\n    prober: tcp\n    tcp:\n      query_response:\n      - expect: '^+OK'\n").is_ok());
    }

    #[test]
    fn proxy_password_redacted() {
        assert_eq!(
            redacted_url("http://user:pa%40ss@127.0.0.1:3128"),
            "http://user:xxxxx@127.0.0.1:3128"
        );
        assert_eq!(
            redacted_url("http://u:p@h/a@b?c=d@e"),
            "http://u:xxxxx@h/a@b?c=d@e"
        );
        assert_eq!(redacted_url("http://user@p:3128"), "http://user@p:3128");
        assert_eq!(redacted_url("http://p:3128"), "http://p:3128");
    }

    /// The oauth2 and proxy checks, each message as the Go binary prints it.
    #[test]
    fn http_client_validation() {
        let http = |body: &str| {
            parse(&format!(
                "modules:\n  a:\n    prober: http\n    http:\n{body}"
            ))
        };
        let err = |body: &str| http(body).err().map(|e| e.to_string()).unwrap_or_default();
        let ok = "      oauth2: {client_id: a, client_secret: b, token_url: 'http://t/'}\n";
        assert!(http(ok).is_ok());
        for (body, msg) in [
            ("      oauth2: {client_secret: b, token_url: 'http://t/'}\n", "oauth2 client_id must be configured"),
            ("      oauth2: {client_id: a, client_secret: b}\n", "oauth2 token_url must be configured"),
            ("      oauth2: {client_id: a, token_url: 'http://t/'}\n", "either oauth2 client_secret or client_secret_file must be configured"),
            ("      oauth2: {client_id: a, client_secret: b, client_secret_file: f, token_url: 'http://t/'}\n", "at most one of oauth2 client_secret & client_secret_file must be configured"),
            ("      basic_auth: {username: u}\n", "at most one of basic_auth, oauth2 & authorization must be configured"),
            ("      bearer_token: x\n", "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"),
        ] {
            let text = if body.contains("oauth2") { body.to_owned() } else { format!("{body}{ok}") };
            assert!(err(&text).contains(msg), "{text}: {}", err(&text));
        }
        assert!(err("      proxy_connect_header: {X: [y]}\n")
            .contains("if proxy_connect_header is configured proxy_url must also be configured"));
        assert!(
            http("      proxy_url: http://p:3128\n      proxy_connect_header: {X: [y]}\n").is_ok()
        );
    }

    #[test]
    fn hostile_configs_are_errors_not_panics() {
        for t in [
            "",
            "modules:",
            "modules: []",
            "modules: {a: 1}",
            "modules:\n  a:\n    prober: http\n    timeout: -5s\n",
            "modules:\n  a:\n    prober: icmp\n    icmp:\n      ttl: -1\n",
            "modules:\n  a:\n    prober: http\n    http:\n      valid_status_codes: [99999]\n",
            "modules:\n  a:\n    prober: http\n    http:\n      body_size_limit: 99999999999999PB\n",
            "modules:\n  a:\n    prober: dns\n    dns:\n      valid_rcodes: [NOPE]\n",
            "modules:\n  a:\n    prober: http\n    http:\n      compression: zstd\n",
            "\u{0}\u{1}",
            "modules:\n  a: &x\n    prober: tcp\n  b: *x\n",
        ] {
            let _ = parse(t);
        }
        assert!(
            parse("modules:\n  a:\n    prober: http\n    http:\n      compression: zstd\n")
                .is_err()
        );
        assert!(parse("modules:\n  a:\n    prober: icmp\n    icmp:\n      ttl: -1\n").is_err());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(ByteSize::parse("10MB").unwrap().0, 10 << 20);
        assert_eq!(ByteSize::parse("1024").unwrap().0, 1024);
        assert!(ByteSize::parse("1XB").is_err());
    }
}
