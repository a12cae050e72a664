#!/usr/bin/env python3
"""Writes the Vigie Grafana dashboards (dashboards/*.json) from the panel
lists below, so the four dashboards share one layout and one set of
variables. Run after editing:  python3 config/grafana/generate.py

`--out DIR` writes elsewhere (the e2e crate's test checks that the committed
JSON is what this script writes).

Every query uses only metrics the Vigie exporters export (the Go exporters'
names). Template variables: $datasource, $job, $instance (multi-value, "All"
is ".*"); Grafana's $__rate_interval and $__range. The end-to-end test
(e2e/tests/e2e.rs) runs every expression against a real Prometheus.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job",instance=~"$instance"'
FS = 'fstype!~"tmpfs|ramfs|squashfs|overlay|nsfs|fuse.*"'


def datasource_var():
    return {
        "name": "datasource", "label": "Data source", "type": "datasource",
        "query": "prometheus", "refresh": 1, "hide": 0, "current": {},
    }


def query_var(name, label, query, multi=True):
    return {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "definition": query, "refresh": 2, "sort": 1,
        "includeAll": multi, "multi": multi, "allValue": ".*" if multi else None,
        "current": {}, "hide": 0,
    }


def panel(kind, title, targets, unit=None, w=12, h=8, desc=None, extra=None):
    p = {
        "type": kind, "title": title, "datasource": DS,
        "gridPos": {"w": w, "h": h},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DS, "expr": e, "legendFormat": l,
             **({"instant": True, "format": "table"} if kind == "table" else {})}
            for i, (e, l) in enumerate(targets)
        ],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {},
    }
    if unit:
        p["fieldConfig"]["defaults"]["unit"] = unit
    if desc:
        p["description"] = desc
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "none", "textMode": "auto"}
    if extra:
        for k, v in extra.items():
            p[k] = v
    return p


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "gridPos": {"w": 24, "h": 1}, "panels": []}


def layout(panels):
    """Left to right, top to bottom on Grafana's 24-column grid."""
    x = y = line_h = 0
    for i, p in enumerate(panels):
        p["id"] = i + 1
        g = p["gridPos"]
        if x + g["w"] > 24 or p["type"] == "row":
            x, y = 0, y + line_h
            line_h = 0
        g["x"], g["y"] = x, y
        x += g["w"]
        line_h = max(line_h, g["h"])
        if p["type"] == "row":
            x, y, line_h = 0, y + 1, 0
    return panels


def dashboard(uid, title, desc, variables, panels, tags):
    return {
        "uid": uid, "title": title, "description": desc,
        "tags": ["vigie"] + tags, "editable": True, "schemaVersion": 38, "version": 1,
        "time": {"from": "now-6h", "to": "now"}, "refresh": "30s", "timezone": "",
        "graphTooltip": 1,
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["vigie"], "title": "Vigie", "asDropdown": True}],
        "templating": {"list": [datasource_var()] + variables},
        "panels": layout(panels),
    }


def host():
    s = SEL
    return dashboard(
        "vigie-host", "Vigie / Host",
        "Machine metrics from vigie-node-exporter (node_exporter names).",
        [query_var("job", "Job", "label_values(node_uname_info, job)"),
         query_var("instance", "Instance", 'label_values(node_uname_info{job=~"$job"}, instance)')],
        [
            row("Overview"),
            panel("stat", "Uptime", [(f"node_time_seconds{{{s}}} - node_boot_time_seconds{{{s}}}", "{{instance}}")], "s", w=6, h=4),
            panel("stat", "CPU cores", [(f'count by (instance) (node_cpu_seconds_total{{{s},mode="idle"}})', "{{instance}}")], "none", w=6, h=4),
            panel("stat", "Memory", [(f"node_memory_MemTotal_bytes{{{s}}}", "{{instance}}")], "bytes", w=6, h=4),
            panel("stat", "Kernel", [(f"node_uname_info{{{s}}}", "{{release}}")], "none", w=6, h=4,
                  extra={"options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/^release$/", "values": False}, "textMode": "value"}}),
            row("CPU and load"),
            panel("timeseries", "CPU busy", [(f'1 - avg by (instance) (rate(node_cpu_seconds_total{{{s},mode="idle"}}[$__rate_interval]))', "{{instance}}")], "percentunit"),
            panel("timeseries", "CPU by mode", [(f'sum by (instance, mode) (rate(node_cpu_seconds_total{{{s},mode!="idle"}}[$__rate_interval]))', "{{instance}} {{mode}}")], "short"),
            panel("timeseries", "Load average", [(f"node_load1{{{s}}}", "{{instance}} 1m"), (f"node_load5{{{s}}}", "{{instance}} 5m"), (f"node_load15{{{s}}}", "{{instance}} 15m")], "short"),
            panel("timeseries", "Pressure (PSI): share of time some task waited", [
                (f"rate(node_pressure_cpu_waiting_seconds_total{{{s}}}[$__rate_interval])", "{{instance}} cpu"),
                (f"rate(node_pressure_memory_waiting_seconds_total{{{s}}}[$__rate_interval])", "{{instance}} memory"),
                (f"rate(node_pressure_io_waiting_seconds_total{{{s}}}[$__rate_interval])", "{{instance}} io")], "percentunit"),
            row("Memory"),
            panel("timeseries", "Memory used and available", [
                (f"node_memory_MemTotal_bytes{{{s}}} - node_memory_MemAvailable_bytes{{{s}}}", "{{instance}} used"),
                (f"node_memory_MemAvailable_bytes{{{s}}}", "{{instance}} available")], "bytes"),
            panel("timeseries", "Swap in/out and major page faults", [
                (f"rate(node_vmstat_pswpin{{{s}}}[$__rate_interval])", "{{instance}} swap in"),
                (f"rate(node_vmstat_pswpout{{{s}}}[$__rate_interval])", "{{instance}} swap out"),
                (f"rate(node_vmstat_pgmajfault{{{s}}}[$__rate_interval])", "{{instance}} major faults")], "ops"),
            row("Disks and filesystems"),
            panel("timeseries", "Filesystem used", [(f"1 - node_filesystem_avail_bytes{{{s},{FS}}} / node_filesystem_size_bytes{{{s},{FS}}}", "{{instance}} {{mountpoint}}")], "percentunit"),
            panel("timeseries", "Disk throughput", [
                (f"rate(node_disk_read_bytes_total{{{s}}}[$__rate_interval])", "{{instance}} {{device}} read"),
                (f"rate(node_disk_written_bytes_total{{{s}}}[$__rate_interval])", "{{instance}} {{device}} written")], "Bps"),
            panel("timeseries", "Disk busy", [(f"rate(node_disk_io_time_seconds_total{{{s}}}[$__rate_interval])", "{{instance}} {{device}}")], "percentunit"),
            panel("timeseries", "Inodes used", [(f"1 - node_filesystem_files_free{{{s},{FS}}} / node_filesystem_files{{{s},{FS}}}", "{{instance}} {{mountpoint}}")], "percentunit"),
            row("Network"),
            panel("timeseries", "Network traffic", [
                (f'rate(node_network_receive_bytes_total{{{s},device!="lo"}}[$__rate_interval]) * 8', "{{instance}} {{device}} in"),
                (f'rate(node_network_transmit_bytes_total{{{s},device!="lo"}}[$__rate_interval]) * 8', "{{instance}} {{device}} out")], "bps"),
            panel("timeseries", "Network errors and drops", [
                (f"rate(node_network_receive_errs_total{{{s}}}[$__rate_interval]) + rate(node_network_receive_drop_total{{{s}}}[$__rate_interval])", "{{instance}} {{device}} in"),
                (f"rate(node_network_transmit_errs_total{{{s}}}[$__rate_interval]) + rate(node_network_transmit_drop_total{{{s}}}[$__rate_interval])", "{{instance}} {{device}} out")], "pps"),
            row("Services (collectors processes and cgroup, off by default)"),
            panel("table", "Processes per service", [(f"namedprocess_namegroup_num_procs{{{s}}}", "")], "none",
                  desc="process-exporter names; needs --collector.processes. A group stays with 0 when its last process exits."),
            panel("timeseries", "Service CPU", [(f"sum by (instance, groupname) (rate(namedprocess_namegroup_cpu_seconds_total{{{s}}}[$__rate_interval]))", "{{instance}} {{groupname}}")], "short"),
            panel("timeseries", "Service memory (resident)", [(f'namedprocess_namegroup_memory_bytes{{{s},memtype="resident"}}', "{{instance}} {{groupname}}")], "bytes"),
            panel("timeseries", "Service uptime", [(f"time() - (namedprocess_namegroup_oldest_start_time_seconds{{{s}}} > 0)", "{{instance}} {{groupname}}")], "s"),
            panel("timeseries", "Worst file descriptor use", [(f"namedprocess_namegroup_worst_fd_ratio{{{s}}}", "{{instance}} {{groupname}}")], "percentunit"),
            panel("timeseries", "Threads", [(f"namedprocess_namegroup_num_threads{{{s}}}", "{{instance}} {{groupname}}")], "short"),
            panel("timeseries", "Unit / container CPU (cgroup)", [(f"rate(container_cpu_usage_seconds_total{{{s}}}[$__rate_interval])", "{{instance}} {{id}}")], "short",
                  desc="cAdvisor names; needs --collector.cgroup."),
            panel("timeseries", "Unit / container memory (working set)", [(f"container_memory_working_set_bytes{{{s}}}", "{{instance}} {{id}}")], "bytes"),
            row("Exporter"),
            panel("timeseries", "Collector duration", [(f"node_scrape_collector_duration_seconds{{{s}}}", "{{instance}} {{collector}}")], "s"),
            panel("table", "Collector success", [(f"node_scrape_collector_success{{{s}}}", "")], "none"),
        ],
        ["node"],
    )


def probes():
    s = SEL
    return dashboard(
        "vigie-probes", "Vigie / Probes and availability",
        "Blackbox probes (vigie-blackbox-exporter) and availability against the 98 % target.",
        [query_var("job", "Job", "label_values(probe_success, job)"),
         query_var("instance", "Target", 'label_values(probe_success{job=~"$job"}, instance)')],
        [
            row("Availability (target: 98 % over 30 days)"),
            panel("table", "Availability", [
                (f"instance:probe_success:avg_over_time_1h{{{s}}}", "1 h"),
                (f"instance:probe_success:avg_over_time_1d{{{s}}}", "1 day"),
                (f"instance:probe_success:avg_over_time_30d{{{s}}}", "30 days")], "percentunit", w=12, h=8,
                desc="From the recording rules in config/prometheus/rules/recording.yml."),
            panel("stat", "Availability over the dashboard's range", [(f"avg_over_time(probe_success{{{s}}}[$__range])", "{{instance}}")], "percentunit", w=12, h=8,
                  extra={"fieldConfig": {"defaults": {"unit": "percentunit", "decimals": 2, "thresholds": {"mode": "absolute", "steps": [
                      {"color": "red", "value": None}, {"color": "orange", "value": 0.98}, {"color": "green", "value": 0.995}]}}, "overrides": []}}),
            panel("timeseries", "Probe success", [(f"probe_success{{{s}}}", "{{instance}}")], "none", w=24),
            row("Timing"),
            panel("timeseries", "Probe duration", [(f"probe_duration_seconds{{{s}}}", "{{instance}}")], "s"),
            panel("timeseries", "HTTP phases", [(f"sum by (instance, phase) (probe_http_duration_seconds{{{s}}})", "{{instance}} {{phase}}")], "s"),
            panel("timeseries", "ICMP round trip", [(f'probe_icmp_duration_seconds{{{s},phase="rtt"}}', "{{instance}}")], "s"),
            panel("timeseries", "DNS lookup", [(f"probe_dns_lookup_time_seconds{{{s}}}", "{{instance}}")], "s"),
            row("HTTP and TLS"),
            panel("table", "HTTP status", [(f"probe_http_status_code{{{s}}}", "")], "none"),
            panel("table", "Days until the earliest certificate expires", [(f"(probe_ssl_earliest_cert_expiry{{{s}}} - time()) / 86400", "")], "d"),
            row("Exporter"),
            panel("stat", "Prober up", [('up{job=~"blackbox.*"}', "{{job}} {{instance}}")], "none", w=24, h=4),
        ],
        ["blackbox"],
    )


def pfsense():
    s = SEL
    return dashboard(
        "vigie-pfsense", "Vigie / pfSense",
        "pfSense firewall over SNMP (vigie-snmp-exporter, module pfsense: BEGEMOT-PF-MIB and IF-MIB).",
        [query_var("job", "Job", "label_values(pfStatusRunning, job)"),
         query_var("instance", "Firewall", 'label_values(pfStatusRunning{job=~"$job"}, instance)')],
        [
            row("pf"),
            panel("stat", "pf enabled", [(f"pfStatusRunning{{{s}}}", "{{instance}}")], "none", w=6, h=4),
            panel("stat", "pf running for", [(f"pfStatusRuntime{{{s}}} / 100", "{{instance}}")], "s", w=6, h=4),
            panel("stat", "State table use", [(f"pfStateTableCount{{{s}}} / pfLimitsStates{{{s}}}", "{{instance}}")], "percentunit", w=6, h=4),
            panel("stat", "Source nodes", [(f"pfSrcNodesCount{{{s}}}", "{{instance}}")], "none", w=6, h=4),
            panel("timeseries", "States and limit", [(f"pfStateTableCount{{{s}}}", "{{instance}} states"), (f"pfLimitsStates{{{s}}}", "{{instance}} limit")], "short"),
            panel("timeseries", "State inserts and removals", [
                (f"rate(pfStateTableInserts{{{s}}}[$__rate_interval])", "{{instance}} inserts"),
                (f"rate(pfStateTableRemovals{{{s}}}[$__rate_interval])", "{{instance}} removals")], "ops"),
            panel("timeseries", "Rule matches and drops", [
                (f"rate(pfCounterMatch{{{s}}}[$__rate_interval])", "{{instance}} match"),
                (f"rate(pfCounterMemDrop{{{s}}}[$__rate_interval])", "{{instance}} memory drop"),
                (f"rate(pfCounterBadOffset{{{s}}}[$__rate_interval]) + rate(pfCounterFragment{{{s}}}[$__rate_interval]) + rate(pfCounterShort{{{s}}}[$__rate_interval])", "{{instance}} malformed")], "pps"),
            panel("timeseries", "pf traffic per interface (IPv4, passed)", [
                (f"rate(pfInterfacesIf4BytesInPass{{{s}}}[$__rate_interval]) * 8", "{{instance}} {{pfInterfacesIfDescr}} in"),
                (f"rate(pfInterfacesIf4BytesOutPass{{{s}}}[$__rate_interval]) * 8", "{{instance}} {{pfInterfacesIfDescr}} out")], "bps"),
            panel("timeseries", "pf traffic per interface (IPv4, blocked)", [
                (f"rate(pfInterfacesIf4BytesInBlock{{{s}}}[$__rate_interval]) * 8", "{{instance}} {{pfInterfacesIfDescr}} in"),
                (f"rate(pfInterfacesIf4BytesOutBlock{{{s}}}[$__rate_interval]) * 8", "{{instance}} {{pfInterfacesIfDescr}} out")], "bps"),
            row("Interfaces (IF-MIB)"),
            panel("timeseries", "Interface traffic", [
                (f"rate(ifHCInOctets{{{s}}}[$__rate_interval]) * 8", "{{instance}} {{ifName}} in"),
                (f"rate(ifHCOutOctets{{{s}}}[$__rate_interval]) * 8", "{{instance}} {{ifName}} out")], "bps"),
            panel("table", "Interface status (1 = up)", [(f"ifOperStatus{{{s}}}", "")], "none"),
            row("Exporter"),
            panel("timeseries", "SNMP walk duration", [(f"snmp_scrape_duration_seconds{{{s}}}", "{{instance}}")], "s"),
            panel("timeseries", "PDUs returned", [(f"snmp_scrape_pdus_returned{{{s}}}", "{{instance}}")], "short"),
        ],
        ["snmp", "pfsense"],
    )


def jitsi():
    s = SEL
    return dashboard(
        "vigie-jitsi", "Vigie / Jitsi Meet",
        "Jitsi Videobridge, Jicofo and Prosody (vigie-jitsi-exporter; videobridge names as systemli's exporter).",
        [query_var("job", "Job", "label_values(jitsi_up, job)"),
         query_var("instance", "Instance", 'label_values(jitsi_up{job=~"$job"}, instance)')],
        [
            row("Upstreams"),
            panel("stat", "Upstream up", [(f"jitsi_up{{{s}}}", "{{upstream}}")], "none", w=24, h=4),
            row("Videobridge"),
            panel("stat", "Conferences", [(f"jitsi_conferences{{{s}}}", "{{instance}}")], "none", w=6, h=4),
            panel("stat", "Participants", [(f"jitsi_participants{{{s}}}", "{{instance}}")], "none", w=6, h=4),
            panel("stat", "Largest conference", [(f"jitsi_largest_conference{{{s}}}", "{{instance}}")], "none", w=6, h=4),
            panel("stat", "Stress level", [(f"jitsi_stress_level{{{s}}}", "{{instance}}")], "percentunit", w=6, h=4),
            panel("timeseries", "Conferences and participants", [
                (f"jitsi_conferences{{{s}}}", "{{instance}} conferences"),
                (f"jitsi_participants{{{s}}}", "{{instance}} participants")], "short"),
            panel("timeseries", "Bitrate", [
                (f"jitsi_bit_rate_download{{{s}}} * 1000", "{{instance}} download"),
                (f"jitsi_bit_rate_upload{{{s}}} * 1000", "{{instance}} upload")], "bps"),
            panel("timeseries", "Packet rate", [
                (f"jitsi_packet_rate_download{{{s}}}", "{{instance}} download"),
                (f"jitsi_packet_rate_upload{{{s}}}", "{{instance}} upload")], "pps"),
            panel("timeseries", "Conference sizes", [
                (f'{{__name__=~"jicofo_conference_sizes_buckets_.*",{s}}}', "{{__name__}}"),
                (f"jitsi_conference_sizes{{{s}}}", "{{conference_size}} participants")], "short",
                desc="Current Jicofo reports size buckets; older videobridges report jitsi_conference_sizes."),
            panel("timeseries", "Packet loss", [
                (f"jitsi_incoming_loss{{{s}}}", "{{instance}} incoming"),
                (f"jitsi_outgoing_loss{{{s}}}", "{{instance}} outgoing")], "percentunit"),
            panel("timeseries", "Conferences created per hour", [(f"increase(jitsi_total_conferences_created{{{s}}}[1h])", "{{instance}}")], "short"),
            row("Jicofo"),
            panel("timeseries", "Jicofo conferences and participants", [
                (f"jicofo_conferences{{{s}}}", "{{instance}} conferences"),
                (f"jicofo_participants{{{s}}}", "{{instance}} participants")], "short"),
            panel("timeseries", "Bridges known to Jicofo", [(f"jicofo_bridge_selector_bridge_count{{{s}}}", "{{instance}}")], "short"),
            row("Prosody"),
            panel("timeseries", "XMPP client connections", [(f"sum by (instance, host) (prosody_mod_c2s__connections{{{s}}})", "{{instance}} {{host}}")], "short"),
            panel("timeseries", "Live MUC rooms", [(f"prosody_mod_muc__live_room{{{s}}}", "{{instance}} {{host}}")], "short"),
        ],
        ["jitsi"],
    )


def main():
    out = os.path.join(HERE, "dashboards")
    if len(sys.argv) == 3 and sys.argv[1] == "--out":
        out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for name, fn in (("host", host), ("probes", probes), ("pfsense", pfsense), ("jitsi", jitsi)):
        with open(os.path.join(out, f"{name}.json"), "w") as f:
            json.dump(fn(), f, indent=2, sort_keys=False)
            f.write("\n")


if __name__ == "__main__":
    main()
