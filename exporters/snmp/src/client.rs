//! One SNMP session per module scrape, on snmp2's tokio `AsyncSession`.
//!
//! snmp2 leaves timeouts, retries and stale replies to the caller
//! (reference notes, §5.4). This wrapper:
//! - bounds every request by the module's `timeout` and the scrape deadline;
//! - retries `retries` times, counting packets sent and retried as
//!   gosnmp does for `snmp_scrape_packets_*`;
//! - after a timeout or a mismatched reply, throws the socket away and opens
//!   a new one, so a late reply can never be read as the answer to a later
//!   request (snmp2 also checks the request id of every reply);
//! - repeats a v3 request once the engine boots/time were resynchronised;
//! - holds a permit of a process-wide semaphore while a request is in
//!   flight, bounding concurrent SNMP requests across all scrapes;
//! - converts replies to owned data at once (snmp2's `Pdu` borrows the
//!   session's receive buffer).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use snmp2::{AsyncSession, Oid, Value};
use tokio::sync::Semaphore;

use crate::module::{
    oid_string, Arcs, Auth, AuthProtocol, PrivProtocol, SecurityLevel, WalkParams,
};

/// A varbind value, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum SnmpValue {
    Integer(i64),
    OctetString(Vec<u8>),
    ObjectId(Arcs),
    IpAddress([u8; 4]),
    Counter32(u32),
    Gauge32(u32),
    TimeTicks(u32),
    Opaque(Vec<u8>),
    Counter64(u64),
    Boolean(bool),
    Null,
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
    /// A type SNMP does not use in varbinds (sequence, PDU, ...).
    Other,
}

impl SnmpValue {
    /// An exception value (noSuchObject, noSuchInstance, endOfMibView).
    pub fn is_exception(&self) -> bool {
        matches!(
            self,
            SnmpValue::NoSuchObject | SnmpValue::NoSuchInstance | SnmpValue::EndOfMibView
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Varbind {
    pub oid: Arcs,
    pub value: SnmpValue,
}

/// A response PDU, owned.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub error_status: u32,
    pub error_index: u32,
    pub varbinds: Vec<Varbind>,
}

/// Why a request failed. The texts follow gosnmp's where one exists.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error("error establishing connection to host: {0}")]
    Connect(String),
    #[error("request timeout (after {0} retries)")]
    Timeout(u32),
    #[error("scrape deadline exceeded")]
    Deadline,
    #[error("error reading from socket: {0}")]
    Receive(String),
    #[error("error sending to socket: {0}")]
    Send(String),
    #[error("{0}")]
    Snmp(String),
    #[error("malformed response: {0}")]
    Malformed(String),
    /// A response with a non-zero error-status to a GET.
    #[error("Error Status {0}")]
    ErrorStatus(u32),
}

/// Packets sent and retried, for `snmp_scrape_packets_*`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub sent: u64,
    pub retried: u64,
}

/// What to send.
#[derive(Debug, Clone)]
pub enum Op<'a> {
    Get(&'a [Arcs]),
    GetNext(&'a [u32]),
    GetBulk(&'a [u32], u32),
}

/// One target's session for one module scrape.
pub struct Client {
    addr: SocketAddr,
    auth: Arc<Auth>,
    params: WalkParams,
    session: Option<Box<AsyncSession>>,
    deadline: Instant,
    limiter: Arc<Semaphore>,
    next_req_id: i32,
    pub stats: Stats,
}

/// Resolves `host[:port]` (port 161 by default; IPv6 in brackets).
pub async fn resolve(target: &str, deadline: Instant) -> Result<SocketAddr, ClientError> {
    let (host, port) = split_target(target).map_err(ClientError::Connect)?;
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let lookup = tokio::net::lookup_host((host.to_owned(), port));
    let res = tokio::time::timeout_at(deadline.into(), lookup)
        .await
        .map_err(|_| ClientError::Connect(format!("dial udp: lookup {host}: timeout")))?;
    let mut addrs =
        res.map_err(|e| ClientError::Connect(format!("dial udp: lookup {host}: {e}")))?;
    addrs
        .next()
        .ok_or_else(|| ClientError::Connect(format!("dial udp: lookup {host}: no such host")))
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`, bare v6 → (host, port).
pub fn split_target(target: &str) -> Result<(&str, u16), String> {
    let t = target.trim();
    if t.is_empty() {
        return Err("empty target".into());
    }
    let parse_port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("invalid port {p:?} in target {target:?}"))
    };
    if let Some(rest) = t.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("missing ']' in target {target:?}"))?;
        return match after {
            "" => Ok((host, 161)),
            p => Ok((
                host,
                parse_port(p.strip_prefix(':').ok_or("garbage after ']'")?)?,
            )),
        };
    }
    match t.matches(':').count() {
        0 => Ok((t, 161)),
        1 => {
            let (h, p) = t.split_once(':').ok_or("bad target")?;
            if h.is_empty() {
                return Err(format!("missing host in target {target:?}"));
            }
            Ok((h, parse_port(p)?))
        }
        // A bare IPv6 address.
        _ => Ok((t, 161)),
    }
}

/// Decodes an OID's BER content octets into arcs. Own decoder rather than
/// asn1-rs' iterator: it renders `0.0` (a single 0x00 octet) as two arcs,
/// as SNMP agents and gosnmp mean it, and rejects truncated or
/// over-long sub-identifiers (more than 32 bits) instead of guessing.
pub fn decode_oid(bytes: &[u8]) -> Option<Arcs> {
    let mut arcs = Vec::with_capacity(bytes.len() + 1);
    let mut acc: u64 = 0;
    let mut in_arc = false;
    for &b in bytes {
        if !in_arc && b == 0x80 {
            // Non-minimal encoding (leading 0x80) is invalid BER.
            return None;
        }
        acc = (acc << 7) | u64::from(b & 0x7f);
        if acc > u64::from(u32::MAX) + 80 {
            return None;
        }
        in_arc = true;
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let (x, y) = match acc {
                    0..=39 => (0, acc),
                    40..=79 => (1, acc - 40),
                    _ => (2, acc - 80),
                };
                arcs.push(x as u32);
                arcs.push(u32::try_from(y).ok()?);
            } else {
                arcs.push(u32::try_from(acc).ok()?);
            }
            acc = 0;
            in_arc = false;
        }
    }
    if in_arc || arcs.is_empty() {
        return None;
    }
    Some(arcs)
}

fn to_arcs(oid: &Oid<'_>) -> Option<Arcs> {
    decode_oid(oid.as_bytes())
}

fn to_oid(arcs: &[u32]) -> Result<Oid<'static>, ClientError> {
    let v: Vec<u64> = arcs.iter().map(|&a| u64::from(a)).collect();
    Oid::from(&v).map_err(|_| ClientError::Snmp(format!("cannot encode OID {}", oid_string(arcs))))
}

fn own_value(v: Value<'_>) -> SnmpValue {
    match v {
        Value::Boolean(b) => SnmpValue::Boolean(b),
        Value::Null => SnmpValue::Null,
        Value::Integer(i) => SnmpValue::Integer(i),
        Value::OctetString(s) => SnmpValue::OctetString(s.to_vec()),
        Value::ObjectIdentifier(o) => to_arcs(&o).map_or(SnmpValue::Other, SnmpValue::ObjectId),
        Value::IpAddress(a) => SnmpValue::IpAddress(a),
        Value::Counter32(c) => SnmpValue::Counter32(c),
        Value::Unsigned32(c) => SnmpValue::Gauge32(c),
        Value::Timeticks(t) => SnmpValue::TimeTicks(t),
        Value::Opaque(o) => SnmpValue::Opaque(o.to_vec()),
        Value::Counter64(c) => SnmpValue::Counter64(c),
        Value::EndOfMibView => SnmpValue::EndOfMibView,
        Value::NoSuchObject => SnmpValue::NoSuchObject,
        Value::NoSuchInstance => SnmpValue::NoSuchInstance,
        _ => SnmpValue::Other,
    }
}

/// Converts a decoded PDU to owned data; a varbind name that does not
/// decode to 32-bit arcs makes the whole reply malformed.
pub fn own_pdu(pdu: snmp2::Pdu<'_>) -> Result<Response, ClientError> {
    let mut varbinds = Vec::new();
    for (oid, value) in pdu.varbinds {
        let arcs =
            to_arcs(&oid).ok_or_else(|| ClientError::Malformed("bad OID in varbind".into()))?;
        varbinds.push(Varbind {
            oid: arcs,
            value: own_value(value),
        });
    }
    Ok(Response {
        error_status: pdu.error_status,
        error_index: pdu.error_index,
        varbinds,
    })
}

fn security(auth: &Auth) -> snmp2::v3::Security {
    use snmp2::v3;
    let proto = match auth.auth_protocol {
        AuthProtocol::Md5 => v3::AuthProtocol::Md5,
        AuthProtocol::Sha => v3::AuthProtocol::Sha1,
        AuthProtocol::Sha224 => v3::AuthProtocol::Sha224,
        AuthProtocol::Sha256 => v3::AuthProtocol::Sha256,
        AuthProtocol::Sha384 => v3::AuthProtocol::Sha384,
        AuthProtocol::Sha512 => v3::AuthProtocol::Sha512,
    };
    let mut sec = v3::Security::new(auth.username.as_bytes(), &auth.password)
        .with_auth_protocol(proto)
        .with_context_name(&auth.context_name);
    sec = match auth.security_level {
        SecurityLevel::NoAuthNoPriv => sec.with_auth(v3::Auth::NoAuthNoPriv),
        SecurityLevel::AuthNoPriv => sec.with_auth(v3::Auth::AuthNoPriv),
        SecurityLevel::AuthPriv => {
            let (cipher, ext) = match auth.priv_protocol {
                PrivProtocol::Des => (v3::Cipher::Des, None),
                PrivProtocol::Aes => (v3::Cipher::Aes128, None),
                PrivProtocol::Aes192 => (v3::Cipher::Aes192, Some(v3::KeyExtension::Blumenthal)),
                PrivProtocol::Aes256 => (v3::Cipher::Aes256, Some(v3::KeyExtension::Blumenthal)),
                PrivProtocol::Aes192C => (v3::Cipher::Aes192, Some(v3::KeyExtension::Reeder)),
                PrivProtocol::Aes256C => (v3::Cipher::Aes256, Some(v3::KeyExtension::Reeder)),
            };
            let s = sec.with_auth(v3::Auth::AuthPriv {
                cipher,
                privacy_password: auth.priv_password.clone(),
            });
            match ext {
                Some(e) => s.with_key_extension_method(e),
                None => s,
            }
        }
    };
    sec
}

fn snmp_err(e: snmp2::Error) -> ClientError {
    match e {
        snmp2::Error::Receive => {
            ClientError::Receive("recvfrom failed (connection refused or unreachable)".into())
        }
        snmp2::Error::Send => ClientError::Send("sendto failed".into()),
        snmp2::Error::AuthFailure(k) => ClientError::Snmp(format!("authentication failure: {k:?}")),
        snmp2::Error::AsnParse
        | snmp2::Error::AsnInvalidLen
        | snmp2::Error::AsnWrongType
        | snmp2::Error::AsnUnsupportedType
        | snmp2::Error::AsnEof
        | snmp2::Error::AsnIntOverflow
        | snmp2::Error::ValueOutOfRange
        | snmp2::Error::UnsupportedVersion
        | snmp2::Error::BufferOverflow => ClientError::Malformed(e.to_string()),
        other => ClientError::Snmp(other.to_string()),
    }
}

/// How one attempt ended.
enum Attempt {
    Done(Response),
    /// Retry on a fresh socket (timeout, stale reply).
    Retry,
    /// Retry on the same session (v3 engine time resynchronised).
    RetrySame,
    Fail(ClientError),
}

impl Client {
    pub fn new(
        addr: SocketAddr,
        auth: Arc<Auth>,
        params: WalkParams,
        deadline: Instant,
        limiter: Arc<Semaphore>,
    ) -> Self {
        Client {
            addr,
            auth,
            params,
            session: None,
            deadline,
            limiter,
            // Random-ish start, like gosnmp, so two scrapes do not share ids.
            next_req_id: (std::process::id() as i32).wrapping_mul(7919).wrapping_add(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos() as i32),
            ) & 0x3fff_ffff,
            stats: Stats::default(),
        }
    }

    pub fn version(&self) -> u8 {
        self.auth.version
    }

    pub fn params(&self) -> &WalkParams {
        &self.params
    }

    async fn open(&mut self) -> Result<(), ClientError> {
        let id = self.next_req_id;
        self.next_req_id = self.next_req_id.wrapping_add(1000) & 0x3fff_ffff;
        let io = |e: std::io::Error| ClientError::Connect(e.to_string());
        let mut s = match self.auth.version {
            1 => AsyncSession::new_v1(self.addr, &self.auth.community, id)
                .await
                .map_err(io)?,
            2 => AsyncSession::new_v2c(self.addr, &self.auth.community, id)
                .await
                .map_err(io)?,
            _ => AsyncSession::new_v3(self.addr, id, security(&self.auth))
                .await
                .map_err(io)?,
        };
        if self.auth.version == 3 {
            // Engine discovery: one unauthenticated round trip.
            let mut last = ClientError::Timeout(self.params.retries);
            let mut ok = false;
            for attempt in 0..=self.params.retries {
                self.count(attempt);
                let Some(t) = self.attempt_timeout() else {
                    return Err(ClientError::Deadline);
                };
                let _permit = self.limiter.acquire().await;
                match tokio::time::timeout(t, s.init()).await {
                    Ok(Ok(())) => {
                        ok = true;
                        break;
                    }
                    Ok(Err(e)) => return Err(snmp_err(e)),
                    Err(_) => {
                        last = ClientError::Timeout(self.params.retries);
                        // A fresh socket for the next try.
                        s = AsyncSession::new_v3(self.addr, id, security(&self.auth))
                            .await
                            .map_err(io)?;
                    }
                }
            }
            if !ok {
                return Err(last);
            }
        }
        self.session = Some(Box::new(s));
        Ok(())
    }

    fn count(&mut self, attempt: u32) {
        self.stats.sent += 1;
        if attempt > 0 {
            self.stats.retried += 1;
        }
    }

    fn attempt_timeout(&self) -> Option<std::time::Duration> {
        let left = self.deadline.checked_duration_since(Instant::now())?;
        if left.is_zero() {
            return None;
        }
        Some(self.params.timeout.min(left))
    }

    /// Sends `op` with timeout and retries.
    pub async fn request(&mut self, op: Op<'_>) -> Result<Response, ClientError> {
        let oids: Vec<Oid<'static>> = match op {
            Op::Get(list) => list.iter().map(|a| to_oid(a)).collect::<Result<_, _>>()?,
            Op::GetNext(a) | Op::GetBulk(a, _) => vec![to_oid(a)?],
        };
        let mut attempt = 0u32;
        let mut resyncs = 0u32;
        loop {
            if self.session.is_none() {
                self.open().await?;
            }
            let Some(t) = self.attempt_timeout() else {
                return Err(ClientError::Deadline);
            };
            self.count(attempt);
            let outcome = {
                let _permit = self.limiter.acquire().await;
                let Some(session) = self.session.as_mut() else {
                    return Err(ClientError::Snmp("no session".into()));
                };
                let refs: Vec<&Oid<'static>> = oids.iter().collect();
                let fut = async {
                    let res = match op {
                        Op::Get(_) => session.get_many(&refs).await,
                        Op::GetNext(_) => session.getnext(refs[0]).await,
                        Op::GetBulk(_, n) => session.getbulk(&refs, 0, n).await,
                    };
                    match res {
                        Ok(p) => match own_pdu(p) {
                            Ok(r) => Attempt::Done(r),
                            Err(e) => Attempt::Fail(e),
                        },
                        Err(snmp2::Error::AuthUpdated) => Attempt::RetrySame,
                        Err(snmp2::Error::RequestIdMismatch) => Attempt::Retry,
                        Err(e) => Attempt::Fail(snmp_err(e)),
                    }
                };
                tokio::time::timeout(t, fut).await.unwrap_or(Attempt::Retry)
            };
            match outcome {
                Attempt::Done(r) => return Ok(r),
                Attempt::Fail(e) => return Err(e),
                Attempt::RetrySame => {
                    // Boots/time resynchronised: repeat at once, a bounded number of times.
                    resyncs += 1;
                    if resyncs > 2 {
                        return Err(ClientError::Snmp("SNMPv3 engine time not in window".into()));
                    }
                }
                Attempt::Retry => {
                    // Drop the socket: a late reply then goes nowhere.
                    self.session = None;
                    if attempt >= self.params.retries {
                        return Err(ClientError::Timeout(self.params.retries));
                    }
                    attempt += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(split_target("127.0.0.1").unwrap(), ("127.0.0.1", 161));
        assert_eq!(split_target("127.0.0.1:1161").unwrap(), ("127.0.0.1", 1161));
        assert_eq!(split_target("[::1]:1161").unwrap(), ("::1", 1161));
        assert_eq!(split_target("[::1]").unwrap(), ("::1", 161));
        assert_eq!(split_target("::1").unwrap(), ("::1", 161));
        assert_eq!(
            split_target("host.example:99").unwrap(),
            ("host.example", 99)
        );
        assert!(split_target("a:b").is_err());
        assert!(split_target("a:99999").is_err());
        assert!(split_target(":1").is_err());
        assert!(split_target("").is_err());
        assert!(split_target("[::1").is_err());
    }

    #[test]
    fn oids_decode() {
        assert_eq!(decode_oid(&[0x00]), Some(vec![0, 0]));
        assert_eq!(decode_oid(&[0x2b, 6, 1]), Some(vec![1, 3, 6, 1]));
        assert_eq!(
            decode_oid(&[0x2b, 0x81, 0x80, 0x00]),
            Some(vec![1, 3, 16384])
        );
        assert_eq!(
            decode_oid(&[0x2b, 0x8f, 0xff, 0xff, 0xff, 0x7f]),
            Some(vec![1, 3, u32::MAX])
        );
        assert_eq!(decode_oid(&[0x2b, 0x90, 0x80, 0x80, 0x80, 0x00]), None);
        assert_eq!(decode_oid(&[0x2b, 0x81]), None);
        assert_eq!(decode_oid(&[]), None);
        assert_eq!(decode_oid(&[0x2b, 0x80, 0x01]), None);
    }
}
