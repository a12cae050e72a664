//! A minimal NETLINK_NETFILTER client for nf_tables dumps: builds the
//! requests, splits the kernel's datagrams into messages and walks the
//! attribute TLVs. Every read is bounds-checked; malformed input gives an
//! error, never a panic (the unit tests fuzz it).

use std::io::Read;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

// <linux/netlink.h>
const NLMSG_HDRLEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_MULTI: u16 = 0x2;
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLM_F_DUMP: u16 = 0x300;
const NLA_HDRLEN: usize = 4;
/// `nla_type` carries NLA_F_NESTED and NLA_F_NET_BYTEORDER in its top bits.
const NLA_TYPE_MASK: u16 = 0x3fff;

// <linux/netfilter/nfnetlink.h>
const NETLINK_NETFILTER: i32 = 12;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// struct nfgenmsg: family u8, version u8, res_id be16.
const NFGENMSG_LEN: usize = 4;

/// Kernel dump datagrams are at most 32 KiB (netlink caps its dump skbs);
/// a datagram that fills this buffer is treated as truncated.
const RECV_BUF: usize = 64 * 1024;

/// nf_tables dump requests used here (NFT_MSG_GET*, <linux/netfilter/nf_tables.h>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgType {
    Table = 1,
    Chain = 4,
    Rule = 7,
    Set = 10,
    SetElem = 13,
    Obj = 19,
}

impl MsgType {
    /// The reply type for this request (NEW* = GET* - 1).
    fn reply(self) -> u16 {
        (NFNL_SUBSYS_NFTABLES << 8) | (self as u16 - 1)
    }

    #[cfg(test)]
    pub fn from_u8(v: u8) -> Option<MsgType> {
        Some(match v {
            1 => MsgType::Table,
            4 => MsgType::Chain,
            7 => MsgType::Rule,
            10 => MsgType::Set,
            13 => MsgType::SetElem,
            19 => MsgType::Obj,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            MsgType::Table => "GETTABLE",
            MsgType::Chain => "GETCHAIN",
            MsgType::Rule => "GETRULE",
            MsgType::Set => "GETSET",
            MsgType::SetElem => "GETSETELEM",
            MsgType::Obj => "GETOBJ",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NlError {
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("the kernel refused {0} with EPERM: reading the nf_tables ruleset needs CAP_NET_ADMIN (run as root or install the systemd drop-in netfilter.conf, see README-netfilter.md)")]
    Permission(&'static str),
    #[error("the kernel answered {req} with error {errno} ({msg})")]
    Kernel {
        req: &'static str,
        errno: i32,
        msg: String,
    },
    #[error("malformed netlink data: {0}")]
    Malformed(&'static str),
    #[error("the ruleset changed during the dump")]
    Interrupted,
    #[error("dump larger than {0} bytes")]
    TooBig(usize),
    #[error("no netlink reply before the scrape deadline")]
    Timeout,
}

impl NlError {
    /// ENOENT: the object went away between two dumps.
    pub fn is_not_found(&self) -> bool {
        matches!(self, NlError::Kernel { errno, .. } if *errno == libc::ENOENT)
    }
}

/// One nf_tables message from a dump: its family, generation (`res_id`)
/// and attribute bytes.
#[derive(Debug, Clone, Copy)]
pub struct NfMsg<'a> {
    pub family: u8,
    pub generation: u16,
    pub attrs: &'a [u8],
}

/// What a datagram said about the dump.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    More,
    Done,
}

/// Builds a dump request for `kind` (`family` 0 = every family).
pub fn request(kind: MsgType, family: u8, seq: u32, attrs: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + NFGENMSG_LEN + attrs.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | kind as u16).to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[family, 0, 0, 0]);
    m.extend_from_slice(attrs);
    m
}

/// Appends a NUL-terminated string attribute (padded to 4 bytes).
pub fn put_str_attr(buf: &mut Vec<u8>, kind: u16, s: &str) {
    let len = NLA_HDRLEN + s.len() + 1;
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

fn ne_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// Splits one datagram into messages and hands each reply of type `want`
/// with sequence `seq` to `on_msg`. Stale messages (other sequence numbers)
/// are skipped. Stops at NLMSG_DONE or an error.
pub fn process_datagram(
    dgram: &[u8],
    want: MsgType,
    seq: u32,
    on_msg: &mut OnMsg<'_>,
) -> Result<Progress, NlError> {
    let mut rest = dgram;
    while !rest.is_empty() {
        let len = ne_u32(rest, 0).ok_or(NlError::Malformed("short netlink header"))? as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Err(NlError::Malformed("netlink message length out of bounds"));
        }
        let kind = ne_u16(rest, 4).unwrap_or(0);
        let flags = ne_u16(rest, 6).unwrap_or(0);
        let mseq = ne_u32(rest, 8).unwrap_or(0);
        let body = &rest[NLMSG_HDRLEN..len];
        rest = rest.get(align4(len)..).unwrap_or(&[]);
        if mseq != seq {
            continue;
        }
        if flags & NLM_F_DUMP_INTR != 0 {
            return Err(NlError::Interrupted);
        }
        match kind {
            NLMSG_NOOP => {}
            NLMSG_DONE => {
                // The payload is an int: a negative errno if the dump failed.
                let err = ne_u32(body, 0).map(|e| e as i32).unwrap_or(0);
                if err < 0 {
                    return Err(kernel_error(want, err.saturating_neg()));
                }
                return Ok(Progress::Done);
            }
            NLMSG_ERROR => {
                let err = ne_u32(body, 0).ok_or(NlError::Malformed("short NLMSG_ERROR"))? as i32;
                if err == 0 {
                    // An ACK: nothing more comes for this request.
                    return Ok(Progress::Done);
                }
                return Err(kernel_error(want, err.saturating_neg()));
            }
            NLMSG_OVERRUN => return Err(NlError::Malformed("NLMSG_OVERRUN")),
            k if k == want.reply() => {
                if body.len() < NFGENMSG_LEN {
                    return Err(NlError::Malformed("short nfgenmsg"));
                }
                on_msg(NfMsg {
                    family: body[0],
                    generation: u16::from_be_bytes([body[2], body[3]]),
                    attrs: &body[NFGENMSG_LEN..],
                })?;
            }
            _ => {}
        }
        // A single-part reply (no NLM_F_MULTI) ends the answer.
        if flags & NLM_F_MULTI == 0 && kind != NLMSG_NOOP {
            return Ok(Progress::Done);
        }
    }
    Ok(Progress::More)
}

fn kernel_error(req: MsgType, errno: i32) -> NlError {
    if errno == libc::EPERM || errno == libc::EACCES {
        return NlError::Permission(req.name());
    }
    NlError::Kernel {
        req: req.name(),
        errno,
        msg: std::io::Error::from_raw_os_error(errno).to_string(),
    }
}

/// One attribute: its type (flags masked off) and payload.
#[derive(Debug, Clone, Copy)]
pub struct Attr<'a> {
    pub kind: u16,
    pub data: &'a [u8],
}

impl<'a> Attr<'a> {
    /// The attributes nested in this one.
    pub fn nested(&self) -> Attrs<'a> {
        Attrs::new(self.data)
    }

    pub fn be_u32(&self) -> Result<u32, NlError> {
        let b: [u8; 4] = self
            .data
            .get(..4)
            .and_then(|s| s.try_into().ok())
            .ok_or(NlError::Malformed("u32 attribute too short"))?;
        Ok(u32::from_be_bytes(b))
    }

    pub fn be_u64(&self) -> Result<u64, NlError> {
        let b: [u8; 8] = self
            .data
            .get(..8)
            .and_then(|s| s.try_into().ok())
            .ok_or(NlError::Malformed("u64 attribute too short"))?;
        Ok(u64::from_be_bytes(b))
    }

    /// A NUL-terminated string (lossy UTF-8; missing NUL tolerated).
    pub fn string(&self) -> String {
        cstr(self.data)
    }
}

/// Text up to the first NUL, lossy UTF-8.
pub fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Iterates over a TLV attribute stream; yields an error (once) on a
/// malformed header and then stops.
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Attrs { rest: buf }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, NlError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.len() < NLA_HDRLEN {
            // Trailing padding shorter than a header is ignored.
            self.rest = &[];
            return None;
        }
        let len = ne_u16(self.rest, 0).unwrap_or(0) as usize;
        let kind = ne_u16(self.rest, 2).unwrap_or(0) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || len > self.rest.len() {
            self.rest = &[];
            return Some(Err(NlError::Malformed("attribute length out of bounds")));
        }
        let data = &self.rest[NLA_HDRLEN..len];
        self.rest = self.rest.get(align4(len)..).unwrap_or(&[]);
        Some(Ok(Attr { kind, data }))
    }
}

/// Largest total a scrape reads from the kernel (a few million set
/// elements); beyond it the scrape fails instead of eating memory.
pub const MAX_DUMP_BYTES: usize = 512 * 1024 * 1024;

/// Callback for each reply message of a dump.
pub type OnMsg<'f> = dyn FnMut(NfMsg<'_>) -> Result<(), NlError> + 'f;

/// Something that runs dumps: the socket, or recorded replies in tests.
pub trait Dump {
    /// Runs one dump and feeds each reply message to `on_msg`.
    fn dump(
        &mut self,
        kind: MsgType,
        family: u8,
        attrs: &[u8],
        deadline: Instant,
        on_msg: &mut OnMsg<'_>,
    ) -> Result<(), NlError>;
}

/// The datagrams one dump request got back (recorded for the tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub kind: MsgType,
    pub seq: u32,
    pub datagrams: Vec<Vec<u8>>,
}

/// A NETLINK_NETFILTER socket, one per scrape.
pub struct Conn {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
    /// Bytes read so far (bounded by [`MAX_DUMP_BYTES`]).
    pub read_bytes: usize,
    /// When set, every datagram read is kept (the tests record them).
    pub record: Option<Vec<Call>>,
}

impl Conn {
    pub fn open() -> Result<Conn, NlError> {
        let sock = Socket::new(
            Domain::from(libc::AF_NETLINK),
            Type::RAW,
            Some(Protocol::from(NETLINK_NETFILTER)),
        )?;
        // Never bound explicitly: the kernel autobinds a unique port id on
        // the first send, and an unconnected netlink socket talks to it.
        Ok(Conn {
            sock,
            seq: seed_seq(),
            buf: vec![0; RECV_BUF],
            read_bytes: 0,
            record: None,
        })
    }
}

impl Dump for Conn {
    fn dump(
        &mut self,
        kind: MsgType,
        family: u8,
        attrs: &[u8],
        deadline: Instant,
        on_msg: &mut OnMsg<'_>,
    ) -> Result<(), NlError> {
        self.seq = self.seq.wrapping_add(1);
        let req = request(kind, family, self.seq, attrs);
        self.sock.send(&req)?;
        let seq = self.seq;
        if let Some(rec) = self.record.as_mut() {
            rec.push(Call {
                kind,
                seq,
                datagrams: Vec::new(),
            });
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(NlError::Timeout);
            }
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
            let n = match (&self.sock).read(&mut self.buf) {
                Ok(n) => n,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return Err(NlError::Timeout)
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(NlError::Io(e)),
            };
            if n >= self.buf.len() {
                return Err(NlError::Malformed("netlink datagram truncated"));
            }
            self.read_bytes = self.read_bytes.saturating_add(n);
            if self.read_bytes > MAX_DUMP_BYTES {
                return Err(NlError::TooBig(MAX_DUMP_BYTES));
            }
            let dgram = &self.buf[..n];
            if let Some(call) = self.record.as_mut().and_then(|r| r.last_mut()) {
                call.datagrams.push(dgram.to_vec());
            }
            if process_datagram(dgram, kind, self.seq, on_msg)? == Progress::Done {
                return Ok(());
            }
        }
    }
}

/// A starting sequence number that differs between sockets (not security,
/// only to tell replies of different requests apart).
fn seed_seq() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    t ^ std::process::id().rotate_left(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nlmsg(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let len = NLMSG_HDRLEN + body.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    #[test]
    fn attrs_walk_and_reject() {
        let mut b = Vec::new();
        put_str_attr(&mut b, 1, "filter");
        put_str_attr(&mut b, 3, "x");
        let got: Vec<_> = Attrs::new(&b).collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].kind, 1);
        assert_eq!(got[0].string(), "filter");
        assert_eq!(got[1].string(), "x");
        // A length past the end is an error, then the walk stops.
        let bad = [200u8, 0, 1, 0, 1, 2, 3, 4];
        let mut it = Attrs::new(&bad);
        assert!(matches!(it.next(), Some(Err(_))));
        assert!(it.next().is_none());
        // A zero length cannot loop forever.
        let zero = [0u8, 0, 1, 0];
        assert_eq!(Attrs::new(&zero).count(), 1);
    }

    #[test]
    fn datagram_done_error_and_stale() {
        let reply = NFNL_SUBSYS_NFTABLES << 8;
        let mut d = nlmsg(reply, NLM_F_MULTI, 7, &[2, 0, 0, 5]);
        d.extend(nlmsg(reply, NLM_F_MULTI, 6, &[2, 0, 0, 5])); // stale
        d.extend(nlmsg(NLMSG_DONE, NLM_F_MULTI, 7, &0i32.to_ne_bytes()));
        let mut n = 0;
        let p = process_datagram(&d, MsgType::Table, 7, &mut |m| {
            assert_eq!(m.family, 2);
            assert_eq!(m.generation, 5);
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!((p, n), (Progress::Done, 1));
        let e = nlmsg(NLMSG_ERROR, 0, 7, &(-1i32).to_ne_bytes());
        let r = process_datagram(&e, MsgType::Table, 7, &mut |_| Ok(()));
        assert!(matches!(r, Err(NlError::Permission("GETTABLE"))));
        let intr = nlmsg(reply, NLM_F_MULTI | NLM_F_DUMP_INTR, 7, &[2, 0, 0, 5]);
        let r = process_datagram(&intr, MsgType::Table, 7, &mut |_| Ok(()));
        assert!(matches!(r, Err(NlError::Interrupted)));
    }
}
