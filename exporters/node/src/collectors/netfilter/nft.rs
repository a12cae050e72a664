//! nf_tables objects decoded from netlink messages (pure functions over
//! bytes, fuzzed by the unit tests) and the dump sequence that reads a
//! whole ruleset.

use std::time::Instant;

use super::netlink::{cstr, put_str_attr, Attr, Attrs, Dump, MsgType, NfMsg, NlError};

// Attribute numbers from <linux/netfilter/nf_tables.h>.
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_HANDLE: u16 = 4;

const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_HANDLE: u16 = 2;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_CHAIN_COUNTERS: u16 = 8;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_HOOK_DEV: u16 = 3;

const NFTA_COUNTER_BYTES: u16 = 1;
const NFTA_COUNTER_PACKETS: u16 = 2;

const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
/// xt match expression (iptables-nft): name, revision, raw match info.
const NFTA_MATCH_NAME: u16 = 1;
const NFTA_MATCH_INFO: u16 = 3;
/// libnftnl's rule userdata TLV type for the comment (u8 type, u8 len).
const NFTNL_UDATA_RULE_COMMENT: u8 = 0;

const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFT_SET_ANONYMOUS: u32 = 0x1;

const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFT_SET_ELEM_INTERVAL_END: u32 = 0x1;

const NFTA_OBJ_TABLE: u16 = 1;
const NFTA_OBJ_NAME: u16 = 2;
const NFTA_OBJ_TYPE: u16 = 3;
const NFTA_OBJ_DATA: u16 = 4;
const NFT_OBJECT_COUNTER: u32 = 1;

/// Packets and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub family: u8,
    pub name: String,
    pub handle: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hook {
    pub num: u32,
    pub priority: i32,
    pub device: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    pub family: u8,
    pub table: String,
    pub name: String,
    pub handle: u64,
    /// Present on base chains only.
    pub hook: Option<Hook>,
    pub policy: Option<u32>,
    pub kind: Option<String>,
    /// Policy counters: only where the kernel keeps them (NFTA_CHAIN_COUNTERS).
    pub counters: Option<Counter>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub family: u8,
    pub table: String,
    pub chain: String,
    pub handle: u64,
    /// Sum of the rule's `counter` expressions; None when it has none.
    pub counter: Option<Counter>,
    /// nft userdata comment, else an iptables-nft `-m comment` match.
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Set {
    pub family: u8,
    pub table: String,
    pub name: String,
    pub flags: u32,
    /// Filled by the GETSETELEM dump (None when the set vanished).
    pub elements: Option<u64>,
}

impl Set {
    pub fn anonymous(&self) -> bool {
        self.flags & NFT_SET_ANONYMOUS != 0
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CounterObj {
    pub family: u8,
    pub table: String,
    pub name: String,
    pub counter: Counter,
}

/// One consistent read of the ruleset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub tables: Vec<Table>,
    pub chains: Vec<Chain>,
    pub rules: Vec<Rule>,
    pub sets: Vec<Set>,
    pub counters: Vec<CounterObj>,
}

fn attrs(buf: &[u8]) -> impl Iterator<Item = Result<Attr<'_>, NlError>> {
    Attrs::new(buf)
}

pub fn parse_table(m: &NfMsg<'_>) -> Result<Table, NlError> {
    let mut t = Table {
        family: m.family,
        ..Default::default()
    };
    for a in attrs(m.attrs) {
        let a = a?;
        match a.kind {
            NFTA_TABLE_NAME => t.name = a.string(),
            NFTA_TABLE_HANDLE => t.handle = a.be_u64()?,
            _ => {}
        }
    }
    Ok(t)
}

pub fn parse_counter(a: &Attr<'_>) -> Result<Counter, NlError> {
    let mut c = Counter::default();
    for x in a.nested() {
        let x = x?;
        match x.kind {
            NFTA_COUNTER_BYTES => c.bytes = x.be_u64()?,
            NFTA_COUNTER_PACKETS => c.packets = x.be_u64()?,
            _ => {}
        }
    }
    Ok(c)
}

fn parse_hook(a: &Attr<'_>) -> Result<Hook, NlError> {
    let mut h = Hook::default();
    for x in a.nested() {
        let x = x?;
        match x.kind {
            NFTA_HOOK_HOOKNUM => h.num = x.be_u32()?,
            NFTA_HOOK_PRIORITY => h.priority = x.be_u32()? as i32,
            NFTA_HOOK_DEV => h.device = Some(x.string()),
            _ => {}
        }
    }
    Ok(h)
}

pub fn parse_chain(m: &NfMsg<'_>) -> Result<Chain, NlError> {
    let mut c = Chain {
        family: m.family,
        ..Default::default()
    };
    for a in attrs(m.attrs) {
        let a = a?;
        match a.kind {
            NFTA_CHAIN_TABLE => c.table = a.string(),
            NFTA_CHAIN_HANDLE => c.handle = a.be_u64()?,
            NFTA_CHAIN_NAME => c.name = a.string(),
            NFTA_CHAIN_HOOK => c.hook = Some(parse_hook(&a)?),
            NFTA_CHAIN_POLICY => c.policy = Some(a.be_u32()?),
            NFTA_CHAIN_TYPE => c.kind = Some(a.string()),
            NFTA_CHAIN_COUNTERS => c.counters = Some(parse_counter(&a)?),
            _ => {}
        }
    }
    Ok(c)
}

/// The comment in libnftnl's rule userdata: a list of (u8 type, u8 len,
/// value) records; the comment value is NUL-terminated.
pub fn udata_comment(b: &[u8]) -> Option<String> {
    let mut rest = b;
    while rest.len() >= 2 {
        let (kind, len) = (rest[0], rest[1] as usize);
        let val = rest.get(2..2 + len)?;
        if kind == NFTNL_UDATA_RULE_COMMENT {
            return Some(cstr(val));
        }
        rest = &rest[2 + len..];
    }
    None
}

/// One expression of a rule, as far as this collector cares.
enum Expr {
    Counter(Counter),
    Comment(String),
    Other,
}

fn parse_expr(a: &Attr<'_>) -> Result<Expr, NlError> {
    let mut name = String::new();
    let mut data = None;
    for x in a.nested() {
        let x = x?;
        match x.kind {
            NFTA_EXPR_NAME => name = x.string(),
            NFTA_EXPR_DATA => data = Some(x),
            _ => {}
        }
    }
    let Some(data) = data else {
        return Ok(Expr::Other);
    };
    match name.as_str() {
        "counter" => Ok(Expr::Counter(parse_counter(&data)?)),
        "match" => {
            // iptables-nft keeps `-m comment` as an xt match whose info is
            // struct xt_comment_info { char comment[256]; }.
            let mut mname = String::new();
            let mut info = None;
            for x in data.nested() {
                let x = x?;
                match x.kind {
                    NFTA_MATCH_NAME => mname = x.string(),
                    NFTA_MATCH_INFO => info = Some(x.data),
                    _ => {}
                }
            }
            match (mname.as_str(), info) {
                ("comment", Some(info)) => Ok(Expr::Comment(cstr(info))),
                _ => Ok(Expr::Other),
            }
        }
        _ => Ok(Expr::Other),
    }
}

pub fn parse_rule(m: &NfMsg<'_>) -> Result<Rule, NlError> {
    let mut r = Rule {
        family: m.family,
        ..Default::default()
    };
    let mut xt_comment = None;
    let mut ud_comment = None;
    for a in attrs(m.attrs) {
        let a = a?;
        match a.kind {
            NFTA_RULE_TABLE => r.table = a.string(),
            NFTA_RULE_CHAIN => r.chain = a.string(),
            NFTA_RULE_HANDLE => r.handle = a.be_u64()?,
            NFTA_RULE_USERDATA => ud_comment = udata_comment(a.data),
            NFTA_RULE_EXPRESSIONS => {
                for e in a.nested() {
                    let e = e?;
                    if e.kind != NFTA_LIST_ELEM {
                        continue;
                    }
                    match parse_expr(&e)? {
                        Expr::Counter(c) => {
                            let t = r.counter.get_or_insert_with(Counter::default);
                            t.packets = t.packets.saturating_add(c.packets);
                            t.bytes = t.bytes.saturating_add(c.bytes);
                        }
                        Expr::Comment(s) => {
                            xt_comment.get_or_insert(s);
                        }
                        Expr::Other => {}
                    }
                }
            }
            _ => {}
        }
    }
    r.comment = ud_comment.or(xt_comment).filter(|c| !c.is_empty());
    Ok(r)
}

pub fn parse_set(m: &NfMsg<'_>) -> Result<Set, NlError> {
    let mut s = Set {
        family: m.family,
        ..Default::default()
    };
    for a in attrs(m.attrs) {
        let a = a?;
        match a.kind {
            NFTA_SET_TABLE => s.table = a.string(),
            NFTA_SET_NAME => s.name = a.string(),
            NFTA_SET_FLAGS => s.flags = a.be_u32()?,
            _ => {}
        }
    }
    Ok(s)
}

/// Elements in one GETSETELEM reply, interval end markers left out (an
/// interval set keeps a start and an end element per range: one entry).
pub fn count_set_elems(m: &NfMsg<'_>) -> Result<u64, NlError> {
    let mut n = 0u64;
    for a in attrs(m.attrs) {
        let a = a?;
        if a.kind != NFTA_SET_ELEM_LIST_ELEMENTS {
            continue;
        }
        for e in a.nested() {
            let e = e?;
            if e.kind != NFTA_LIST_ELEM {
                continue;
            }
            let mut end = false;
            for x in e.nested() {
                let x = x?;
                if x.kind == NFTA_SET_ELEM_FLAGS {
                    end = x.be_u32()? & NFT_SET_ELEM_INTERVAL_END != 0;
                }
            }
            if !end {
                n += 1;
            }
        }
    }
    Ok(n)
}

/// A named counter object, or None for other object types.
pub fn parse_obj(m: &NfMsg<'_>) -> Result<Option<CounterObj>, NlError> {
    let mut o = CounterObj {
        family: m.family,
        ..Default::default()
    };
    let mut kind = 0;
    let mut data = None;
    for a in attrs(m.attrs) {
        let a = a?;
        match a.kind {
            NFTA_OBJ_TABLE => o.table = a.string(),
            NFTA_OBJ_NAME => o.name = a.string(),
            NFTA_OBJ_TYPE => kind = a.be_u32()?,
            NFTA_OBJ_DATA => data = Some(a),
            _ => {}
        }
    }
    match (kind, data) {
        (NFT_OBJECT_COUNTER, Some(d)) => {
            o.counter = parse_counter(&d)?;
            Ok(Some(o))
        }
        _ => Ok(None),
    }
}

/// Reads the whole ruleset: one dump per object kind, then one element
/// dump per named set. Fails with `Interrupted` when the generation moved
/// between replies (the caller retries).
pub fn read_ruleset(conn: &mut dyn Dump, deadline: Instant) -> Result<Ruleset, NlError> {
    let mut rs = Ruleset::default();
    let mut gen: Option<u16> = None;
    let mut same_gen = |m: &NfMsg<'_>| -> Result<(), NlError> {
        match gen {
            Some(g) if g != m.generation => Err(NlError::Interrupted),
            _ => {
                gen = Some(m.generation);
                Ok(())
            }
        }
    };
    conn.dump(MsgType::Table, 0, &[], deadline, &mut |m| {
        same_gen(&m)?;
        rs.tables.push(parse_table(&m)?);
        Ok(())
    })?;
    conn.dump(MsgType::Chain, 0, &[], deadline, &mut |m| {
        same_gen(&m)?;
        rs.chains.push(parse_chain(&m)?);
        Ok(())
    })?;
    conn.dump(MsgType::Rule, 0, &[], deadline, &mut |m| {
        same_gen(&m)?;
        rs.rules.push(parse_rule(&m)?);
        Ok(())
    })?;
    conn.dump(MsgType::Set, 0, &[], deadline, &mut |m| {
        same_gen(&m)?;
        rs.sets.push(parse_set(&m)?);
        Ok(())
    })?;
    conn.dump(MsgType::Obj, 0, &[], deadline, &mut |m| {
        same_gen(&m)?;
        if let Some(o) = parse_obj(&m)? {
            rs.counters.push(o);
        }
        Ok(())
    })?;
    for s in rs.sets.iter_mut().filter(|s| !s.anonymous()) {
        let mut req = Vec::new();
        put_str_attr(&mut req, NFTA_SET_ELEM_LIST_TABLE, &s.table);
        put_str_attr(&mut req, NFTA_SET_ELEM_LIST_SET, &s.name);
        let mut n = 0u64;
        let r = conn.dump(MsgType::SetElem, s.family, &req, deadline, &mut |m| {
            same_gen(&m)?;
            n += count_set_elems(&m)?;
            Ok(())
        });
        match r {
            Ok(()) => s.elements = Some(n),
            // Deleted since the set dump: the next scrape will not list it.
            Err(e) if e.is_not_found() => return Err(NlError::Interrupted),
            Err(e) => return Err(e),
        }
    }
    Ok(rs)
}
