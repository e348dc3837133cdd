//! How much one request may make the server hold: every shape a request describes is checked
//! here before anything is allocated for it or handed to TensorFlow, and so is every tensor a
//! session returns before it is copied into a response.
//!
//! The budget follows from `--max-request-bytes` (B), so that a request which fits the body limit
//! is never refused by it unless it leans on TF Serving's broadcast (a `TensorProto` with fewer
//! values than its shape, whose last value fills the rest):
//! - the tensors of one request hold at most B elements together, and at most B bytes of string
//!   data (every element takes at least one byte on the wire, and every string byte is on it);
//! - the numeric values a broadcast repeats (elements beyond those given) take at most B bytes
//!   to hold together, since they are not on the wire at all;
//! - dimensions multiply to at most B even when another dimension is 0 (zeros count as 1), so a
//!   zero-element input cannot describe a huge tensor for the model to build from its shape;
//! - a rank above TensorFlow's 254 and dimensions whose product overflows are refused;
//! - the tensors of one response obey the same two bounds (an echo of any accepted request
//!   fits);
//! - the encoded images among a request's strings (tensor strings and `tf.Example` bytes
//!   features) claim at most 16 B bytes of pixels together, counted as three channels of
//!   floats, what a model's decoder (`DecodeImage` and a cast, as add-classify's image
//!   features do) allocates from the header: a PNG of a few hundred KiB can claim gigabytes.
//!   Only strings whose signature is unmistakably an image's are counted (PNG, JPEG, GIF, BMP,
//!   WebP headers, see [`super::image::claimed_pixels_if_image`]).
//!
//! Going over the budget is `RESOURCE_EXHAUSTED` (HTTP 429); a shape that cannot be a tensor is
//! `INVALID_ARGUMENT`. The checks are arithmetic on shapes and lengths, never per element.

use super::error::{Code, ServeError};

/// TensorFlow's `TensorShape::MaxDimensions()`; a larger rank aborts inside TensorFlow.
pub const MAX_RANK: usize = 254;

/// The per-request and per-response bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Elements of all tensors of one request (or of one response) together.
    pub max_elements: u64,
    /// Bytes of string data of all tensors of one request (or of one response) together.
    pub max_string_bytes: u64,
    /// Bytes the numeric values TF Serving's broadcast repeats (elements beyond those given)
    /// take to hold, over all tensors of one request.
    pub max_filled_bytes: u64,
    /// Bytes the encoded images among one request's strings claim once decoded.
    pub max_image_bytes: u64,
}

/// What one decoded pixel is counted as: three channels of 4-byte floats.
pub const IMAGE_PIXEL_BYTES: u64 = 12;

impl Limits {
    /// The bounds that follow from `--max-request-bytes`.
    pub fn from_request_bytes(bytes: usize) -> Self {
        let b = bytes as u64;
        Limits {
            max_elements: b,
            max_string_bytes: b,
            max_filled_bytes: b,
            max_image_bytes: b.saturating_mul(16),
        }
    }

    /// The same bounds for `n` requests together (one batched session run).
    pub fn times(self, n: usize) -> Self {
        Limits {
            max_elements: self.max_elements.saturating_mul(n as u64),
            max_string_bytes: self.max_string_bytes.saturating_mul(n as u64),
            max_filled_bytes: self.max_filled_bytes.saturating_mul(n as u64),
            max_image_bytes: self.max_image_bytes.saturating_mul(n as u64),
        }
    }

    /// An empty budget for one request's inputs, or one response's outputs.
    pub fn budget(self) -> Budget {
        Budget {
            limits: self,
            elements: 0,
            string_bytes: 0,
            filled_bytes: 0,
            image_bytes: 0,
        }
    }
}

impl Default for Limits {
    /// The bounds of the default `--max-request-bytes` (64 MiB).
    fn default() -> Self {
        Limits::from_request_bytes(64 << 20)
    }
}

/// What the tensors of one request (or response) have used of their [`Limits`] so far.
#[derive(Debug, Clone)]
pub struct Budget {
    limits: Limits,
    elements: u64,
    string_bytes: u64,
    filled_bytes: u64,
    image_bytes: u64,
}

/// How a shape fails to be a tensor TensorFlow accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeError {
    TooManyDimensions(usize),
    Negative(i64),
    Overflow,
}

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShapeError::TooManyDimensions(rank) => write!(
                f,
                "the shape has {rank} dimensions; TensorFlow allows at most {MAX_RANK}"
            ),
            ShapeError::Negative(d) => write!(f, "the shape has a negative dimension ({d})"),
            ShapeError::Overflow => write!(f, "the shape's dimensions multiply beyond 2^63"),
        }
    }
}

/// The element count of a shape, and the product of its dimensions with zeros counted as 1.
pub fn shape_size(dims: &[i64]) -> Result<(u64, u64), ShapeError> {
    if dims.len() > MAX_RANK {
        return Err(ShapeError::TooManyDimensions(dims.len()));
    }
    let mut elements = 1u64;
    let mut extent = 1u64;
    for &d in dims {
        let d = u64::try_from(d).map_err(|_| ShapeError::Negative(d))?;
        elements = elements.checked_mul(d).ok_or(ShapeError::Overflow)?;
        // Only the budget reads the extent: saturating is enough to refuse it.
        extent = extent.saturating_mul(d.max(1));
    }
    if elements > i64::MAX as u64 {
        return Err(ShapeError::Overflow);
    }
    Ok((elements, extent))
}

/// A shape for a message: a long one is cut after a few dimensions.
fn shape_text(dims: &[i64]) -> String {
    const SHOWN: usize = 8;
    if dims.len() <= SHOWN {
        crate::proto_ext::shape_debug(dims)
    } else {
        let head = crate::proto_ext::shape_debug(&dims[..SHOWN]);
        format!(
            "{},... ({} dimensions)]",
            &head[..head.len() - 1],
            dims.len()
        )
    }
}

/// Adds `amount` to the count `used` unless the sum passes `max`: then the count is left as it
/// is and the error is RESOURCE_EXHAUSTED with the message `refusal` writes for `max`.
fn take(
    used: &mut u64,
    amount: u64,
    max: u64,
    refusal: impl FnOnce(u64) -> String,
) -> Result<(), ServeError> {
    let sum = used.saturating_add(amount);
    if sum > max {
        return Err(ServeError::new(Code::ResourceExhausted, refusal(max)));
    }
    *used = sum;
    Ok(())
}

impl Budget {
    /// Takes the elements of request tensor `what` of shape `dims` from the budget and returns
    /// its element count. A shape that is no tensor is an error naming `what`, in TF Serving's
    /// words (`tensor parsing error: x`) followed by the reason.
    pub fn input(&mut self, what: &str, dims: &[i64]) -> Result<usize, ServeError> {
        let (elements, extent) = shape_size(dims)
            .map_err(|e| ServeError::invalid(format!("tensor parsing error: {what} ({e})")))?;
        take(
            &mut self.elements,
            extent,
            self.limits.max_elements,
            |max| {
                let zeros = if elements < extent {
                    " (dimensions of 0 count as 1: a model may build tensors from the others)"
                } else {
                    ""
                };
                format!(
                    "input '{what}' of shape {} describes {extent} elements{zeros}; the inputs of one request may describe at most {max} together. Send fewer values, or raise --max-request-bytes",
                    shape_text(dims),
                )
            },
        )?;
        usize::try_from(elements).map_err(|_| {
            ServeError::new(
                Code::ResourceExhausted,
                format!("input '{what}' does not fit in memory"),
            )
        })
    }

    /// Takes `bytes` of string data of request tensor `what` from the budget.
    pub fn input_strings(&mut self, what: &str, bytes: u64) -> Result<(), ServeError> {
        take(
            &mut self.string_bytes,
            bytes,
            self.limits.max_string_bytes,
            |max| {
                format!(
                    "input '{what}' holds {bytes} bytes of strings; the inputs of one request may hold at most {max} together. Send shorter or fewer strings, or raise --max-request-bytes"
                )
            },
        )
    }

    /// Takes from the budget the pixels the encoded images among `strings` (of request input
    /// `what`, each counted `times` times) claim, before any decoder sees them. A string that
    /// is not unmistakably an image costs nothing.
    pub fn input_images<'a>(
        &mut self,
        what: &str,
        strings: impl IntoIterator<Item = &'a [u8]>,
        times: u64,
    ) -> Result<(), ServeError> {
        let pixels = strings
            .into_iter()
            .filter_map(super::image::claimed_pixels_if_image)
            .fold(0u64, u64::saturating_add);
        if pixels == 0 {
            return Ok(());
        }
        let bytes = pixels
            .saturating_mul(IMAGE_PIXEL_BYTES)
            .saturating_mul(times);
        take(
            &mut self.image_bytes,
            bytes,
            self.limits.max_image_bytes,
            |max| {
                format!(
                    "the images in input '{what}' claim {pixels} pixels, {bytes} bytes once decoded (3 channels of floats); the images of one request may claim at most {max} bytes together. Send smaller or fewer images, or raise --max-request-bytes"
                )
            },
        )
    }

    /// Takes from the budget the `bytes` that request tensor `what` needs to hold the `elements`
    /// numeric values its last given value is repeated into: they are not on the wire, so a
    /// request of a few bytes could otherwise make the server hold B elements of 8 bytes, twice
    /// (smtool's copy and TensorFlow's).
    pub fn input_filled(
        &mut self,
        what: &str,
        elements: u64,
        bytes: u64,
    ) -> Result<(), ServeError> {
        take(
            &mut self.filled_bytes,
            bytes,
            self.limits.max_filled_bytes,
            |max| {
                format!(
                    "input '{what}' repeats its last value into {elements} more elements ({bytes} bytes to hold); the values one request leaves to repeat may take at most {max} bytes together. Send the values, or raise --max-request-bytes"
                )
            },
        )
    }

    /// Takes session output `what` (its shape, and its string bytes) from the budget before it
    /// is copied into the response.
    pub fn output(&mut self, what: &str, dims: &[i64], bytes: u64) -> Result<usize, ServeError> {
        let (elements, _) = shape_size(dims).map_err(|e| {
            ServeError::new(
                Code::Internal,
                format!("TensorFlow returned output '{what}' of an impossible shape ({e})"),
            )
        })?;
        let elements_used = self.elements.saturating_add(elements);
        let bytes_used = self.string_bytes.saturating_add(bytes);
        if elements_used > self.limits.max_elements || bytes_used > self.limits.max_string_bytes {
            let what_size = if bytes > 0 {
                format!("{elements} elements and {bytes} bytes of strings")
            } else {
                format!("{elements} elements")
            };
            return Err(ServeError::new(
                Code::ResourceExhausted,
                format!(
                    "output '{what}' of shape {} holds {what_size}; one response may hold at most {} elements and {} bytes of strings together. Ask for less, or raise --max-request-bytes",
                    shape_text(dims),
                    self.limits.max_elements,
                    self.limits.max_string_bytes
                ),
            ));
        }
        self.elements = elements_used;
        self.string_bytes = bytes_used;
        usize::try_from(elements).map_err(|_| {
            ServeError::new(
                Code::ResourceExhausted,
                format!("output '{what}' does not fit in memory"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_checked_before_anything_is_sized_by_them() {
        type Case<'a> = (&'a [i64], Result<(u64, u64), ShapeError>);
        let rank_255 = vec![1i64; 255];
        let rank_254 = vec![1i64; 254];
        let cases: &[Case] = &[
            (&[], Ok((1, 1))),
            (&[2, 3], Ok((6, 6))),
            (&[0, 5], Ok((0, 5))),
            (&[0, 0], Ok((0, 1))),
            (&rank_254, Ok((1, 1))),
            (&rank_255, Err(ShapeError::TooManyDimensions(255))),
            (&[3, -1], Err(ShapeError::Negative(-1))),
            (&[1 << 32, 1 << 32], Err(ShapeError::Overflow)),
            (&[0, 1 << 32, 1 << 32], Ok((0, u64::MAX))),
            (&[i64::MAX, 2], Err(ShapeError::Overflow)),
            (&[i64::MAX], Ok((i64::MAX as u64, i64::MAX as u64))),
        ];
        for (dims, want) in cases {
            assert_eq!(&shape_size(dims), want, "{dims:?}");
        }
    }

    #[test]
    fn the_budget_counts_all_inputs_of_a_request_together() {
        let mut b = Limits::from_request_bytes(100).budget();
        assert_eq!(b.input("a", &[10, 6]), Ok(60));
        assert_eq!(b.input("b", &[0, 40]), Ok(0));
        let e = b.input("c", &[1]).unwrap_err();
        e.assert_is(Code::ResourceExhausted, |m| {
            m.starts_with("input 'c' of shape [1] describes 1 elements")
        });
        assert!(e.message.contains("--max-request-bytes"), "{}", e.message);
        // A zero-element input with a huge dimension is refused, and says why.
        let e = Limits::from_request_bytes(100)
            .budget()
            .input("z", &[0, 1 << 40])
            .unwrap_err();
        e.assert_is(Code::ResourceExhausted, |m| {
            m.contains("dimensions of 0 count as 1")
        });
        // Broken shapes keep TF Serving's wording and add the reason.
        let e = Limits::default()
            .budget()
            .input("x", &vec![1; 300])
            .unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        assert_eq!(
            e.message,
            "tensor parsing error: x (the shape has 300 dimensions; TensorFlow allows at most 254)"
        );
        let mut s = Limits::from_request_bytes(10).budget();
        assert_eq!(s.input_strings("s", 6), Ok(()));
        assert_eq!(
            s.input_strings("s", 5).unwrap_err().code,
            Code::ResourceExhausted
        );
    }

    #[test]
    fn outputs_share_one_response_budget() {
        let mut b = Limits::from_request_bytes(100).budget();
        assert_eq!(b.output("y", &[0, 1 << 40], 0), Ok(0));
        assert_eq!(b.output("y", &[50], 0), Ok(50));
        assert_eq!(b.output("s", &[50], 100), Ok(50));
        let e = b.output("t", &[1], 0).unwrap_err();
        e.assert_is(Code::ResourceExhausted, |m| {
            m.starts_with("output 't' of shape [1] holds 1 elements")
        });
        let mut b = Limits::from_request_bytes(100).times(3).budget();
        assert_eq!(b.output("y", &[300], 0), Ok(300));
    }

    #[test]
    fn long_shapes_are_cut_in_messages() {
        assert_eq!(shape_text(&[1, 2]), "[1,2]");
        assert_eq!(
            shape_text(&[1; 300]),
            "[1,1,1,1,1,1,1,1,... (300 dimensions)]"
        );
    }
}
