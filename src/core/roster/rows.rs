//! [`Rows`]: a file's rows as they are read, typed one by one (`checks`),
//! then checked across the file (`duplicates`) and made a [`Roster`].

use std::collections::BTreeMap;

use super::checks::parse_row;
use super::duplicates::reject_duplicates;
use super::error::file_error;
use super::{Entry, FileError, FileErrorKind, Roster, RowError, Sheet};
use crate::core::policy::{Column, Policy};
use crate::core::types::{Origin, Person, UserKey};

/// The rows of a file as they are read: entries, persons and notes.
pub(super) struct Rows<'p> {
    pub(super) policy: &'p Policy,
    pub(super) header: Vec<String>,
    pub(super) columns: Vec<Column>,
    pub(super) layout: Option<usize>,
    pub(super) entries: Vec<Entry>,
    pub(super) persons: Vec<Person>,
    pub(super) notes: BTreeMap<usize, Vec<String>>,
}

impl<'p> Rows<'p> {
    pub(super) fn new(
        policy: &'p Policy,
        header: Vec<String>,
        columns: Vec<Column>,
        layout: Option<usize>,
        rows: usize,
    ) -> Self {
        Rows {
            policy,
            header,
            columns,
            layout,
            entries: Vec::with_capacity(rows),
            persons: Vec::with_capacity(rows),
            notes: BTreeMap::new(),
        }
    }

    pub(super) fn origin(&self, line: u64) -> Origin {
        Origin {
            row: self.entries.len() + 1,
            line,
        }
    }

    pub(super) fn reject(&mut self, line: u64, key: Option<UserKey>, error: RowError) {
        let origin = self.origin(line);
        self.entries.push(Entry::rejected(origin, key, vec![error]));
    }

    /// Check one record; `extra` are problems found before (workbook cells).
    pub(super) fn push(&mut self, line: u64, record: &csv::StringRecord, extra: Vec<RowError>) {
        let origin = self.origin(line);
        let mut notes = Vec::new();
        let parsed = parse_row(origin, record, &self.header, &self.columns, self.policy, &mut notes);
        if !notes.is_empty() {
            self.notes.insert(self.entries.len(), notes);
        }
        match parsed {
            Ok(p) if extra.is_empty() => {
                self.entries.push(Entry::Valid(self.persons.len()));
                self.persons.push(p);
            }
            Ok(p) => self.entries.push(Entry::rejected(origin, Some(p.key), extra)),
            Err((key, mut errors)) => {
                // A cell holding an Excel error says so, not what its text fails.
                errors.retain(|e| !extra.iter().any(|x| x.column.is_some() && x.column == e.column));
                errors.extend(extra);
                self.entries.push(Entry::rejected(origin, key, errors));
            }
        }
    }

    pub(super) fn finish(self, body_start: usize, delimiter: u8, sheet: Option<&Sheet>) -> Result<Roster, FileError> {
        let policy = self.policy;
        if self.entries.is_empty() {
            let what = match sheet {
                Some(s) => format!(
                    "sheet {:?} has a header (row {}) but no data rows; nothing to do",
                    s.name, s.header_row
                ),
                None => "the file has a header but no data rows; nothing to do".into(),
            };
            return Err(file_error(FileErrorKind::HeaderOnly, what));
        }
        // A plan holds 32-bit positions (`PlanItem`).
        if u32::try_from(self.entries.len()).is_err() {
            return Err(file_error(
                FileErrorKind::TooManyRows,
                format!(
                    "the file has {} rows; one file can hold at most {}: split the file",
                    self.entries.len(),
                    u32::MAX
                ),
            ));
        }
        if let Some(max) = policy.roster.max_rows {
            if self.entries.len() > max {
                return Err(file_error(
                    FileErrorKind::TooManyRows,
                    format!(
                        "the file has {} rows; policy {:?} accepts at most {max} per file (roster.max_rows): split the file or raise the limit",
                        self.entries.len(),
                        policy.name
                    ),
                ));
            }
        }
        let mut warnings = Vec::new();
        let layout = self
            .layout
            .and_then(|i| policy.layouts().get(i))
            .map(|l| l.name.clone());
        if let Some(l) = &layout {
            warnings.push(format!("the header matches layout {l:?} of policy {:?}", policy.name));
        }
        for (i, (h, c)) in self.header.iter().zip(&self.columns).enumerate() {
            if *c == Column::Unknown {
                let at = match sheet {
                    Some(s) => format!("column {} {h:?}", s.letter(i)),
                    None => format!("column {h:?}"),
                };
                warnings.push(format!(
                    "{at} is not known to policy {:?}; it is carried into the results and not synced (add it as an alias under [fields] if it should be)",
                    policy.name
                ));
            }
        }
        let mut present = vec![false; policy.attributes.len()];
        for c in &self.columns {
            if let Column::Attribute(i) = c {
                present[*i] = true;
            }
        }
        let has_groups = self.columns.contains(&Column::Groups) || !policy.groups.default.is_empty();
        let mut roster = Roster {
            text: Default::default(),
            body_start,
            delimiter,
            header: self.header,
            columns: self.columns,
            present,
            has_groups,
            entries: self.entries,
            persons: self.persons,
            warnings,
            sheet: None,
            layout,
            notes: self.notes,
        };
        reject_duplicates(&mut roster, policy);
        Ok(roster)
    }
}
