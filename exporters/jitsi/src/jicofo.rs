//! Jicofo `/stats` → `jicofo_<path joined by _>` gauges.
//!
//! Every number or boolean (0/1) leaf of the nested document is a gauge
//! named by its key path (`bridge_selector.bridge_count` →
//! `jicofo_bridge_selector_bridge_count`). Arrays of numbers (old Jicofo's
//! 22-element `conference_sizes`) are labelled by index:
//! `jicofo_conference_sizes{conference_size="3"}`, other arrays `{index="3"}`.
//! camelCase keys (`health.hardFailure`) are written in snake_case
//! (`jicofo_health_hard_failure`). The top-level `version` string becomes `jicofo_version_info{version}`;
//! other strings and nulls are skipped.

use vigie_common::expo::{sanitize_name, MetricSet, MetricType};

use crate::json::{flatten, Json};

/// Maps a parsed `/stats` document into `out`. Fails only when the document
/// is not a JSON object.
pub fn collect(doc: &Json, out: &mut MetricSet) -> Result<(), String> {
    let Json::Obj(entries) = doc else {
        return Err(format!(
            "jicofo stats: expected a JSON object, got {}",
            doc.kind()
        ));
    };
    let mut seen = std::collections::HashSet::with_capacity(entries.len());
    for (key, value) in entries {
        if !seen.insert(key.as_str()) {
            tracing::debug!(key = %key, "jicofo stats: duplicate key, keeping the first");
            continue;
        }
        if let (Json::Str(s), "version") = (value, key.as_str()) {
            out.family(
                "jicofo_version_info",
                "Jicofo version, as a label.",
                MetricType::Gauge,
            )
            .add(&[("version", s)], 1.0);
            continue;
        }
        let base = format!("jicofo_{key}");
        let array_label = |name: &str| -> &'static str {
            if name == "jicofo_conference_sizes" {
                "conference_size"
            } else {
                "index"
            }
        };
        flatten(&base, &[], value, &array_label, &mut |name, labels, v| {
            let name = sanitize_name(&snake_case(name));
            let help = format!(
                "Jicofo /stats value {:?}.",
                name.trim_start_matches("jicofo_")
            );
            out.family(&name, &help, MetricType::Gauge)
                .add_owned(labels.to_vec(), v);
        });
    }
    Ok(())
}

/// `hardFailure` → `hard_failure`, `HTTPCode` → `http_code`: Prometheus
/// names are snake_case (promtool flags camelCase).
pub fn snake_case(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1).copied();
            let after_lower = prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit());
            let acronym_end = prev.is_some_and(|p| p.is_ascii_uppercase())
                && next.is_some_and(|n| n.is_ascii_lowercase());
            if (after_lower || acronym_end) && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::json::parse;

    fn render(doc: &str) -> String {
        let mut set = MetricSet::new();
        collect(&parse(doc.as_bytes()).unwrap(), &mut set).unwrap();
        set.encode_text()
    }

    #[test]
    fn example_document() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/jicofo_stats_example.json"
        ))
        .unwrap();
        let t = render(&doc);
        for line in [
            "jicofo_conferences 3",
            "jicofo_participants 11",
            "jicofo_bridge_selector_bridge_count 2",
            "jicofo_jibri_recording_active 1",
            "jicofo_conference_sizes_buckets_2_to_3 1",
            "jicofo_conference_sizes_average 3.6666666666666665",
            "jicofo_conference_sizes_buckets_p99_upper_bound -1",
            "jicofo_healthy 1",
            "jicofo_health_success 1",
            "jicofo_health_sticky 0",
            "jicofo_health_hard_failure 1",
            "jicofo_version_info{version=\"1.0-1178-g0a1b2c3\"} 1",
        ] {
            assert!(t.contains(&format!("\n{line}\n")), "{line}: {t}");
        }
        assert!(
            !t.contains("responseCode") && !t.contains("_note") && !t.contains("health_message"),
            "{t}"
        );
        assert!(
            t.lines()
                .filter(|l| l.starts_with("# TYPE"))
                .all(|l| l.ends_with(" gauge")),
            "{t}"
        );
    }

    #[test]
    fn camel_case_becomes_snake_case() {
        assert_eq!(
            snake_case("jicofo_health_hardFailure"),
            "jicofo_health_hard_failure"
        );
        assert_eq!(snake_case("HTTPCode"), "http_code");
        assert_eq!(snake_case("a2B"), "a2_b");
        assert_eq!(snake_case("already_snake"), "already_snake");
        assert_eq!(snake_case("x_Y"), "x_y");
    }

    #[test]
    fn old_jicofo_conference_sizes_array() {
        let t = render(
            r#"{"conference_sizes": [0, 2, 1], "bridge_selector": {"total_least_loaded": 5}}"#,
        );
        assert!(
            t.contains("jicofo_conference_sizes{conference_size=\"1\"} 2\n"),
            "{t}"
        );
        assert!(
            t.contains("jicofo_bridge_selector_total_least_loaded 5\n"),
            "{t}"
        );
    }

    #[test]
    fn hostile_values() {
        let t = render(
            r#"{"a": "1", "b": null, "c": 1e400, "d": {"e-f": 1, "e_f": 2}, "d": 5, "x": [[1]], "ü": 1}"#,
        );
        assert!(
            !t.contains("jicofo_a ") && !t.contains("jicofo_b ") && !t.contains("jicofo_c "),
            "{t}"
        );
        assert!(
            t.contains("jicofo_d_e_f 1\n") && !t.contains("jicofo_d_e_f 2"),
            "{t}"
        );
        assert!(!t.contains("jicofo_d 5"), "{t}");
        assert!(!t.contains("jicofo_x"), "{t}");
        assert!(t.contains("jicofo__ 1\n"), "{t}");
    }
}
