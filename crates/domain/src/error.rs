//! The error every port may return for failures the domain cannot act on.

use std::error::Error as StdError;
use std::fmt;

/// An infrastructure failure (database down, corrupted row, ...). The domain
/// passes it through untouched; the server logs its cause chain once and
/// answers without details: 503 when the failure is a dependency that is
/// unavailable for now (worth retrying), 500 otherwise.
pub struct UnexpectedError {
    error: Box<dyn StdError + Send + Sync + 'static>,
    unavailable: bool,
}

impl UnexpectedError {
    pub fn new(error: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        Self {
            error: error.into(),
            unavailable: false,
        }
    }

    /// A dependency that cannot answer now (down, overloaded, failing over):
    /// the same request may succeed shortly.
    pub fn unavailable(error: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        Self {
            error: error.into(),
            unavailable: true,
        }
    }

    /// An unexpected failure described only by a message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self::new(message.into())
    }

    /// Whether a retry may succeed once the dependency is back.
    pub fn is_unavailable(&self) -> bool {
        self.unavailable
    }
}

impl fmt::Debug for UnexpectedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.error, f)
    }
}

impl fmt::Display for UnexpectedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl StdError for UnexpectedError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.error.source()
    }
}
