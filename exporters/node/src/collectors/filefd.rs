//! filefd: `/proc/sys/fs/file-nr` (allocated, unused, maximum).

use vigie_common::MetricSet;

use super::{no_args, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "filefd",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(FileFd)),
    }
}

struct FileFd;

/// `(allocated, maximum)`.
pub fn parse(text: &str) -> Option<(f64, f64)> {
    let v: Vec<&str> = text.split_ascii_whitespace().collect();
    if v.len() != 3 {
        return None;
    }
    Some((
        v[0].parse::<u64>().ok()? as f64,
        v[2].parse::<u64>().ok()? as f64,
    ))
}

impl Collector for FileFd {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let path = ctx.roots.proc("sys/fs/file-nr");
        let (alloc, max) = parse(&ctx.read(&path)?)
            .ok_or_else(|| CollectError::parse(&path, 1, "expected three numbers"))?;
        out.gauge(
            "node_filefd_allocated",
            "File descriptor statistics: allocated.",
            &[],
            alloc,
        );
        out.gauge(
            "node_filefd_maximum",
            "File descriptor statistics: maximum.",
            &[],
            max,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses() {
        assert_eq!(super::parse("541\t0\t2466126\n"), Some((541.0, 2466126.0)));
        assert_eq!(super::parse("541 0"), None);
        assert_eq!(super::parse("a b c"), None);
    }
}
