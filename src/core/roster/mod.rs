//! Bytes → [`Roster`]: decoding, delimiter sniffing, header aliases, typed
//! rows, and a precise reason for every row or file that is refused.
//!
//! Pure: it takes bytes, never a path, so tests pass `&[u8]`.
//!
//! - `decode`: bytes → text (BOM, UTF-16, Windows-1252); `text`: that
//!   text, the file's own bytes when they are UTF-8.
//! - `records`: delimiter, header, records with their lines.
//! - `checks`: one record → a [`Person`] or its [`RowError`]s; `rows`:
//!   the records as read, made a [`Roster`].
//! - `duplicates`: duplicate keys and email addresses across the file.
//! - `error`: [`FileError`] and [`RowError`].

mod checks;
mod decode;
mod duplicates;
mod error;
mod hygiene;
mod records;
mod rows;
mod sheet;
mod text;
#[cfg(test)]
mod workbook_tests;

pub use decode::decode;
pub use error::{FileError, FileErrorKind, RowError, RowErrorKind};
pub use hygiene::{email_problem, is_email};
pub use records::{record_start, records, RecordIter};
pub use sheet::{letter, Sheet, SheetRow};
pub use text::Text;

use std::collections::BTreeMap;

use super::policy::{Column, Policy};
use super::types::{Origin, Person, UserKey};
use checks::key_of;
use error::file_error;
use records::{ends_inside_quotes, map_header, read_header, sniff};
use rows::Rows;

/// One data record of the file, in input order.
#[derive(Clone, Debug)]
pub enum Entry {
    /// Index into [`Roster::persons`].
    Valid(usize),
    Rejected(Box<Rejection>),
}

/// A rejected row (boxed in [`Entry`]: rare, and the roster holds one entry per row).
#[derive(Clone, Debug)]
pub struct Rejection {
    pub origin: Origin,
    /// The key, when the row has a usable one: such an account is never
    /// treated as absent from the file.
    pub key: Option<UserKey>,
    pub errors: Vec<RowError>,
}

impl Entry {
    fn rejected(origin: Origin, key: Option<UserKey>, errors: Vec<RowError>) -> Entry {
        Entry::Rejected(Box::new(Rejection { origin, key, errors }))
    }
}

/// The parsed file.
#[derive(Debug)]
pub struct Roster {
    /// The decoded text (without BOM), kept so the results file can echo the
    /// input exactly (shared, not copied, with the echo rendered meanwhile).
    pub text: Text,
    /// Byte offset in `text` where the CSV starts (after an Excel `sep=` line).
    pub body_start: usize,
    pub delimiter: u8,
    pub header: Vec<String>,
    pub columns: Vec<Column>,
    /// Per policy attribute: the file has a column for it.
    pub present: Vec<bool>,
    pub has_groups: bool,
    pub entries: Vec<Entry>,
    pub persons: Vec<Person>,
    pub warnings: Vec<String>,
    /// The sheet, when the file is a workbook (then `text` is empty and
    /// lines are the sheet's row numbers).
    pub sheet: Option<Sheet>,
    /// The `[[layouts]]` entry the header matched, when the policy has layouts.
    pub layout: Option<String>,
    /// Per entry (index into `entries`): what was changed on the way in
    /// (invisible characters stripped by policy), for the results.
    pub notes: BTreeMap<usize, Vec<String>>,
}

impl Roster {
    pub fn rejected_count(&self) -> usize {
        self.entries.iter().filter(|e| matches!(e, Entry::Rejected(_))).count()
    }

    /// The data records again, as the file has them (for the results file).
    pub fn records(&self) -> RecordIter<'_> {
        match &self.sheet {
            Some(sheet) => RecordIter::of_sheet(&sheet.rows),
            None => records(&self.text[self.body_start..], self.delimiter, self.first_line()),
        }
    }

    /// The physical line the first data record starts on.
    pub(crate) fn first_line(&self) -> u64 {
        self.text[..self.body_start].matches('\n').count() as u64 + 1
    }
}

/// Parse a whole file: CSV text, or an XLSX workbook (told by its ZIP
/// magic). `Err` means the file is refused as a whole.
pub fn parse_roster(bytes: &[u8], policy: &Policy) -> Result<Roster, FileError> {
    parse_shared(&std::sync::Arc::new(bytes.to_vec()), policy)
}

/// [`parse_roster`] of bytes the caller keeps too: a UTF-8 file's text is
/// these bytes, not a copy of them.
pub fn parse_shared(bytes: &std::sync::Arc<Vec<u8>>, policy: &Policy) -> Result<Roster, FileError> {
    match sheet::sniff(bytes) {
        Some(book) => parse_workbook(bytes, book, policy),
        None => parse_text(bytes, policy),
    }
}

/// The text the results of a refused file echo, row by row: the decoded
/// CSV, or a workbook's sheet written as CSV; `None` when nothing is readable.
pub fn readable_text(bytes: &[u8], policy: &Policy) -> Option<String> {
    let Some(book) = sheet::sniff(bytes) else {
        return decode(bytes, policy.roster.encoding).ok();
    };
    let sheet = sheet::read_sheet(bytes, book, policy).ok()?;
    if sheet.header.is_empty() {
        return None;
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&sheet.header).ok()?;
    for r in &sheet.rows {
        w.write_record(&r.record).ok()?;
    }
    w.into_inner().ok().and_then(|b| String::from_utf8(b).ok())
}

fn parse_text(bytes: &std::sync::Arc<Vec<u8>>, policy: &Policy) -> Result<Roster, FileError> {
    let text = decode::decode_shared(bytes, policy.roster.encoding)?;
    let (body_start, delimiter) = sniff(&text);
    let body = &text[body_start..];
    let first_line = text[..body_start].matches('\n').count() as u64 + 1;

    if ends_inside_quotes(body) {
        return Err(file_error(
            FileErrorKind::Truncated,
            "the file ends inside a quoted field (an opening \" is never closed); the export was cut off or a quote is unbalanced: export it again",
        ));
    }

    let header = read_header(body, delimiter, first_line)?;
    let (layout, columns) = map_header(&header, policy).map_err(|e| e.at_line(first_line))?;

    // Sized up front: growing by doubling would copy, and briefly hold,
    // two copies of a million rows.
    let lines = body.as_bytes().iter().filter(|b| **b == b'\n').count() + 1;
    let mut rows = Rows::new(policy, header, columns, layout, lines);
    let ends_with_newline = body.ends_with('\n') || body.ends_with('\r');
    let mut all = records(body, delimiter, first_line);
    // (line, fields) of the last record when it is short: a cut-off file.
    let mut last_short: Option<(u64, usize)> = None;
    while let Some(rec) = all.advance() {
        last_short = None;
        let line = match rec {
            Ok(line) => line,
            Err((line, msg)) => {
                rows.reject(line, None, RowError::in_row(RowErrorKind::Unreadable { reason: msg }));
                continue;
            }
        };
        let record = all.current();
        let width = rows.header.len();
        if record.len() != width {
            if record.len() < width {
                last_short = Some((line, record.len()));
            }
            let key = key_of(record, &rows.columns);
            rows.reject(
                line,
                key,
                RowError::in_row(RowErrorKind::FieldCount {
                    found: record.len(),
                    expected: width,
                    delimiter: delimiter as char,
                }),
            );
            continue;
        }
        rows.push(line, record, Vec::new());
    }
    if let (Some((line, n)), false) = (last_short, ends_with_newline) {
        return Err(file_error(
            FileErrorKind::Truncated,
            format!(
                "the last record (line {line}) has {n} of {} fields and no line end: the file was cut off mid-row; export it again",
                rows.header.len()
            ),
        )
        .at_line(line));
    }
    let mut roster = rows.finish(body_start, delimiter, None)?;
    roster.text = text;
    Ok(roster)
}

fn parse_workbook(bytes: &[u8], book: sheet::Book, policy: &Policy) -> Result<Roster, FileError> {
    let mut sheet = sheet::read_sheet(bytes, book, policy)?;
    if sheet.header.is_empty() {
        return Err(file_error(
            FileErrorKind::Empty,
            format!("sheet {:?} of the workbook has no cells; export it again", sheet.name),
        ));
    }
    let header = std::mem::take(&mut sheet.header);
    let (layout, columns) = map_header(&header, policy).map_err(|e| {
        let at = e.column.as_ref().and_then(|c| header.iter().position(|h| h == c));
        let e = e.at_line(sheet.header_row);
        match at {
            Some(i) => FileError {
                message: format!(
                    "sheet {:?} row {}, column {}: {}",
                    sheet.name,
                    sheet.header_row,
                    sheet.letter(i),
                    e.message
                ),
                ..e
            },
            None => FileError {
                message: format!("sheet {:?} row {}: {}", sheet.name, sheet.header_row, e.message),
                ..e
            },
        }
    })?;
    let mut rows = Rows::new(policy, header, columns, layout, sheet.rows.len());
    for r in &sheet.rows {
        let mut extra = Vec::new();
        if let Some(letter) = &r.outside {
            extra.push(RowError::in_row(RowErrorKind::OutsideHeader { letter: letter.clone() }));
        }
        for (i, error) in &r.errors {
            if !matches!(rows.columns[*i], Column::Unknown | Column::Ignored) {
                extra.push(RowError::in_column(
                    &rows.header[*i],
                    RowErrorKind::CellError { error: error.clone() },
                ));
            }
        }
        rows.push(r.row, &r.record, extra);
    }
    sheet.header = rows.header.clone();
    let mut roster = rows.finish(0, b',', Some(&sheet))?;
    // Name each column by its letter too ("column E, \"Email\"").
    let letters: Vec<String> = (0..sheet.header.len()).map(|i| sheet.letter(i)).collect();
    for e in roster.entries.iter_mut() {
        if let Entry::Rejected(r) = e {
            for err in r.errors.iter_mut() {
                if let Some(i) = err
                    .column
                    .as_ref()
                    .and_then(|c| sheet.header.iter().position(|h| h == c))
                {
                    err.letter = letters.get(i).cloned();
                }
            }
        }
    }
    roster.sheet = Some(sheet);
    Ok(roster)
}

/// Shared by the unit tests of this folder.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::core::policy::{FieldRule, GroupRules, Limits, PasswordRules, RosterRules, SyncRules};
    use std::collections::BTreeMap;

    pub const HEAD: &str = "username,firstname,surname,email\n";

    pub fn policy() -> Policy {
        let mut fields = BTreeMap::new();
        fields.insert(
            "user_type".to_string(),
            FieldRule {
                allowed: Some(vec!["Standard".into(), "Privileged".into()]),
                default: Some("Standard".into()),
                ..Default::default()
            },
        );
        fields.insert(
            "title".to_string(),
            FieldRule {
                max_len: Some(10),
                ..Default::default()
            },
        );
        Policy::compile(
            "t",
            RosterRules::default(),
            fields,
            SyncRules {
                protected: vec!["admin".into()],
                ..Default::default()
            },
            PasswordRules::default(),
            Limits::default(),
            GroupRules {
                managed: vec!["staff".into(), "vpn".into()],
                default: vec![],
                create_missing: false,
            },
        )
        .unwrap() // ok: test
    }

    pub fn parse(s: &str) -> Result<Roster, FileError> {
        parse_roster(s.as_bytes(), &policy())
    }

    /// (row, line, errors) of each rejected row.
    pub fn rejected_errors(r: &Roster) -> Vec<(usize, u64, Vec<RowError>)> {
        r.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Rejected(r) => Some((r.origin.row, r.origin.line, r.errors.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn rejected(r: &Roster) -> Vec<(usize, u64, String)> {
        r.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Rejected(r) => Some((
                    r.origin.row,
                    r.origin.line,
                    r.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(" | "),
                )),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
