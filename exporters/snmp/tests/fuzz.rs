//! Fuzz-style tests: thousands of randomly mutated SNMP packets through the
//! decoding path (snmp2's parser, then our OID decoding and conversion), and
//! mutated config files through the loader. Nothing may panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::path::Path;

use support::fake::{self, Val};
use vigie_snmp_exporter::client::own_pdu;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, packet: &[u8]) -> Vec<u8> {
    let mut p = packet.to_vec();
    for _ in 0..1 + rng.below(4) {
        if p.is_empty() {
            p.push(rng.next() as u8);
            continue;
        }
        let i = rng.below(p.len());
        match rng.below(6) {
            0 => p[i] = rng.next() as u8,
            1 => p[i] ^= 1 << rng.below(8),
            2 => p.truncate(i),
            3 => p.insert(i, rng.next() as u8),
            4 => p[i] = [0x00, 0x7f, 0x80, 0x81, 0x82, 0x84, 0xff][rng.below(7)],
            _ => {
                p.remove(i);
            }
        }
    }
    p
}

fn v2c_packets() -> Vec<Vec<u8>> {
    let vbs = |vals: &[Val]| -> Vec<(Vec<u32>, Vec<u8>)> {
        vals.iter()
            .enumerate()
            .map(|(i, v)| {
                (
                    vec![1, 3, 6, 1, 2, 1, 2, 2, 1, 10, i as u32 + 1],
                    v.encode(),
                )
            })
            .collect()
    };
    vec![
        fake::response(
            b"public",
            42,
            0,
            &vbs(&[
                Val::Int(-5),
                Val::Str(b"eth0".to_vec()),
                Val::Counter64(1 << 63),
            ]),
        ),
        fake::response(
            b"public",
            7,
            0,
            &vbs(&[
                Val::Counter32(9),
                Val::Gauge(3),
                Val::Ticks(100),
                Val::EndOfMib,
            ]),
        ),
        fake::response(b"p", 1, 2, &vbs(&[Val::NoSuchObject])),
        fake::response(
            b"public",
            99,
            0,
            &[(
                vec![1, 3, 16384, 4294967295],
                Val::Str(vec![0; 300]).encode(),
            )],
        ),
    ]
}

/// An SNMPv3 message shaped like an agent's report (noAuthNoPriv).
fn v3_packet() -> Vec<u8> {
    let usm = {
        let mut c = fake::tlv(0x04, &[0x80, 0x00, 0x1f, 0x88, 0x80, 1, 2, 3, 4]);
        c.extend(fake::int(3));
        c.extend(fake::int(12345));
        c.extend(fake::tlv(0x04, b"promuser"));
        c.extend(fake::tlv(0x04, &[0; 12]));
        c.extend(fake::tlv(0x04, &[0; 8]));
        fake::tlv(0x30, &c)
    };
    let mut header = fake::int(5);
    header.extend(fake::int(65507));
    header.extend(fake::tlv(0x04, &[0x03]));
    header.extend(fake::int(3));
    let inner = fake::response(
        b"x",
        5,
        0,
        &[(
            vec![1, 3, 6, 1, 6, 3, 15, 1, 1, 4, 0],
            Val::Counter32(1).encode(),
        )],
    );
    // Take the PDU out of the v2c message and wrap it in a scoped PDU.
    let pdu_start = inner.iter().position(|b| *b == 0xa2).unwrap();
    let mut scoped = fake::tlv(0x04, &[0x80, 0, 0x1f, 0x88]);
    scoped.extend(fake::tlv(0x04, b""));
    scoped.extend_from_slice(&inner[pdu_start..]);
    let mut msg = fake::int(3);
    msg.extend(fake::tlv(0x30, &header));
    msg.extend(fake::tlv(0x04, &usm));
    msg.extend(fake::tlv(0x30, &scoped));
    fake::tlv(0x30, &msg)
}

#[test]
fn mutated_packets_never_panic() {
    let module = {
        let cfg = vigie_snmp_exporter::config::parse_config(
            Path::new("fuzz.yml"),
            &std::fs::read_to_string(support::fixture("snmp_exporter-0.21.0-snmp.yml")).unwrap(),
        )
        .unwrap();
        cfg.modules["if_mib"].clone()
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut seeds = v2c_packets();
    seeds.push(v3_packet());
    let mut decoded = 0usize;
    for round in 0..40_000 {
        let seed = &seeds[round % seeds.len()];
        let p = if round < seeds.len() {
            seed.clone()
        } else {
            mutate(&mut rng, seed)
        };
        let result = std::panic::catch_unwind(|| {
            let mut sec = snmp2::v3::Security::new(b"promuser", b"authpass123");
            let pdu = if p.get(4) == Some(&3) || p.get(2) == Some(&3) {
                snmp2::Pdu::from_bytes_with_security(&p, Some(&mut sec))
                    .ok()
                    .map(own_pdu)
            } else {
                snmp2::Pdu::from_bytes(&p).ok().map(own_pdu)
            };
            if let Some(Ok(resp)) = pdu {
                let mut set = vigie_common::MetricSet::new();
                let _ =
                    vigie_snmp_exporter::convert::render(&module, &resp.varbinds, true, &mut set);
                let _ = set.encode_text();
                return true;
            }
            false
        });
        match result {
            Ok(true) => decoded += 1,
            Ok(false) => {}
            Err(_) => panic!("panic on packet {round}: {p:02x?}"),
        }
    }
    assert!(decoded > 100, "the seeds should mostly decode ({decoded})");
}

#[test]
fn oid_decoder_handles_any_bytes() {
    let mut rng = Rng(42);
    for _ in 0..100_000 {
        let len = rng.below(12);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if let Some(arcs) = vigie_snmp_exporter::client::decode_oid(&bytes) {
            assert!(arcs.len() >= 2);
        }
    }
}

#[test]
fn mutated_configs_never_panic() {
    let base = std::fs::read_to_string(support::shipped_config()).unwrap();
    // A slice of the shipped file keeps each round fast.
    let base: String = base.lines().take(160).collect::<Vec<_>>().join("\n");
    let mut rng = Rng(7);
    let alphabet = b" :-[]{}#&*!|>'\"\n\t0123456789.abcxyz_";
    let mut ok = 0;
    for _ in 0..1500 {
        let mut b = base.clone().into_bytes();
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(b.len());
            match rng.below(3) {
                0 => b[i] = alphabet[rng.below(alphabet.len())],
                1 => b.insert(i, alphabet[rng.below(alphabet.len())]),
                _ => {
                    b.remove(i);
                }
            }
        }
        let text = String::from_utf8_lossy(&b).into_owned();
        let r = std::panic::catch_unwind(|| {
            vigie_snmp_exporter::config::parse_config(Path::new("f.yml"), &text).is_ok()
        });
        match r {
            Ok(true) => ok += 1,
            Ok(false) => {}
            Err(_) => panic!("config loader panicked on:\n{text}"),
        }
    }
    assert!(ok > 0);
    let _ = HashMap::<u8, u8>::new();
}
