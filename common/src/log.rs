//! Logging: `--log.level` and `--log.format` (logfmt or json), one line per
//! event, in the Go exporters' field style (`ts=... level=info msg=...`).

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// `--log.format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Logfmt,
    Json,
}

/// `--log.level` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

impl LogLevel {
    fn as_tracing(self) -> Level {
        match self {
            LogLevel::Debug => Level::DEBUG,
            LogLevel::Info => Level::INFO,
            LogLevel::Warn => Level::WARN,
            LogLevel::Error => Level::ERROR,
        }
    }
}

/// Installs the global subscriber writing to stderr. Calling it twice is harmless.
pub fn init(level: LogLevel, format: LogFormat) {
    let max = level.as_tracing();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(max)
        .with_writer(std::io::stderr)
        .event_format(GoStyle { format })
        .finish();
    let _ = tracing::subscriber::set_global_default(subscriber);
}

struct GoStyle {
    format: LogFormat,
}

impl<S, N> FormatEvent<S, N> for GoStyle
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let ts = now_rfc3339();
        let level = match *meta.level() {
            Level::ERROR => "error",
            Level::WARN => "warn",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "debug",
        };
        let caller = caller(meta.module_path(), meta.line());
        let mut line = String::with_capacity(128);
        match self.format {
            LogFormat::Logfmt => {
                let _ = write!(line, "ts={ts} caller={caller} level={level} msg=");
                logfmt_value(&mut line, &fields.message);
                for (k, v) in &fields.pairs {
                    line.push(' ');
                    line.push_str(k);
                    line.push('=');
                    logfmt_value(&mut line, v);
                }
            }
            LogFormat::Json => {
                line.push('{');
                json_pair(&mut line, "ts", &ts);
                line.push(',');
                json_pair(&mut line, "caller", &caller);
                line.push(',');
                json_pair(&mut line, "level", level);
                line.push(',');
                json_pair(&mut line, "msg", &fields.message);
                for (k, v) in &fields.pairs {
                    line.push(',');
                    json_pair(&mut line, k, v);
                }
                line.push('}');
            }
        }
        writeln!(writer, "{line}")
    }
}

fn caller(module: Option<&str>, line: Option<u32>) -> String {
    let m = module.unwrap_or("?");
    let short = m.rsplit("::").next().unwrap_or(m);
    match line {
        Some(l) => format!("{short}.rs:{l}"),
        None => short.to_owned(),
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.pairs.push((field.name().to_owned(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let v = format!("{value:?}");
        if field.name() == "message" {
            self.message = v;
        } else {
            self.pairs.push((field.name().to_owned(), v));
        }
    }
}

/// Appends a logfmt value, quoted and escaped when it needs to be.
pub fn logfmt_value(out: &mut String, v: &str) {
    let needs_quotes = v.is_empty()
        || v.chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c.is_control());
    if !needs_quotes {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_pair(out: &mut String, k: &str, v: &str) {
    json_string(out, k);
    out.push(':');
    json_string(out, v);
}

fn json_string(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Current UTC time as `2006-01-02T15:04:05.000Z`.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&fmt).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_quotes_when_needed() {
        let mut s = String::new();
        logfmt_value(&mut s, "plain");
        s.push(' ');
        logfmt_value(&mut s, "two words \"q\"\n");
        assert_eq!(s, "plain \"two words \\\"q\\\"\\n\"");
    }

    #[test]
    fn json_escapes() {
        let mut s = String::new();
        json_pair(&mut s, "msg", "a\"b\u{1}");
        assert_eq!(s, "\"msg\":\"a\\\"b\\u0001\"");
    }
}
