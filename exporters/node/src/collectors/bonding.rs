//! bonding: `/sys/class/net/bonding_masters` and, per master, its slaves
//! and their MII status.

use std::path::Path;

use vigie_common::MetricSet;

use super::{no_args, read_attr, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "bonding",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Bonding)),
    }
}

struct Bonding;

impl Collector for Bonding {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let net = ctx.roots.sys("class/net");
        let masters = match read_attr(&net.join("bonding_masters")) {
            Ok(m) => m,
            Err(e) if e.is_not_found() => return Err(CollectError::NoData),
            Err(e) => return Err(e),
        };
        for master in masters.split_whitespace() {
            let (slaves, active) = master_status(&net.join(master))?;
            out.gauge(
                "node_bonding_slaves",
                "Number of configured slaves per bonding interface.",
                &[("master", master)],
                slaves as f64,
            );
            out.gauge(
                "node_bonding_active",
                "Number of active slaves per bonding interface.",
                &[("master", master)],
                active as f64,
            );
        }
        Ok(())
    }
}

/// (configured slaves, slaves whose MII status is up) of one master.
fn master_status(dir: &Path) -> Result<(usize, usize), CollectError> {
    let slaves = read_attr(&dir.join("bonding/slaves"))?;
    let mut total = 0;
    let mut active = 0;
    for slave in slaves.split_whitespace() {
        total += 1;
        // Newer kernels link `lower_<slave>`, older ones `slave_<slave>`.
        let status = read_attr(&dir.join(format!("lower_{slave}/bonding_slave/mii_status")))
            .or_else(|_| read_attr(&dir.join(format!("slave_{slave}/bonding_slave/mii_status"))));
        match status {
            Ok(s) if s == "up" => active += 1,
            Ok(_) => {}
            Err(e) => return Err(e),
        }
    }
    Ok((total, active))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_slave_status_is_an_error_not_a_panic() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("bonding")).unwrap();
        std::fs::write(d.path().join("bonding/slaves"), "eth0\n").unwrap();
        assert!(master_status(d.path()).is_err());
        std::fs::write(d.path().join("bonding/slaves"), "").unwrap();
        assert_eq!(master_status(d.path()).unwrap(), (0, 0));
    }
}
