//! The one error type of the codec.

use thiserror::Error;

/// Why bytes could not be decoded (or a frame could not be written).
///
/// Every variant is raised *before* anything is allocated from a peer-supplied length, so a
/// hostile peer can make decoding fail but never make it allocate or panic.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// The input ended before the record did.
    #[error("truncated input: needed {needed} more bytes, {remaining} left")]
    Truncated {
        /// Bytes the next field needs.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length or count field is below -1 (the jute null marker).
    #[error("negative length {0}")]
    NegativeLength(i32),
    /// A length or count field claims more than the bytes left in the frame.
    #[error("length {len} exceeds the {remaining} bytes left")]
    LengthTooLarge {
        /// The claimed length.
        len: i32,
        /// The bytes actually left.
        remaining: usize,
    },
    /// A string field is not valid UTF-8.
    #[error("string field is not valid UTF-8")]
    InvalidUtf8,
    /// A frame length prefix is negative.
    #[error("negative frame length {0}")]
    NegativeFrameLength(i32),
    /// A frame length prefix exceeds the configured maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// The claimed frame length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// Bytes were left over after a record that must fill its frame.
    #[error("{0} trailing bytes after record")]
    TrailingBytes(usize),
    /// A numeric field carries a value the protocol does not define where one is required.
    #[error("invalid {what}: {value}")]
    InvalidValue {
        /// Which field.
        what: &'static str,
        /// The value found.
        value: i64,
    },
    /// An I/O error from the transport (framing only).
    #[error("i/o error: {0}")]
    Io(String),
}

impl From<std::io::Error> for ProtoError {
    fn from(e: std::io::Error) -> Self {
        ProtoError::Io(e.to_string())
    }
}

/// Result alias for the codec.
pub type Result<T, E = ProtoError> = std::result::Result<T, E>;
