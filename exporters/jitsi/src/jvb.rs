//! Jitsi Videobridge `/colibri/stats` → systemli's metric names.
//!
//! systemli/prometheus-jitsi-meet-exporter is what dashboards are built on,
//! so its names, types and quirks are the contract:
//! - every numeric key `k` becomes `jitsi_<k>`, a gauge, except the
//!   counters in [`COUNTERS`], which keep their names (no `_total` suffix);
//! - the `total_ice_*` keys are exported without the `jitsi_` prefix;
//! - booleans (`healthy`, `drain`, `graceful_shutdown`, `shutting_down`,
//!   and any other) are 0/1;
//! - the strings `version`, `region`, `relay_id` become
//!   `jitsi_<k>_info{<k>="..."} 1`; other strings are skipped;
//! - the `conference_sizes` array becomes
//!   `jitsi_conference_sizes{conference_size="<index>"}`.
//!
//! Keys systemli does not know are exported the same way, so newer bridges
//! are covered; nested objects (older bridges) are flattened with `_`.

use std::collections::HashMap;
use std::sync::OnceLock;

use vigie_common::expo::{sanitize_name, MetricSet, MetricType};

use crate::json::{flatten, Json};

/// Keys systemli types as counters (their names keep no `_total` suffix).
pub const COUNTERS: &[&str] = &[
    "total_loss_controlled_participant_seconds",
    "total_loss_limited_participant_seconds",
    "total_loss_degraded_participant_seconds",
    "total_conference_seconds",
    "total_conferences_created",
    "total_conferences_completed",
    "total_failed_conferences",
    "total_partially_failed_conferences",
    "total_data_channel_messages_received",
    "total_data_channel_messages_sent",
    "total_colibri_web_socket_messages_received",
    "total_colibri_web_socket_messages_sent",
];

/// String keys exported as `jitsi_<key>_info{<key>="value"} 1`.
pub const INFO_KEYS: &[&str] = &["version", "region", "relay_id"];

/// Keys exported without the `jitsi_` prefix (systemli's quirk).
pub const UNPREFIXED: &str = "total_ice_";

/// Help texts for the keys systemli exports (our own wording).
const HELP: &[(&str, &str)] = &[
    ("threads", "Number of Java threads of the videobridge."),
    (
        "bit_rate_download",
        "Incoming bitrate of the videobridge, in kbit/s.",
    ),
    (
        "bit_rate_upload",
        "Outgoing bitrate of the videobridge, in kbit/s.",
    ),
    (
        "packet_rate_download",
        "Incoming packet rate of the videobridge, in packets/s.",
    ),
    (
        "packet_rate_upload",
        "Outgoing packet rate of the videobridge, in packets/s.",
    ),
    (
        "loss_rate_download",
        "Fraction of incoming RTP packets lost (older bridges).",
    ),
    (
        "loss_rate_upload",
        "Fraction of outgoing RTP packets lost (older bridges).",
    ),
    (
        "jitter_aggregate",
        "Average jitter of the streams, in milliseconds.",
    ),
    (
        "rtt_aggregate",
        "Average round-trip time of the streams, in milliseconds.",
    ),
    (
        "largest_conference",
        "Participants in the largest conference on the bridge.",
    ),
    (
        "audiochannels",
        "Current number of audio channels (older bridges).",
    ),
    (
        "videochannels",
        "Current number of video channels (older bridges).",
    ),
    ("conferences", "Current number of conferences."),
    (
        "p2p_conferences",
        "Current number of peer-to-peer conferences.",
    ),
    ("participants", "Current number of participants."),
    (
        "total_participants",
        "Participants since the bridge started.",
    ),
    (
        "endpoints_sending_video",
        "Current number of endpoints sending video.",
    ),
    (
        "endpoints_sending_audio",
        "Current number of local endpoints sending audio.",
    ),
    (
        "videostreams",
        "Estimated number of video streams forwarded (older bridges).",
    ),
    ("stress_level", "Stress level the bridge reports to Jicofo."),
    (
        "total_loss_controlled_participant_seconds",
        "Participant-seconds that were loss-controlled.",
    ),
    (
        "total_loss_limited_participant_seconds",
        "Participant-seconds that were loss-limited.",
    ),
    (
        "total_loss_degraded_participant_seconds",
        "Participant-seconds that were loss-degraded.",
    ),
    (
        "total_conference_seconds",
        "Sum of the lengths of all completed conferences, in seconds.",
    ),
    (
        "total_conferences_created",
        "Conferences created on the bridge.",
    ),
    (
        "total_conferences_completed",
        "Conferences completed on the bridge.",
    ),
    (
        "total_failed_conferences",
        "Conferences in which all channels failed.",
    ),
    (
        "total_partially_failed_conferences",
        "Conferences in which some channels failed.",
    ),
    (
        "total_data_channel_messages_received",
        "Messages received through data channels.",
    ),
    (
        "total_data_channel_messages_sent",
        "Messages sent through data channels.",
    ),
    (
        "total_colibri_web_socket_messages_received",
        "Messages received through COLIBRI web sockets.",
    ),
    (
        "total_colibri_web_socket_messages_sent",
        "Messages sent through COLIBRI web sockets.",
    ),
    ("octo_version", "OCTO protocol version."),
    ("octo_conferences", "Current number of OCTO conferences."),
    ("octo_endpoints", "Current number of OCTO endpoints."),
    ("octo_receive_bitrate", "OCTO incoming bitrate, in kbit/s."),
    ("octo_send_bitrate", "OCTO outgoing bitrate, in kbit/s."),
    (
        "octo_receive_packet_rate",
        "OCTO incoming packet rate, in packets/s.",
    ),
    (
        "octo_send_packet_rate",
        "OCTO outgoing packet rate, in packets/s.",
    ),
    ("total_bytes_received_octo", "Bytes received over OCTO."),
    ("total_bytes_sent_octo", "Bytes sent over OCTO."),
    ("total_packets_dropped_octo", "Packets dropped on OCTO."),
    ("total_packets_received_octo", "Packets received over OCTO."),
    ("total_packets_sent_octo", "Packets sent over OCTO."),
    (
        "total_ice_succeeded_relayed",
        "ICE successes whose selected pair used a relayed candidate.",
    ),
    ("total_ice_succeeded", "ICE successes."),
    (
        "total_ice_succeeded_tcp",
        "ICE successes whose selected candidate was TCP.",
    ),
    ("total_ice_failed", "ICE failures."),
    (
        "endpoints_with_suspended_sources",
        "Endpoints with some video suspended because of bandwidth estimation.",
    ),
    ("inactive_endpoints", "Endpoints in inactive conferences."),
    (
        "inactive_conferences",
        "Conferences in which no endpoint sends audio or video.",
    ),
    (
        "local_active_endpoints",
        "Local endpoints in active conferences.",
    ),
    ("muc_clients_connected", "Connected XMPP MUC clients."),
    ("muc_clients_configured", "Configured XMPP MUC clients."),
    ("mucs_configured", "Configured MUCs."),
    ("mucs_joined", "Joined MUCs."),
    ("local_endpoints", "Current number of local endpoints."),
    (
        "endpoints",
        "Current number of endpoints, local and relayed.",
    ),
    ("total_packets_received", "RTP packets received."),
    ("total_packets_sent", "RTP packets sent."),
    ("total_bytes_received", "RTP bytes received."),
    ("total_bytes_sent", "RTP bytes sent."),
    (
        "preemptive_kfr_suppressed",
        "Preemptive keyframe requests not sent.",
    ),
    ("preemptive_kfr_sent", "Preemptive keyframe requests sent."),
    (
        "total_keyframes_received",
        "Keyframes received (updated when endpoints expire).",
    ),
    (
        "total_layering_changes_received",
        "Layering changes of incoming video streams.",
    ),
    (
        "total_dominant_speaker_changes",
        "Dominant speaker changes.",
    ),
    (
        "endpoints_with_spurious_remb",
        "Endpoints that sent REMB although it was not configured.",
    ),
    (
        "receive_only_endpoints",
        "Endpoints that receive but send neither audio nor video.",
    ),
    ("total_visitors", "Visitors since the bridge started."),
    ("visitors", "Current number of visitor endpoints."),
    (
        "num_eps_oversending",
        "Endpoints the bridge is oversending to.",
    ),
    (
        "num_eps_no_msg_transport_after_delay",
        "Endpoints without a message transport after a delay.",
    ),
    (
        "num_relays_no_msg_transport_after_delay",
        "Relays without a message transport after a delay.",
    ),
    ("outgoing_loss", "Fraction of outgoing RTP packets lost."),
    ("incoming_loss", "Fraction of incoming RTP packets lost."),
    (
        "overall_loss",
        "Fraction of RTP packets lost, both directions.",
    ),
    ("total_relays", "Relays created."),
    (
        "endpoints_with_high_outgoing_loss",
        "Endpoints with more than 10% outgoing loss.",
    ),
    (
        "drain",
        "1 when the bridge is draining (avoids new conferences).",
    ),
    (
        "total_video_stream_milliseconds_received",
        "Duration of video received, in milliseconds, per SSRC.",
    ),
    ("shutting_down", "1 when the bridge is shutting down."),
    (
        "graceful_shutdown",
        "1 when the bridge is in graceful shutdown.",
    ),
    (
        "average_participant_stress",
        "Average participant stress reported by the bridge.",
    ),
    (
        "endpoints_reconnected",
        "Endpoints that reconnected after being inactive.",
    ),
    (
        "endpoints_disconnected",
        "Endpoints detected as temporarily disconnected.",
    ),
    (
        "dtls_failed_endpoints",
        "Endpoints that failed to establish DTLS.",
    ),
    ("healthy", "1 when the bridge reports itself healthy."),
    (
        "conference_sizes",
        "Conferences by number of participants (the label is the size).",
    ),
];

/// The metric name for a top-level key, systemli's way.
pub fn metric_name(key: &str) -> String {
    if key.starts_with(UNPREFIXED) {
        sanitize_name(key)
    } else {
        sanitize_name(&format!("jitsi_{key}"))
    }
}

/// HELP texts by key, built once (not a linear scan per key per scrape).
fn help_table() -> &'static HashMap<&'static str, &'static str> {
    static TABLE: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    TABLE.get_or_init(|| HELP.iter().copied().collect())
}

fn help_for(key: &str) -> String {
    match help_table().get(key) {
        Some(h) => (*h).to_owned(),
        None => format!("Value of {key:?} in the videobridge's /colibri/stats."),
    }
}

/// Maps a parsed `/colibri/stats` document into `out`. Fails only when the
/// document is not a JSON object.
pub fn collect(doc: &Json, out: &mut MetricSet) -> Result<(), String> {
    let Json::Obj(entries) = doc else {
        return Err(format!(
            "videobridge stats: expected a JSON object, got {}",
            doc.kind()
        ));
    };
    let mut seen = std::collections::HashSet::with_capacity(entries.len());
    for (key, value) in entries {
        if !seen.insert(key.as_str()) {
            tracing::debug!(key = %key, "videobridge stats: duplicate key, keeping the first");
            continue;
        }
        collect_key(key, value, out);
    }
    Ok(())
}

fn collect_key(key: &str, value: &Json, out: &mut MetricSet) {
    match value {
        Json::Str(s) if INFO_KEYS.contains(&key) => {
            let name = metric_name(&format!("{key}_info"));
            let help = format!("Videobridge {key}, as a label.");
            out.family(&name, &help, MetricType::Gauge)
                .add(&[(key, s)], 1.0);
        }
        _ => {
            let kind = if COUNTERS.contains(&key) {
                MetricType::Counter
            } else {
                MetricType::Gauge
            };
            let base = metric_name(key);
            let help = help_for(key);
            let generic = || format!("Part of {key:?} in the videobridge's /colibri/stats.");
            let array_label = |_: &str| -> &'static str {
                if key == "conference_sizes" {
                    "conference_size"
                } else {
                    "index"
                }
            };
            flatten(&base, &[], value, &array_label, &mut |name, labels, v| {
                let name = sanitize_name(name);
                let help = if name == base {
                    help.clone()
                } else {
                    generic()
                };
                out.family(&name, &help, kind).add_owned(labels.to_vec(), v);
            });
        }
    }
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
    fn plain_keys_get_the_jitsi_prefix_and_are_gauges() {
        let t = render(r#"{"participants": 11, "stress_level": 0.0712}"#);
        assert!(
            t.contains("# TYPE jitsi_participants gauge\njitsi_participants 11\n"),
            "{t}"
        );
        assert!(t.contains("jitsi_stress_level 0.0712\n"), "{t}");
    }

    #[test]
    fn systemli_counters_keep_their_names_without_total() {
        let t = render(
            r#"{"total_conferences_created": 148, "total_conference_seconds": 412345, "total_participants": 1021}"#,
        );
        assert!(t.contains("# TYPE jitsi_total_conferences_created counter\njitsi_total_conferences_created 148\n"), "{t}");
        assert!(
            t.contains("# TYPE jitsi_total_conference_seconds counter\n"),
            "{t}"
        );
        // systemli types total_participants as a gauge.
        assert!(t.contains("# TYPE jitsi_total_participants gauge\n"), "{t}");
        assert!(!t.contains("_total "), "{t}");
    }

    #[test]
    fn every_systemli_counter_is_a_counter() {
        let doc = format!(
            "{{{}}}",
            COUNTERS
                .iter()
                .map(|k| format!("\"{k}\": 1"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let t = render(&doc);
        for k in COUNTERS {
            assert!(
                t.contains(&format!("# TYPE jitsi_{k} counter\n")),
                "{k}: {t}"
            );
        }
    }

    #[test]
    fn total_ice_keys_have_no_prefix() {
        let t = render(
            r#"{"total_ice_failed": 4, "total_ice_succeeded": 1017, "total_ice_succeeded_relayed": 58, "total_ice_succeeded_tcp": 2}"#,
        );
        for line in [
            "total_ice_failed 4",
            "total_ice_succeeded 1017",
            "total_ice_succeeded_relayed 58",
            "total_ice_succeeded_tcp 2",
        ] {
            assert!(t.contains(&format!("\n{line}\n")), "{line}: {t}");
        }
        assert!(t.contains("# TYPE total_ice_failed gauge\n"), "{t}");
        assert!(!t.contains("jitsi_total_ice"), "{t}");
    }

    #[test]
    fn booleans_are_zero_or_one() {
        let t = render(
            r#"{"healthy": true, "drain": false, "graceful_shutdown": false, "shutting_down": true}"#,
        );
        assert!(t.contains("jitsi_healthy 1\n"), "{t}");
        assert!(t.contains("jitsi_drain 0\n"), "{t}");
        assert!(t.contains("jitsi_graceful_shutdown 0\n"), "{t}");
        assert!(t.contains("jitsi_shutting_down 1\n"), "{t}");
    }

    #[test]
    fn version_region_relay_id_are_info_metrics() {
        let t = render(
            r#"{"version": "2.3.254-g1a2b3c4d", "region": "eu-central-1", "relay_id": "jvb-0", "current_timestamp": "2026-08-20 09:15:02.481"}"#,
        );
        assert!(t.contains("# TYPE jitsi_version_info gauge\njitsi_version_info{version=\"2.3.254-g1a2b3c4d\"} 1\n"), "{t}");
        assert!(
            t.contains("jitsi_region_info{region=\"eu-central-1\"} 1\n"),
            "{t}"
        );
        assert!(
            t.contains("jitsi_relay_id_info{relay_id=\"jvb-0\"} 1\n"),
            "{t}"
        );
        assert!(!t.contains("current_timestamp"), "{t}");
    }

    #[test]
    fn conference_sizes_array_is_labelled_by_index() {
        let t = render(r#"{"conference_sizes": [0, 1, 0, 2]}"#);
        assert!(t.contains("# TYPE jitsi_conference_sizes gauge\n"), "{t}");
        assert!(
            t.contains("jitsi_conference_sizes{conference_size=\"1\"} 1\n"),
            "{t}"
        );
        assert!(
            t.contains("jitsi_conference_sizes{conference_size=\"3\"} 2\n"),
            "{t}"
        );
        assert_eq!(t.matches("jitsi_conference_sizes{").count(), 4, "{t}");
    }

    #[test]
    fn endpoints_sending_video_uses_the_sample_name() {
        // systemli's template declares jitsi_endpoint_sending_video but
        // writes jitsi_endpoints_sending_video: the sample name is kept.
        let t = render(r#"{"endpoints_sending_video": 6}"#);
        assert!(
            t.contains(
                "# TYPE jitsi_endpoints_sending_video gauge\njitsi_endpoints_sending_video 6\n"
            ),
            "{t}"
        );
    }

    #[test]
    fn unknown_numeric_keys_are_exported_too() {
        let t = render(r#"{"some_new_key_2030": 7}"#);
        assert!(
            t.contains("# TYPE jitsi_some_new_key_2030 gauge\njitsi_some_new_key_2030 7\n"),
            "{t}"
        );
    }

    #[test]
    fn hostile_values_are_skipped_and_names_sanitised() {
        let t = render(
            r#"{"threads": "87", "nul": null, "nan": "NaN", "big": 18446744073709551616, "huge": 1e400,
                "conferences": 1, "conferences": 2, "größe": 3, "dash-key": 4, "obj": {"a": 1, "b": {"c": true}},
                "conference_sizes": [1, "x", null, [2], {"k": 3}]}"#,
        );
        assert!(!t.contains("jitsi_threads"), "{t}");
        assert!(!t.contains("jitsi_nul"), "{t}");
        assert!(!t.contains("jitsi_nan "), "{t}");
        assert!(!t.contains("jitsi_huge"), "{t}");
        assert!(t.contains("jitsi_big 1.8446744073709552e+19\n"), "{t}");
        assert!(
            t.contains("jitsi_conferences 1\n") && !t.contains("jitsi_conferences 2"),
            "{t}"
        );
        assert!(t.contains("jitsi_gr__e 3\n"), "{t}");
        assert!(t.contains("jitsi_dash_key 4\n"), "{t}");
        assert!(
            t.contains("jitsi_obj_a 1\n") && t.contains("jitsi_obj_b_c 1\n"),
            "{t}"
        );
        assert!(
            t.contains("jitsi_conference_sizes{conference_size=\"0\"} 1\n"),
            "{t}"
        );
        assert!(
            t.contains("jitsi_conference_sizes_k{conference_size=\"4\"} 3\n"),
            "{t}"
        );
        assert_eq!(t.matches("jitsi_conference_sizes{").count(), 1, "{t}");
    }

    #[test]
    fn colliding_names_give_one_series() {
        let t = render(r#"{"a-b": 1, "a_b": 2, "total_ice_x": 1, "a_b_info": 5}"#);
        assert_eq!(t.matches("\njitsi_a_b ").count(), 1, "{t}");
        assert!(t.contains("jitsi_a_b 1\n"), "{t}");
    }

    #[test]
    fn non_object_documents_fail() {
        let mut set = MetricSet::new();
        assert!(collect(&Json::Arr(vec![]), &mut set).is_err());
        assert!(collect(&Json::Num(1.0), &mut set).is_err());
    }
}
