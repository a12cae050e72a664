//! A small SNMPv2c agent written in the test: serves a fixed tree and can
//! misbehave on purpose (silence, late replies, loops, garbage).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// BER TLV.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 128 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

pub fn int(v: i64) -> Vec<u8> {
    let mut b = v.to_be_bytes().to_vec();
    while b.len() > 1 && ((b[0] == 0 && b[1] & 0x80 == 0) || (b[0] == 0xff && b[1] & 0x80 != 0)) {
        b.remove(0);
    }
    tlv(0x02, &b)
}

pub fn uint(tag: u8, v: u64) -> Vec<u8> {
    let mut b = v.to_be_bytes().to_vec();
    while b.len() > 1 && b[0] == 0 && b[1] & 0x80 == 0 {
        b.remove(0);
    }
    if b[0] & 0x80 != 0 {
        b.insert(0, 0);
    }
    tlv(tag, &b)
}

pub fn oid(arcs: &[u32]) -> Vec<u8> {
    let mut c = Vec::new();
    let first = arcs[0] * 40 + arcs.get(1).copied().unwrap_or(0);
    let mut push = |mut v: u32| {
        let mut tmp = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            tmp.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        tmp.reverse();
        c.extend(tmp);
    };
    push(first);
    for a in arcs.iter().skip(2) {
        push(*a);
    }
    tlv(0x06, &c)
}

/// A value as encoded on the wire.
#[derive(Debug, Clone)]
pub enum Val {
    Int(i64),
    Str(Vec<u8>),
    Counter32(u32),
    Gauge(u32),
    Ticks(u32),
    Counter64(u64),
    EndOfMib,
    NoSuchObject,
}

impl Val {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Val::Int(i) => int(*i),
            Val::Str(s) => tlv(0x04, s),
            Val::Counter32(c) => uint(0x41, u64::from(*c)),
            Val::Gauge(c) => uint(0x42, u64::from(*c)),
            Val::Ticks(c) => uint(0x43, u64::from(*c)),
            Val::Counter64(c) => uint(0x46, *c),
            Val::EndOfMib => vec![0x82, 0],
            Val::NoSuchObject => vec![0x80, 0],
        }
    }
}

pub fn response(
    community: &[u8],
    req_id: i64,
    err: i64,
    varbinds: &[(Vec<u32>, Vec<u8>)],
) -> Vec<u8> {
    let mut vbs = Vec::new();
    for (o, v) in varbinds {
        let mut c = oid(o);
        c.extend_from_slice(v);
        vbs.extend(tlv(0x30, &c));
    }
    let mut pdu = int(req_id);
    pdu.extend(int(err));
    pdu.extend(int(0));
    pdu.extend(tlv(0x30, &vbs));
    let mut msg = int(1);
    msg.extend(tlv(0x04, community));
    msg.extend(tlv(0xa2, &pdu));
    tlv(0x30, &msg)
}

/// How the agent behaves.
#[derive(Debug, Clone)]
pub enum Mode {
    Normal,
    /// Never answers requests for OIDs under this prefix.
    SilentUnder(Vec<u32>),
    /// Answers the first request only after `delay` (with a wrong value), the rest at once.
    FirstLate(Duration),
    /// GETBULK answers go backwards (non-increasing OIDs).
    Backwards,
    /// Every answer is the same OID (a loop).
    Loop,
    /// Answers with bytes that are not BER.
    Garbage,
    /// Every GET answers with error-status genErr(5).
    GenErr,
}

pub struct FakeAgent {
    pub port: u16,
    pub requests: Arc<AtomicUsize>,
}

/// Starts the agent on 127.0.0.1 in its own thread.
pub fn start(tree: BTreeMap<Vec<u32>, Val>, mode: Mode) -> FakeAgent {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&requests);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                return;
            };
            let nth = count.fetch_add(1, Ordering::SeqCst);
            let Ok(pdu) = snmp2::Pdu::from_bytes(&buf[..n]) else {
                continue;
            };
            let req_id = i64::from(pdu.req_id);
            let community = pdu.community.to_vec();
            let kind = pdu.message_type;
            let (non_rep, max_rep) = (pdu.error_status, pdu.error_index);
            let _ = non_rep;
            let asked: Vec<Vec<u32>> = pdu
                .varbinds
                .map(|(o, _)| o.iter().unwrap().map(|a| a as u32).collect())
                .collect();
            if let Mode::SilentUnder(p) = &mode {
                if asked.iter().any(|a| a.starts_with(p)) {
                    continue;
                }
            }
            let reply = match (&mode, kind) {
                (Mode::Garbage, _) => vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 1, 2, 3],
                (Mode::GenErr, snmp2::MessageType::GetRequest) => {
                    response(&community, req_id, 5, &[])
                }
                (Mode::Loop, _) => response(
                    &community,
                    req_id,
                    0,
                    &[(
                        vec![1, 3, 6, 1, 2, 1, 1, 1, 0],
                        Val::Str(b"x".to_vec()).encode(),
                    )],
                ),
                (Mode::Backwards, snmp2::MessageType::GetBulkRequest) => response(
                    &community,
                    req_id,
                    0,
                    &[
                        (
                            vec![1, 3, 6, 1, 2, 1, 1, 5, 0],
                            Val::Str(b"b".to_vec()).encode(),
                        ),
                        (
                            vec![1, 3, 6, 1, 2, 1, 1, 4, 0],
                            Val::Str(b"a".to_vec()).encode(),
                        ),
                    ],
                ),
                (_, snmp2::MessageType::GetRequest) => {
                    let vbs: Vec<_> = asked
                        .iter()
                        .map(|a| {
                            (
                                a.clone(),
                                tree.get(a).cloned().unwrap_or(Val::NoSuchObject).encode(),
                            )
                        })
                        .collect();
                    response(&community, req_id, 0, &vbs)
                }
                (_, snmp2::MessageType::GetNextRequest) => {
                    let a = &asked[0];
                    let next = tree
                        .range::<Vec<u32>, _>((
                            std::ops::Bound::Excluded(a),
                            std::ops::Bound::Unbounded,
                        ))
                        .next();
                    let vb = match next {
                        Some((o, v)) => (o.clone(), v.encode()),
                        None => (a.clone(), Val::EndOfMib.encode()),
                    };
                    response(&community, req_id, 0, &[vb])
                }
                (_, snmp2::MessageType::GetBulkRequest) => {
                    let a = &asked[0];
                    let mut vbs: Vec<_> = tree
                        .range::<Vec<u32>, _>((
                            std::ops::Bound::Excluded(a),
                            std::ops::Bound::Unbounded,
                        ))
                        .take(max_rep.max(1) as usize)
                        .map(|(o, v)| (o.clone(), v.encode()))
                        .collect();
                    if vbs.is_empty() {
                        vbs.push((a.clone(), Val::EndOfMib.encode()));
                    }
                    response(&community, req_id, 0, &vbs)
                }
                _ => continue,
            };
            if let Mode::FirstLate(d) = &mode {
                if nth == 0 {
                    // A late answer with a wrong value: it must never be taken.
                    let late = response(
                        &community,
                        req_id,
                        0,
                        &asked
                            .iter()
                            .map(|a| (a.clone(), Val::Str(b"LATE".to_vec()).encode()))
                            .collect::<Vec<_>>(),
                    );
                    let s2 = sock.try_clone().unwrap();
                    let d = *d;
                    std::thread::spawn(move || {
                        std::thread::sleep(d);
                        let _ = s2.send_to(&late, peer);
                    });
                    continue;
                }
            }
            let _ = sock.send_to(&reply, peer);
        }
    });
    FakeAgent { port, requests }
}

/// A small system + interfaces tree.
pub fn small_tree() -> BTreeMap<Vec<u32>, Val> {
    let mut t = BTreeMap::new();
    t.insert(
        vec![1, 3, 6, 1, 2, 1, 1, 1, 0],
        Val::Str(b"fake agent".to_vec()),
    );
    t.insert(vec![1, 3, 6, 1, 2, 1, 1, 3, 0], Val::Ticks(12345));
    t.insert(vec![1, 3, 6, 1, 2, 1, 1, 5, 0], Val::Str(b"fake".to_vec()));
    for i in 1..=3u32 {
        t.insert(
            vec![1, 3, 6, 1, 2, 1, 2, 2, 1, 2, i],
            Val::Str(format!("eth{i}").into_bytes()),
        );
        t.insert(vec![1, 3, 6, 1, 2, 1, 2, 2, 1, 8, i], Val::Int(1));
        t.insert(
            vec![1, 3, 6, 1, 2, 1, 2, 2, 1, 10, i],
            Val::Counter32(1000 * i),
        );
        t.insert(
            vec![1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, i],
            Val::Counter64((1 << 60) + u64::from(i)),
        );
    }
    t.insert(vec![1, 3, 6, 1, 2, 1, 2, 2, 1, 9, 1], Val::Gauge(7));
    t
}
