//! Fetching a module's data: `get:` OIDs in batches, then each `walk:`
//! subtree with GETBULK (GETNEXT for SNMPv1), the way snmp_exporter 0.21
//! (gosnmp's `BulkWalkAll`/`WalkAll`) does, so packet counts match.
//! A module's dynamic filters run first and rewrite both lists.

use std::borrow::Cow;

use crate::client::{Client, ClientError, Op, Varbind};
use crate::module::{oid_string, Arcs, DynamicFilter, Module};

/// SNMPv1 noSuchName: an unsupported OID in a v1 GET.
const NO_SUCH_NAME: u32 = 2;

/// Upper bound on varbinds kept from one subtree, so an agent that loops
/// (with `allow_nonincreasing_oids`) or a huge table cannot exhaust memory.
pub const MAX_VARBINDS_PER_WALK: usize = 1_000_000;

/// What one module fetch returned.
#[derive(Debug, Default)]
pub struct Fetched {
    pub pdus: Vec<Varbind>,
    /// Errors, as snmp_exporter words them. Without partial results the
    /// fetch stops at the first.
    pub errors: Vec<String>,
}

/// What a scrape of a module GETs and walks once its filters are applied.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchList<'a> {
    pub get: Cow<'a, [Arcs]>,
    pub walk: Cow<'a, [Arcs]>,
}

/// Applies the module's dynamic filters as snmp_exporter does: each filter
/// walks its `oid` and keeps the indices (last arc) whose value, rendered as
/// a DisplayString, matches one of `values`; its `targets` leave the walk
/// list and, instead, `target.index` is fetched for each kept index. Filters
/// that target the same column intersect (upstream's current behaviour).
/// A filter whose walk fails is skipped, so its targets are walked in full.
/// The filter walks count as packets sent but not as PDUs returned.
pub async fn apply_filters<'a>(client: &mut Client, module: &'a Module) -> FetchList<'a> {
    if module.filters.is_empty() {
        return FetchList {
            get: Cow::Borrowed(&module.get),
            walk: Cow::Borrowed(&module.walk),
        };
    }
    let mut walk_list = module.walk.clone();
    let mut allowed: Vec<(&Arcs, Vec<u32>)> = Vec::new();
    for filter in &module.filters {
        let pdus = match walk(client, &filter.oid).await {
            Ok(p) => p,
            Err((_, e)) => {
                tracing::info!(oid = %oid_string(&filter.oid), err = %e,
                    "Error getting OID, won't do any filter on this oid");
                continue;
            }
        };
        let indices = matching_indices(filter, &pdus);
        walk_list.retain(|w| !filter.targets.contains(w));
        for target in &filter.targets {
            match allowed.iter_mut().find(|(t, _)| *t == target) {
                Some((_, have)) => have.retain(|i| indices.contains(i)),
                None => allowed.push((target, indices.clone())),
            }
        }
    }
    FetchList {
        get: Cow::Owned(filtered_gets(&module.get, &allowed)),
        walk: Cow::Owned(walk_list),
    }
}

/// The last arc of each varbind whose value matches the filter.
fn matching_indices(filter: &DynamicFilter, pdus: &[Varbind]) -> Vec<u32> {
    pdus.iter()
        .filter(|p| {
            let s = crate::convert::value_as_string(&p.value, "DisplayString");
            filter.values.iter().any(|re| re.is_match(&s))
        })
        .filter_map(|p| p.oid.last().copied())
        .collect()
}

/// The module's gets minus those under a filtered target, then
/// `target.index` for every target and kept index.
fn filtered_gets(get: &[Arcs], allowed: &[(&Arcs, Vec<u32>)]) -> Vec<Arcs> {
    let mut out: Vec<Arcs> = get
        .iter()
        .filter(|g| !allowed.iter().any(|(t, _)| g.starts_with(t)))
        .cloned()
        .collect();
    for (target, indices) in allowed {
        for &i in indices {
            let mut oid = (*target).clone();
            oid.push(i);
            out.push(oid);
        }
    }
    out
}

/// Fetches `get:` then `walk:` (after the filters). With `keep_going`, a
/// failed get batch or subtree is recorded and the rest is still fetched.
pub async fn fetch(client: &mut Client, module: &Module, host: &str, keep_going: bool) -> Fetched {
    let list = apply_filters(client, module).await;
    let mut out = Fetched::default();
    if let Err(e) = get_all(client, &list.get, &mut out.pdus).await {
        out.errors.push(get_error(host, &e));
        if !keep_going || matches!(e, ClientError::Deadline) {
            return out;
        }
    }
    for root in list.walk.iter() {
        match walk(client, root).await {
            Ok(mut v) => out.pdus.append(&mut v),
            Err((mut partial, e)) => {
                out.errors.push(format!("error walking target {host}: {e}"));
                if !keep_going || matches!(e, ClientError::Deadline) {
                    return out;
                }
                out.pdus.append(&mut partial);
            }
        }
    }
    out
}

/// As [`fetch`], walking up to `concurrency` subtrees at once, each worker on
/// its own socket (`make_client`). Results are merged in the module's order,
/// so samples, counts and the first error are the same as a sequential fetch.
/// The agent sees at most `concurrency` requests in flight.
pub async fn fetch_concurrent<F>(
    make_client: F,
    module: &Module,
    host: &str,
    keep_going: bool,
    concurrency: usize,
) -> (Fetched, crate::client::Stats)
where
    F: Fn() -> Client,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut stats = crate::client::Stats::default();
    // The filters decide what the workers fetch, so they run first, alone.
    let list = if module.filters.is_empty() {
        FetchList {
            get: Cow::Borrowed(module.get.as_slice()),
            walk: Cow::Borrowed(module.walk.as_slice()),
        }
    } else {
        let mut c = make_client();
        let l = apply_filters(&mut c, module).await;
        stats = c.stats;
        l
    };
    let list = &list;
    // Job 0 is the `get:` list, job i+1 the i-th subtree.
    let jobs = list.walk.len() + 1;
    let next = AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let workers = concurrency.clamp(1, jobs);
    type JobResult = (usize, Vec<Varbind>, Option<String>);
    let worker = |mut c: Client| {
        let next = &next;
        let failed = &failed;
        async move {
            let mut done: Vec<JobResult> = Vec::new();
            loop {
                if !keep_going && failed.load(Ordering::Relaxed) {
                    break;
                }
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= jobs {
                    break;
                }
                if j == 0 {
                    let mut pdus = Vec::new();
                    let err = get_all(&mut c, &list.get, &mut pdus)
                        .await
                        .err()
                        .map(|e| get_error(host, &e));
                    if err.is_some() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    done.push((0, pdus, err));
                } else {
                    match walk(&mut c, &list.walk[j - 1]).await {
                        Ok(v) => done.push((j, v, None)),
                        Err((v, e)) => {
                            failed.store(true, Ordering::Relaxed);
                            done.push((j, v, Some(format!("error walking target {host}: {e}"))));
                        }
                    }
                }
            }
            (done, c.stats)
        }
    };
    let results = futures_util::future::join_all((0..workers).map(|_| worker(make_client()))).await;
    let mut all: Vec<JobResult> = Vec::with_capacity(jobs);
    for (done, s) in results {
        stats.sent += s.sent;
        stats.retried += s.retried;
        all.extend(done);
    }
    all.sort_by_key(|r| r.0);
    let mut out = Fetched::default();
    for (_, mut pdus, err) in all {
        if let Some(e) = err {
            out.errors.push(e);
            if !keep_going {
                break;
            }
        }
        out.pdus.append(&mut pdus);
    }
    (out, stats)
}

/// How snmp_exporter words a failed GET: an error-status is "reported by" the target.
fn get_error(host: &str, e: &ClientError) -> String {
    match e {
        ClientError::ErrorStatus(n) => format!("error reported by target {host}: Error Status {n}"),
        e => format!("error getting target {host}: {e}"),
    }
}

async fn get_all(
    client: &mut Client,
    get: &[Arcs],
    out: &mut Vec<Varbind>,
) -> Result<(), ClientError> {
    let mut batch = client.params().max_repetitions as usize;
    // SNMPv1 reports one failed OID per request, so one OID per request there.
    if batch == 0 || client.version() == 1 {
        batch = 1;
    }
    for chunk in get.chunks(batch) {
        let resp = client.request(Op::Get(chunk)).await?;
        if resp.error_status == NO_SUCH_NAME && client.version() == 1 {
            tracing::debug!(oid = %oid_string(&chunk[0]), "OID not supported by target");
            continue;
        }
        if resp.error_status != 0 {
            return Err(ClientError::ErrorStatus(resp.error_status));
        }
        out.extend(
            resp.varbinds
                .into_iter()
                .filter(|v| !v.value.is_exception()),
        );
    }
    Ok(())
}

fn in_subtree(oid: &[u32], root: &[u32]) -> bool {
    oid.len() > root.len() && oid.starts_with(root)
}

/// Walks one subtree. On error returns what was collected so far.
pub async fn walk(
    client: &mut Client,
    root: &Arcs,
) -> Result<Vec<Varbind>, (Vec<Varbind>, ClientError)> {
    let mut out: Vec<Varbind> = Vec::new();
    let mut cur: Arcs = root.clone();
    let mut requests = 0u32;
    let mut leaf_get = false;
    let max_rep = client.params().max_repetitions.max(1);
    let allow_nonincreasing = client.params().allow_nonincreasing_oids;
    let v1 = client.version() == 1;
    let mut seen: std::collections::HashSet<Arcs> = std::collections::HashSet::new();
    'request: loop {
        requests += 1;
        let roots = [cur.clone()];
        let op = if leaf_get {
            Op::Get(&roots)
        } else if v1 {
            Op::GetNext(&cur)
        } else {
            Op::GetBulk(&cur, max_rep)
        };
        let resp = match client.request(op).await {
            Ok(r) => r,
            Err(e) => return Err((out, e)),
        };
        if resp.varbinds.is_empty() {
            break;
        }
        // Any error-status ends the walk quietly, as gosnmp does (tooBig,
        // noSuchName at the end of a v1 MIB view, genErr, ...).
        if resp.error_status != 0 {
            tracing::debug!(
                status = resp.error_status,
                "walk terminated by error status"
            );
            break;
        }
        for (k, vb) in resp.varbinds.iter().enumerate() {
            if vb.value.is_exception() {
                break 'request;
            }
            if leaf_get {
                // The root itself is a leaf: its value is the whole walk.
                if vb.oid == *root {
                    out.push(vb.clone());
                }
                break 'request;
            }
            if !in_subtree(&vb.oid, root) {
                // The first answer already left the subtree: the root may be a leaf.
                if requests == 1 && k == 0 {
                    leaf_get = true;
                    cur = root.clone();
                    continue 'request;
                }
                break 'request;
            }
            if !allow_nonincreasing && vb.oid <= cur {
                return Err((
                    out,
                    ClientError::Snmp(format!("OID not increasing: .{}", oid_string(&vb.oid))),
                ));
            }
            if allow_nonincreasing && !seen.insert(vb.oid.clone()) {
                // Even when allowed, an OID seen before in this walk means the agent loops.
                return Err((
                    out,
                    ClientError::Snmp(format!("OID repeated: .{}", oid_string(&vb.oid))),
                ));
            }
            cur.clone_from(&vb.oid);
            out.push(vb.clone());
            if out.len() >= MAX_VARBINDS_PER_WALK {
                return Err((
                    out,
                    ClientError::Snmp(format!(
                        "more than {MAX_VARBINDS_PER_WALK} varbinds in one subtree"
                    )),
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::SnmpValue;

    #[test]
    fn filter_keeps_last_arcs_whose_value_matches() {
        let f = DynamicFilter {
            oid: vec![1, 3, 8],
            targets: vec![vec![1, 3, 10]],
            values: vec![
                regex::Regex::new("^1$").unwrap(),
                regex::Regex::new("em").unwrap(),
            ],
        };
        let vb = |i: u32, value| Varbind {
            oid: vec![1, 3, 8, i],
            value,
        };
        let pdus = [
            vb(1, SnmpValue::Integer(1)),
            vb(2, SnmpValue::Integer(11)),
            vb(3, SnmpValue::OctetString(b"em0".to_vec())),
            vb(4, SnmpValue::Gauge32(1)),
        ];
        assert_eq!(matching_indices(&f, &pdus), [1, 3, 4]);
    }

    #[test]
    fn gets_under_a_target_are_replaced_by_its_kept_instances() {
        let target = vec![1, 3, 1];
        let get = vec![vec![1, 3, 1, 7], vec![1, 3, 10, 7], vec![1, 4, 0]];
        let allowed = [(&target, vec![2, 5])];
        // 1.3.10.7 is not under 1.3.1 arc-wise (Go's string prefix would say it is).
        assert_eq!(
            filtered_gets(&get, &allowed),
            [
                vec![1, 3, 10, 7],
                vec![1, 4, 0],
                vec![1, 3, 1, 2],
                vec![1, 3, 1, 5]
            ]
        );
    }
}
