//! The gRPC Unix socket's byte stream, with the `:authority` gRPC's C core sends over it made
//! acceptable to the HTTP/2 server.
//!
//! For a `unix:PATH` target, gRPC's C core (grpcio, and so every TF Serving Python client) sends
//! the socket path, percent-encoded, as the request's `:authority` (`tmp%2Fserving.sock`). That
//! is no URI authority, and the `h2` crate under tonic resets such a stream with PROTOCOL_ERROR
//! before any service code runs; h2 has no setting to accept it. TF Serving's C++ server
//! ignores the authority, so its clients never notice. Hand-rolled for that fidelity: this
//! reader follows the HTTP/2 frames the client sends and, inside HEADERS and CONTINUATION
//! frames only, rewrites the value of a literal `:authority` header field (the form the C core
//! writes: a new-name literal, not Huffman-coded) in place, byte for byte, replacing characters
//! an authority cannot hold with `-`. Lengths do not change, so frame sizes and the HPACK table
//! stay as the client computed them. Everything else passes through untouched, and memory is
//! bounded by one frame (at most the 16 MiB HTTP/2 allows).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The client connection preface, passed through as it is.
const PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
/// The largest frame payload HTTP/2 allows (2^24 - 1).
const MAX_FRAME: usize = (1 << 24) - 1;
/// A new-name literal's name, as HPACK writes it: length 10, then the name.
const AUTHORITY_NAME: &[u8] = b"\x0a:authority";

/// Where in the client's byte stream the reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Bytes of the connection preface still to pass.
    Preface(usize),
    /// Collecting a frame header (in `pending`).
    Header,
    /// Collecting a HEADERS or CONTINUATION payload of this length (in `pending`).
    Headers(usize),
    /// Bytes of another frame's payload still to pass.
    Other(usize),
}

/// A stream whose incoming HTTP/2 `:authority` values are made valid; see the module docs.
pub struct AuthorityFix<S> {
    inner: S,
    state: State,
    /// Bytes read but not yet handed on: a partial frame header or headers payload.
    pending: Vec<u8>,
    /// Bytes ready to hand to the reader.
    ready: Vec<u8>,
    ready_at: usize,
}

impl<S> AuthorityFix<S> {
    pub fn new(inner: S) -> Self {
        AuthorityFix {
            inner,
            state: State::Preface(PREFACE_LEN),
            pending: Vec::new(),
            ready: Vec::new(),
            ready_at: 0,
        }
    }

    /// Takes `input` (bytes just read) through the frame state machine into `ready`.
    fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            match self.state {
                State::Preface(left) | State::Other(left) => {
                    let n = left.min(input.len());
                    self.ready.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.state = match (self.state, left - n) {
                        (_, 0) => State::Header,
                        (State::Preface(_), rest) => State::Preface(rest),
                        (_, rest) => State::Other(rest),
                    };
                }
                State::Header => {
                    let n = (FRAME_HEADER_LEN - self.pending.len()).min(input.len());
                    self.pending.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if self.pending.len() < FRAME_HEADER_LEN {
                        continue;
                    }
                    let h = &self.pending;
                    let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                    let kind = h[3];
                    self.ready.append(&mut self.pending);
                    self.state = if len == 0 {
                        State::Header
                    } else if (kind == HEADERS || kind == CONTINUATION) && len <= MAX_FRAME {
                        State::Headers(len)
                    } else {
                        State::Other(len)
                    };
                }
                State::Headers(len) => {
                    let n = (len - self.pending.len()).min(input.len());
                    self.pending.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if self.pending.len() == len {
                        sanitize_authority(&mut self.pending);
                        self.ready.append(&mut self.pending);
                        self.state = State::Header;
                    }
                }
            }
        }
    }
}

/// Rewrites, in place, the values of new-name literal `:authority` fields in a header block
/// fragment so that they hold only characters an authority may: letters, digits, `.` and `-`.
fn sanitize_authority(block: &mut [u8]) {
    let mut from = 0;
    while let Some(at) = find(&block[from..], AUTHORITY_NAME) {
        let len_at = from + at + AUTHORITY_NAME.len();
        from = len_at;
        let Some(&len) = block.get(len_at) else {
            return;
        };
        // Huffman-coded (high bit) or a multi-byte length: left as it is.
        if len & 0x80 != 0 || len == 0x7f {
            continue;
        }
        let value = len_at + 1..len_at + 1 + usize::from(len);
        let Some(value) = block.get_mut(value) else {
            return;
        };
        for b in value {
            if !(b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-') {
                *b = b'-';
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.ready_at < this.ready.len() {
                let n = (this.ready.len() - this.ready_at).min(buf.remaining());
                buf.put_slice(&this.ready[this.ready_at..this.ready_at + n]);
                this.ready_at += n;
                if this.ready_at == this.ready.len() {
                    this.ready.clear();
                    this.ready_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => {
                    let got = read.filled();
                    if got.is_empty() {
                        // End of stream: whatever is held goes on as it is.
                        if this.pending.is_empty() {
                            return Poll::Ready(Ok(()));
                        }
                        this.ready.append(&mut this.pending);
                        continue;
                    }
                    let got = got.to_vec();
                    this.feed(&got);
                }
                other => return other,
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: tonic::transport::server::Connected> tonic::transport::server::Connected
    for AuthorityFix<S>
{
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            kind,
            4,
            0,
            0,
            0,
            1,
        ];
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn rewrites_the_unix_authority_in_headers_only_byte_for_byte() {
        let block = b"@\x05:path\x04/x/y@\n:authority\x0etmp%2Fcap.sock\x83\x86".to_vec();
        let mut stream = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        stream.extend(frame(4, &[0; 6]));
        // A DATA frame with the same bytes stays as it is.
        stream.extend(frame(0, &block));
        stream.extend(frame(HEADERS, &block));
        for chunk_size in [1, 7, stream.len()] {
            let mut fix = AuthorityFix::new(());
            for chunk in stream.chunks(chunk_size) {
                fix.feed(chunk);
            }
            assert_eq!(fix.ready.len(), stream.len());
            let data_end = stream.len() - block.len() - FRAME_HEADER_LEN;
            assert_eq!(fix.ready[..data_end], stream[..data_end]);
            let want = b"@\x05:path\x04/x/y@\n:authority\x0etmp-2Fcap.sock\x83\x86";
            assert_eq!(&fix.ready[data_end + FRAME_HEADER_LEN..], want);
        }
    }

    #[test]
    fn leaves_huffman_and_truncated_values_alone() {
        let mut huffman = b"@\n:authority\x85abcde".to_vec();
        sanitize_authority(&mut huffman);
        assert_eq!(huffman, b"@\n:authority\x85abcde");
        let mut short = b"@\n:authority\x0eab%".to_vec();
        sanitize_authority(&mut short);
        assert_eq!(short, b"@\n:authority\x0eab%");
    }
}
