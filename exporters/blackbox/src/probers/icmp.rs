//! The icmp prober (not done yet).
use crate::probe::Probe;
use tokio::time::Instant;

pub async fn probe(probe: &mut Probe, _cfg: &crate::config::IcmpProbe, _deadline: Instant) -> bool {
    probe.fail("icmp", "not implemented")
}
