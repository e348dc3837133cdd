//! NumPy's `.npy` and `.npz` files, read into tensors and written from them, without pickle.
//!
//! `np.load(allow_pickle=True)` (what `saved_model_cli run` calls) runs whatever a file's pickle
//! says; this reader only knows plain arrays: bool, signed and unsigned integers, float16/32/64,
//! fixed-width bytes (`S`) and unicode (`U`). Object arrays (`O`, which need pickle), structured,
//! complex and date types are refused with what to save instead.
//!
//! The format is a magic string, a header that is a Python dict literal, and the raw elements.
//! It is read here rather than through a crate because every size must be checked before
//! anything is allocated: the header against NumPy's own 10,000-byte limit and the file's
//! length, the shape's product (with overflow checks and TensorFlow's maximum rank) against the
//! bytes the file really has, and in an `.npz` each member's stated size against the archive's
//! length times deflate's largest ratio. Work and memory are bounded by the file's size.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::files::{self, FileError};
use crate::serve::limits::MAX_RANK;
use crate::serve::tensor::{Tensor, Values, STRING_ELEMENT_BYTES};

/// NumPy's default `max_header_size` for `np.load`: longer headers are refused by NumPy too.
pub const MAX_HEADER_BYTES: usize = 10_000;

/// The largest array file (or `.npz` member, uncompressed) read.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Deflate's largest compression ratio (a 258-byte match costs at least two bits, ~1032:1).
const DEFLATE_MAX_RATIO: u64 = 1032;

const MAGIC: &[u8] = b"\x93NUMPY";

#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("cannot read '{}': {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("'{what}' is not a NumPy .npy array: {reason}")]
    Format { what: String, reason: String },
    #[error(
        "'{what}' holds Python objects (dtype '{descr}'), which only pickle can read, and \
         pickle runs code from the file; save a numeric or string array instead \
         (e.g. np.save(path, a.astype(np.float32)) or a.astype(bytes))"
    )]
    Pickle { what: String, descr: String },
    #[error("'{what}' has dtype '{descr}', which has no TensorFlow tensor here ({why}); save it as {instead}")]
    Dtype {
        what: String,
        descr: String,
        why: &'static str,
        instead: &'static str,
    },
    #[error("'{}' is not a NumPy .npz archive: {reason}", path.display())]
    Zip { path: PathBuf, reason: String },
    #[error("'{}' has no array '{name}' (arrays: {})", path.display(), list(available))]
    NoMember {
        path: PathBuf,
        name: String,
        available: Vec<String>,
    },
    #[error("'{}' holds {} arrays ({}); name one as FILE.npz[NAME]", path.display(), available.len(), list(available))]
    WhichMember {
        path: PathBuf,
        available: Vec<String>,
    },
}

/// The names of an archive's arrays for a message: the first few, and how many more.
fn list(names: &[String]) -> String {
    const SHOWN: usize = 10;
    if names.is_empty() {
        return "none".into();
    }
    let mut shown: Vec<String> = names.iter().take(SHOWN).map(|n| format!("'{n}'")).collect();
    if names.len() > SHOWN {
        shown.push(format!("and {} more", names.len() - SHOWN));
    }
    shown.join(", ")
}

fn format_error(what: &str, reason: impl Into<String>) -> NpyError {
    NpyError::Format {
        what: what.to_owned(),
        reason: reason.into(),
    }
}

/// Reads a `.npy` file.
pub fn read_npy(path: &Path) -> Result<Tensor, NpyError> {
    let bytes = files::read_capped(path, MAX_FILE_BYTES, "an array file")?;
    parse(&bytes, &path.display().to_string())
}

/// Reads array `name` of a `.npz` archive; `None`: its only array.
pub fn read_npz(path: &Path, name: Option<&str>) -> Result<Tensor, NpyError> {
    let io = |source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (file, archive_len) = files::open_regular(path)?;
    let zip_error = |e: zip::result::ZipError| NpyError::Zip {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut archive = zip::ZipArchive::new(file).map_err(zip_error)?;
    // np.savez stores array `x` as member `x.npy`.
    let available: Vec<String> = archive
        .file_names()
        .map(|n| n.strip_suffix(".npy").unwrap_or(n).to_owned())
        .collect();
    let name = match name {
        Some(n) => n.to_owned(),
        None if available.len() == 1 => available[0].clone(),
        None => {
            return Err(NpyError::WhichMember {
                path: path.to_path_buf(),
                available,
            })
        }
    };
    let member = [format!("{name}.npy"), name.clone()]
        .into_iter()
        .find(|m| archive.index_for_name(m).is_some())
        .ok_or_else(|| NpyError::NoMember {
            path: path.to_path_buf(),
            name: name.clone(),
            available: available.clone(),
        })?;
    let mut entry = archive.by_name(&member).map_err(zip_error)?;
    let what = format!("{}[{name}]", path.display());
    // The stated size bounds the read; deflate bounds the stated size by the archive's length.
    let stated = entry.size();
    let most = archive_len
        .saturating_mul(DEFLATE_MAX_RATIO)
        .min(MAX_FILE_BYTES);
    if stated > most {
        return Err(format_error(
            &what,
            format!(
                "the archive says it unpacks to {stated} bytes, more than a {archive_len}-byte \
                 archive can hold{}",
                if stated > MAX_FILE_BYTES {
                    format!(" or the {MAX_FILE_BYTES} an array may have")
                } else {
                    String::new()
                }
            ),
        ));
    }
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(stated as usize)
        .map_err(|_| format_error(&what, format!("cannot hold its {stated} bytes")))?;
    (&mut entry)
        .take(stated + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 != stated {
        return Err(format_error(
            &what,
            format!(
                "the archive says it unpacks to {stated} bytes, but it holds {}",
                if bytes.len() as u64 > stated {
                    "more".to_owned()
                } else {
                    bytes.len().to_string()
                }
            ),
        ));
    }
    parse(&bytes, &what)
}

/// An element type NumPy's `descr` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Uint,
    Float,
    /// `S`: bytes, NUL-padded.
    Bytes,
    /// `U`: UTF-32 code points, NUL-padded.
    Unicode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dtype {
    kind: Kind,
    /// Bytes per element.
    size: usize,
    big_endian: bool,
}

fn dtype(descr: &str, what: &str) -> Result<Dtype, NpyError> {
    let refused = |why, instead| NpyError::Dtype {
        what: what.to_owned(),
        descr: descr.to_owned(),
        why,
        instead,
    };
    let (order, rest) = match descr.as_bytes().first() {
        Some(b'<' | b'>' | b'|' | b'=') => (descr.as_bytes()[0], &descr[1..]),
        _ => (b'=', descr),
    };
    let big_endian = order == b'>' || (order == b'=' && cfg!(target_endian = "big"));
    let code = rest.chars().next().unwrap_or(' ');
    let count = &rest[code.len_utf8().min(rest.len())..];
    if code == 'O' {
        return Err(NpyError::Pickle {
            what: what.to_owned(),
            descr: descr.to_owned(),
        });
    }
    let size: usize = if count.is_empty() && code == '?' {
        1
    } else {
        count
            .parse()
            .map_err(|_| format_error(what, format!("unknown dtype '{descr}'")))?
    };
    let kind = match code {
        'b' | '?' if size == 1 => Kind::Bool,
        'i' if matches!(size, 1 | 2 | 4 | 8) => Kind::Int,
        'u' if matches!(size, 1 | 2 | 4 | 8) => Kind::Uint,
        'f' if matches!(size, 2 | 4 | 8) => Kind::Float,
        'S' | 'a' => Kind::Bytes,
        'U' => Kind::Unicode,
        'f' => return Err(refused("extended precision", "float32 or float64")),
        'c' => return Err(refused("complex numbers", "two float arrays")),
        'M' | 'm' => return Err(refused("dates and times", "int64")),
        'V' => return Err(refused("raw void records", "a numeric array")),
        _ => return Err(format_error(what, format!("unknown dtype '{descr}'"))),
    };
    if size == 0 {
        // A zero-width element would let a shape of any size fit in no bytes at all.
        return Err(format_error(
            what,
            format!("dtype '{descr}' has zero-width elements"),
        ));
    }
    let size = match kind {
        Kind::Unicode => size
            .checked_mul(4)
            .ok_or_else(|| format_error(what, format!("dtype '{descr}' is too wide")))?,
        _ => size,
    };
    Ok(Dtype {
        kind,
        size,
        big_endian,
    })
}

/// A value of the header's Python literal: only what NumPy writes there.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    Bool(bool),
    Int(u64),
    Tuple(Vec<Literal>),
    List(Vec<Literal>),
    Dict(Vec<(Literal, Literal)>),
}

/// Nesting deeper than NumPy's headers ever go (a structured dtype's list of tuples) is refused.
const MAX_LITERAL_DEPTH: usize = 4;

struct LiteralParser<'a> {
    text: &'a [u8],
    at: usize,
}

impl LiteralParser<'_> {
    fn skip_space(&mut self) {
        while self.text.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn error(&self, what: &str) -> String {
        format!("{what} at byte {} of the header", self.at)
    }

    fn value(&mut self, depth: usize) -> Result<Literal, String> {
        if depth > MAX_LITERAL_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        self.skip_space();
        let Some(&c) = self.text.get(self.at) else {
            return Err(self.error("unexpected end"));
        };
        match c {
            b'\'' | b'"' => {
                self.at += 1;
                let start = self.at;
                while self.text.get(self.at).is_some_and(|&b| b != c) {
                    if self.text[self.at] == b'\\' {
                        return Err(self.error("escape in a string"));
                    }
                    self.at += 1;
                }
                if self.at >= self.text.len() {
                    return Err(self.error("unterminated string"));
                }
                let s = String::from_utf8_lossy(&self.text[start..self.at]).into_owned();
                self.at += 1;
                Ok(Literal::Str(s))
            }
            b'0'..=b'9' => {
                let start = self.at;
                while self.text.get(self.at).is_some_and(u8::is_ascii_digit) {
                    self.at += 1;
                }
                // NumPy 1.x on some platforms wrote `3L`.
                if self.text.get(self.at) == Some(&b'L') {
                    self.at += 1;
                }
                let digits = std::str::from_utf8(&self.text[start..self.at])
                    .unwrap_or("")
                    .trim_end_matches('L');
                digits
                    .parse()
                    .map(Literal::Int)
                    .map_err(|_| self.error("integer too large"))
            }
            b'(' | b'[' | b'{' => {
                let close = match c {
                    b'(' => b')',
                    b'[' => b']',
                    _ => b'}',
                };
                self.at += 1;
                let mut items = Vec::new();
                let mut pairs = Vec::new();
                loop {
                    self.skip_space();
                    if self.text.get(self.at) == Some(&close) {
                        self.at += 1;
                        break;
                    }
                    let item = self.value(depth + 1)?;
                    self.skip_space();
                    if c == b'{' {
                        if self.text.get(self.at) != Some(&b':') {
                            return Err(self.error("expected ':'"));
                        }
                        self.at += 1;
                        let value = self.value(depth + 1)?;
                        pairs.push((item, value));
                    } else {
                        items.push(item);
                    }
                    self.skip_space();
                    match self.text.get(self.at) {
                        Some(b',') => self.at += 1,
                        Some(&b) if b == close => {}
                        _ => return Err(self.error("expected ',' or a closing bracket")),
                    }
                }
                Ok(match c {
                    b'(' => Literal::Tuple(items),
                    b'[' => Literal::List(items),
                    _ => Literal::Dict(pairs),
                })
            }
            _ if self.text[self.at..].starts_with(b"True") => {
                self.at += 4;
                Ok(Literal::Bool(true))
            }
            _ if self.text[self.at..].starts_with(b"False") => {
                self.at += 5;
                Ok(Literal::Bool(false))
            }
            _ => Err(self.error("unexpected character")),
        }
    }
}

/// The parsed header: dtype descr, Fortran order, shape.
fn header(text: &[u8], what: &str) -> Result<(String, bool, Vec<u64>), NpyError> {
    let mut parser = LiteralParser { text, at: 0 };
    let value = parser.value(0).map_err(|e| format_error(what, e))?;
    parser.skip_space();
    if parser.at != text.len() {
        return Err(format_error(what, parser.error("text after the header")));
    }
    let Literal::Dict(pairs) = value else {
        return Err(format_error(what, "the header is not a dict"));
    };
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| *k == Literal::Str(key.to_owned()))
            .map(|(_, v)| v)
    };
    let descr = match get("descr") {
        Some(Literal::Str(s)) => s.clone(),
        Some(Literal::List(_)) => return Err(NpyError::Dtype {
            what: what.to_owned(),
            descr: "structured".to_owned(),
            why: "records of named fields",
            instead:
                "one array per field (np.savez(path, **{name: a[name] for name in a.dtype.names}))",
        }),
        _ => return Err(format_error(what, "the header has no 'descr' string")),
    };
    let fortran = match get("fortran_order") {
        Some(Literal::Bool(b)) => *b,
        _ => return Err(format_error(what, "the header has no 'fortran_order' bool")),
    };
    let shape = match get("shape") {
        Some(Literal::Tuple(dims)) => dims
            .iter()
            .map(|d| match d {
                Literal::Int(n) => Ok(*n),
                _ => Err(format_error(
                    what,
                    "the shape holds something not an integer",
                )),
            })
            .collect::<Result<Vec<u64>, _>>()?,
        _ => return Err(format_error(what, "the header has no 'shape' tuple")),
    };
    if pairs.len() != 3 {
        return Err(format_error(
            what,
            "the header has keys besides 'descr', 'fortran_order' and 'shape'",
        ));
    }
    Ok((descr, fortran, shape))
}

/// Parses a whole `.npy` file; `what` names it in errors.
pub fn parse(bytes: &[u8], what: &str) -> Result<Tensor, NpyError> {
    let bad = |reason: &str| format_error(what, reason);
    if !bytes.starts_with(MAGIC) {
        return Err(bad("it does not start with NumPy's magic string"));
    }
    let (major, rest) = match bytes.get(MAGIC.len()..MAGIC.len() + 2) {
        Some(&[major, 0]) => (major, &bytes[MAGIC.len() + 2..]),
        Some(&[major, minor]) => {
            return Err(format_error(
                what,
                format!("unknown format version {major}.{minor}"),
            ))
        }
        _ => return Err(bad("it ends inside the magic string")),
    };
    let (header_len, rest) = match major {
        1 => match rest {
            [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]) as usize, rest),
            _ => return Err(bad("it ends before the header length")),
        },
        2 | 3 => match rest {
            [a, b, c, d, rest @ ..] => (u32::from_le_bytes([*a, *b, *c, *d]) as usize, rest),
            _ => return Err(bad("it ends before the header length")),
        },
        _ => {
            return Err(format_error(
                what,
                format!("unknown format version {major}.0"),
            ))
        }
    };
    if header_len > MAX_HEADER_BYTES {
        return Err(format_error(
            what,
            format!(
                "its header is {header_len} bytes, more than the {MAX_HEADER_BYTES} NumPy reads"
            ),
        ));
    }
    if header_len > rest.len() {
        return Err(format_error(
            what,
            format!(
                "its header is said to be {header_len} bytes, but only {} follow",
                rest.len()
            ),
        ));
    }
    let (text, data) = rest.split_at(header_len);
    let text = if major == 3 {
        std::str::from_utf8(text).map_err(|_| bad("its header is not UTF-8"))?
    } else if text.is_ascii() {
        // Latin-1 in versions 1 and 2; NumPy writes only ASCII there.
        std::str::from_utf8(text).map_err(|_| bad("its header is not text"))?
    } else {
        return Err(bad("its header is not ASCII"));
    };
    let (descr, fortran, shape) = header(text.trim_end().as_bytes(), what)?;
    let dtype = dtype(&descr, what)?;
    if shape.len() > MAX_RANK {
        return Err(format_error(
            what,
            format!(
                "its shape has {} dimensions; TensorFlow allows at most {MAX_RANK}",
                shape.len()
            ),
        ));
    }
    if let Some(d) = shape.iter().find(|&&d| d > i64::MAX as u64) {
        return Err(format_error(
            what,
            format!("its shape has a dimension of {d}, more than a tensor's 2^63 - 1"),
        ));
    }
    let count = shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(|| bad("its shape's dimensions multiply beyond 2^63"))?;
    let needed = count
        .checked_mul(dtype.size as u64)
        .filter(|&n| n <= data.len() as u64)
        .ok_or_else(|| {
            format_error(
                what,
                format!(
                    "its shape {} of '{descr}' needs {} bytes of data, but the file has {}",
                    shape_text(&shape),
                    count.saturating_mul(dtype.size as u64),
                    data.len()
                ),
            )
        })?;
    if matches!(dtype.kind, Kind::Bytes | Kind::Unicode) {
        // Each string is a vector of its own: a file of many short strings takes many times its
        // size to hold, so their number is checked before any is made.
        let held = count
            .saturating_mul(STRING_ELEMENT_BYTES)
            .saturating_add(needed);
        if held > MAX_FILE_BYTES {
            return Err(format_error(
                what,
                format!(
                    "its {count} strings would take {held} bytes to hold ({STRING_ELEMENT_BYTES} \
                     per string plus their bytes), more than the {MAX_FILE_BYTES} an array may \
                     take; save fewer strings per array"
                ),
            ));
        }
    }
    let data = &data[..needed as usize];
    let count = count as usize;
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    let values = values(dtype, data, count, what)?;
    let values = if fortran && shape.len() > 1 {
        to_row_major(values, &shape)
    } else {
        values
    };
    Tensor::new(dims, values).ok_or_else(|| bad("its data does not match its shape"))
}

fn shape_text(shape: &[u64]) -> String {
    format!(
        "({})",
        shape
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The elements of `data` (exactly `count` of `dtype`).
fn values(dtype: Dtype, data: &[u8], count: usize, what: &str) -> Result<Values, NpyError> {
    fn num<T, const W: usize>(data: &[u8], big: bool, f: fn([u8; W]) -> T) -> Vec<T> {
        data.chunks_exact(W)
            .map(|c| {
                let mut a = [0u8; W];
                a.copy_from_slice(c);
                if big {
                    a.reverse();
                }
                f(a)
            })
            .collect()
    }
    let big = dtype.big_endian;
    Ok(match (dtype.kind, dtype.size) {
        (Kind::Bool, _) => Values::Bool(data.iter().map(|&b| b != 0).collect()),
        (Kind::Int, 1) => Values::Int8(data.iter().map(|&b| b as i8).collect()),
        (Kind::Int, 2) => Values::Int16(num(data, big, i16::from_le_bytes)),
        (Kind::Int, 4) => Values::Int32(num(data, big, i32::from_le_bytes)),
        (Kind::Int, _) => Values::Int64(num(data, big, i64::from_le_bytes)),
        (Kind::Uint, 1) => Values::UInt8(data.to_vec()),
        (Kind::Uint, 2) => Values::UInt16(num(data, big, u16::from_le_bytes)),
        (Kind::Uint, 4) => Values::UInt32(num(data, big, u32::from_le_bytes)),
        (Kind::Uint, _) => Values::UInt64(num(data, big, u64::from_le_bytes)),
        (Kind::Float, 2) => Values::Half(num(data, big, u16::from_le_bytes)),
        (Kind::Float, 4) => Values::Float(num(data, big, f32::from_le_bytes)),
        (Kind::Float, _) => Values::Double(num(data, big, f64::from_le_bytes)),
        // NumPy drops the trailing NULs of each element when it hands one out.
        (Kind::Bytes, w) => Values::String(
            data.chunks_exact(w)
                .map(|c| {
                    let end = c.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                    c[..end].to_vec()
                })
                .collect(),
        ),
        (Kind::Unicode, w) => {
            let mut out = Vec::with_capacity(count);
            for c in data.chunks_exact(w) {
                let points = num(c, big, u32::from_le_bytes);
                let end = points.iter().rposition(|&p| p != 0).map_or(0, |i| i + 1);
                let text: String = points[..end]
                    .iter()
                    .map(|&p| char::from_u32(p))
                    .collect::<Option<String>>()
                    .ok_or_else(|| {
                        format_error(what, "a string element holds an invalid code point")
                    })?;
                out.push(text.into_bytes());
            }
            Values::String(out)
        }
    })
}

/// Column-major (`fortran_order`) elements into row-major order.
fn to_row_major(values: Values, shape: &[u64]) -> Values {
    fn reorder<T: Default>(mut v: Vec<T>, shape: &[u64]) -> Vec<T> {
        let n = v.len();
        // Dimensions of 1 do not change the order; without them at most 63 are left (each
        // other one at least doubles the count), so the walk costs O(1) per element, not
        // O(rank): a rank-254 array is not 254 times slower to read.
        let shape: Vec<usize> = (shape.iter())
            .filter(|&&d| d != 1)
            .map(|&d| d as usize)
            .collect();
        if n == 0 || shape.len() < 2 {
            return v;
        }
        let rank = shape.len();
        // Column-major strides, then walk row-major indices, keeping the offset as we go.
        let mut strides = vec![1usize; rank];
        for d in 1..rank {
            strides[d] = strides[d - 1] * shape[d - 1];
        }
        let mut index = vec![0usize; rank];
        let mut offset = 0usize;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            // Moved, not cloned: a string array is not held twice.
            out.push(std::mem::take(&mut v[offset]));
            for d in (0..rank).rev() {
                index[d] += 1;
                if index[d] < shape[d] {
                    offset += strides[d];
                    break;
                }
                index[d] = 0;
                offset -= strides[d] * (shape[d] - 1);
            }
        }
        out
    }
    match values {
        Values::Float(v) => Values::Float(reorder(v, shape)),
        Values::Double(v) => Values::Double(reorder(v, shape)),
        Values::Int32(v) => Values::Int32(reorder(v, shape)),
        Values::UInt8(v) => Values::UInt8(reorder(v, shape)),
        Values::Int16(v) => Values::Int16(reorder(v, shape)),
        Values::Int8(v) => Values::Int8(reorder(v, shape)),
        Values::String(v) => Values::String(reorder(v, shape)),
        Values::Int64(v) => Values::Int64(reorder(v, shape)),
        Values::Bool(v) => Values::Bool(reorder(v, shape)),
        Values::UInt16(v) => Values::UInt16(reorder(v, shape)),
        Values::Half(v) => Values::Half(reorder(v, shape)),
        Values::UInt32(v) => Values::UInt32(reorder(v, shape)),
        Values::UInt64(v) => Values::UInt64(reorder(v, shape)),
    }
}

/// The bytes of the elements [`encode`] writes for `t` (saturating): strings are padded to the
/// longest, so a few long strings among many short ones make a file far larger than the tensor.
pub fn encoded_data_bytes(t: &Tensor) -> u64 {
    match &t.values {
        Values::String(v) => {
            let width = v.iter().map(Vec::len).max().unwrap_or(0).max(1) as u64;
            width.saturating_mul(v.len() as u64)
        }
        other => {
            let width = crate::proto_ext::dtype_size(t.dtype()).unwrap_or(1);
            width.saturating_mul(other.len() as u64)
        }
    }
}

/// A tensor as a version 1.0 `.npy` file, as `np.save` writes it (header padded to 64 bytes).
/// Strings become fixed-width bytes (`S`, as wide as the longest), which NumPy reads back
/// without pickle; like NumPy's own `S` arrays, trailing NUL bytes of an element do not survive.
pub fn encode(t: &Tensor) -> Vec<u8> {
    fn le<T: Copy, const W: usize>(v: &[T], f: fn(T) -> [u8; W]) -> Vec<u8> {
        v.iter().flat_map(|&x| f(x)).collect()
    }
    let (descr, data) = match &t.values {
        Values::Float(v) => ("<f4".to_owned(), le(v, f32::to_le_bytes)),
        Values::Double(v) => ("<f8".to_owned(), le(v, f64::to_le_bytes)),
        Values::Int32(v) => ("<i4".to_owned(), le(v, i32::to_le_bytes)),
        Values::UInt8(v) => ("|u1".to_owned(), v.clone()),
        Values::Int16(v) => ("<i2".to_owned(), le(v, i16::to_le_bytes)),
        Values::Int8(v) => ("|i1".to_owned(), le(v, i8::to_le_bytes)),
        Values::Int64(v) => ("<i8".to_owned(), le(v, i64::to_le_bytes)),
        Values::Bool(v) => ("|b1".to_owned(), v.iter().map(|&b| u8::from(b)).collect()),
        Values::UInt16(v) => ("<u2".to_owned(), le(v, u16::to_le_bytes)),
        Values::Half(v) => ("<f2".to_owned(), le(v, u16::to_le_bytes)),
        Values::UInt32(v) => ("<u4".to_owned(), le(v, u32::to_le_bytes)),
        Values::UInt64(v) => ("<u8".to_owned(), le(v, u64::to_le_bytes)),
        Values::String(v) => {
            // NumPy has no zero-width bytes dtype: an array of empty strings is S1.
            let width = v.iter().map(Vec::len).max().unwrap_or(0).max(1);
            let mut data = Vec::with_capacity(width * v.len());
            for s in v {
                data.extend_from_slice(s);
                data.resize(data.len() + width - s.len(), 0);
            }
            (format!("|S{width}"), data)
        }
    };
    let shape = match t.dims.len() {
        1 => format!("({},)", t.dims[0]),
        _ => format!(
            "({})",
            t.dims
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // magic (6) + version (2) + length (2) + header + '\n', a multiple of 64.
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + header.len() + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, fortran: bool, data: &[u8]) -> Vec<u8> {
        let header = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}\n",
            if fortran { "True" } else { "False" }
        );
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn round_trips_every_dtype() {
        let cases = [
            Tensor::new(vec![2], Values::Float(vec![1.5, -2.0])),
            Tensor::new(vec![1, 2], Values::Double(vec![0.1, 1e300])),
            Tensor::new(vec![3], Values::Int32(vec![1, -2, 3])),
            Tensor::new(vec![2], Values::Int64(vec![i64::MIN, i64::MAX])),
            Tensor::new(vec![2], Values::UInt8(vec![0, 255])),
            Tensor::new(vec![2], Values::Int8(vec![-128, 127])),
            Tensor::new(vec![2], Values::Int16(vec![-1, 1])),
            Tensor::new(vec![2], Values::UInt16(vec![0, 65535])),
            Tensor::new(vec![1], Values::UInt32(vec![u32::MAX])),
            Tensor::new(vec![1], Values::UInt64(vec![u64::MAX])),
            Tensor::new(vec![2], Values::Half(vec![0x3c00, 0xc000])),
            Tensor::new(vec![2, 1], Values::Bool(vec![true, false])),
            Tensor::new(
                vec![3],
                Values::String(vec![b"ab".to_vec(), vec![], b"c".to_vec()]),
            ),
            Tensor::new(vec![], Values::Float(vec![7.0])),
            Tensor::new(vec![0, 3], Values::Float(vec![])),
        ];
        for t in cases.into_iter().map(Option::unwrap) {
            let bytes = encode(&t);
            assert_eq!(bytes.iter().position(|&b| b == b'\n').unwrap() % 64, 63);
            assert_eq!(parse(&bytes, "t").unwrap(), t);
        }
    }

    #[test]
    fn reads_big_endian_unicode_and_fortran_order() {
        let t = parse(&npy(">i4", "(2,)", false, &[0, 0, 0, 1, 0, 0, 1, 0]), "t").unwrap();
        assert_eq!(t.values, Values::Int32(vec![1, 256]));
        let mut data = Vec::new();
        for s in ["hé", "x"] {
            let mut points: Vec<u32> = s.chars().map(|c| c as u32).collect();
            points.resize(2, 0);
            data.extend(points.iter().flat_map(|p| p.to_le_bytes()));
        }
        let t = parse(&npy("<U2", "(2,)", false, &data), "t").unwrap();
        assert_eq!(
            t.values,
            Values::String(vec!["hé".as_bytes().to_vec(), b"x".to_vec()])
        );
        // [[1, 2, 3], [4, 5, 6]] stored column by column, also among dimensions of 1.
        for shape in ["(2, 3)", "(1, 2, 1, 3, 1)"] {
            let t = parse(&npy("|u1", shape, true, &[1, 4, 2, 5, 3, 6]), "t").unwrap();
            assert_eq!(t.values, Values::UInt8(vec![1, 2, 3, 4, 5, 6]), "{shape}");
        }
        // A (2, 3, 2) array: element [i][j][k] is stored at i + 2j + 6k.
        let column: Vec<u8> = (0..12)
            .map(|o| (o % 2) * 100 + (o / 2 % 3) * 10 + o / 6)
            .collect();
        let t = parse(&npy("|u1", "(2, 3, 2)", true, &column), "t").unwrap();
        let row: Vec<u8> = (0..2)
            .flat_map(|i| (0..3).flat_map(move |j| (0..2).map(move |k| i * 100 + j * 10 + k)))
            .collect();
        assert_eq!(t.values, Values::UInt8(row));
    }

    #[test]
    fn refuses_hostile_headers_before_allocating() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"PK\x03\x04".to_vec(), "magic string"),
            (npy("|O", "(3,)", false, &[0; 24]), "only pickle can read"),
            (npy("<c8", "(1,)", false, &[0; 8]), "complex numbers"),
            (
                npy("<f4", "(1000000000, 1000000000, 1000000000)", false, &[]),
                "multiply beyond 2^63",
            ),
            (
                npy("<f4", "(4294967296, 4294967296)", false, &[]),
                "multiply beyond 2^63",
            ),
            (
                npy("<f8", "(1000000,)", false, &[0; 16]),
                "needs 8000000 bytes of data, but the file has 16",
            ),
            (npy("<f4", "(-1,)", false, &[]), "unexpected character"),
            (npy("<f4", "(1.5,)", false, &[]), "expected ','"),
            (
                npy("<f4", "((((((1,),),),),),)", false, &[]),
                "nesting too deep",
            ),
            (npy("<f4", "'x'", false, &[]), "no 'shape' tuple"),
            (npy("<f4", "(1, 'a')", false, &[0; 4]), "not an integer"),
            (
                npy(
                    "<f4",
                    &format!("({})", vec!["1"; 300].join(",")),
                    false,
                    &[0; 4],
                ),
                "at most 254",
            ),
            (
                npy("<S99999999999999999999", "(1,)", false, &[]),
                "unknown dtype",
            ),
            (npy("<U4611686018427387904", "(1,)", false, &[]), "too wide"),
            (npy("|S0", "(1000000000000,)", false, &[]), "zero-width"),
        ];
        for (bytes, expected) in cases {
            let err = parse(&bytes, "t.npy").unwrap_err().to_string();
            assert!(err.contains(expected), "{err} (wanted {expected})");
            assert!(err.contains("'t.npy'"), "{err}");
        }
        let mut long = MAGIC.to_vec();
        long.extend_from_slice(&[2, 0]);
        long.extend_from_slice(&u32::MAX.to_le_bytes());
        let err = parse(&long, "t").unwrap_err().to_string();
        assert!(err.contains("more than the 10000 NumPy reads"), "{err}");
        let mut short = MAGIC.to_vec();
        short.extend_from_slice(&[1, 0, 200, 0, b'{']);
        let err = parse(&short, "t").unwrap_err().to_string();
        assert!(
            err.contains("said to be 200 bytes, but only 1 follow"),
            "{err}"
        );
        for cut in 0..MAGIC.len() + 4 {
            assert!(parse(&npy("<f4", "(1,)", false, &[0; 4])[..cut], "t").is_err());
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = encode(&Tensor::new(vec![2, 2], Values::Int64(vec![1, 2, 3, 4])).unwrap());
        for cut in 0..bytes.len() {
            assert!(parse(&bytes[..cut], "t").is_err(), "cut at {cut}");
        }
    }
}
