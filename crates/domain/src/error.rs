//! The error every port may return for failures the domain cannot act on.

use std::error::Error as StdError;
use std::fmt;

/// An infrastructure failure (database down, corrupted row, ...). The domain
/// passes it through untouched; the server logs its cause chain once and
/// answers 500 without details.
pub struct UnexpectedError(Box<dyn StdError + Send + Sync + 'static>);

impl UnexpectedError {
    pub fn new(error: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        Self(error.into())
    }

    /// An unexpected failure described only by a message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self(message.into().into())
    }
}

impl fmt::Debug for UnexpectedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for UnexpectedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for UnexpectedError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}
