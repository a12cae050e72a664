//! dmi: `node_dmi_info` from `/sys/class/dmi/id/*`, read once at start as
//! node_exporter does (the values do not change while the system runs).

use vigie_common::MetricSet;

use super::{no_args, read_file, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "dmi",
        default_enabled: true,
        args: no_args,
        build: |ctx: &BuildCtx| {
            let dir = ctx.roots.sys("class/dmi/id");
            if !dir.is_dir() {
                tracing::debug!(
                    "Platform does not support Desktop Management Interface (DMI) information"
                );
                return Ok(Box::new(Dmi { labels: None }));
            }
            let labels = FILES
                .iter()
                .filter_map(|(file, label)| {
                    let v = read_file(&dir.join(file)).ok()?;
                    Some(((*label).to_owned(), v.trim().to_owned()))
                })
                .collect();
            Ok(Box::new(Dmi {
                labels: Some(labels),
            }))
        },
    }
}

/// File under `/sys/class/dmi/id` → label name.
const FILES: &[(&str, &str)] = &[
    ("bios_date", "bios_date"),
    ("bios_release", "bios_release"),
    ("bios_vendor", "bios_vendor"),
    ("bios_version", "bios_version"),
    ("board_asset_tag", "board_asset_tag"),
    ("board_name", "board_name"),
    ("board_serial", "board_serial"),
    ("board_vendor", "board_vendor"),
    ("board_version", "board_version"),
    ("chassis_asset_tag", "chassis_asset_tag"),
    ("chassis_serial", "chassis_serial"),
    ("chassis_vendor", "chassis_vendor"),
    ("chassis_version", "chassis_version"),
    ("product_family", "product_family"),
    ("product_name", "product_name"),
    ("product_serial", "product_serial"),
    ("product_sku", "product_sku"),
    ("product_uuid", "product_uuid"),
    ("product_version", "product_version"),
    ("sys_vendor", "system_vendor"),
];

struct Dmi {
    /// `None` when the platform has no DMI directory.
    labels: Option<Vec<(String, String)>>,
}

impl Collector for Dmi {
    fn update(&self, _ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let labels = self.labels.as_ref().ok_or(CollectError::NoData)?;
        out.family(
            "node_dmi_info",
            "A metric with a constant '1' value labeled by bios_date, bios_release, bios_vendor, bios_version, board_asset_tag, board_name, board_serial, board_vendor, board_version, chassis_asset_tag, chassis_serial, chassis_vendor, chassis_version, product_family, product_name, product_serial, product_sku, product_uuid, product_version, system_vendor if provided by DMI.",
            vigie_common::MetricType::Gauge,
        )
        .add_owned(labels.clone(), 1.0);
        Ok(())
    }
}
