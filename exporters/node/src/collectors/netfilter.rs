//! netfilter: nf_tables rule, chain policy, set and named counter metrics,
//! read over NETLINK_NETFILTER at every scrape (no nft/iptables process).
//! Off by default; needs CAP_NET_ADMIN (see README-netfilter.md).

mod netlink;
mod nft;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Arg, ArgAction};
use vigie_common::{MetricSet, MetricType};

use super::{BuildCtx, CollectError, Collector, ScrapeCtx, Spec};
use netlink::{Conn, NlError};
use nft::{Counter, Ruleset};

const ALL_RULES: &str = "collector.netfilter.all-rules";

/// Times a scrape is retried when the ruleset changes under the dump.
const ATTEMPTS: usize = 3;

pub fn spec() -> Spec {
    Spec {
        name: "netfilter",
        default_enabled: false,
        args: || {
            vec![Arg::new(ALL_RULES)
                .long(ALL_RULES)
                .action(ArgAction::SetTrue)
                .help("netfilter: one series per rule without a comment, labelled by handle, instead of their sum per chain.")]
        },
        build: |ctx: &BuildCtx| {
            Ok(Box::new(Netfilter {
                all_rules: ctx.flag(ALL_RULES),
                warned: AtomicBool::new(false),
            }))
        },
    }
}

struct Netfilter {
    all_rules: bool,
    /// The capability hint is logged once at warn level (the scrape runner
    /// still logs the error at each scrape, as for any failing collector).
    warned: AtomicBool,
}

impl Collector for Netfilter {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let rs = match read(ctx) {
            Ok(rs) => rs,
            Err(e @ NlError::Permission(_)) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(err = %e, "netfilter collector lacks CAP_NET_ADMIN");
                }
                return Err(CollectError::Other(format!("netfilter: {e}")));
            }
            Err(e) => return Err(CollectError::Other(format!("netfilter: {e}"))),
        };
        render(&rs, self.all_rules, out);
        Ok(())
    }
}

fn read(ctx: &ScrapeCtx) -> Result<Ruleset, NlError> {
    let mut last = NlError::Interrupted;
    for _ in 0..ATTEMPTS {
        let mut conn = Conn::open()?;
        match nft::read_ruleset(&mut conn, ctx.deadline) {
            Ok(rs) => return Ok(rs),
            Err(NlError::Interrupted) => {
                tracing::debug!(
                    "netfilter: the ruleset changed during the dumps; reading it again"
                );
                last = NlError::Interrupted;
            }
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// nft's family names (NFPROTO_*).
pub fn family_name(f: u8) -> String {
    match f {
        1 => "inet".into(),
        2 => "ip".into(),
        3 => "arp".into(),
        5 => "netdev".into(),
        7 => "bridge".into(),
        10 => "ip6".into(),
        n => n.to_string(),
    }
}

/// nft's hook names per family.
fn hook_name(family: u8, hook: u32) -> String {
    let name = match (family, hook) {
        (3, 0) => "input",
        (3, 1) => "output",
        (3, 2) => "forward",
        (5, 0) => "ingress",
        (5, 1) => "egress",
        (_, 0) => "prerouting",
        (_, 1) => "input",
        (_, 2) => "forward",
        (_, 3) => "output",
        (_, 4) => "postrouting",
        (_, 5) => "ingress",
        _ => return hook.to_string(),
    };
    name.to_owned()
}

fn policy_name(p: u32) -> String {
    match p {
        0 => "drop".into(),
        1 => "accept".into(),
        n => n.to_string(),
    }
}

/// Series key for rule counters: family, table, chain, comment, handle.
type RuleKey = (String, String, String, String, Option<u64>);

fn add(into: &mut Counter, c: Counter) {
    into.packets = into.packets.saturating_add(c.packets);
    into.bytes = into.bytes.saturating_add(c.bytes);
}

pub fn render(rs: &Ruleset, all_rules: bool, out: &mut MetricSet) {
    render_counts(rs, out);
    render_chains(rs, out);
    render_rules(rs, all_rules, out);
    render_sets(rs, out);
    render_objects(rs, out);
}

fn render_counts(rs: &Ruleset, out: &mut MetricSet) {
    let mut tables: BTreeMap<String, u64> = BTreeMap::new();
    for t in &rs.tables {
        *tables.entry(family_name(t.family)).or_default() += 1;
    }
    let f = out.family(
        "node_netfilter_tables",
        "Number of nf_tables tables per family.",
        MetricType::Gauge,
    );
    for (fam, n) in &tables {
        f.add(&[("family", fam)], *n as f64);
    }
    // Tables without chains or sets still get a 0 here.
    let mut chains: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut sets: BTreeMap<(String, String), u64> = BTreeMap::new();
    for t in &rs.tables {
        let k = (family_name(t.family), t.name.clone());
        chains.entry(k.clone()).or_default();
        sets.entry(k).or_default();
    }
    for c in &rs.chains {
        *chains
            .entry((family_name(c.family), c.table.clone()))
            .or_default() += 1;
    }
    for s in rs.sets.iter().filter(|s| !s.anonymous()) {
        *sets
            .entry((family_name(s.family), s.table.clone()))
            .or_default() += 1;
    }
    let f = out.family(
        "node_netfilter_chains",
        "Number of chains per table.",
        MetricType::Gauge,
    );
    for ((fam, table), n) in &chains {
        f.add(&[("family", fam), ("table", table)], *n as f64);
    }
    let f = out.family(
        "node_netfilter_sets",
        "Number of named sets per table.",
        MetricType::Gauge,
    );
    for ((fam, table), n) in &sets {
        f.add(&[("family", fam), ("table", table)], *n as f64);
    }
    let mut rules: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for c in &rs.chains {
        rules
            .entry((family_name(c.family), c.table.clone(), c.name.clone()))
            .or_default();
    }
    for r in &rs.rules {
        *rules
            .entry((family_name(r.family), r.table.clone(), r.chain.clone()))
            .or_default() += 1;
    }
    let f = out.family(
        "node_netfilter_rules",
        "Number of rules per chain.",
        MetricType::Gauge,
    );
    for ((fam, table, chain), n) in &rules {
        f.add(
            &[("family", fam), ("table", table), ("chain", chain)],
            *n as f64,
        );
    }
}

fn render_chains(rs: &Ruleset, out: &mut MetricSet) {
    let info = out.family(
        "node_netfilter_chain_info",
        "Base chains: type, hook, priority and policy (value 1).",
        MetricType::Gauge,
    );
    for c in &rs.chains {
        let Some(h) = &c.hook else { continue };
        let fam = family_name(c.family);
        let hook = hook_name(c.family, h.num);
        let prio = h.priority.to_string();
        let policy = c.policy.map(policy_name).unwrap_or_default();
        let kind = c.kind.clone().unwrap_or_default();
        info.add(
            &[
                ("family", &fam),
                ("table", &c.table),
                ("chain", &c.name),
                ("type", &kind),
                ("hook", &hook),
                ("priority", &prio),
                ("policy", &policy),
            ],
            1.0,
        );
    }
    let with_counters: Vec<_> = rs
        .chains
        .iter()
        .filter_map(|c| Some((c, c.counters?)))
        .collect();
    for (name, help, pick) in [
        (
            "node_netfilter_chain_policy_packets_total",
            "Packets that reached a base chain's policy (only chains whose counters the kernel keeps, e.g. made by iptables-nft).",
            (|c: &Counter| c.packets) as fn(&Counter) -> u64,
        ),
        (
            "node_netfilter_chain_policy_bytes_total",
            "Bytes that reached a base chain's policy (only chains whose counters the kernel keeps, e.g. made by iptables-nft).",
            |c: &Counter| c.bytes,
        ),
    ] {
        let f = out.family(name, help, MetricType::Counter);
        for (c, cnt) in &with_counters {
            let fam = family_name(c.family);
            let policy = c.policy.map(policy_name).unwrap_or_default();
            f.add(
                &[
                    ("family", &fam),
                    ("table", &c.table),
                    ("chain", &c.name),
                    ("policy", &policy),
                ],
                pick(cnt) as f64,
            );
        }
    }
}

fn render_rules(rs: &Ruleset, all_rules: bool, out: &mut MetricSet) {
    let mut sums: BTreeMap<RuleKey, Counter> = BTreeMap::new();
    for r in &rs.rules {
        // A rule without a counter expression has no counts to report.
        let Some(c) = r.counter else { continue };
        let handle = match (&r.comment, all_rules) {
            (None, true) => Some(r.handle),
            _ => None,
        };
        let key = (
            family_name(r.family),
            r.table.clone(),
            r.chain.clone(),
            r.comment.clone().unwrap_or_default(),
            handle,
        );
        add(sums.entry(key).or_default(), c);
    }
    for (name, help, bytes) in [
        (
            "node_netfilter_rule_packets_total",
            "Packets matched by rules with a counter, per comment (rules without a comment: summed per chain, or per handle with --collector.netfilter.all-rules).",
            false,
        ),
        (
            "node_netfilter_rule_bytes_total",
            "Bytes matched by rules with a counter, per comment (rules without a comment: summed per chain, or per handle with --collector.netfilter.all-rules).",
            true,
        ),
    ] {
        let f = out.family(name, help, MetricType::Counter);
        for ((fam, table, chain, comment, handle), c) in &sums {
            let v = if bytes { c.bytes } else { c.packets } as f64;
            let mut labels = vec![
                ("family".to_owned(), fam.clone()),
                ("table".to_owned(), table.clone()),
                ("chain".to_owned(), chain.clone()),
                ("comment".to_owned(), comment.clone()),
            ];
            if let Some(h) = handle {
                labels.push(("handle".to_owned(), h.to_string()));
            }
            f.add_owned(labels, v);
        }
    }
}

fn render_sets(rs: &Ruleset, out: &mut MetricSet) {
    let f = out.family(
        "node_netfilter_set_elements",
        "Elements in a named set (an interval counts once).",
        MetricType::Gauge,
    );
    for s in rs.sets.iter().filter(|s| !s.anonymous()) {
        let Some(n) = s.elements else { continue };
        let fam = family_name(s.family);
        f.add(
            &[("family", &fam), ("table", &s.table), ("set", &s.name)],
            n as f64,
        );
    }
}

fn render_objects(rs: &Ruleset, out: &mut MetricSet) {
    for (name, help, bytes) in [
        (
            "node_netfilter_object_packets_total",
            "Packets counted by a named counter object (nft `counter NAME {}`).",
            false,
        ),
        (
            "node_netfilter_object_bytes_total",
            "Bytes counted by a named counter object (nft `counter NAME {}`).",
            true,
        ),
    ] {
        let f = out.family(name, help, MetricType::Counter);
        for o in &rs.counters {
            let fam = family_name(o.family);
            let v = if bytes {
                o.counter.bytes
            } else {
                o.counter.packets
            };
            f.add(
                &[("family", &fam), ("table", &o.table), ("name", &o.name)],
                v as f64,
            );
        }
    }
}

#[cfg(test)]
mod tests;
