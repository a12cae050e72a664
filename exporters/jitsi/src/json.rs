//! A small, strict, bounded JSON parser for the videobridge and Jicofo
//! documents.
//!
//! Why not serde_json: it refuses a whole document for one number beyond
//! f64's range (`1e400`), keeps only the last of duplicate keys and loses key
//! order. Here objects keep every key in document order (the mappers keep
//! the first of duplicates), numbers out of range parse to ±inf (the mappers
//! skip them), nesting is bounded and any syntax error (a truncated
//! document) fails the whole document.

use std::fmt;

/// Deepest nesting of arrays/objects accepted.
pub const MAX_DEPTH: usize = 64;

/// A parsed JSON value. Objects keep their keys in order, duplicates included.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// A short name of the value's type, for log messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Num(_) => "number",
            Json::Str(_) => "string",
            Json::Arr(_) => "array",
            Json::Obj(_) => "object",
        }
    }
}

/// Why a document did not parse: what and at which byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {offset}: {what}")]
pub struct JsonError {
    pub offset: usize,
    pub what: &'static str,
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

/// Parses one JSON document (whitespace around it allowed, a UTF-8 BOM
/// skipped). Invalid UTF-8 inside strings is replaced, not an error.
pub fn parse(input: &[u8]) -> Result<Json, JsonError> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let mut p = Parser { s: input, i: 0 };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("trailing characters after the document"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &'static str) -> JsonError {
        JsonError {
            offset: self.i,
            what,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, JsonError> {
        match self.peek() {
            None => Err(self.err("unexpected end of document")),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Json::Str),
            Some(b't') => self.literal(b"true", Json::Bool(true)),
            Some(b'f') => self.literal(b"false", Json::Bool(false)),
            Some(b'n') => self.literal(b"null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn literal(&mut self, word: &[u8], v: Json) -> Result<Json, JsonError> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.i += 1; // '{'
        let mut entries = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Json::Obj(entries));
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            let key = self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.i += 1;
            self.ws();
            let v = self.value(depth)?;
            entries.push((key, v));
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Json::Obj(entries));
                }
                None => return Err(self.err("unexpected end of document")),
                Some(_) => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.i += 1; // '['
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Json::Arr(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth)?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Json::Arr(items));
                }
                None => return Err(self.err("unexpected end of document")),
                Some(_) => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    fn number(&mut self) -> Result<Json, JsonError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number"));
            }
            self.digits();
        }
        // The lexeme is ASCII by construction; Rust's parser rounds
        // correctly and gives ±inf beyond f64's range.
        let text =
            std::str::from_utf8(&self.s[start..self.i]).map_err(|_| self.err("invalid number"))?;
        text.parse::<f64>()
            .map(Json::Num)
            .map_err(|_| self.err("invalid number"))
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.i += 1; // opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            match b {
                b'"' => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                b'\\' => {
                    self.i += 1;
                    let Some(e) = self.peek() else {
                        return Err(self.err("unterminated string"));
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'/' => out.push(b'/'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let c = self.unicode_escape()?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                0..=0x1f => return Err(self.err("control character in string")),
                _ => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let Some(h) = self.s.get(self.i..self.i + 4) else {
            return Err(self.err("truncated \\u escape"));
        };
        let text = std::str::from_utf8(h).map_err(|_| self.err("invalid \\u escape"))?;
        let v = u32::from_str_radix(text, 16).map_err(|_| self.err("invalid \\u escape"))?;
        if !h.iter().all(u8::is_ascii_hexdigit) {
            return Err(self.err("invalid \\u escape"));
        }
        self.i += 4;
        Ok(v)
    }

    /// After `\u`: one code point, pairing surrogates; lone ones become U+FFFD.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) && self.s[self.i..].starts_with(b"\\u") {
            let save = self.i;
            self.i += 2;
            let lo = self.hex4()?;
            if (0xDC00..0xE000).contains(&lo) {
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or('\u{FFFD}'));
            }
            self.i = save;
        }
        Ok(char::from_u32(hi).unwrap_or('\u{FFFD}'))
    }
}

/// Receives `(metric name, labels, value)` for each leaf.
pub type Emit<'a> = dyn FnMut(&str, &[(String, String)], f64) + 'a;

/// Calls `emit(name, labels, value)` for every number and boolean (0/1)
/// under `v`, object keys joined to `name` by `_`. Elements of an array of
/// numbers get the label `array_label(name)` = index; arrays inside arrays
/// and values of other types are skipped with a debug log.
pub fn flatten(
    name: &str,
    labels: &[(String, String)],
    v: &Json,
    array_label: &dyn Fn(&str) -> &'static str,
    emit: &mut Emit<'_>,
) {
    match v {
        Json::Num(f) if f.is_finite() => emit(name, labels, *f),
        Json::Num(_) => tracing::debug!(key = name, "skipping a number beyond the range of f64"),
        Json::Bool(b) => emit(name, labels, if *b { 1.0 } else { 0.0 }),
        Json::Obj(entries) => {
            let mut child = String::with_capacity(name.len() + 24);
            for (k, sub) in entries {
                child.clear();
                child.push_str(name);
                child.push('_');
                child.push_str(k);
                flatten(&child, labels, sub, array_label, emit);
            }
        }
        Json::Arr(items) => {
            let label = array_label(name);
            if labels.iter().any(|(k, _)| k == label) {
                tracing::debug!(key = name, "skipping an array inside an array");
                return;
            }
            let mut with = labels.to_vec();
            with.push((label.to_owned(), String::new()));
            for (i, item) in items.iter().enumerate() {
                if let Some(last) = with.last_mut() {
                    last.1 = i.to_string();
                }
                flatten(name, &with, item, array_label, emit);
            }
        }
        Json::Str(_) | Json::Null => {
            tracing::debug!(
                key = name,
                kind = v.kind(),
                "skipping a value that is not a number"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_values_in_order_with_duplicates() {
        let v = parse(br#" {"a": 1, "b": [true, false, null], "a": "x\u00e9\ud83d\ude00", "c": {"d": -2.5e3}} "#).unwrap();
        let Json::Obj(e) = v else { panic!() };
        assert_eq!(e.len(), 4);
        assert_eq!(e[0], ("a".into(), Json::Num(1.0)));
        assert_eq!(
            e[1].1,
            Json::Arr(vec![Json::Bool(true), Json::Bool(false), Json::Null])
        );
        assert_eq!(e[2].1, Json::Str("xé😀".into()));
        assert_eq!(e[3].1, Json::Obj(vec![("d".into(), Json::Num(-2500.0))]));
    }

    #[test]
    fn big_numbers() {
        assert_eq!(
            parse(b"18446744073709551616").unwrap(),
            Json::Num(18446744073709551616.0)
        );
        assert_eq!(parse(b"1e400").unwrap(), Json::Num(f64::INFINITY));
        assert_eq!(parse(b"-1e400").unwrap(), Json::Num(f64::NEG_INFINITY));
        assert_eq!(parse(b"1e-400").unwrap(), Json::Num(0.0));
    }

    #[test]
    fn rejects_bad_documents() {
        for bad in [
            &b""[..],
            b"{",
            b"{\"a\": 1",
            b"{\"a\": 1,}",
            b"{\"a\" 1}",
            b"[1,]",
            b"01",
            b"1.",
            b"-",
            b"1e",
            b"NaN",
            b"\"abc",
            b"\"a\\x\"",
            b"\"\\u12\"",
            b"{} {}",
            b"tru",
            b"\"a\nb\"",
            b"{\"a\":1}garbage",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn depth_is_bounded() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse(deep.as_bytes()).unwrap_err().what, "nesting too deep");
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn lone_surrogates_and_bad_utf8_are_replaced() {
        assert_eq!(
            parse(br#""\ud800x""#).unwrap(),
            Json::Str("\u{FFFD}x".into())
        );
        assert_eq!(
            parse(b"\"a\xffb\"").unwrap(),
            Json::Str("a\u{FFFD}b".into())
        );
        assert_eq!(parse(b"\xEF\xBB\xBF{}").unwrap(), Json::Obj(vec![]));
    }
}
