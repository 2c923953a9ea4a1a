//! Why a file or a row is refused.

use std::fmt;

/// Why a whole file was refused. Nothing is written for such a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    pub kind: FileErrorKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileErrorKind {
    Empty,
    HeaderOnly,
    Encoding,
    Truncated,
    Header,
    TooManyRows,
    /// Not the file's fault: the target could not be read.
    Target,
}

impl FileErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileErrorKind::Empty => "empty file",
            FileErrorKind::HeaderOnly => "no data rows",
            FileErrorKind::Encoding => "bad encoding",
            FileErrorKind::Truncated => "truncated file",
            FileErrorKind::Header => "bad header",
            FileErrorKind::TooManyRows => "too many rows",
            FileErrorKind::Target => "target unavailable",
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for FileError {}

pub(super) fn file_error(kind: FileErrorKind, message: impl Into<String>) -> FileError {
    FileError {
        kind,
        message: message.into(),
    }
}

/// Why one row was refused; the other rows go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// The column as the file names it, when the problem is in one cell.
    pub column: Option<String>,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(c) => write!(f, "column {c:?}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}
