//! Why a file or a row is refused.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a whole file was refused. Nothing is written for such a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileError {
    pub kind: FileErrorKind,
    /// What is wrong and what to do, as a sentence (it names the position too).
    pub message: String,
    /// The physical line (from 1) where the problem is, when there is one.
    pub line: Option<u64>,
    /// The byte offset in the file (from 0, byte-order mark included).
    pub byte: Option<u64>,
    /// The header cell concerned, as the file spells it.
    pub column: Option<String>,
}

/// The classes of whole-file refusals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileErrorKind {
    Empty,
    HeaderOnly,
    Encoding,
    Truncated,
    Header,
    TooManyRows,
    /// A workbook that cannot be read: corrupt, password-protected, with
    /// macros, another spreadsheet format, or without the policy's sheet.
    Workbook,
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
            FileErrorKind::Workbook => "unreadable workbook",
            FileErrorKind::Target => "target unavailable",
        }
    }
}

impl FileError {
    pub fn new(kind: FileErrorKind, message: impl Into<String>) -> FileError {
        FileError {
            kind,
            message: message.into(),
            line: None,
            byte: None,
            column: None,
        }
    }

    pub fn at_line(mut self, line: u64) -> FileError {
        self.line = Some(line);
        self
    }

    pub fn at_byte(mut self, byte: u64) -> FileError {
        self.byte = Some(byte);
        self
    }

    pub fn in_column(mut self, column: &str) -> FileError {
        self.column = Some(column.to_string());
        self
    }

    /// Not the file's fault: the target could not be read, so the file was
    /// not processed.
    pub fn target(message: String) -> FileError {
        FileError::new(FileErrorKind::Target, message)
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for FileError {}

pub(super) fn file_error(kind: FileErrorKind, message: impl Into<String>) -> FileError {
    FileError::new(kind, message)
}

/// Why one row was refused; the other rows go on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    pub kind: RowErrorKind,
    /// The column as the file names it, when the problem is in one cell.
    pub column: Option<String>,
    /// The column's letter in a workbook ("E"); none in a CSV file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub letter: Option<String>,
}

/// The classes of row problems, each with its details as fields. Values
/// are the file's own (trimmed); a password never appears in one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RowErrorKind {
    /// The CSV parser could not read the record.
    Unreadable { reason: String },
    /// The record has another number of fields than the header.
    FieldCount {
        found: usize,
        expected: usize,
        delimiter: char,
    },
    /// A control character in a value; `code` is its code point, except in
    /// a password.
    ControlCharacter {
        code: Option<u32>,
        /// Where in the cell, in characters from 1 (none in a password).
        #[serde(default)]
        position: Option<usize>,
    },
    /// An invisible formatting character (Unicode category Cf: zero-width
    /// space or joiner, a byte-order mark, a bidirectional override, …).
    InvisibleCharacter {
        code: u32,
        /// Where in the cell, in characters from 1.
        position: usize,
        /// The policy may remove it instead (`strip_invisible`); never for the key.
        strippable: bool,
    },
    /// An empty cell where the policy requires a value (`field` is the
    /// policy's name for it).
    Missing { field: String },
    /// Longer than the policy allows, in characters.
    TooLong { length: usize, max: usize },
    MalformedEmail {
        value: String,
        /// What is wrong, when more can be said than "no @".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The workbook cell holds an Excel error (`#N/A`, `#REF!`, …), usually
    /// from a formula.
    CellError { error: String },
    /// A workbook row with a value to the right of the header's last column.
    OutsideHeader { letter: String },
    /// Not one of the field's allowed values.
    NotAllowed { value: String, allowed: Vec<String> },
    /// A group the policy does not manage.
    UnmanagedGroup {
        group: String,
        policy: String,
        managed: Vec<String>,
    },
    /// A status that is neither an active nor a leaver value.
    BadStatus {
        value: String,
        active: Vec<String>,
        leaver: Vec<String>,
    },
    /// Not a yes/no value ("change password next time").
    BadFlag { value: String },
    /// The key is one of the policy's protected accounts.
    Protected { key: String },
    /// Rows with the same key (case-insensitive), on these lines.
    DuplicateKey { lines: Vec<u64>, keep_first: bool },
    /// Rows with the same email address (case-insensitive), on these lines.
    DuplicateEmail { lines: Vec<u64>, keep_first: bool },
    /// A generated field (`generate`) could not be given a value.
    Generate { field: String, reason: String },
    /// A start or end date in none of `lifecycle.date_formats`.
    BadDate { value: String, formats: Vec<String> },
    /// The end date is before the start date.
    EndBeforeStart { start: String, end: String },
    /// `sync.adopt`: more than one unmanaged account has the row's value.
    AdoptAmbiguous {
        field: String,
        value: String,
        accounts: Vec<String>,
    },
}

impl RowErrorKind {
    /// A stable name for the class (for logs, the journal, the API).
    pub fn as_str(&self) -> &'static str {
        match self {
            RowErrorKind::Unreadable { .. } => "unreadable",
            RowErrorKind::FieldCount { .. } => "field-count",
            RowErrorKind::ControlCharacter { .. } => "control-character",
            RowErrorKind::InvisibleCharacter { .. } => "invisible-character",
            RowErrorKind::CellError { .. } => "cell-error",
            RowErrorKind::OutsideHeader { .. } => "outside-header",
            RowErrorKind::Missing { .. } => "missing",
            RowErrorKind::TooLong { .. } => "too-long",
            RowErrorKind::MalformedEmail { .. } => "malformed-email",
            RowErrorKind::NotAllowed { .. } => "not-allowed",
            RowErrorKind::UnmanagedGroup { .. } => "unmanaged-group",
            RowErrorKind::BadStatus { .. } => "bad-status",
            RowErrorKind::BadFlag { .. } => "bad-flag",
            RowErrorKind::Protected { .. } => "protected",
            RowErrorKind::DuplicateKey { .. } => "duplicate-key",
            RowErrorKind::DuplicateEmail { .. } => "duplicate-email",
            RowErrorKind::Generate { .. } => "generate",
            RowErrorKind::AdoptAmbiguous { .. } => "adopt-ambiguous",
            RowErrorKind::BadDate { .. } => "bad-date",
            RowErrorKind::EndBeforeStart { .. } => "end-before-start",
        }
    }
}

impl RowError {
    /// A problem in one cell.
    pub fn in_column(column: &str, kind: RowErrorKind) -> RowError {
        RowError {
            kind,
            column: Some(column.to_string()),
            letter: None,
        }
    }

    /// A problem of the whole row.
    pub fn in_row(kind: RowErrorKind) -> RowError {
        RowError {
            kind,
            column: None,
            letter: None,
        }
    }
}

impl fmt::Display for RowErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowErrorKind::Unreadable { reason } => write!(f, "unreadable record: {reason}"),
            RowErrorKind::FieldCount {
                found,
                expected,
                delimiter,
            } => write!(
                f,
                "has {found} fields but the header has {expected}; check for an unquoted delimiter ({delimiter:?}) in a value"
            ),
            RowErrorKind::ControlCharacter {
                code: Some(c),
                position: Some(p),
            } => write!(
                f,
                "contains a control character (U+{c:04X}{}) at position {p}; remove it",
                char_name(*c)
            ),
            RowErrorKind::ControlCharacter { code: Some(c), .. } => {
                write!(f, "contains a control character (U+{c:04X}); remove it")
            }
            RowErrorKind::ControlCharacter { code: None, .. } => {
                f.write_str("contains a control character; remove it")
            }
            RowErrorKind::InvisibleCharacter {
                code,
                position,
                strippable,
            } => {
                write!(
                    f,
                    "contains an invisible character (U+{code:04X}{}) at position {position}; remove it",
                    char_name(*code)
                )?;
                if *strippable {
                    f.write_str(" (or set strip_invisible = true for this field in the policy)")?;
                }
                Ok(())
            }
            RowErrorKind::CellError { error } => {
                write!(f, "the cell holds the Excel error {error}; fix the formula or type the value")
            }
            RowErrorKind::OutsideHeader { letter } => write!(
                f,
                "has a value in column {letter}, right of the header's last column; give the column a header or clear it"
            ),
            RowErrorKind::Missing { field } if field == "username" => {
                f.write_str("is empty; every row needs a username")
            }
            RowErrorKind::Missing { field } => write!(f, "is empty; {field} is required"),
            RowErrorKind::TooLong { length, max } => {
                write!(f, "is {length} characters long; at most {max} are allowed")
            }
            RowErrorKind::MalformedEmail { value, reason: None } => {
                write!(f, "{value:?} is not an email address (name@domain.tld); correct it")
            }
            RowErrorKind::MalformedEmail {
                value,
                reason: Some(why),
            } => write!(f, "{value:?} is not an email address: {why}; correct it"),
            RowErrorKind::NotAllowed { value, allowed } => {
                write!(f, "{value:?} is not allowed; use one of: {}", allowed.join(", "))
            }
            RowErrorKind::UnmanagedGroup {
                group,
                policy,
                managed,
            } => write!(
                f,
                "group {group:?} is not managed by policy {policy:?} (managed: {}); fix the name or add it to groups.managed",
                managed.join(", ")
            ),
            RowErrorKind::BadStatus { value, active, leaver } => write!(
                f,
                "{value:?} is not a status; use empty or one of {} for active, {} for a leaver",
                active.join("/"),
                leaver.join("/")
            ),
            RowErrorKind::BadFlag { value } => write!(f, "{value:?} is not 1/0, yes/no or true/false"),
            RowErrorKind::Protected { key } => {
                write!(f, "{key} is a protected account (sync.protected); dirsync never changes it")
            }
            RowErrorKind::DuplicateKey { lines, keep_first } => duplicate(f, "username", lines, *keep_first),
            RowErrorKind::DuplicateEmail { lines, keep_first } => duplicate(f, "email", lines, *keep_first),
            RowErrorKind::Generate { field, reason } => write!(f, "cannot generate {field}: {reason}"),
            RowErrorKind::BadDate { value, formats } => write!(
                f,
                "{value:?} is not a date in the expected format ({}: lifecycle.date_formats); correct it",
                formats.join(" or ")
            ),
            RowErrorKind::EndBeforeStart { start, end } => {
                write!(f, "the end date {end} is before the start date {start}; correct one of them")
            }
            RowErrorKind::AdoptAmbiguous { field, value, accounts } => write!(
                f,
                "{value:?} is the {field} of {} existing accounts ({}), so none is adopted; give the row the username of the right one, or make the {field} unique in the target",
                accounts.len(),
                accounts.join(", ")
            ),
        }
    }
}

fn duplicate(f: &mut fmt::Formatter<'_>, what: &str, lines: &[u64], keep_first: bool) -> fmt::Result {
    let at = lines.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    let hint = if keep_first {
        "the first row is kept; remove the others"
    } else {
        "none of them is applied; keep one row per person"
    };
    write!(f, "duplicate {what} (case-insensitive) on lines {at}; {hint}")
}

/// " zero-width space" for the characters people meet, else nothing.
fn char_name(code: u32) -> &'static str {
    match code {
        0x00 => " NUL",
        0x09 => " tab",
        0x0A => " line feed",
        0x0D => " carriage return",
        0x00AD => " soft hyphen",
        0x200B => " zero-width space",
        0x200C => " zero-width non-joiner",
        0x200D => " zero-width joiner",
        0x200E => " left-to-right mark",
        0x200F => " right-to-left mark",
        0x202A..=0x202E => " bidirectional override",
        0x2066..=0x2069 => " bidirectional isolate",
        0x2028 => " line separator",
        0x2029 => " paragraph separator",
        0x2060 => " word joiner",
        0xFEFF => " byte-order mark",
        _ => "",
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.letter, &self.column) {
            (Some(l), Some(c)) => write!(f, "column {l}, {c:?}: {}", self.kind),
            (None, Some(c)) => write!(f, "column {c:?}: {}", self.kind),
            (_, None) => write!(f, "{}", self.kind),
        }
    }
}
