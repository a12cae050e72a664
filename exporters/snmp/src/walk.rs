//! Fetching a module's data: `get:` OIDs in batches, then each `walk:`
//! subtree with GETBULK (GETNEXT for SNMPv1), the way snmp_exporter 0.21
//! (gosnmp's `BulkWalkAll`/`WalkAll`) does, so packet counts match.

use crate::client::{Client, ClientError, Op, Varbind};
use crate::module::{oid_string, Arcs, Module};

/// SNMP error-status values that end a walk quietly (gosnmp does the same).
const TOO_BIG: u32 = 1;
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

/// Fetches `get:` then `walk:`. With `keep_going`, a failed get batch or
/// subtree is recorded and the rest is still fetched.
pub async fn fetch(client: &mut Client, module: &Module, host: &str, keep_going: bool) -> Fetched {
    let mut out = Fetched::default();
    if let Err(e) = get_all(client, module, &mut out.pdus).await {
        out.errors.push(format!("error getting target {host}: {e}"));
        if !keep_going || matches!(e, ClientError::Deadline) {
            return out;
        }
    }
    for root in &module.walk {
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

async fn get_all(
    client: &mut Client,
    module: &Module,
    out: &mut Vec<Varbind>,
) -> Result<(), ClientError> {
    let mut batch = client.params().max_repetitions as usize;
    // SNMPv1 reports one failed OID per request, so one OID per request there.
    if batch == 0 || client.version() == 1 {
        batch = 1;
    }
    for chunk in module.get.chunks(batch) {
        let resp = client.request(Op::Get(chunk)).await?;
        if resp.error_status == NO_SUCH_NAME && client.version() == 1 {
            tracing::debug!(oid = %oid_string(&chunk[0]), "OID not supported by target");
            continue;
        }
        if resp.error_status != 0 {
            return Err(ClientError::Snmp(format!(
                "error reported by target: Error Status {}",
                resp.error_status
            )));
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
        match resp.error_status {
            0 => {}
            TOO_BIG | NO_SUCH_NAME => break,
            s => {
                return Err((
                    out,
                    ClientError::Snmp(format!("error reported by target: Error Status {s}")),
                ))
            }
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
            if allow_nonincreasing && vb.oid == cur {
                // Even when allowed, a repeated OID means the agent loops.
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
