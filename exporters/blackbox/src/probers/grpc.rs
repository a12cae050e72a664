//! The grpc prober (not done yet).
use crate::probe::Probe;
use tokio::time::Instant;

pub async fn probe(probe: &mut Probe, _cfg: &crate::config::GrpcProbe, _deadline: Instant) -> bool {
    probe.fail("grpc", "not implemented")
}
