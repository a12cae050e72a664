//! The tcp prober: connect, optional TLS, and the query_response dialogue
//! (expect/send/starttls), as blackbox_exporter's.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::time::Instant;

use crate::config::{ip_protocol, TcpProbe};
use crate::probe::Probe;
use crate::resolve::{choose, parse_port, split_host_port};
use crate::tlsutil;

pub const H_REGEX: &str = "Indicates if probe failed due to regex";
const CALLER: &str = "tcp.rs";
/// bufio.Scanner's default token limit.
const MAX_LINE: usize = 64 * 1024;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub async fn probe(probe: &mut Probe, cfg: &TcpProbe, _deadline: Instant) -> bool {
    probe.gauge("probe_failed_due_to_regex", H_REGEX, 0.0);
    let target = probe.target.clone();
    let (host, port) = match split_host_port(&target) {
        Ok(hp) => hp,
        Err(e) => {
            probe.error(
                CALLER,
                "Error splitting target address and port",
                &[("err", &e)],
            );
            probe.error(CALLER, "Error dialing TCP", &[("err", &e)]);
            return probe.fail("resolve", e);
        }
    };
    let port = match parse_port(&port) {
        Ok(p) => p,
        Err(e) => {
            probe.error(CALLER, "Error dialing TCP", &[("err", &e)]);
            return probe.fail("resolve", e);
        }
    };
    let ip = match choose(
        probe,
        CALLER,
        &host,
        ip_protocol(&cfg.preferred_ip_protocol),
        cfg.ip_protocol_fallback,
    )
    .await
    {
        Ok((ip, _)) => ip,
        Err(e) => {
            probe.error(CALLER, "Error dialing TCP", &[("err", &e)]);
            return probe.fail("resolve", e);
        }
    };
    probe.phase = "connect";
    let tls_cfg = cfg.tls_config.as_ref();
    let client = if cfg.tls || cfg.query_response.iter().any(|q| q.starttls) {
        match tlsutil::client(tls_cfg, &[]) {
            Ok(c) => Some(c),
            Err(e) => {
                probe.error(CALLER, "Error creating TLS configuration", &[("err", &e)]);
                return probe.fail("tls", e);
            }
        }
    } else {
        None
    };
    probe.info(
        CALLER,
        if cfg.tls {
            "Dialing TCP with TLS"
        } else {
            "Dialing TCP without TLS"
        },
        &[],
    );
    let tcp = match super::dial(ip, port, cfg.source_ip_address.as_deref()).await {
        Ok(s) => s,
        Err(e) => {
            probe.error(CALLER, "Error dialing TCP", &[("err", &e)]);
            return probe.fail("connect", e);
        }
    };
    let mut stream: Box<dyn Stream> = Box::new(tcp);
    if cfg.tls {
        let Some(c) = &client else {
            return probe.fail("tls", "no TLS client");
        };
        match handshake(probe, c, tls_cfg, &host, stream).await {
            Ok(s) => stream = s,
            Err(e) => return probe.fail("tls", e),
        }
    }
    probe.info(CALLER, "Successfully dialed", &[]);
    // Small buffer: most probes read one banner line; read_line grows as needed.
    let mut reader = BufReader::with_capacity(2048, stream);
    for (i, qr) in cfg.query_response.iter().enumerate() {
        probe.info(
            CALLER,
            "Processing query response entry",
            &[("entry_number", &i)],
        );
        probe.phase = "regex";
        let mut send = qr.send.clone();
        if let Some(re) = &qr.expect {
            let mut matched = false;
            loop {
                match read_line(&mut reader).await {
                    Ok(Some(line)) => {
                        probe.debug(CALLER, "Read line", &[("line", &line)]);
                        if let Some(caps) = re.re.captures(&line) {
                            probe.info(
                                CALLER,
                                "Regexp matched",
                                &[("regexp", &re.source), ("line", &line)],
                            );
                            let mut out = String::new();
                            caps.expand(&qr.send, &mut out);
                            send = out;
                            matched = true;
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        probe.error(CALLER, "Error reading from connection", &[("err", &e)]);
                        return probe.fail("regex", e);
                    }
                }
            }
            if !matched {
                probe.error(
                    CALLER,
                    "Regexp did not match",
                    &[("regexp", &re.source), ("line", &"")],
                );
                probe.gauge("probe_failed_due_to_regex", H_REGEX, 1.0);
                return probe.fail("regex", format!("no line matched {}", re.source));
            }
        }
        if !send.is_empty() {
            probe.debug(CALLER, "Sending line", &[("line", &send)]);
            let w = reader.get_mut();
            let msg = format!("{send}\n");
            if let Err(e) = w.write_all(msg.as_bytes()).await {
                let e = super::go_io_err(&e);
                probe.error(CALLER, "Failed to send", &[("err", &e)]);
                return probe.fail("connect", e);
            }
            let _ = w.flush().await;
        }
        if qr.starttls {
            let Some(c) = &client else {
                return probe.fail("tls", "no TLS client");
            };
            probe.debug(CALLER, "Upgrading TCP connection to TLS", &[]);
            let inner = reader.into_inner();
            match handshake(probe, c, tls_cfg, &host, inner).await {
                Ok(s) => reader = BufReader::with_capacity(2048, s),
                Err(e) => return probe.fail("tls", e),
            }
        }
    }
    true
}

/// TLS handshake on `stream`, exporting the certificate metrics (also when
/// verification fails).
async fn handshake(
    probe: &mut Probe,
    client: &tlsutil::Client,
    tls_cfg: Option<&crate::config::TlsConfig>,
    host: &str,
    stream: Box<dyn Stream>,
) -> Result<Box<dyn Stream>, String> {
    probe.phase = "tls";
    let name = tlsutil::server_name(tls_cfg, host)?;
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::clone(&client.config));
    match connector.connect(name.clone(), stream).await {
        Ok(s) => {
            let version = s.get_ref().1.protocol_version();
            if let Ok(c) = client.verifier.captured.lock() {
                tlsutil::record(probe, &c, version, &client.verifier.roots, true);
            }
            Ok(Box::new(s))
        }
        Err(e) => {
            if let Ok(c) = client.verifier.captured.lock() {
                tlsutil::record(probe, &c, None, &client.verifier.roots, false);
            }
            let msg = tlsutil::describe_error(&e, &name.to_str());
            probe.error(CALLER, "TLS Handshake (client) failed", &[("err", &msg)]);
            Err(msg)
        }
    }
}

/// One line as bufio.Scanner splits it: up to `\n`, `\r` stripped, at most
/// 64 KiB. `None` at end of stream.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Option<String>, String> {
    let mut buf = Vec::new();
    loop {
        let chunk = r.fill_buf().await.map_err(|e| super::go_io_err(&e))?;
        if chunk.is_empty() {
            if buf.is_empty() {
                return Ok(None);
            }
            break;
        }
        if let Some(pos) = chunk.iter().position(|b| *b == b'\n') {
            buf.extend_from_slice(&chunk[..pos]);
            r.consume(pos + 1);
            break;
        }
        let n = chunk.len();
        buf.extend_from_slice(chunk);
        r.consume(n);
        if buf.len() > MAX_LINE {
            return Err("bufio.Scanner: token too long".to_owned());
        }
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}
