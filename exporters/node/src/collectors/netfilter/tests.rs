//! Decoding of real recorded nf_tables dumps and a mutation fuzzer over
//! them. The recording is the committed `tests/fixtures/netfilter/
//! recorded.bin` plus, where `unshare -n` works (root), a fresh one made
//! in a private network namespace by this very test binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::netlink::{process_datagram, Call, Dump, MsgType, NfMsg, NlError, OnMsg, Progress};
use super::nft::{self, Ruleset};
use super::*;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/netfilter")
}

/// Recording format: per call `kind u8, seq u32le, count u32le`, then per
/// datagram `len u32le, bytes`.
fn encode_calls(calls: &[Call]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in calls {
        out.push(c.kind as u8);
        out.extend_from_slice(&c.seq.to_le_bytes());
        out.extend_from_slice(&(c.datagrams.len() as u32).to_le_bytes());
        for d in &c.datagrams {
            out.extend_from_slice(&(d.len() as u32).to_le_bytes());
            out.extend_from_slice(d);
        }
    }
    out
}

fn decode_calls(mut b: &[u8]) -> Vec<Call> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> &'a [u8] {
        let (h, t) = b.split_at(n);
        *b = t;
        h
    }
    fn u32le(b: &mut &[u8]) -> u32 {
        u32::from_le_bytes(take(b, 4).try_into().unwrap())
    }
    let mut calls = Vec::new();
    while !b.is_empty() {
        let kind = MsgType::from_u8(take(&mut b, 1)[0]).expect("message type");
        let seq = u32le(&mut b);
        let n = u32le(&mut b);
        let mut datagrams = Vec::new();
        for _ in 0..n {
            let len = u32le(&mut b) as usize;
            datagrams.push(take(&mut b, len).to_vec());
        }
        calls.push(Call {
            kind,
            seq,
            datagrams,
        });
    }
    calls
}

/// Plays recorded dumps back in order, through the real datagram parser.
struct Replay {
    calls: std::vec::IntoIter<Call>,
}

impl Replay {
    fn new(calls: Vec<Call>) -> Self {
        Replay {
            calls: calls.into_iter(),
        }
    }
}

impl Dump for Replay {
    fn dump(
        &mut self,
        kind: MsgType,
        _family: u8,
        _attrs: &[u8],
        _deadline: Instant,
        on_msg: &mut OnMsg<'_>,
    ) -> Result<(), NlError> {
        let call = self
            .calls
            .next()
            .ok_or(NlError::Malformed("replay: no more calls"))?;
        if call.kind != kind {
            return Err(NlError::Malformed("replay: calls out of order"));
        }
        for d in &call.datagrams {
            if process_datagram(d, kind, call.seq, on_msg)? == Progress::Done {
                return Ok(());
            }
        }
        Err(NlError::Malformed("replay: dump without NLMSG_DONE"))
    }
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

/// True when this process sees only a loopback interface: a namespace
/// made by `unshare -n`, never the host's.
fn only_loopback() -> bool {
    let out = Command::new("ip").args(["-o", "link", "show"]).output();
    let Ok(out) = out else { return false };
    let text = String::from_utf8_lossy(&out.stdout);
    let links: Vec<&str> = text.lines().filter_map(|l| l.split(": ").nth(1)).collect();
    links == ["lo"]
}

/// Tries what the tests need in a throwaway namespace: nf_tables, and
/// iptables-nft/ip6tables-nft with the comment match.
fn probe_in_netns() -> Option<String> {
    let probe = "nft add table inet vigie_probe \
        && iptables -A INPUT -m comment --comment probe -j ACCEPT \
        && ip6tables -A INPUT -m comment --comment probe -j ACCEPT";
    match Command::new("unshare")
        .args(["-n", "sh", "-c", probe])
        .output()
    {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "the kernel does not let nft/iptables-nft work in a namespace here: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run unshare: {e}")),
    }
}

/// Why a private network namespace cannot be made here, if it cannot.
fn netns_unavailable() -> Option<String> {
    for p in ["unshare", "nft", "iptables", "ip6tables", "ip"] {
        if vigie_common::testkit::require(p).is_none() {
            return Some(format!("{p} is not installed"));
        }
    }
    match Command::new("unshare").args(["-n", "true"]).output() {
        Ok(o) if o.status.success() => probe_in_netns(),
        Ok(o) => Some(format!(
            "`unshare -n` is not permitted here: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run unshare: {e}")),
    }
}

const RECORD_ELEMENTS: &str = "2000";

#[test]
#[ignore = "runs only inside `unshare -n`, started by the fuzz and decode tests"]
fn netns_record_inner() {
    let Some(out) = std::env::var_os("VIGIE_NF_RECORD_TO") else {
        return;
    };
    assert!(only_loopback(), "not in a private network namespace");
    let st = Command::new("sh")
        .arg(fixtures().join("setup.sh"))
        .arg(RECORD_ELEMENTS)
        .env("VIGIE_NETNS_OK", "1")
        .status()
        .unwrap();
    assert!(st.success(), "setup.sh failed");
    // Some traffic so the recorded counters are not all zero.
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for (port, n) in [(5001, 3), (5002, 2), (5004, 1)] {
        for _ in 0..n {
            s.send_to(b"vigie", ("127.0.0.1", port)).unwrap();
        }
    }
    let mut conn = netlink::Conn::open().unwrap();
    conn.record = Some(Vec::new());
    nft::read_ruleset(&mut conn, far()).unwrap();
    std::fs::write(out, encode_calls(&conn.record.take().unwrap())).unwrap();
}

/// A fresh recording from a private namespace (None where impossible).
fn live_corpus() -> Option<Vec<Call>> {
    if let Some(why) = netns_unavailable() {
        println!("SKIP live recording: {why}; using the committed recording only");
        return None;
    }
    // Tests run in parallel threads of one process: one file per call.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = std::env::temp_dir().join(format!("vigie-nf-record-{}-{n}.bin", std::process::id()));
    let o = Command::new("unshare")
        .arg("-n")
        .arg(std::env::current_exe().unwrap())
        .args([
            "collectors::netfilter::tests::netns_record_inner",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("VIGIE_NF_RECORD_TO", &out)
        .env("VIGIE_NETNS_OK", "1")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "recording in the namespace failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let bytes = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    // VIGIE_NF_WRITE_FIXTURE=1 refreshes the committed recording.
    if std::env::var_os("VIGIE_NF_WRITE_FIXTURE").is_some() {
        std::fs::write(fixtures().join("recorded.bin"), &bytes).unwrap();
    }
    Some(decode_calls(&bytes))
}

fn committed_corpus() -> Vec<Call> {
    decode_calls(&std::fs::read(fixtures().join("recorded.bin")).unwrap())
}

fn check_recorded(rs: &Ruleset) {
    let names: Vec<(u8, &str)> = rs.tables.iter().map(|t| (t.family, &*t.name)).collect();
    for want in [(1, "vigie"), (2, "filter"), (10, "filter")] {
        assert!(names.contains(&want), "{names:?}");
    }
    let rule = |comment: &str| {
        rs.rules
            .iter()
            .find(|r| r.comment.as_deref() == Some(comment))
            .unwrap_or_else(|| panic!("no rule with comment {comment}: {:?}", rs.rules))
    };
    assert_eq!(rule("nft-five").counter.unwrap().packets, 3);
    // iptables-nft's -m comment, from the xt match data.
    let ipt = rule("ipt-five");
    assert_eq!(
        (ipt.family, &*ipt.table, &*ipt.chain),
        (2, "filter", "INPUT")
    );
    assert_eq!(ipt.counter.unwrap().packets, 3);
    assert_eq!(rule("ip6t-five").family, 10);
    let set = |n: &str| rs.sets.iter().find(|s| s.name == n).unwrap().elements;
    assert_eq!(set("big"), Some(2000));
    assert_eq!(set("nets"), Some(2));
    assert_eq!(rs.counters.len(), 1);
    assert_eq!(rs.counters[0].name, "named_c");
    assert_eq!(rs.counters[0].counter.packets, 1);
    let chain = |f: u8, n: &str| {
        rs.chains
            .iter()
            .find(|c| c.family == f && c.name == n)
            .unwrap()
    };
    assert_eq!(
        chain(1, "input").counters,
        None,
        "nft keeps no policy counters"
    );
    assert!(
        chain(2, "INPUT").counters.is_some(),
        "iptables -P keeps them"
    );
    assert_eq!(chain(1, "sub").hook, None);
}

#[test]
fn recorded_ruleset_decodes() {
    let mut corpora = vec![("committed", committed_corpus())];
    if let Some(live) = live_corpus() {
        corpora.push(("live", live));
    }
    for (what, calls) in corpora {
        let rs = nft::read_ruleset(&mut Replay::new(calls), far())
            .unwrap_or_else(|e| panic!("{what} recording: {e}"));
        check_recorded(&rs);
        let mut set = MetricSet::new();
        render(&rs, false, &mut set);
        let text = set.encode_text();
        assert!(
            text.contains(r#"node_netfilter_rule_packets_total{chain="INPUT",comment="ipt-five",family="ip",table="filter"} 3"#),
            "{text}"
        );
        assert!(text.contains(
            r#"node_netfilter_set_elements{family="inet",set="big",table="vigie"} 2000"#
        ));
    }
}

#[test]
fn generation_change_interrupts_the_read() {
    // The chain dump's replies carry another generation than the table
    // dump's: the ruleset changed between the two, the read must restart.
    let mut calls = committed_corpus();
    let chain = calls.iter_mut().find(|c| c.kind == MsgType::Chain).unwrap();
    // res_id (big endian) is at bytes 18..20 of each message (16-byte
    // header, then family and version).
    let d = &mut chain.datagrams[0];
    d[19] = d[19].wrapping_add(1);
    let r = nft::read_ruleset(&mut Replay::new(calls), far());
    assert!(matches!(r, Err(NlError::Interrupted)), "{r:?}");
}

/// xorshift64*: reproducible mutations without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Applies 1 to 4 random edits, biased towards the length and type fields
/// of netlink and attribute headers (the places parsers get wrong).
fn mutate(b: &mut Vec<u8>, r: &mut Rng, pool: &[&[u8]]) {
    for _ in 0..1 + r.below(4) {
        if b.is_empty() {
            b.push(r.next() as u8);
            continue;
        }
        let at = r.below(b.len());
        match r.below(8) {
            0 => b[at] ^= 1 << r.below(8),
            1 => b[at] = r.next() as u8,
            2 => b[at] = [0, 0xff, 3, 4, 0x80, 0x7f][r.below(6)],
            3 => b.truncate(at),
            4 => {
                let at = at & !3;
                if at + 2 <= b.len() {
                    let v: u16 = [0, 1, 3, 4, 5, 8, 0x7fff, 0xffff, r.next() as u16][r.below(9)];
                    b[at..at + 2].copy_from_slice(&v.to_ne_bytes());
                }
            }
            5 => {
                let n = 1 + r.below(16);
                let junk: Vec<u8> = (0..n).map(|_| r.next() as u8).collect();
                b.splice(at..at, junk);
            }
            6 => {
                let end = (at + 1 + r.below(64)).min(b.len());
                b.drain(at..end);
            }
            _ => {
                let src = pool[r.below(pool.len())];
                if !src.is_empty() {
                    let from = r.below(src.len());
                    let n = (1 + r.below(256)).min(src.len() - from).min(b.len() - at);
                    b[at..at + n].copy_from_slice(&src[from..from + n]);
                }
            }
        }
    }
}

fn parse_any(kind: MsgType, m: &NfMsg<'_>) -> Result<(), NlError> {
    match kind {
        MsgType::Table => nft::parse_table(m).map(drop),
        MsgType::Chain => nft::parse_chain(m).map(drop),
        MsgType::Rule => nft::parse_rule(m).map(drop),
        MsgType::Set => nft::parse_set(m).map(drop),
        MsgType::SetElem => nft::count_set_elems(m).map(drop),
        MsgType::Obj => nft::parse_obj(m).map(drop),
    }
}

/// The netlink messages of a datagram, each as its own small datagram.
fn split(d: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = d;
    while rest.len() >= 16 {
        let len = u32::from_ne_bytes(rest[..4].try_into().unwrap()) as usize;
        if len < 16 || len > rest.len() {
            break;
        }
        out.push(rest[..len].to_vec());
        rest = &rest[(len + 3) & !3..];
    }
    out
}

const SINGLE_ROUNDS: usize = 300_000;
const PIPELINE_ROUNDS: usize = 5_000;

#[test]
fn fuzz_recorded_and_mutated() {
    let mut corpus = committed_corpus();
    if let Some(live) = live_corpus() {
        corpus.extend(live);
    }
    // Single messages (fast, deep into attributes) and whole datagrams.
    let mut inputs: Vec<(MsgType, u32, Vec<u8>)> = Vec::new();
    for c in &corpus {
        for d in &c.datagrams {
            inputs.push((c.kind, c.seq, d.clone()));
            inputs.extend(split(d).into_iter().map(|m| (c.kind, c.seq, m)));
        }
    }
    let pool: Vec<&[u8]> = inputs.iter().map(|(_, _, d)| d.as_slice()).collect();
    // VIGIE_FUZZ_SEED=<n> explores other inputs; the default is fixed.
    let seed = std::env::var("VIGIE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15u64);
    let mut r = Rng(seed | 1);
    let mut parsed_ok = 0usize;
    let mut mutated = 0usize;
    for _ in 0..SINGLE_ROUNDS {
        let (kind, seq, d) = &inputs[r.below(inputs.len())];
        // Whole datagrams are big: mutate them one time in eight.
        if d.len() > 4096 && r.below(8) != 0 {
            continue;
        }
        let mut m = d.clone();
        mutate(&mut m, &mut r, &pool);
        mutated += 1;
        let res = process_datagram(&m, *kind, *seq, &mut |msg| parse_any(*kind, &msg));
        parsed_ok += usize::from(res.is_ok());
    }
    // The whole pipeline (dumps -> ruleset -> exposition) over a replay
    // with one or two mutated datagrams.
    let base = committed_corpus();
    for _ in 0..PIPELINE_ROUNDS {
        let mut calls = base.clone();
        for _ in 0..1 + r.below(2) {
            let c = r.below(calls.len());
            if calls[c].datagrams.is_empty() {
                continue;
            }
            let d = r.below(calls[c].datagrams.len());
            mutate(&mut calls[c].datagrams[d], &mut r, &pool);
        }
        mutated += 1;
        if let Ok(rs) = nft::read_ruleset(&mut Replay::new(calls), far()) {
            let mut set = MetricSet::new();
            render(&rs, r.below(2) == 0, &mut set);
            let _ = set.encode_text();
            parsed_ok += 1;
        }
    }
    println!(
        "netfilter fuzz: {mutated} mutated inputs (messages, datagrams and {PIPELINE_ROUNDS} whole-ruleset replays), {parsed_ok} still parsed, no panic"
    );
    assert!(mutated > 10_000);
}
