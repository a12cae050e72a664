//! The http prober (being written).
use crate::exporter::ProbeParams;
use crate::probe::Probe;
use tokio::time::Instant;

pub async fn probe(
    probe: &mut Probe,
    _cfg: &crate::config::HttpProbe,
    _params: &ProbeParams,
    _deadline: Instant,
) -> bool {
    probe.fail("http", "not implemented")
}
