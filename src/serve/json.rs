//! JSON the way TensorFlow Serving reads and writes it: `NaN`, `Infinity` and `-Infinity` are
//! accepted as numbers, numbers keep whether they were written as integers, parse errors use
//! RapidJSON's wording with the byte offset, and floats are written in shortest round-trip form
//! (float32 as float32) with non-finite values as bare tokens.

use std::fmt::Write as _;

/// A parsed number, classified as RapidJSON does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An integer literal that fits in i64.
    Int(i64),
    /// An integer literal above i64::MAX that fits in u64.
    Uint(u64),
    /// A literal with a fraction or exponent, `NaN`, `Infinity`, or an integer beyond u64.
    Double(f64),
}

impl Number {
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Uint(u) => u as f64,
            Number::Double(d) => d,
        }
    }
}

/// A JSON value; objects keep their members in document order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The first member named `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// RapidJSON's type names, used in TF Serving's messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "Null",
            Json::Bool(false) => "False",
            Json::Bool(true) => "True",
            Json::Object(_) => "Object",
            Json::Array(_) => "Array",
            Json::String(_) => "String",
            Json::Number(_) => "Number",
        }
    }

    /// `{"b64": "..."}` and nothing else: TF Serving's encoding of binary strings.
    pub fn as_b64(&self) -> Option<&str> {
        match self {
            Json::Object(members) if members.len() == 1 && members[0].0 == "b64" => {
                match &members[0].1 {
                    Json::String(s) => Some(s),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The value pretty-printed as RapidJSON's PrettyWriter does (4-space indent), as TF
    /// Serving's error messages quote the request, but cut after [`QUOTE_LIMIT`] bytes (then
    /// ending in `...`): the work and the text stay that small however large or deep the value.
    pub fn quote(&self) -> String {
        let mut out = Quote::default();
        self.write_quote(&mut out, 0);
        if out.full {
            out.text.push_str("...");
        }
        out.text
    }

    fn write_quote(&self, out: &mut Quote, indent: usize) {
        match self {
            Json::Array(items) if !items.is_empty() => {
                out.push("[\n");
                for (i, item) in items.iter().enumerate() {
                    if out.full {
                        return;
                    }
                    if i > 0 {
                        out.push(",\n");
                    }
                    out.indent(indent + 1);
                    item.write_quote(out, indent + 1);
                }
                out.push("\n");
                out.indent(indent);
                out.push("]");
            }
            Json::Object(members) if !members.is_empty() => {
                out.push("{\n");
                for (i, (k, v)) in members.iter().enumerate() {
                    if out.full {
                        return;
                    }
                    if i > 0 {
                        out.push(",\n");
                    }
                    out.indent(indent + 1);
                    out.string(k);
                    out.push(": ");
                    v.write_quote(out, indent + 1);
                }
                out.push("\n");
                out.indent(indent);
                out.push("}");
            }
            Json::String(s) => out.string(s),
            other => {
                let mut text = String::new();
                other.write_compact(&mut text);
                out.push(&text);
            }
        }
    }

    /// Compact JSON.
    pub fn write_compact(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(Number::Int(i)) => {
                let _ = write!(out, "{i}");
            }
            Json::Number(Number::Uint(u)) => {
                let _ = write!(out, "{u}");
            }
            Json::Number(Number::Double(d)) => write_f64(out, *d),
            Json::String(s) => write_string(out, s),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_compact(out);
                }
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(out, k);
                    out.push(':');
                    v.write_compact(out);
                }
                out.push('}');
            }
        }
    }
}

/// Most bytes of a request an error message quotes.
pub const QUOTE_LIMIT: usize = 1024;

/// Text of at most [`QUOTE_LIMIT`] bytes; `full` once something did not fit.
#[derive(Default)]
struct Quote {
    text: String,
    full: bool,
}

impl Quote {
    fn push(&mut self, s: &str) {
        if self.full {
            return;
        }
        let room = QUOTE_LIMIT - self.text.len();
        if s.len() <= room {
            self.text.push_str(s);
        } else {
            self.text.push_str(&s[..floor_char_boundary(s, room)]);
            self.full = true;
        }
    }

    fn indent(&mut self, level: usize) {
        for _ in 0..level {
            if self.full {
                return;
            }
            self.push("    ");
        }
    }

    /// A string literal; only as much of `s` is escaped as can show.
    fn string(&mut self, s: &str) {
        let room = QUOTE_LIMIT.saturating_sub(self.text.len());
        let shown = &s[..floor_char_boundary(s, room)];
        let mut text = String::new();
        write_string(&mut text, shown);
        if shown.len() < s.len() {
            // The closing quote goes: the literal is cut.
            text.pop();
            text.push_str("...");
        }
        self.push(&text);
    }
}

/// The largest char boundary of `s` at or below `i`.
fn floor_char_boundary(s: &str, i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    let mut i = i;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `s` as an error message quotes a name from the request: cut after a few hundred bytes.
pub fn quote_str(s: &str) -> std::borrow::Cow<'_, str> {
    cut(s, 256)
}

/// `s` cut after `limit` bytes (on a character boundary), then ending in `...`.
pub fn cut(s: &str, limit: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= limit {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(format!("{}...", &s[..floor_char_boundary(s, limit)]))
    }
}

/// Writes a JSON string literal.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Non-finite floats as TF Serving writes them.
fn non_finite(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// Appends `.0` to whole numbers written without a point or exponent, as TF Serving does, so
/// a list of floats never reads as integers.
fn push_decimal(out: &mut String, text: &str) {
    out.push_str(text);
    if !text.contains(['.', 'e', 'E']) {
        out.push_str(".0");
    }
}

/// A float32 in the shortest form that reads back as the same float32.
pub fn write_f32(out: &mut String, v: f32) {
    if v.is_finite() {
        let mut buf = ryu::Buffer::new();
        push_decimal(out, buf.format_finite(v));
    } else {
        out.push_str(non_finite(v as f64));
    }
}

/// A float64 in the shortest form that reads back as the same float64.
pub fn write_f64(out: &mut String, v: f64) {
    if v.is_finite() {
        let mut buf = ryu::Buffer::new();
        push_decimal(out, buf.format_finite(v));
    } else {
        out.push_str(non_finite(v));
    }
}

/// A parse error: RapidJSON's English message and the byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: &'static str,
    pub offset: usize,
}

/// Parses a whole document (RapidJSON with `kParseNanAndInfFlag`).
pub fn parse(text: &[u8]) -> Result<Json, ParseError> {
    let mut p = Parser { s: text, i: 0 };
    p.ws();
    if p.i >= p.s.len() {
        return Err(p.err("The document is empty."));
    }
    let v = p.value(0)?;
    p.ws();
    if p.i < p.s.len() {
        return Err(p.err("The document root must not be followed by other values."));
    }
    Ok(v)
}

/// A cursor for readers that stream a known shape straight into their own buffers instead of
/// building a [`Json`] tree. Each step answers `None` where the text is not what the reader
/// expects; such a reader then leaves the text to [`parse`], which words the error.
pub struct Cursor<'a> {
    p: Parser<'a>,
}

impl<'a> Cursor<'a> {
    pub fn new(text: &'a [u8]) -> Self {
        Cursor {
            p: Parser { s: text, i: 0 },
        }
    }

    /// Skips whitespace and returns the next byte, if any.
    pub fn peek(&mut self) -> Option<u8> {
        self.p.ws();
        self.p.peek()
    }

    /// Consumes `b` (after whitespace) when it comes next.
    pub fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.p.i += 1;
        }
        hit
    }

    /// Whether only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// A string without escapes, borrowed from the text.
    pub fn plain_string(&mut self) -> Option<&'a str> {
        if !self.eat(b'"') {
            return None;
        }
        let s: &'a [u8] = self.p.s;
        let start = self.p.i;
        let len = s[start..].iter().position(|&b| b == b'"')?;
        let bytes = &s[start..start + len];
        if bytes.iter().any(|&b| b == b'\\' || b < 0x20) {
            return None;
        }
        self.p.i = start + len + 1;
        std::str::from_utf8(bytes).ok()
    }

    /// A number, with the same reading as [`parse`].
    pub fn number(&mut self) -> Option<Number> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9' | b'N' | b'I') => match self.p.number() {
                Ok(Json::Number(n)) => Some(n),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Scans ASCII digits from `i` and returns where they end, folding them into `mantissa` while
/// it cannot overflow (`overflow` is set once a digit did not fit).
fn fold_digits(s: &[u8], mut i: usize, mantissa: &mut u64, overflow: &mut bool) -> usize {
    let mut m = *mantissa;
    while let Some(&b) = s.get(i) {
        if !b.is_ascii_digit() {
            break;
        }
        if m < (u64::MAX - 9) / 10 {
            m = m * 10 + u64::from(b - b'0');
        } else {
            *overflow = true;
        }
        i += 1;
    }
    *mantissa = m;
    i
}

/// Deeper nesting than this is refused instead of risking the stack.
const MAX_DEPTH: usize = 512;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, message: &'static str) -> ParseError {
        ParseError {
            message,
            offset: self.i,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    fn literal(&mut self, word: &[u8], v: Json) -> Result<Json, ParseError> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.err("Invalid value."))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err("The document nests arrays or objects more than 512 deep."));
        }
        match self.peek() {
            Some(b'n') => self.literal(b"null", Json::Null),
            Some(b't') => self.literal(b"true", Json::Bool(true)),
            Some(b'f') => self.literal(b"false", Json::Bool(false)),
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b'[') => self.array(depth),
            Some(b'{') => self.object(depth),
            Some(b'-' | b'0'..=b'9' | b'N' | b'I') => self.number(),
            _ => Err(self.err("Invalid value.")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, ParseError> {
        self.i += 1;
        self.ws();
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                Some(b']') => {
                    self.i += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(self.err("Missing a comma or ']' after an array element.")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, ParseError> {
        self.i += 1;
        self.ws();
        let mut members = Vec::new();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Json::Object(members));
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.err("Missing a name for object member."));
            }
            let key = self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("Missing a colon after a name of object member."));
            }
            self.i += 1;
            self.ws();
            let v = self.value(depth + 1)?;
            members.push((key, v));
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Json::Object(members));
                }
                _ => return Err(self.err("Missing a comma or '}' after an object member.")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = self
                .peek()
                .and_then(|b| (b as char).to_digit(16))
                .ok_or_else(|| self.err("Incorrect hex digit after \\u escape in string."))?;
            v = v * 16 + d;
            self.i += 1;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String, ParseError> {
        let start = self.i;
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.err("Missing a closing quotation mark in string."));
            };
            match b {
                b'"' => {
                    self.i += 1;
                    break;
                }
                b'\\' => {
                    let esc_at = self.i;
                    self.i += 1;
                    let c = self.peek();
                    self.i += 1;
                    match c {
                        Some(b'"') => out.push(b'"'),
                        Some(b'\\') => out.push(b'\\'),
                        Some(b'/') => out.push(b'/'),
                        Some(b'b') => out.push(8),
                        Some(b'f') => out.push(12),
                        Some(b'n') => out.push(b'\n'),
                        Some(b'r') => out.push(b'\r'),
                        Some(b't') => out.push(b'\t'),
                        Some(b'u') => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp) {
                                if self.s[self.i..].starts_with(b"\\u") {
                                    self.i += 2;
                                    let lo = self.hex4()?;
                                    if !(0xDC00..0xE000).contains(&lo) {
                                        return Err(
                                            self.err("The surrogate pair in string is invalid.")
                                        );
                                    }
                                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                } else {
                                    return Err(
                                        self.err("The surrogate pair in string is invalid.")
                                    );
                                }
                            }
                            let ch = char::from_u32(cp).ok_or_else(|| {
                                self.err("The surrogate pair in string is invalid.")
                            })?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => {
                            self.i = esc_at;
                            return Err(self.err("Invalid escape character in string."));
                        }
                    }
                }
                0..=0x1f => {
                    return Err(self.err("Invalid encoding in string."));
                }
                _ => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| ParseError {
            message: "Invalid encoding in string.",
            offset: start,
        })
    }

    fn number(&mut self) -> Result<Json, ParseError> {
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        if self.peek() == Some(b'N') {
            return self
                .literal(b"NaN", Json::Null)
                .map(|_| Json::Number(Number::Double(f64::NAN)));
        }
        if self.peek() == Some(b'I') {
            let v = if negative {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            };
            return self
                .literal(b"Infinity", Json::Null)
                .map(|_| Json::Number(Number::Double(v)));
        }
        let digits_start = self.i;
        // The digits are accumulated while scanning; numbers that fit the exact fast case
        // (Clinger's: a mantissa below 2^53 and a power of ten up to 22) need no second pass.
        let mut mantissa = 0u64;
        let mut overflow = false;
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.i = fold_digits(self.s, self.i, &mut mantissa, &mut overflow);
            }
            _ => return Err(self.err("Invalid value.")),
        }
        let mut is_double = false;
        let mut scale = 0i64;
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("Missing fraction part in number."));
            }
            let from = self.i;
            self.i = fold_digits(self.s, self.i, &mut mantissa, &mut overflow);
            scale -= (self.i - from) as i64;
            is_double = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            let mut exp_negative = false;
            if let Some(sign @ (b'+' | b'-')) = self.peek() {
                exp_negative = sign == b'-';
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("Missing exponent in number."));
            }
            let mut exp = 0i64;
            while let Some(b @ b'0'..=b'9') = self.peek() {
                exp = exp * 10 + i64::from(b - b'0');
                if exp > 1 << 20 {
                    // Beyond any double: left to the standard library's reading below.
                    exp = 1 << 20;
                    overflow = true;
                }
                self.i += 1;
            }
            scale += if exp_negative { -exp } else { exp };
            is_double = true;
        }
        if !overflow {
            if !is_double {
                if !negative {
                    return Ok(Json::Number(match i64::try_from(mantissa) {
                        Ok(i) => Number::Int(i),
                        Err(_) => Number::Uint(mantissa),
                    }));
                }
                if mantissa <= i64::MAX as u64 + 1 {
                    return Ok(Json::Number(Number::Int(
                        (mantissa as i128).wrapping_neg() as i64
                    )));
                }
            } else if mantissa <= 1 << 53 && (-22..=22).contains(&scale) {
                const POW10: [f64; 23] = [
                    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14,
                    1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
                ];
                let m = mantissa as f64;
                let v = if scale >= 0 {
                    m * POW10[scale as usize]
                } else {
                    m / POW10[(-scale) as usize]
                };
                return Ok(Json::Number(Number::Double(if negative { -v } else { v })));
            }
        }
        // ASCII only, so this cannot fail.
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("0");
        if !is_double {
            let digits = std::str::from_utf8(&self.s[digits_start..self.i]).unwrap_or("0");
            if let Ok(u) = digits.parse::<u64>() {
                if !negative {
                    return Ok(Json::Number(match i64::try_from(u) {
                        Ok(i) => Number::Int(i),
                        Err(_) => Number::Uint(u),
                    }));
                }
                if u <= i64::MAX as u64 + 1 {
                    return Ok(Json::Number(Number::Int((u as i128).wrapping_neg() as i64)));
                }
            }
        }
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Json::Number(Number::Double(v))),
            _ => {
                self.i = start;
                Err(self.err("Number too big to be stored in double."))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_kind() {
        let v = parse(br#"[1, -2, 1.0, 2e3, NaN, -Infinity, Infinity, 18446744073709551615, -9223372036854775808]"#).unwrap();
        let Json::Array(items) = v else { panic!() };
        assert_eq!(items[0], Json::Number(Number::Int(1)));
        assert_eq!(items[1], Json::Number(Number::Int(-2)));
        assert_eq!(items[2], Json::Number(Number::Double(1.0)));
        assert_eq!(items[3], Json::Number(Number::Double(2000.0)));
        assert!(matches!(items[4], Json::Number(Number::Double(d)) if d.is_nan()));
        assert_eq!(items[5], Json::Number(Number::Double(f64::NEG_INFINITY)));
        assert_eq!(items[6], Json::Number(Number::Double(f64::INFINITY)));
        assert_eq!(items[7], Json::Number(Number::Uint(u64::MAX)));
        assert_eq!(items[8], Json::Number(Number::Int(i64::MIN)));
    }

    #[test]
    fn decimals_read_exactly_as_the_standard_library_reads_them() {
        // A fixed xorshift sequence: mantissas of every length, fractions and exponents.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let r = next();
            let digits = (r % 19 + 1) as u32;
            let mantissa = next() % 10u64.pow(digits);
            let point = (r >> 8) as usize % (digits as usize + 1);
            let mut text = mantissa.to_string();
            if point > 0 && point < text.len() {
                text.insert(text.len() - point, '.');
            } else {
                text.push_str(".0");
            }
            if r & (1 << 20) != 0 {
                text = format!("{text}e{}", (r >> 24) as i64 % 40 - 20);
            }
            if r & (1 << 21) != 0 {
                text.insert(0, '-');
            }
            let expected: f64 = text.parse().unwrap();
            match parse(text.as_bytes()) {
                Ok(Json::Number(Number::Double(v))) => {
                    assert_eq!(v.to_bits(), expected.to_bits(), "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn huge_exponents_are_not_cut_short() {
        // A million fraction digits and an exponent beyond the cap: 0.0...01e1048580 = 1e4.
        let text = format!("0.{}1e1048580", "0".repeat(1_048_575));
        assert_eq!(
            parse(text.as_bytes()),
            Ok(Json::Number(Number::Double(text.parse().unwrap())))
        );
    }

    #[test]
    fn errors_use_rapidjson_wording_and_offsets() {
        let cases: &[(&[u8], &str, usize)] = &[
            (b"", "The document is empty.", 0),
            (b"{", "Missing a name for object member.", 1),
            (
                b"{\"a\" 1}",
                "Missing a colon after a name of object member.",
                5,
            ),
            (b"{\"a\": 1,}", "Missing a name for object member.", 8),
            (
                b"[1 2]",
                "Missing a comma or ']' after an array element.",
                3,
            ),
            (
                b"{\"a\":1 \"b\"}",
                "Missing a comma or '}' after an object member.",
                7,
            ),
            (b"nul", "Invalid value.", 0),
            (
                b"{} x",
                "The document root must not be followed by other values.",
                3,
            ),
            (b"\"abc", "Missing a closing quotation mark in string.", 4),
            (b"1.", "Missing fraction part in number.", 2),
        ];
        for (text, message, offset) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(
                (e.message, e.offset),
                (*message, *offset),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = "[".repeat(100_000);
        let e = parse(text.as_bytes()).unwrap_err();
        assert!(e.message.contains("512"), "{}", e.message);
    }

    #[test]
    fn strings_unescape() {
        let v = parse(br#""a\"b\\c\u00e9\ud83d\ude00\n""#).unwrap();
        assert_eq!(v, Json::String("a\"b\\c\u{e9}\u{1F600}\n".into()));
    }

    #[test]
    fn floats_are_shortest_round_trip_with_tokens() {
        let mut s = String::new();
        for v in [
            0.1f32,
            1.0,
            2.424_572_3e-9,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            3.5,
        ] {
            write_f32(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "0.1 1.0 2.4245723e-9 NaN Infinity -Infinity 3.5 ");
        let mut d = String::new();
        write_f64(&mut d, 0.1);
        assert_eq!(d, "0.1");
    }

    #[test]
    fn quote_matches_rapidjson_layout() {
        let v = parse(br#"{"a":[1,2],"b":{}}"#).unwrap();
        assert_eq!(
            v.quote(),
            "{\n    \"a\": [\n        1,\n        2\n    ],\n    \"b\": {}\n}"
        );
    }

    #[test]
    fn quotes_stay_short_however_large_or_deep_the_value() {
        // Deep nesting used to cost 4 bytes of indent per level for every element.
        let deep = format!(
            "{}{}{}",
            "[".repeat(500),
            vec!["0"; 100_000].join(","),
            "]".repeat(500)
        );
        let wide = format!("[\"{}\", 1]", "\\u00e9".repeat(100_000));
        let key = format!("{{\"{}\": 1}}", "k".repeat(100_000));
        for text in [deep, wide, key] {
            let q = parse(text.as_bytes()).unwrap().quote();
            assert!(q.len() <= QUOTE_LIMIT + 3, "{}", q.len());
            assert!(q.ends_with("..."), "{q}");
        }
        assert_eq!(quote_str("abc"), "abc");
        assert_eq!(quote_str(&"é".repeat(200)).len(), 256 + 3);
    }
}
