//! The one error of `smtool serve`: TensorFlow Serving's canonical code (the numbering
//! TensorFlow, gRPC and TF Serving share) and its message. A request that fails, a session run
//! that fails, a version that fails to load and a config reload that is refused all carry it;
//! each transport maps the code to its own status (`http::http_status`, `grpc::status`).

pub use crate::proto::tensorflow::error::Code;

/// An error with TensorFlow Serving's code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ServeError {
    pub code: Code,
    pub message: String,
}

impl ServeError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ServeError {
            code,
            message: message.into(),
        }
    }

    /// `INVALID_ARGUMENT`: the most common request error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    /// An error with the code TensorFlow's C API reported (an unknown number is `UNKNOWN`).
    pub fn from_code(code: i32, message: impl Into<String>) -> Self {
        Self::new(Code::try_from(code).unwrap_or(Code::Unknown), message)
    }
}

#[cfg(test)]
impl ServeError {
    /// For tests: asserts the error's code and that its message passes `check` (e.g.
    /// `|m| m.contains("...")`), showing the message when either does not hold.
    #[track_caller]
    pub(crate) fn assert_is(&self, code: Code, check: impl FnOnce(&str) -> bool) {
        assert_eq!(self.code, code, "{}", self.message);
        assert!(check(&self.message), "{}", self.message);
    }
}

pub type Result<T, E = ServeError> = std::result::Result<T, E>;
