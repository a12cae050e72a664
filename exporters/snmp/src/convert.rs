//! PDUs → samples, with snmp_exporter 0.21's naming and rendering rules:
//! the metric whose OID is the shortest prefix of a PDU's OID takes it, the
//! remaining arcs are the index; indexes and lookups become labels; string
//! types become a label named after the metric with value 1; EnumAsInfo,
//! EnumAsStateSet, Bits, DateAndTime and regex_extracts as upstream.

use std::collections::{BTreeMap, HashMap};

use vigie_common::expo::{MetricSet, MetricType};

use crate::client::{SnmpValue, Varbind};
use crate::module::{Index, IndexKind, Metric, MetricKind, Module};

/// 2^53: Counter64 values are wrapped to this by default, as
/// snmp_exporter's `--snmp.wrap-large-counters` does, so float64 keeps
/// every bit and `rate()` sees a reset instead of lost precision.
const FLOAT64_MANTISSA: u64 = 1 << 53;

/// One sample before it goes into the set.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub help: String,
    pub kind: MetricType,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// Renders a module's PDUs into `out`. Returns errors that make the Go
/// exporter fail the whole scrape (duplicate series, BITS not on the
/// wire as an octet string).
pub fn render(
    module: &Module,
    pdus: &[Varbind],
    wrap_counters: bool,
    out: &mut MetricSet,
) -> Vec<String> {
    let by_oid: HashMap<&[u32], &SnmpValue> =
        pdus.iter().map(|v| (v.oid.as_slice(), &v.value)).collect();
    let mut errors = Vec::new();
    let mut local = MetricSet::new();
    for pdu in pdus {
        // An OID fetched twice (a filter's GET under a walked subtree) is one
        // sample, the last one, as upstream keys PDUs by OID.
        let last = by_oid
            .get(pdu.oid.as_slice())
            .is_some_and(|v| std::ptr::eq(*v, &pdu.value));
        if !last {
            continue;
        }
        let Some((metric, index)) = module.metric_for(&pdu.oid) else {
            continue;
        };
        match pdu_to_samples(index, &pdu.value, metric, &by_oid, wrap_counters) {
            Ok(samples) => {
                for s in samples {
                    local
                        .family(&s.name, &s.help, s.kind)
                        .add_owned(s.labels, s.value);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    errors.extend(duplicates(&local));
    out.merge(local);
    errors
}

/// Series that repeat a label set within a family: the Go client fails the
/// scrape on them, so we report them the way it words them.
fn duplicates(set: &MetricSet) -> Vec<String> {
    let mut errors = Vec::new();
    for fam in set.families() {
        let mut refs: Vec<&vigie_common::expo::Sample> = fam.samples.iter().collect();
        refs.sort_by(|a, b| a.labels.cmp(&b.labels));
        for pair in refs.windows(2) {
            if pair[0].labels != pair[1].labels {
                continue;
            }
            let kind = match fam.kind {
                MetricType::Counter => "counter",
                MetricType::Gauge => "gauge",
                _ => "untyped",
            };
            let labels: String = pair[1]
                .labels
                .iter()
                .map(|(k, v)| format!("label:<name:{k:?} value:{v:?} > "))
                .collect();
            let value = match pair[1].value {
                vigie_common::expo::Value::Scalar(v) => vigie_common::expo::go_float(v),
                _ => String::new(),
            };
            errors.push(format!(
                "collected metric {:?} {{ {labels}{kind}:<value:{value} > }} was collected before with the same name and label values",
                fam.name
            ));
        }
    }
    errors
}

/// Splits off `count` arcs, padding with zeros when the index is short (as upstream).
fn split_oid(oids: &[u32], count: usize) -> (Vec<u32>, &[u32]) {
    let n = count.min(oids.len());
    let mut head = oids[..n].to_vec();
    head.resize(count, 0);
    (head, &oids[n..])
}

fn hex_upper(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02X}"));
    }
    s
}

fn ipv6_text(parts: &[u32]) -> String {
    parts
        .chunks(2)
        .map(|c| {
            format!(
                "{:02X}{:02X}",
                c[0] as u8,
                c.get(1).copied().unwrap_or(0) as u8
            )
        })
        .collect::<Vec<_>>()
        .join(":")
}

/// Renders index arcs as a label value; returns (value, arcs used, rest).
pub fn index_as_string<'a>(
    oids: &'a [u32],
    kind: IndexKind,
    fixed_size: usize,
    implied: bool,
    enum_values: &BTreeMap<i64, String>,
) -> (String, Vec<u32>, &'a [u32]) {
    match kind {
        IndexKind::Gauge => {
            let (sub, rest) = split_oid(oids, 1);
            (sub[0].to_string(), sub, rest)
        }
        IndexKind::Enum => {
            let (sub, rest) = split_oid(oids, 1);
            let v = i64::from(sub[0]);
            let s = enum_values
                .get(&v)
                .cloned()
                .unwrap_or_else(|| v.to_string());
            (s, sub, rest)
        }
        IndexKind::PhysAddress48 => {
            let (sub, rest) = split_oid(oids, 6);
            let s = sub
                .iter()
                .map(|o| format!("{:02X}", *o as u8))
                .collect::<Vec<_>>()
                .join(":");
            (s, sub, rest)
        }
        IndexKind::OctetString | IndexKind::DisplayString => {
            let mut rest = oids;
            let mut sub = Vec::new();
            let mut length = fixed_size;
            if implied {
                length = rest.len();
            }
            if length == 0 {
                let (l, r) = split_oid(rest, 1);
                rest = r;
                length = l[0] as usize;
                sub.extend(l);
            }
            // A length arc larger than what is left is padded, but bounded.
            let length = length.min(rest.len() + 256);
            let (content, rest) = split_oid(rest, length);
            let bytes: Vec<u8> = content.iter().map(|&o| o as u8).collect();
            sub.extend(content);
            let s = if kind == IndexKind::DisplayString {
                String::from_utf8_lossy(&bytes).into_owned()
            } else if bytes.is_empty() {
                String::new()
            } else {
                format!("0x{}", hex_upper(&bytes))
            };
            (s, sub, rest)
        }
        IndexKind::InetAddressIPv4 | IndexKind::IpAddr => {
            let (sub, rest) = split_oid(oids, 4);
            let s = sub.iter().map(u32::to_string).collect::<Vec<_>>().join(".");
            (s, sub, rest)
        }
        IndexKind::InetAddressIPv6 => {
            let (sub, rest) = split_oid(oids, 16);
            (ipv6_text(&sub), sub, rest)
        }
        IndexKind::InetAddress => {
            // Address type, length, address. Types other than ipv4(1)/ipv6(2)
            // render, as upstream, as hex of the whole index part (type and length included).
            let (typ, rest) = split_oid(oids, 1);
            let (len, rest) = split_oid(rest, 1);
            match typ[0] {
                1 | 2 => {
                    let kind = if typ[0] == 1 {
                        IndexKind::InetAddressIPv4
                    } else {
                        IndexKind::InetAddressIPv6
                    };
                    let (s, used, rest) = index_as_string(rest, kind, 0, false, enum_values);
                    let mut sub = vec![typ[0], len[0]];
                    sub.extend(used);
                    (s, sub, rest)
                }
                _ => {
                    let l = (len[0] as usize).min(rest.len() + 256);
                    let (content, rest) = split_oid(rest, l);
                    let mut sub = vec![typ[0], len[0]];
                    sub.extend(content);
                    let bytes: Vec<u8> = sub.iter().map(|&o| o as u8).collect();
                    (format!("0x{}", hex_upper(&bytes)), sub, rest)
                }
            }
        }
        IndexKind::InetAddressMissingSize => {
            let (typ, rest) = split_oid(oids, 1);
            let mut sub = vec![typ[0]];
            let (s, used, rest) = if typ[0] == 2 {
                index_as_string(rest, IndexKind::InetAddressIPv6, 0, false, enum_values)
            } else {
                index_as_string(rest, IndexKind::InetAddressIPv4, 0, false, enum_values)
            };
            sub.extend(used);
            (s, sub, rest)
        }
    }
}

/// An Opaque-wrapped float or double (net-snmp's laLoadFloat and friends).
fn opaque_float(b: &[u8]) -> Option<f64> {
    match b {
        [0x9f, 0x78, 4, rest @ ..] if rest.len() == 4 => Some(f64::from(f32::from_be_bytes([
            rest[0], rest[1], rest[2], rest[3],
        ]))),
        [0x9f, 0x79, 8, rest @ ..] if rest.len() == 8 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(rest);
            Some(f64::from_be_bytes(a))
        }
        _ => None,
    }
}

/// The numeric value of a PDU, as gosnmp's `ToBigInt` gives it (0 for strings).
pub fn pdu_value(v: &SnmpValue, wrap_counters: bool) -> f64 {
    match v {
        SnmpValue::Counter64(c) => {
            if wrap_counters {
                (c % FLOAT64_MANTISSA) as f64
            } else {
                *c as f64
            }
        }
        SnmpValue::Integer(i) => *i as f64,
        SnmpValue::Counter32(c) | SnmpValue::Gauge32(c) | SnmpValue::TimeTicks(c) => f64::from(*c),
        SnmpValue::Opaque(b) => opaque_float(b).unwrap_or(0.0),
        _ => 0.0,
    }
}

fn value_kind_for_type(typ: &str) -> (IndexKind, bool) {
    match typ {
        "" | "OctetString" => (IndexKind::OctetString, true),
        "DisplayString" => (IndexKind::DisplayString, true),
        "PhysAddress48" => (IndexKind::PhysAddress48, false),
        "InetAddressIPv4" | "IpAddr" => (IndexKind::InetAddressIPv4, false),
        "InetAddressIPv6" => (IndexKind::InetAddressIPv6, false),
        "InetAddress" => (IndexKind::InetAddress, false),
        "InetAddressMissingSize" => (IndexKind::InetAddressMissingSize, false),
        "gauge" | "counter" => (IndexKind::Gauge, false),
        _ => (IndexKind::OctetString, true),
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 32|64)`.
fn format_float_f(v: f64, is32: bool) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if is32 {
        format!("{}", v as f32)
    } else {
        format!("{v}")
    }
}

/// A PDU's value as a label value, rendered for the generator type `typ`.
pub fn value_as_string(v: &SnmpValue, typ: &str) -> String {
    match v {
        SnmpValue::Integer(i) => i.to_string(),
        SnmpValue::Counter32(c) | SnmpValue::Gauge32(c) => c.to_string(),
        // gosnmp hands TimeTicks over as uint32, which upstream formats with %s.
        SnmpValue::TimeTicks(t) => format!("%!s(uint32={t})"),
        SnmpValue::Counter64(c) => c.to_string(),
        SnmpValue::ObjectId(arcs) => crate::module::oid_string(arcs),
        SnmpValue::IpAddress(a) => format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]),
        SnmpValue::Opaque(b) => match b.as_slice() {
            [0x9f, 0x78, ..] => {
                opaque_float(b).map_or_else(String::new, |f| format_float_f(f, true))
            }
            [0x9f, 0x79, ..] => {
                opaque_float(b).map_or_else(String::new, |f| format_float_f(f, false))
            }
            _ => bytes_as_string(b, typ),
        },
        SnmpValue::OctetString(b) => bytes_as_string(b, typ),
        SnmpValue::Boolean(b) => b.to_string(),
        _ => String::new(),
    }
}

fn bytes_as_string(b: &[u8], typ: &str) -> String {
    let (kind, prefix_len) = value_kind_for_type(typ);
    let mut parts: Vec<u32> = Vec::with_capacity(b.len() + 1);
    if prefix_len {
        parts.push(b.len() as u32);
    }
    parts.extend(b.iter().map(|&x| u32::from(x)));
    let (s, _, _) = index_as_string(&parts, kind, 0, false, &BTreeMap::new());
    s
}

/// Label set while building: a map, as upstream, so lookups can replace
/// or delete index labels.
type Labels = BTreeMap<String, String>;

fn indexes_to_labels(
    index: &[u32],
    metric: &Metric,
    by_oid: &HashMap<&[u32], &SnmpValue>,
) -> Labels {
    let mut labels = Labels::new();
    let mut label_oids: HashMap<&str, Vec<u32>> = HashMap::new();
    let mut rest = index;
    for Index {
        labelname,
        kind,
        fixed_size,
        implied,
        enum_values,
    } in &metric.indexes
    {
        let (s, sub, r) = index_as_string(rest, *kind, *fixed_size, *implied, enum_values);
        rest = r;
        labels.insert(labelname.clone(), s);
        label_oids.insert(labelname.as_str(), sub);
    }
    for l in &metric.lookups {
        if l.labels.is_empty() {
            labels.remove(&l.labelname);
            continue;
        }
        let mut oid = l.oid.clone();
        for name in &l.labels {
            if let Some(sub) = label_oids.get(name.as_str()) {
                oid.extend_from_slice(sub);
            }
        }
        let value = by_oid
            .get(oid.as_slice())
            .map(|v| value_as_string(v, &l.kind))
            .unwrap_or_default();
        labels.insert(l.labelname.clone(), value);
    }
    labels
}

fn to_vec(labels: Labels) -> Vec<(String, String)> {
    labels.into_iter().collect()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month may overflow, as Go's time.Date normalises).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    // Normalise the month into 1..=12 first.
    let m0 = m - 1;
    let y = y + m0.div_euclid(12);
    let m = m0.rem_euclid(12) + 1;
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// DateAndTime (RFC 2579, 8 or 11 octets) → Unix seconds.
pub fn parse_date_and_time(v: &SnmpValue) -> Result<f64, String> {
    let SnmpValue::OctetString(b) = v else {
        return Err("invalid DateAndTime type".into());
    };
    let tz_secs = match b.len() {
        8 => 0i64,
        11 => {
            let sign = match b[8] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err(format!("error parsing location string: {:?}", b[8] as char)),
            };
            if b[9] > 99 || b[10] > 99 {
                return Err("error parsing location string".into());
            }
            sign * (i64::from(b[9]) * 3600 + i64::from(b[10]) * 60)
        }
        n => return Err(format!("invalid DateAndTime length {n}")),
    };
    let year = i64::from(u16::from_be_bytes([b[0], b[1]]));
    let days = days_from_civil(year, i64::from(b[2]), i64::from(b[3]));
    let secs = days * 86_400
        + i64::from(b[4]) * 3600
        + i64::from(b[5]) * 60
        + i64::from(b[6])
        + i64::from(b[7]) / 10
        - tz_secs;
    Ok(secs as f64)
}

fn apply_scale(metric: &Metric, v: f64) -> f64 {
    let mut v = v;
    if metric.scale != 0.0 {
        v *= metric.scale;
    }
    v + metric.offset
}

/// The samples one PDU gives for `metric`.
pub fn pdu_to_samples(
    index: &[u32],
    value: &SnmpValue,
    metric: &Metric,
    by_oid: &HashMap<&[u32], &SnmpValue>,
    wrap_counters: bool,
) -> Result<Vec<Sample>, String> {
    let mut labels = indexes_to_labels(index, metric, by_oid);
    let num = pdu_value(value, wrap_counters);
    let sample = |name: &str, help: String, kind, labels, value| Sample {
        name: name.to_owned(),
        help,
        kind,
        labels,
        value,
    };
    let (kind, v) = match metric.kind {
        MetricKind::Counter => (MetricType::Counter, apply_scale(metric, num)),
        MetricKind::Gauge | MetricKind::Float | MetricKind::Double => {
            (MetricType::Gauge, apply_scale(metric, num))
        }
        MetricKind::DateAndTime => match parse_date_and_time(value) {
            Ok(t) => (MetricType::Gauge, t),
            Err(e) => {
                tracing::debug!(metric = %metric.name, err = %e, "cannot parse DateAndTime");
                return Ok(Vec::new());
            }
        },
        MetricKind::EnumAsInfo => {
            let n = num as i64;
            let state = metric
                .enum_values
                .get(&n)
                .cloned()
                .unwrap_or_else(|| n.to_string());
            labels.insert(metric.name.clone(), state);
            return Ok(vec![sample(
                &format!("{}_info", metric.name),
                format!("{} (EnumAsInfo)", metric.help),
                MetricType::Gauge,
                to_vec(labels),
                1.0,
            )]);
        }
        MetricKind::EnumAsStateSet => {
            let n = num as i64;
            let state = metric
                .enum_values
                .get(&n)
                .cloned()
                .unwrap_or_else(|| n.to_string());
            let help = format!("{} (EnumAsStateSet)", metric.help);
            let mut out = Vec::with_capacity(metric.enum_values.len() + 1);
            let mut l = labels.clone();
            l.insert(metric.name.clone(), state);
            out.push(sample(
                &metric.name,
                help.clone(),
                MetricType::Gauge,
                to_vec(l),
                1.0,
            ));
            for (k, name) in &metric.enum_values {
                if *k == n {
                    continue;
                }
                let mut l = labels.clone();
                l.insert(metric.name.clone(), name.clone());
                out.push(sample(
                    &metric.name,
                    help.clone(),
                    MetricType::Gauge,
                    to_vec(l),
                    0.0,
                ));
            }
            return Ok(out);
        }
        MetricKind::Bits => {
            let SnmpValue::OctetString(bytes) = value else {
                return Err(format!(
                    "BITS type was not a BISTRING on the wire: error for metric {}",
                    metric.name
                ));
            };
            let help = format!("{} (Bits)", metric.help);
            let mut out = Vec::with_capacity(metric.enum_values.len());
            for (k, name) in &metric.enum_values {
                let bit = usize::try_from(*k)
                    .ok()
                    .and_then(|k| bytes.get(k / 8).map(|b| b & (128u8 >> (k % 8)) != 0))
                    .unwrap_or(false);
                let mut l = labels.clone();
                l.insert(metric.name.clone(), name.clone());
                out.push(sample(
                    &metric.name,
                    help.clone(),
                    MetricType::Gauge,
                    to_vec(l),
                    if bit { 1.0 } else { 0.0 },
                ));
            }
            return Ok(out);
        }
        MetricKind::String => {
            let typ = string_subtype(metric, index, by_oid);
            if !metric.regex_extracts.is_empty() {
                return Ok(regex_extracts(metric, &value_as_string(value, typ), labels));
            }
            if !labels.contains_key(&metric.name) {
                labels.insert(metric.name.clone(), value_as_string(value, typ));
            }
            (MetricType::Gauge, 1.0)
        }
    };
    Ok(vec![sample(
        &metric.name,
        metric.help.clone(),
        kind,
        to_vec(labels),
        v,
    )])
}

/// `InetAddress`-style values: the address type lives in the column before
/// (`InetAddressType`), as upstream reads it.
fn string_subtype<'m>(
    metric: &'m Metric,
    index: &[u32],
    by_oid: &HashMap<&[u32], &SnmpValue>,
) -> &'m str {
    let t = metric.type_name.as_str();
    if t != "InetAddress" && t != "InetAddressMissingSize" {
        return t;
    }
    let mut prev = metric.oid.clone();
    if let Some(last) = prev.last_mut() {
        if *last == 0 {
            return "OctetString";
        }
        *last -= 1;
    }
    prev.extend_from_slice(index);
    match by_oid
        .get(prev.as_slice())
        .map(|v| pdu_value(v, false) as i64)
    {
        Some(1) => "InetAddressIPv4",
        Some(2) => "InetAddressIPv6",
        _ => "OctetString",
    }
}

fn regex_extracts(metric: &Metric, s: &str, labels: Labels) -> Vec<Sample> {
    let mut out = Vec::new();
    let labels = to_vec(labels);
    for (suffix, list) in &metric.regex_extracts {
        for re in list {
            let Some(caps) = re.regex.captures(s) else {
                continue;
            };
            let mut res = String::new();
            caps.expand(&re.value, &mut res);
            let Ok(v) = res.trim().parse::<f64>() else {
                continue;
            };
            out.push(Sample {
                name: format!("{}{}", metric.name, suffix),
                help: format!("{} (regex extracted)", metric.help),
                kind: MetricType::Gauge,
                labels: labels.clone(),
                value: v,
            });
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octet_strings_render_like_upstream() {
        assert_eq!(
            value_as_string(&SnmpValue::OctetString(b"em0".to_vec()), "DisplayString"),
            "em0"
        );
        assert_eq!(
            value_as_string(&SnmpValue::OctetString(vec![0xde, 0xad]), "OctetString"),
            "0xDEAD"
        );
        assert_eq!(
            value_as_string(&SnmpValue::OctetString(vec![]), "OctetString"),
            ""
        );
        assert_eq!(
            value_as_string(
                &SnmpValue::OctetString(vec![0, 0x50, 0x56, 1, 2, 3]),
                "PhysAddress48"
            ),
            "00:50:56:01:02:03"
        );
        assert_eq!(
            value_as_string(&SnmpValue::OctetString(vec![]), "PhysAddress48"),
            "00:00:00:00:00:00"
        );
        assert_eq!(
            value_as_string(
                &SnmpValue::OctetString(vec![10, 0, 0, 1]),
                "InetAddressIPv4"
            ),
            "10.0.0.1"
        );
        assert_eq!(
            value_as_string(&SnmpValue::OctetString(vec![0xff, b'a']), "DisplayString"),
            "\u{fffd}a"
        );
        assert_eq!(
            value_as_string(&SnmpValue::ObjectId(vec![1, 3, 6]), ""),
            "1.3.6"
        );
        assert_eq!(
            value_as_string(
                &SnmpValue::Opaque(vec![0x9f, 0x78, 4, 0x3e, 0x23, 0xd7, 0x0a]),
                "Float"
            ),
            "0.16"
        );
    }

    #[test]
    fn index_rendering() {
        let e = BTreeMap::new();
        assert_eq!(
            index_as_string(&[3, 97, 98, 99, 7], IndexKind::DisplayString, 0, false, &e).0,
            "abc"
        );
        assert_eq!(
            index_as_string(&[3, 97, 98, 99, 7], IndexKind::DisplayString, 0, false, &e).2,
            &[7]
        );
        assert_eq!(
            index_as_string(&[97, 98], IndexKind::DisplayString, 0, true, &e).0,
            "ab"
        );
        assert_eq!(
            index_as_string(&[1, 4, 127, 0, 0, 1], IndexKind::InetAddress, 0, false, &e).0,
            "127.0.0.1"
        );
        let v6: Vec<u32> = (0..16).collect();
        assert_eq!(
            index_as_string(&v6, IndexKind::InetAddressIPv6, 0, false, &e).0,
            "0001:0203:0405:0607:0809:0A0B:0C0D:0E0F"
        );
        // Short indexes are padded with zeros, never a panic.
        assert_eq!(index_as_string(&[], IndexKind::Gauge, 0, false, &e).0, "0");
        assert_eq!(
            index_as_string(&[1], IndexKind::PhysAddress48, 0, false, &e).0,
            "01:00:00:00:00:00"
        );
        assert!(
            index_as_string(&[u32::MAX], IndexKind::OctetString, 0, false, &e)
                .1
                .len()
                <= 258
        );
    }

    #[test]
    fn counter64_wraps() {
        let v = SnmpValue::Counter64((1u64 << 60) + 12345);
        assert_eq!(pdu_value(&v, true), 12345.0);
        assert_eq!(pdu_value(&v, false), ((1u64 << 60) + 12345) as f64);
    }

    #[test]
    fn date_and_time() {
        let v = SnmpValue::OctetString(vec![0x07, 0xe4, 1, 2, 3, 4, 5, 0]);
        assert_eq!(parse_date_and_time(&v).unwrap(), 1_577_934_245.0);
        let v = SnmpValue::OctetString(vec![0x07, 0xe4, 1, 2, 3, 4, 5, 0, b'+', 1, 0]);
        assert_eq!(parse_date_and_time(&v).unwrap(), 1_577_934_245.0 - 3600.0);
        assert!(parse_date_and_time(&SnmpValue::OctetString(vec![1, 2])).is_err());
    }
}
