//! vigie-node-exporter as a library: the collectors and the scrape runner,
//! so tests can render metrics for a fixture tree without HTTP.

pub mod collectors;
pub mod roots;
pub mod scrape;
