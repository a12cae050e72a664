//! os: `<rootfs>/etc/os-release` (fallback `/usr/lib/os-release`) as
//! `node_os_info` and `node_os_version`.

use vigie_common::MetricSet;

use super::{no_args, BuildCtx, CollectError, Collector, ScrapeCtx, Spec};

pub fn spec() -> Spec {
    Spec {
        name: "os",
        default_enabled: true,
        args: no_args,
        build: |_: &BuildCtx| Ok(Box::new(Os)),
    }
}

struct Os;

const INFO_KEYS: [(&str, &str); 12] = [
    ("build_id", "BUILD_ID"),
    ("id", "ID"),
    ("id_like", "ID_LIKE"),
    ("image_id", "IMAGE_ID"),
    ("image_version", "IMAGE_VERSION"),
    ("name", "NAME"),
    ("pretty_name", "PRETTY_NAME"),
    ("variant", "VARIANT"),
    ("variant_id", "VARIANT_ID"),
    ("version", "VERSION"),
    ("version_codename", "VERSION_CODENAME"),
    ("version_id", "VERSION_ID"),
];

/// Shell-style `KEY=value` lines (quotes and backslash escapes removed).
pub fn parse(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        out.push((k.trim().to_owned(), unquote(v.trim())));
    }
    out
}

fn unquote(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut quote: Option<char> = None;
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            (_, c) => out.push(c),
        }
    }
    out
}

/// The leading `major[.minor]` of VERSION_ID as a number (0 when none).
pub fn version_number(v: &str) -> f64 {
    let digits: String = {
        let mut s = String::new();
        let mut dot = false;
        for c in v.chars() {
            if c.is_ascii_digit() {
                s.push(c);
            } else if c == '.' && !dot && !s.is_empty() {
                dot = true;
                s.push(c);
            } else {
                break;
            }
        }
        s
    };
    digits.trim_end_matches('.').parse().unwrap_or(0.0)
}

impl Collector for Os {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let mut last = None;
        let mut text = None;
        for p in ["etc/os-release", "usr/lib/os-release"] {
            match ctx.read(&ctx.roots.rootfs.join(p)) {
                Ok(t) => {
                    text = Some(t);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some(text) = text else {
            return Err(last.unwrap_or(CollectError::NoData));
        };
        let kv = parse(&text);
        let get = |k: &str| {
            kv.iter()
                .rev()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let labels: Vec<(&str, &str)> = INFO_KEYS.iter().map(|(l, k)| (*l, get(k))).collect();
        out.gauge(
            "node_os_info",
            "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
            &labels,
            1.0,
        );
        out.gauge(
            "node_os_version",
            "Metric containing the major.minor part of the OS version.",
            &[
                ("id", get("ID")),
                ("id_like", get("ID_LIKE")),
                ("name", get("NAME")),
            ],
            version_number(get("VERSION_ID")),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_os_release() {
        let kv =
            parse("# c\nNAME=\"Debian GNU/Linux\"\nID=debian\nX='a b'\nY=\"q\\\"x\"\nbroken\n");
        assert_eq!(kv[0], ("NAME".into(), "Debian GNU/Linux".into()));
        assert_eq!(kv[2].1, "a b");
        assert_eq!(kv[3].1, "q\"x");
        assert_eq!(version_number("12"), 12.0);
        assert_eq!(version_number("22.04.1"), 22.04);
        assert_eq!(version_number("rolling"), 0.0);
        assert_eq!(version_number(""), 0.0);
    }
}
