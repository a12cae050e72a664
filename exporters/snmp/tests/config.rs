//! snmp.yml loading: the upstream 0.21 file, the 0.23+ layout, strictness.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use vigie_snmp_exporter::config::{load_config, parse_config, Format};
use vigie_snmp_exporter::module::{MetricKind, PrivProtocol, SecurityLevel};

fn parse(text: &str) -> Result<vigie_snmp_exporter::module::Config, String> {
    parse_config(Path::new("snmp.yml"), text).map_err(|e| e.to_string())
}

#[test]
fn upstream_0_21_file_loads() {
    let cfg = load_config(&support::fixture("snmp_exporter-0.21.0-snmp.yml")).unwrap();
    assert_eq!(cfg.format, Some(Format::Flat));
    assert_eq!(cfg.modules.len(), 22);
    let m = &cfg.modules["if_mib"];
    assert_eq!(m.walk.len(), 2);
    assert_eq!(m.params.max_repetitions, 25);
    assert_eq!(m.params.retries, 3);
    assert_eq!(m.params.timeout.as_secs(), 5);
    assert_eq!(m.auth.as_ref().unwrap().version, 2);
    assert_eq!(cfg.modules["apcups"].auth.as_ref().unwrap().version, 1);
    assert_eq!(
        cfg.modules["raritan"].auth.as_ref().unwrap().community,
        b"raritan_public"
    );
    // Every metric type of the file compiled, regex_extracts included.
    let kinds: std::collections::BTreeSet<String> = cfg
        .modules
        .values()
        .flat_map(|m| m.metrics.iter().map(|x| format!("{:?}", x.kind)))
        .collect();
    for k in [
        "Counter",
        "Gauge",
        "EnumAsInfo",
        "EnumAsStateSet",
        "Bits",
        "Float",
        "DateAndTime",
        "String",
    ] {
        assert!(kinds.contains(k), "{k}: {kinds:?}");
    }
    assert!(cfg.modules.values().any(|m| m
        .metrics
        .iter()
        .any(|x| !x.regex_extracts.is_empty() && x.kind == MetricKind::String)));
    load_config(&support::fixture("pfsense_pf_module_v021.yml")).unwrap();
    let shipped = load_config(&support::shipped_config()).unwrap();
    assert_eq!(shipped.format, Some(Format::Split));
    for m in ["system", "if_mib", "host_resources", "ucd", "pfsense"] {
        assert!(shipped.modules.contains_key(m), "{m}");
    }
}

#[test]
fn split_layout_with_auths() {
    let cfg = parse(
        "auths:\n  public_v2: {community: public, version: 2}\n  v3:\n    version: 3\n    username: u\n    security_level: authPriv\n    password: p1\n    auth_protocol: SHA256\n    priv_protocol: AES256C\n    priv_password: p2\n    context_name: ctx\nmodules:\n  m:\n    walk: [1.3.6.1.2.1.1]\n    max_repetitions: 10\n    retries: 1\n    timeout: 1.5s\n    use_unconnected_udp_socket: true\n    allow_nonincreasing_oids: true\n",
    )
    .unwrap();
    let a = &cfg.auths["v3"];
    assert_eq!(a.version, 3);
    assert_eq!(a.security_level, SecurityLevel::AuthPriv);
    assert_eq!(a.priv_protocol, PrivProtocol::Aes256C);
    assert_eq!(a.context_name, "ctx");
    let m = &cfg.modules["m"];
    assert_eq!(m.params.timeout.as_millis(), 1500);
    assert!(m.params.allow_nonincreasing_oids && m.params.use_unconnected_udp_socket);
    assert!(m.auth.is_none());
}

#[test]
fn errors_name_the_line_and_the_problem() {
    let e = parse("if_mib:\n  walk: [1.3.6.1.2.1.2]\n  walkz: []\n").unwrap_err();
    assert!(e.starts_with("snmp.yml:3:") && e.contains("walkz"), "{e}");
    let e = parse("modules:\n  m:\n    metrics:\n    - name: x\n      oid: 1.3.6\n      type: gauge\n      colour: red\n").unwrap_err();
    assert!(e.contains(":7:") && e.contains("colour"), "{e}");
    let e =
        parse("m:\n  version: 3\n  auth: {username: u, security_level: authPriv, password: p}\n")
            .unwrap_err();
    assert!(e.contains("priv password is missing"), "{e}");
    let e = parse("m:\n  version: 3\n  auth: {security_level: noAuthNoPriv}\n").unwrap_err();
    assert!(e.contains("auth username is missing"), "{e}");
    let e = parse("m:\n  version: 4\n").unwrap_err();
    assert!(e.contains("SNMP version must be 1, 2 or 3"), "{e}");
    let e = parse("m:\n  auth: {auth_protocol: SHA1024}\n").unwrap_err();
    assert!(e.contains("auth protocol"), "{e}");
    let e = parse("m:\n  metrics:\n  - {name: x, oid: 1.3.6, type: Weird}\n").unwrap_err();
    assert!(e.contains("unknown metric type"), "{e}");
    let e = parse("m:\n  metrics:\n  - {name: x, oid: 1.3.6, type: gauge, regex_extracts: {'': [{regex: '(', value: '$1'}]}}\n").unwrap_err();
    assert!(e.contains("regex"), "{e}");
    let e = parse("m:\n  walk: [1]\n").unwrap_err();
    assert!(e.contains("at least two arcs"), "{e}");
    let e = parse("m:\n  timeout: 5 parsecs\n").unwrap_err();
    assert!(e.contains("snmp.yml:2:"), "{e}");
    let e = parse("modules:\n  m:\n    version: 2\n").unwrap_err();
    assert!(e.contains("belongs in the auth"), "{e}");
    assert!(parse("").unwrap().modules.is_empty());
}

#[test]
fn dynamic_filters_parse_and_compile() {
    let cfg = parse(
        "modules:\n  m:\n    walk: [1.3.6.1.2.1.2.2.1.2, 1.3.6.1.2.1.2.2.1.10]\n    filters:\n    - oid: 1.3.6.1.2.1.2.2.1.8\n      targets: [\"1.3.6.1.2.1.2.2.1.10\", .1.3.6.1.2.1.2.2.1.2]\n      values: [\"1\", \"^(2|5)$\"]\n    - oid: 1.3.6.1.2.1.2.2.1.7\n",
    )
    .unwrap();
    let f = &cfg.modules["m"].filters;
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].oid, [1, 3, 6, 1, 2, 1, 2, 2, 1, 8]);
    assert_eq!(f[0].targets[1], [1, 3, 6, 1, 2, 1, 2, 2, 1, 2]);
    // Unanchored, as Go's regexp.MatchString.
    assert!(f[0].values[0].is_match("10"));
    assert!(f[1].targets.is_empty() && f[1].values.is_empty());
    // /config shows them back.
    assert!(
        cfg.to_yaml().contains("- oid: 1.3.6.1.2.1.2.2.1.8"),
        "{}",
        cfg.to_yaml()
    );
    // 0.21 layout too, and an explicit empty list.
    let cfg = parse("m:\n  walk: [1.3.6.1.2.1.2]\n  filters: []\n").unwrap();
    assert!(cfg.modules["m"].filters.is_empty());
}

#[test]
fn filter_errors_name_the_line_and_the_problem() {
    // The generator.yml layout is explained, at its line.
    let e = parse("modules:\n  m:\n    filters:\n      static:\n      - targets: [ifDescr]\n        indices: [\"2\"]\n")
        .unwrap_err();
    assert!(
        e.starts_with("snmp.yml:4:") && e.contains("generator.yml"),
        "{e}"
    );
    let e = parse(
        "modules:\n  m:\n    filters:\n    - oid: 1.3.6.1.2.1.2.2.1.8\n      value: [\"1\"]\n",
    )
    .unwrap_err();
    assert!(e.starts_with("snmp.yml:5:") && e.contains("value"), "{e}");
    let e =
        parse("modules:\n  m:\n    filters:\n    - targets: [1.3.6.1.2.1.2.2.1.2]\n").unwrap_err();
    assert!(e.starts_with("snmp.yml:4:") && e.contains("oid"), "{e}");
    let e = parse("modules:\n  m:\n    filters:\n    - oid: ifOperStatus\n").unwrap_err();
    assert!(
        e.contains("module m: filters[0]: oid: invalid OID \"ifOperStatus\""),
        "{e}"
    );
    let e = parse(
        "modules:\n  m:\n    filters:\n    - {oid: 1.3.6.1.2.1.2.2.1.8, targets: [ifDescr]}\n",
    )
    .unwrap_err();
    assert!(
        e.contains("filters[0]: targets: invalid OID \"ifDescr\""),
        "{e}"
    );
    let e =
        parse("modules:\n  m:\n    filters:\n    - {oid: 1.3.6.1.2.1.2.2.1.8, values: [\"(\"]}\n")
            .unwrap_err();
    assert!(e.contains("filters[0]: values: invalid regex \"(\""), "{e}");
    let e = parse("modules:\n  m:\n    filters: 3\n").unwrap_err();
    assert!(
        e.starts_with("snmp.yml:3:") && e.contains("list of dynamic filters"),
        "{e}"
    );
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn several_files_merge_and_duplicates_name_both_files() {
    use vigie_snmp_exporter::config::load_configs;
    let d = tempfile::tempdir().unwrap();
    let a = write(
        d.path(),
        "a.yml",
        "auths:\n  one: {community: c1}\nmodules:\n  m1: {walk: [1.3.6.1.2.1.1]}\n",
    );
    let b = write(
        d.path(),
        "b.yml",
        "auths:\n  two: {community: c2, version: 1}\nmodules:\n  m2: {walk: [1.3.6.1.2.1.2]}\n",
    );
    write(d.path(), "c.yml", "");
    let cfg = load_configs(&[a.clone(), b.clone()]).unwrap();
    assert_eq!(cfg.format, Some(Format::Split));
    let mut names: Vec<_> = cfg.modules.keys().cloned().collect();
    names.sort();
    assert_eq!(names, ["m1", "m2"]);
    assert_eq!(cfg.auths["two"].version, 1);
    assert!(cfg.to_yaml().contains("m1:") && cfg.to_yaml().contains("two:"));
    // A glob: the matches in name order, an empty file fits with any layout.
    let glob = d.path().join("*.yml");
    let cfg = load_configs(std::slice::from_ref(&glob)).unwrap();
    assert_eq!(cfg.modules.len(), 2);
    assert_eq!(cfg.format, Some(Format::Split));

    let dup = write(
        d.path(),
        "dup.yaml",
        "modules:\n  m1: {walk: [1.3.6.1.2.1.3]}\n",
    );
    let e = load_configs(&[a.clone(), dup.clone()])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "{}: module \"m1\" is already defined in {}",
            dup.display(),
            a.display()
        )
    );
    let dup_auth = write(d.path(), "dupauth.yaml", "auths:\n  one: {community: x}\n");
    let e = load_configs(&[glob.clone(), dup_auth.clone()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&dup_auth.display().to_string())
            && e.contains(&format!(
                "auth \"one\" is already defined in {}",
                a.display()
            )),
        "{e}"
    );
    // The same file twice is a duplicate too, as in Go.
    assert!(load_configs(&[a.clone(), a.clone()]).is_err());
    let flat = write(d.path(), "flat.yaml", "m3:\n  walk: [1.3.6.1.2.1.4]\n");
    let e = load_configs(&[a.clone(), flat.clone()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("all config files must use the same layout"),
        "{e}"
    );
    // Errors inside a file still name that file and line.
    let bad = write(d.path(), "bad.yaml", "modules:\n  m9:\n    walkz: []\n");
    let e = load_configs(&[a.clone(), bad.clone()])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&format!("{}:3:", bad.display())), "{e}");
    let e = load_configs(&[d.path().join("none*.yml")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("no config file matches"), "{e}");
}
