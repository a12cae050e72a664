//! diskstats: `/proc/diskstats` plus the udev database (`b<major>:<minor>`
//! files under `--path.udev.data`) for `node_disk_info`,
//! `node_disk_filesystem_info`, `node_disk_device_mapper_info` and
//! `node_disk_ata_*`, as node_exporter 1.5.0.

use std::borrow::Cow;
use std::collections::HashMap;

use vigie_common::MetricSet;

use super::{str_arg, BuildCtx, CollectError, Collector, DeviceFilter, ScrapeCtx, Spec};

const EXCLUDE: &str = "collector.diskstats.device-exclude";
const INCLUDE: &str = "collector.diskstats.device-include";
const OLD_EXCLUDE: &str = "collector.diskstats.ignored-devices";
const DEFAULT_EXCLUDE: &str = r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";
const SECTOR: f64 = 512.0;

pub fn spec() -> Spec {
    Spec {
        name: "diskstats",
        default_enabled: true,
        args: || {
            vec![
                str_arg(EXCLUDE, Some(DEFAULT_EXCLUDE), "Regexp of diskstats devices to exclude (mutually exclusive to device-include)."),
                str_arg(OLD_EXCLUDE, None, "DEPRECATED: Use collector.diskstats.device-exclude").hide(true),
                str_arg(INCLUDE, None, "Regexp of diskstats devices to include (mutually exclusive to device-exclude)."),
            ]
        },
        build: |ctx: &BuildCtx| {
            let filter = if ctx.given(OLD_EXCLUDE) && !ctx.given(EXCLUDE) {
                tracing::warn!("--collector.diskstats.ignored-devices is DEPRECATED and will be removed in 2.0.0, use --collector.diskstats.device-exclude");
                DeviceFilter::new(ctx.regex(INCLUDE)?, ctx.regex(OLD_EXCLUDE)?)
            } else {
                DeviceFilter::from_flags(ctx, INCLUDE, EXCLUDE)?
            };
            Ok(Box::new(Diskstats { filter }))
        },
    }
}

struct Diskstats {
    filter: DeviceFilter,
}

/// `(metric, help, counter?, scale)` for the stat columns after the name.
const COLUMNS: [(&str, &str, bool, f64); 17] = [
    (
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        true,
        1.0,
    ),
    (
        "node_disk_reads_merged_total",
        "The total number of reads merged.",
        true,
        1.0,
    ),
    (
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        true,
        SECTOR,
    ),
    (
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        true,
        0.001,
    ),
    (
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        true,
        1.0,
    ),
    (
        "node_disk_writes_merged_total",
        "The number of writes merged.",
        true,
        1.0,
    ),
    (
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        true,
        SECTOR,
    ),
    (
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        true,
        0.001,
    ),
    (
        "node_disk_io_now",
        "The number of I/Os currently in progress.",
        false,
        1.0,
    ),
    (
        "node_disk_io_time_seconds_total",
        "Total seconds spent doing I/Os.",
        true,
        0.001,
    ),
    (
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        true,
        0.001,
    ),
    (
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        true,
        1.0,
    ),
    (
        "node_disk_discards_merged_total",
        "The total number of discards merged.",
        true,
        1.0,
    ),
    (
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        true,
        1.0,
    ),
    (
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        true,
        0.001,
    ),
    (
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully",
        true,
        1.0,
    ),
    (
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        true,
        0.001,
    ),
];

/// One /proc/diskstats line: major, minor, name, and 4 to 17 counters.
#[derive(Debug, PartialEq)]
pub struct Disk {
    pub major: String,
    pub minor: String,
    pub name: String,
    pub stats: Vec<u64>,
}

pub fn parse(text: &str) -> Result<Vec<Disk>, usize> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if f.len() < 14 {
            // node_exporter skips lines it cannot read as a device.
            tracing::debug!(line = i + 1, "short diskstats line skipped");
            continue;
        }
        let stats = f[3..]
            .iter()
            .take(COLUMNS.len())
            .map(|v| v.parse::<u64>().map_err(|_| i + 1))
            .collect::<Result<Vec<u64>, usize>>()?;
        out.push(Disk {
            major: f[0].to_owned(),
            minor: f[1].to_owned(),
            name: f[2].to_owned(),
            stats,
        });
    }
    Ok(out)
}

/// bufio.Scanner's default token limit: node_exporter stops reading a udev
/// file at the first line this long or longer, keeping what came before.
const SCANNER_MAX_LINE: usize = 64 * 1024;

/// `(udev property, metric, help)` of the `node_disk_ata_*` gauges.
const ATA: [(&str, &str, &str); 3] = [
    (
        "ID_ATA_WRITE_CACHE",
        "node_disk_ata_write_cache",
        "ATA disk has a write cache.",
    ),
    (
        "ID_ATA_WRITE_CACHE_ENABLED",
        "node_disk_ata_write_cache_enabled",
        "ATA disk has its write cache enabled.",
    ),
    (
        "ID_ATA_ROTATION_RATE_RPM",
        "node_disk_ata_rotation_rate_rpm",
        "ATA disk rotation rate in RPMs (0 for SSDs).",
    ),
];

/// The device properties (`E:KEY=value` lines) of a udev database file.
/// Bytes, not text: udev writes whatever the device reports.
#[derive(Debug)]
struct Udev<'a>(HashMap<&'a [u8], &'a [u8]>);

impl<'a> Udev<'a> {
    fn parse(data: &'a [u8]) -> Self {
        let mut props = HashMap::new();
        for line in data.split(|b| *b == b'\n') {
            if line.len() >= SCANNER_MAX_LINE {
                break;
            }
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(prop) = line.strip_prefix(b"E:") else {
                continue;
            };
            if let Some(eq) = prop.iter().position(|b| *b == b'=') {
                props.insert(&prop[..eq], &prop[eq + 1..]);
            }
        }
        Udev(props)
    }

    fn raw(&self, key: &str) -> Option<&'a [u8]> {
        self.0.get(key.as_bytes()).copied()
    }

    /// A label value; invalid UTF-8 is replaced, where node_exporter 1.5.0
    /// panics (see README).
    fn label(&self, key: &str) -> Cow<'a, str> {
        String::from_utf8_lossy(self.raw(key).unwrap_or_default())
    }
}

/// The udev database file of a block device; none (missing, unreadable) is
/// no properties, as in node_exporter.
fn read_udev(ctx: &ScrapeCtx, major: &str, minor: &str) -> Vec<u8> {
    let path = ctx.roots.udev_data.join(format!("b{major}:{minor}"));
    super::read_bytes(&path, 4096).unwrap_or_else(|e| {
        tracing::debug!(err = %e, "Failed to parse udev info");
        Vec::new()
    })
}

fn emit_info(out: &mut MetricSet, d: &Disk, udev: &Udev) {
    out.gauge(
        "node_disk_info",
        "Info of /sys/block/<block_device>.",
        &[
            ("device", &d.name),
            ("major", &d.major),
            ("minor", &d.minor),
            ("path", &udev.label("ID_PATH")),
            ("wwn", &udev.label("ID_WWN")),
            ("model", &udev.label("ID_MODEL")),
            // 1.5.0 has no fallback to ID_SERIAL or SCSI_IDENT_SERIAL.
            ("serial", &udev.label("ID_SERIAL_SHORT")),
            ("revision", &udev.label("ID_REVISION")),
        ],
        1.0,
    );
}

/// The families that exist only for devices udev knows something about.
fn emit_udev_families(out: &mut MetricSet, dev: &str, udev: &Udev) {
    let fs_type = udev.label("ID_FS_TYPE");
    if !fs_type.is_empty() {
        out.gauge(
            "node_disk_filesystem_info",
            "Info about disk filesystem.",
            &[
                ("device", dev),
                ("type", &fs_type),
                ("usage", &udev.label("ID_FS_USAGE")),
                ("uuid", &udev.label("ID_FS_UUID")),
                ("version", &udev.label("ID_FS_VERSION")),
            ],
            1.0,
        );
    }
    let dm_name = udev.label("DM_NAME");
    if !dm_name.is_empty() {
        out.gauge(
            "node_disk_device_mapper_info",
            "Info about disk device mapper.",
            &[
                ("device", dev),
                ("name", &dm_name),
                ("uuid", &udev.label("DM_UUID")),
                ("vg_name", &udev.label("DM_VG_NAME")),
                ("lv_name", &udev.label("DM_LV_NAME")),
                ("lv_layer", &udev.label("DM_LV_LAYER")),
            ],
            1.0,
        );
    }
    if udev.raw("ID_ATA").is_some_and(|v| !v.is_empty()) {
        for (key, name, help) in ATA {
            let Some(raw) = udev.raw(key) else {
                tracing::debug!(attribute = key, "Udev attribute does not exist");
                continue;
            };
            match go_parse_float(raw) {
                Ok(v) => out.gauge(name, help, &[("device", dev)], v),
                Err(why) => tracing::error!(
                    err = %format!("strconv.ParseFloat: parsing {:?}: {why}", String::from_utf8_lossy(raw)),
                    "Failed to parse ATA value"
                ),
            }
        }
    }
}

/// Go's `strconv.ParseFloat(s, 64)`, which node_exporter applies to the ATA
/// properties: Go float literal syntax (`_` separators, hex with a
/// mandatory `p` exponent, `inf`/`infinity`/`nan`), and overflow is an error.
fn go_parse_float(s: &[u8]) -> Result<f64, &'static str> {
    const SYNTAX: &str = "invalid syntax";
    let (neg, body) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return Ok(if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    // Go takes no sign before NaN.
    if s.eq_ignore_ascii_case(b"nan") {
        return Ok(f64::NAN);
    }
    let hex = body.len() > 2 && body[0] == b'0' && body[1].eq_ignore_ascii_case(&b'x');
    let v = if hex {
        parse_hex_float(&body[2..]).ok_or(SYNTAX)?
    } else {
        parse_dec_float(body).ok_or(SYNTAX)?
    };
    if s.contains(&b'_') && !underscores_ok(s) {
        return Err(SYNTAX);
    }
    if v.is_infinite() {
        return Err("value out of range");
    }
    Ok(if neg { -v } else { v })
}

/// `digits[.digits][e[sign]digits]`, `_` anywhere among the digits (their
/// placement is checked by [`underscores_ok`]).
fn parse_dec_float(s: &[u8]) -> Option<f64> {
    let (mant, exp) = match s.iter().position(|b| b.eq_ignore_ascii_case(&b'e')) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    if !mantissa_ok(mant, u8::is_ascii_digit) {
        return None;
    }
    if let Some(e) = exp {
        exponent_ok(e)?;
    }
    let clean: String = s
        .iter()
        .filter(|b| **b != b'_')
        .map(|b| char::from(*b))
        .collect();
    clean.parse().ok()
}

/// After `0x`: `hexdigits[.hexdigits]p[sign]digits`, rounded to nearest even.
fn parse_hex_float(s: &[u8]) -> Option<f64> {
    let p = s.iter().position(|b| b.eq_ignore_ascii_case(&b'p'))?;
    let (mant, exp) = (&s[..p], &s[p + 1..]);
    if !mantissa_ok(mant, u8::is_ascii_hexdigit) {
        return None;
    }
    let mut exp2 = exponent_ok(exp)?;
    let mut m: u128 = 0;
    let mut sticky = false;
    let mut after_dot = false;
    for b in mant {
        let d = match *b {
            b'.' => {
                after_dot = true;
                continue;
            }
            b'_' => continue,
            b => u128::from(char::from(b).to_digit(16)?),
        };
        // 120 bits keep far more than f64's 53; what is dropped only
        // matters as a sticky bit for rounding.
        if m >> 116 == 0 {
            m = m * 16 + d;
            if after_dot {
                exp2 -= 4;
            }
        } else {
            sticky |= d != 0;
            if !after_dot {
                exp2 += 4;
            }
        }
    }
    let mut v = (m | u128::from(sticky)) as f64;
    // In steps, so a big mantissa with a very negative exponent does not
    // flush 2^exp to zero first.
    while exp2 != 0 && v != 0.0 && v.is_finite() {
        let step = exp2.clamp(-1000, 1000);
        v *= 2f64.powi(step);
        exp2 -= step;
    }
    Some(v)
}

/// At least one digit, at most one `.`, nothing else but `_`.
fn mantissa_ok(m: &[u8], digit: fn(&u8) -> bool) -> bool {
    m.iter().all(|b| digit(b) || *b == b'.' || *b == b'_')
        && m.iter().filter(|b| **b == b'.').count() <= 1
        && m.iter().any(digit)
}

/// `[sign]digit{digit|_}`; Go stops accumulating past 10000, which only
/// matters in that such exponents overflow or underflow anyway.
fn exponent_ok(e: &[u8]) -> Option<i32> {
    let (neg, digits) = match e.first() {
        Some(b'-') => (true, &e[1..]),
        Some(b'+') => (false, &e[1..]),
        _ => (false, e),
    };
    if !digits.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i32 = 0;
    for b in digits {
        match *b {
            b'_' => {}
            b'0'..=b'9' if v < 10000 => v = v * 10 + i32::from(*b - b'0'),
            b'0'..=b'9' => {}
            _ => return None,
        }
    }
    Some(if neg { -v } else { v })
}

/// Go's rule: each `_` sits between two digits (a `0x` prefix counts as one).
fn underscores_ok(s: &[u8]) -> bool {
    let s = s
        .strip_prefix(b"-")
        .or_else(|| s.strip_prefix(b"+"))
        .unwrap_or(s);
    let hex =
        s.len() >= 2 && s[0] == b'0' && matches!(s[1].to_ascii_lowercase(), b'b' | b'o' | b'x');
    let (mut prev, rest) = if hex { (b'0', &s[2..]) } else { (b'^', s) };
    let is_hex = hex && s[1].eq_ignore_ascii_case(&b'x');
    for b in rest {
        let digit = b.is_ascii_digit() || (is_hex && b.is_ascii_hexdigit());
        prev = if digit {
            b'0'
        } else if *b == b'_' {
            if prev != b'0' {
                return false;
            }
            b'_'
        } else if prev == b'_' {
            return false;
        } else {
            b'!'
        };
    }
    prev != b'_'
}

impl Collector for Diskstats {
    fn update(&self, ctx: &ScrapeCtx, out: &mut MetricSet) -> Result<(), CollectError> {
        let path = ctx.roots.proc("diskstats");
        let disks = parse(&ctx.read(&path)?)
            .map_err(|l| CollectError::parse(&path, l, "expected at least 14 numeric columns"))?;
        for d in disks {
            if self.filter.ignored(&d.name) {
                continue;
            }
            let udev_data = read_udev(ctx, &d.major, &d.minor);
            let udev = Udev::parse(&udev_data);
            emit_info(out, &d, &udev);
            for (v, (name, help, counter, scale)) in d.stats.iter().zip(COLUMNS) {
                let v = if scale == 1.0 {
                    *v as f64
                } else {
                    *v as f64 * scale
                };
                if counter {
                    out.counter(name, help, &[("device", &d.name)], v);
                } else {
                    out.gauge(name, help, &[("device", &d.name)], v);
                }
            }
            emit_udev_families(out, &d.name, &udev);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_short_and_long_lines() {
        let d = parse(" 254 0 vda 1 2 3 4 5 6 7 8 9 10 11\n 1 0 x 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19\n").unwrap();
        assert_eq!(d[0].stats.len(), 11);
        assert_eq!(d[1].stats.len(), 17);
        assert!(parse("1 0 x 1 2\n").unwrap().is_empty());
        assert!(parse("1 0 x 1 2 3 4 5 6 7 8 9 10 y\n").is_err());
    }

    /// Inputs and answers of node_exporter 1.5.0 itself (each as
    /// `ID_ATA_ROTATION_RATE_RPM`, the scraped value; None: not exported).
    #[test]
    fn parse_float_as_go() {
        let cases: &[(&str, Option<&str>)] = &[
            ("1", Some("1")),
            ("0", Some("0")),
            ("7200", Some("7200")),
            ("+5", Some("5")),
            ("-5", Some("-5")),
            (".5", Some("0.5")),
            ("5.", Some("5")),
            (".", None),
            ("1e3", Some("1000")),
            ("1E+3", Some("1000")),
            ("1e", None),
            ("1e+", None),
            ("1e-400", Some("0")),
            ("1e400", None),
            ("1e308", Some("1e+308")),
            ("-1e400", None),
            ("inf", Some("+Inf")),
            ("-Inf", Some("-Inf")),
            ("+INF", Some("+Inf")),
            ("infinity", Some("+Inf")),
            ("+Infinity", Some("+Inf")),
            ("infin", None),
            ("nan", Some("NaN")),
            ("NaN", Some("NaN")),
            ("+nan", None),
            ("-nan", None),
            ("nanx", None),
            ("0x1p4", Some("16")),
            ("0X1P-2", Some("0.25")),
            ("0x1.8p1", Some("3")),
            ("0x10", None),
            ("0x", None),
            ("0x_1p0", Some("1")),
            ("0x1__0p0", None),
            ("0x1_p0", None),
            ("0x1p1_0", Some("1024")),
            ("1_000", Some("1000")),
            ("1__0", None),
            ("_1", None),
            ("1_", None),
            ("1_.5", None),
            ("0b101", None),
            ("0o7", None),
            ("7200 ", None),
            (" 7200", None),
            ("12abc", None),
            ("1.5e2", Some("150")),
            ("1e10000000", None),
            ("0x1p10000", None),
            ("0x.8p0", Some("0.5")),
            ("0x1.fffffffffffff8p0", Some("2")),
            (
                "123456789012345678901234567890",
                Some("1.2345678901234568e+29"),
            ),
            ("0.1", Some("0.1")),
            ("00012", Some("12")),
        ];
        for (input, want) in cases {
            let got = go_parse_float(input.as_bytes())
                .ok()
                .map(vigie_common::expo::go_float);
            assert_eq!(got.as_deref(), *want, "{input:?}");
        }
    }

    #[test]
    fn udev_lines_as_go_scanner() {
        let long = format!("E:ID_WWN={}\n", "w".repeat(SCANNER_MAX_LINE - 9));
        let data = format!(
            "S:disk/by-id/x\nE:ID_MODEL=a=b\r\nE:ID_PATH\ne:ID_WWN=x\nE:ID_REVISION=1\n{long}E:ID_SERIAL_SHORT=after\n"
        );
        let u = Udev::parse(data.as_bytes());
        assert_eq!(u.label("ID_MODEL"), "a=b");
        assert_eq!(u.raw("ID_PATH"), None);
        assert_eq!(u.label("ID_WWN"), "");
        assert_eq!(u.label("ID_REVISION"), "1");
        assert_eq!(u.raw("ID_SERIAL_SHORT"), None);
        let u = Udev::parse(b"E:ID_MODEL=\xff\xfeX\nE:ID_REVISION=2\r");
        assert_eq!(u.label("ID_MODEL"), "\u{fffd}\u{fffd}X");
        assert_eq!(u.label("ID_REVISION"), "2");
    }
}
