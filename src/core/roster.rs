//! Bytes → [`Roster`]: decoding, delimiter sniffing, header aliases, typed
//! rows, and a precise reason for every row or file that is refused.
//!
//! Pure: it takes bytes, never a path, so tests pass `&[u8]`.

use std::collections::HashMap;
use std::fmt;

use super::policy::{Column, Duplicates, Encoding, Policy};
use super::types::{AccountState, Origin, Person, Secret, UserKey, Value};

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
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for FileError {}

fn file_error(kind: FileErrorKind, message: impl Into<String>) -> FileError {
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

/// One data record of the file, in input order.
#[derive(Clone, Debug)]
pub enum Entry {
    /// Index into [`Roster::persons`].
    Valid(usize),
    Rejected {
        origin: Origin,
        /// The key, when the row has a usable one: such an account is never
        /// treated as absent from the file.
        key: Option<UserKey>,
        errors: Vec<RowError>,
    },
}

/// The parsed file.
#[derive(Debug)]
pub struct Roster {
    /// The decoded text (without BOM), kept so the results file can echo the
    /// input exactly.
    pub text: String,
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
}

impl Roster {
    pub fn rejected_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e, Entry::Rejected { .. }))
            .count()
    }

    /// The data records again, as the file has them (for the results file).
    pub fn records(&self) -> RecordIter<'_> {
        records(&self.text[self.body_start..], self.delimiter, self.first_line())
    }

    fn first_line(&self) -> u64 {
        self.text[..self.body_start].matches('\n').count() as u64 + 1
    }
}

/// Decode bytes to text. Never replaces: undecodable bytes refuse the file
/// with their offset and line.
pub fn decode(bytes: &[u8], encoding: Encoding) -> Result<String, FileError> {
    if bytes.is_empty() {
        return Err(file_error(
            FileErrorKind::Empty,
            "the file has no bytes; export it again",
        ));
    }
    let (text, _) = if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        (utf8(rest)?, 3)
    } else if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        (utf16(rest, u16::from_le_bytes)?, 2)
    } else if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        (utf16(rest, u16::from_be_bytes)?, 2)
    } else if encoding == Encoding::Windows1252 {
        let (cow, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
        (cow.into_owned(), 0)
    } else {
        (utf8(bytes)?, 0)
    };
    if text.trim().is_empty() {
        return Err(file_error(
            FileErrorKind::Empty,
            "the file holds no text (only a byte-order mark or blank lines); export it again",
        ));
    }
    if let Some(pos) = text.find('\0') {
        return Err(file_error(
            FileErrorKind::Encoding,
            format!(
                "line {} contains a NUL character; the file may be UTF-16 without a byte-order mark: save it as UTF-8",
                line_of(text.as_bytes(), pos)
            ),
        ));
    }
    Ok(text)
}

fn line_of(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())].iter().filter(|b| **b == b'\n').count() + 1
}

fn utf8(bytes: &[u8]) -> Result<String, FileError> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => {
            let at = e.valid_up_to();
            Err(file_error(
                FileErrorKind::Encoding,
                format!(
                    "byte {at} (line {}) is not valid UTF-8 (0x{:02X}); save the file as UTF-8, or if it is Windows-1252 (Excel's \"CSV\" on Western Windows) set roster.encoding = \"windows-1252\" in the policy",
                    line_of(bytes, at),
                    bytes.get(at).copied().unwrap_or(0)
                ),
            ))
        }
    }
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, FileError> {
    let mut units = Vec::with_capacity(bytes.len() / 2);
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        units.push(unit([c[0], c[1]]));
    }
    if !chunks.remainder().is_empty() {
        return Err(file_error(
            FileErrorKind::Truncated,
            format!(
                "the UTF-16 file ends in the middle of a character (byte {}); the file was cut off: export it again",
                bytes.len() + 2
            ),
        ));
    }
    let mut out = String::with_capacity(units.len());
    let mut line = 1;
    for (i, r) in char::decode_utf16(units.iter().copied()).enumerate() {
        match r {
            Ok(c) => {
                if c == '\n' {
                    line += 1;
                }
                out.push(c)
            }
            Err(_) => {
                return Err(file_error(
                    FileErrorKind::Encoding,
                    format!(
                        "byte {} (line {line}) is not valid UTF-16 (an unpaired surrogate); save the file as UTF-8",
                        2 + 2 * i
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// Find Excel's `sep=X` line and the delimiter of the header line.
fn sniff(text: &str) -> (usize, u8) {
    let first_end = text.find('\n').map(|i| i + 1).unwrap_or(text.len());
    let first = text[..first_end].trim_end_matches(['\r', '\n']);
    if let Some(sep) = first.strip_prefix("sep=").or_else(|| first.strip_prefix("\"sep=")) {
        let sep = sep.trim_end_matches('"');
        if sep.len() == 1 {
            return (first_end, sep.as_bytes()[0]);
        }
    }
    // Count candidates outside quotes in the header line.
    let (mut comma, mut semi, mut tab, mut quoted) = (0, 0, 0, false);
    for b in first.bytes() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => comma += 1,
            b';' if !quoted => semi += 1,
            b'\t' if !quoted => tab += 1,
            _ => {}
        }
    }
    let delim = if tab > comma && tab > semi {
        b'\t'
    } else if semi > comma {
        b';'
    } else {
        b','
    };
    (0, delim)
}

/// Iterator over the data records (header skipped), with the line each starts on.
pub struct RecordIter<'a> {
    reader: csv::Reader<&'a [u8]>,
    first_line: u64,
    record: csv::StringRecord,
    header_done: bool,
}

/// Records of `body`; blank lines are not records.
pub fn records(body: &str, delimiter: u8, first_line: u64) -> RecordIter<'_> {
    let reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(body.as_bytes());
    RecordIter {
        reader,
        first_line,
        record: csv::StringRecord::new(),
        header_done: false,
    }
}

impl Iterator for RecordIter<'_> {
    /// (line, fields) — or the parser's complaint with its line.
    type Item = Result<(u64, csv::StringRecord), (u64, String)>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.reader.read_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) => {
                    let line = self
                        .record
                        .position()
                        .map(|p| p.line() + self.first_line - 1)
                        .unwrap_or(0);
                    if !self.header_done {
                        self.header_done = true;
                        continue;
                    }
                    if self.record.len() == 1 && self.record[0].trim().is_empty() {
                        continue; // a blank line
                    }
                    return Some(Ok((line, self.record.clone())));
                }
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(0) + self.first_line - 1;
                    return Some(Err((line, e.to_string())));
                }
            }
        }
    }
}

/// True when the text ends inside a quoted field (the file was cut).
fn ends_inside_quotes(body: &str) -> bool {
    body.bytes().filter(|b| *b == b'"').count() % 2 == 1
}

/// Parse a whole file. `Err` means the file is refused as a whole.
pub fn parse_roster(bytes: &[u8], policy: &Policy) -> Result<Roster, FileError> {
    let text = decode(bytes, policy.roster.encoding)?;
    let (body_start, delimiter) = sniff(&text);
    let body = &text[body_start..];
    let first_line = text[..body_start].matches('\n').count() as u64 + 1;

    if ends_inside_quotes(body) {
        return Err(file_error(
            FileErrorKind::Truncated,
            "the file ends inside a quoted field (an opening \" is never closed); the export was cut off or a quote is unbalanced: export it again",
        ));
    }

    // Header.
    let mut hreader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(body.as_bytes());
    let mut hrec = csv::StringRecord::new();
    match hreader.read_record(&mut hrec) {
        Ok(true) => {}
        Ok(false) => return Err(file_error(FileErrorKind::Empty, "the file has no header line")),
        Err(e) => return Err(file_error(FileErrorKind::Header, format!("line {first_line}: {e}"))),
    }
    let header: Vec<String> = hrec.iter().map(|h| h.trim().to_string()).collect();
    let columns = map_header(&header, policy)?;
    let mut warnings = Vec::new();
    for (h, c) in header.iter().zip(&columns) {
        if *c == Column::Unknown {
            warnings.push(format!(
                "column {h:?} is not known to policy {:?}; it is carried into the results and not synced (add it as an alias under [fields] if it should be)",
                policy.name
            ));
        }
    }
    let mut present = vec![false; policy.attributes.len()];
    for c in &columns {
        if let Column::Attribute(i) = c {
            present[*i] = true;
        }
    }
    let has_groups = columns.contains(&Column::Groups) || !policy.groups.default.is_empty();

    // Rows.
    let ends_with_newline = body.ends_with('\n') || body.ends_with('\r');
    let mut entries = Vec::new();
    let mut persons = Vec::new();
    let all: Vec<_> = records(body, delimiter, first_line).collect();
    let last = all.len();
    for (n, rec) in all.into_iter().enumerate() {
        let row = n + 1;
        let (line, record) = match rec {
            Ok(r) => r,
            Err((line, msg)) => {
                entries.push(Entry::Rejected {
                    origin: Origin { row, line },
                    key: None,
                    errors: vec![RowError {
                        column: None,
                        message: format!("unreadable record: {msg}"),
                    }],
                });
                continue;
            }
        };
        let origin = Origin { row, line };
        if record.len() != header.len() {
            if n + 1 == last && !ends_with_newline && record.len() < header.len() {
                return Err(file_error(
                    FileErrorKind::Truncated,
                    format!(
                        "the last record (line {line}) has {} of {} fields and no line end: the file was cut off mid-row; export it again",
                        record.len(),
                        header.len()
                    ),
                ));
            }
            entries.push(Entry::Rejected {
                origin,
                key: key_of(&record, &columns),
                errors: vec![RowError {
                    column: None,
                    message: format!(
                        "has {} fields but the header has {}; check for an unquoted delimiter ({:?}) in a value",
                        record.len(),
                        header.len(),
                        delimiter as char
                    ),
                }],
            });
            continue;
        }
        match parse_row(origin, &record, &header, &columns, policy) {
            Ok(p) => {
                entries.push(Entry::Valid(persons.len()));
                persons.push(p);
            }
            Err((key, errors)) => entries.push(Entry::Rejected { origin, key, errors }),
        }
    }
    if entries.is_empty() {
        return Err(file_error(
            FileErrorKind::HeaderOnly,
            "the file has a header but no data rows; nothing to do",
        ));
    }
    if let Some(max) = policy.roster.max_rows {
        if entries.len() > max {
            return Err(file_error(
                FileErrorKind::TooManyRows,
                format!(
                    "the file has {} rows; policy {:?} accepts at most {max} per file (roster.max_rows): split the file or raise the limit",
                    entries.len(),
                    policy.name
                ),
            ));
        }
    }
    let mut roster = Roster {
        text: String::new(),
        body_start,
        delimiter,
        header,
        columns,
        present,
        has_groups,
        entries,
        persons,
        warnings,
    };
    reject_duplicates(&mut roster, policy);
    roster.text = text;
    Ok(roster)
}

fn map_header(header: &[String], policy: &Policy) -> Result<Vec<Column>, FileError> {
    if header.iter().all(|h| h.is_empty()) {
        return Err(file_error(FileErrorKind::Header, "the header line is empty"));
    }
    let columns: Vec<Column> = header.iter().map(|h| policy.column(h)).collect();
    let mut seen: HashMap<Column, &str> = HashMap::new();
    let mut problems = Vec::new();
    for (h, c) in header.iter().zip(&columns) {
        if matches!(c, Column::Unknown | Column::Ignored) {
            continue;
        }
        if let Some(prev) = seen.insert(*c, h) {
            problems.push(format!(
                "columns {prev:?} and {h:?} both mean {}; remove one of them",
                describe(*c, policy)
            ));
        }
    }
    let mut missing = Vec::new();
    if !seen.contains_key(&Column::Key) {
        missing.push("username".to_string());
    }
    for (i, a) in policy.attributes.iter().enumerate() {
        if policy.required(a) && !seen.contains_key(&Column::Attribute(i)) {
            missing.push(a.clone());
        }
    }
    if !missing.is_empty() {
        problems.push(format!(
            "required column(s) missing: {}; the header has {:?} (run `dirsync template` for the expected headers)",
            missing.join(", "),
            header
        ));
    }
    if problems.is_empty() {
        Ok(columns)
    } else {
        Err(file_error(FileErrorKind::Header, problems.join("; ")))
    }
}

fn describe(c: Column, policy: &Policy) -> String {
    match c {
        Column::Key => "username".into(),
        Column::Attribute(i) => policy.attributes.get(i).cloned().unwrap_or_default(),
        Column::Groups => "groups".into(),
        Column::Status => "status".into(),
        Column::MustChange => "change password next time".into(),
        Column::Password => "password".into(),
        Column::Ignored | Column::Unknown => "nothing".into(),
    }
}

fn key_of(record: &csv::StringRecord, columns: &[Column]) -> Option<UserKey> {
    let i = columns.iter().position(|c| *c == Column::Key)?;
    let v = record.get(i)?.trim();
    (!v.is_empty()).then(|| UserKey::new(v))
}

type RowFailure = (Option<UserKey>, Vec<RowError>);

fn parse_row(
    origin: Origin,
    record: &csv::StringRecord,
    header: &[String],
    columns: &[Column],
    policy: &Policy,
) -> Result<Person, RowFailure> {
    let mut errors = Vec::new();
    let mut key = None;
    let mut attrs: Vec<Option<Value>> = vec![None; policy.attributes.len()];
    let mut groups: Option<Vec<Value>> = None;
    let mut state = AccountState::Active;
    let mut must_change = None;
    let mut password = None;
    let err = |errors: &mut Vec<RowError>, h: &str, m: String| {
        errors.push(RowError {
            column: Some(h.to_string()),
            message: m,
        })
    };

    for ((raw, h), c) in record.iter().zip(header).zip(columns) {
        let v = raw.trim();
        if *c != Column::Password && *c != Column::Unknown && *c != Column::Ignored {
            if let Some(ch) = v.chars().find(|ch| ch.is_control()) {
                err(
                    &mut errors,
                    h,
                    format!("contains a control character (U+{:04X}); remove it", ch as u32),
                );
                continue;
            }
        }
        match *c {
            Column::Key => {
                if v.is_empty() {
                    err(&mut errors, h, "is empty; every row needs a username".into());
                } else if let Some(m) = too_long(v, "username", policy) {
                    err(&mut errors, h, m);
                } else {
                    key = Some(UserKey::new(v));
                }
            }
            Column::Attribute(i) => {
                let name = &policy.attributes[i];
                match check_value(v, name, policy) {
                    Ok(val) => attrs[i] = val,
                    Err(m) => err(&mut errors, h, m),
                }
            }
            Column::Groups => {
                let mut list = Vec::new();
                for g in v.split(';').map(str::trim).filter(|g| !g.is_empty()) {
                    match policy.managed_group(g) {
                        Some(canon) => {
                            if !list.iter().any(|x: &Value| x.as_str() == canon) {
                                list.push(Value::from(canon))
                            }
                        }
                        None => err(
                            &mut errors,
                            h,
                            format!(
                                "group {g:?} is not managed by policy {:?} (managed: {}); fix the name or add it to groups.managed",
                                policy.name,
                                policy.groups.managed.join(", ")
                            ),
                        ),
                    }
                }
                if !list.is_empty() {
                    groups = Some(list);
                }
            }
            Column::Status => {
                let lv = v.to_lowercase();
                if lv.is_empty() || policy.roster.active_values.iter().any(|a| a.to_lowercase() == lv) {
                    state = AccountState::Active;
                } else if policy.roster.leaver_values.iter().any(|a| a.to_lowercase() == lv) {
                    state = AccountState::Leaver;
                } else {
                    err(
                        &mut errors,
                        h,
                        format!(
                            "{v:?} is not a status; use empty or one of {} for active, {} for a leaver",
                            policy.roster.active_values.join("/"),
                            policy.roster.leaver_values.join("/")
                        ),
                    );
                }
            }
            Column::MustChange => match v.to_lowercase().as_str() {
                "1" | "true" | "yes" | "y" => must_change = Some(true),
                "0" | "false" | "no" | "n" => must_change = Some(false),
                "" => {}
                _ => err(&mut errors, h, format!("{v:?} is not 1/0, yes/no or true/false")),
            },
            Column::Password => {
                if !raw.is_empty() {
                    if let Some(m) = too_long(raw, "password", policy) {
                        err(&mut errors, h, m);
                    } else if raw.chars().any(char::is_control) {
                        err(&mut errors, h, "contains a control character; remove it".into());
                    } else {
                        password = Some(Secret::new(raw));
                    }
                }
            }
            Column::Ignored | Column::Unknown => {}
        }
    }
    // Defaults and required values, for attributes with or without a column.
    for (i, name) in policy.attributes.iter().enumerate() {
        if attrs[i].is_none() {
            if let Some(d) = &policy.rule(name).default {
                attrs[i] = Some(Value::from(d.as_str()));
            }
        }
        if attrs[i].is_none() && policy.required(name) {
            if let Some(pos) = columns.iter().position(|c| *c == Column::Attribute(i)) {
                if !errors.iter().any(|e| e.column.as_deref() == Some(header[pos].as_str())) {
                    err(&mut errors, &header[pos], format!("is empty; {name} is required"));
                }
            }
        }
    }
    if groups.is_none() && !policy.groups.default.is_empty() {
        groups = Some(policy.groups.default.iter().map(|g| Value::from(g.as_str())).collect());
    }
    if let Some(k) = &key {
        if policy.is_protected(k) {
            errors.push(RowError {
                column: None,
                message: format!("{k} is a protected account (sync.protected); dirsync never changes it"),
            });
        }
    }
    match key {
        Some(key) if errors.is_empty() => Ok(Person {
            origin,
            key,
            attrs,
            groups,
            state,
            must_change,
            password,
        }),
        key => Err((key, errors)),
    }
}

fn too_long(v: &str, field: &str, policy: &Policy) -> Option<String> {
    let max = policy.rule(field).max_len.unwrap_or(policy.roster.max_field_len);
    let n = v.chars().count();
    (n > max).then(|| format!("is {n} characters long; at most {max} are allowed"))
}

fn check_value(v: &str, name: &str, policy: &Policy) -> Result<Option<Value>, String> {
    if v.is_empty() {
        return Ok(None);
    }
    if let Some(m) = too_long(v, name, policy) {
        return Err(m);
    }
    if name == "email" && !is_email(v) {
        return Err(format!("{v:?} is not an email address (name@domain.tld); correct it"));
    }
    if let Some(allowed) = &policy.rule(name).allowed {
        return match allowed
            .iter()
            .find(|a| a.eq_ignore_ascii_case(v) || a.to_lowercase() == v.to_lowercase())
        {
            Some(a) => Ok(Some(Value::from(a.as_str()))),
            None => Err(format!("{v:?} is not allowed; use one of: {}", allowed.join(", "))),
        };
    }
    Ok(Some(Value::from(v)))
}

/// A deliberately plain check: one `@`, a non-empty local part without
/// spaces, a domain with a dot and no empty labels.
pub fn is_email(v: &str) -> bool {
    let Some((local, domain)) = v.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && !v
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\\\"".contains(c))
        && domain.contains('.')
        && domain
            .split('.')
            .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'))
}

fn reject_duplicates(roster: &mut Roster, policy: &Policy) {
    let email = policy.attribute_index("email");
    let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_email: HashMap<String, Vec<usize>> = HashMap::new();
    for (ei, e) in roster.entries.iter().enumerate() {
        match e {
            Entry::Valid(pi) => {
                let p = &roster.persons[*pi];
                by_key.entry(p.key.folded()).or_default().push(ei);
                if let Some(Some(m)) = email.map(|i| &p.attrs[i]) {
                    by_email.entry(m.to_lowercase().to_string()).or_default().push(ei);
                }
            }
            Entry::Rejected { key: Some(k), .. } => by_key.entry(k.folded()).or_default().push(ei),
            Entry::Rejected { .. } => {}
        }
    }
    let mut to_reject: Vec<(usize, RowError)> = Vec::new();
    let keep_first = policy.roster.duplicates == Duplicates::KeepFirst;
    let key_col = roster
        .columns
        .iter()
        .position(|c| *c == Column::Key)
        .map(|i| roster.header[i].clone());
    let email_col = email.and_then(|i| {
        roster
            .columns
            .iter()
            .position(|c| *c == Column::Attribute(i))
            .map(|p| roster.header[p].clone())
    });
    let lines = |group: &[usize], entries: &[Entry], persons: &[Person]| -> String {
        group
            .iter()
            .map(|ei| match &entries[*ei] {
                Entry::Valid(pi) => persons[*pi].origin.line.to_string(),
                Entry::Rejected { origin, .. } => origin.line.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (what, col, groups) in [
        ("username", &key_col, by_key.values().cloned().collect::<Vec<_>>()),
        ("email", &email_col, by_email.into_values().collect::<Vec<_>>()),
    ] {
        for group in groups.into_iter().filter(|g| g.len() > 1) {
            let at = lines(&group, &roster.entries, &roster.persons);
            let skip = if keep_first { 1 } else { 0 };
            for ei in group.iter().skip(skip) {
                let hint = if keep_first {
                    "the first row is kept; remove the others"
                } else {
                    "none of them is applied; keep one row per person"
                };
                to_reject.push((
                    *ei,
                    RowError {
                        column: col.clone(),
                        message: format!("duplicate {what} (case-insensitive) on lines {at}; {hint}"),
                    },
                ));
            }
        }
    }
    if to_reject.is_empty() {
        return;
    }
    // Turn valid entries into rejected ones; persons stay in place but are
    // no longer referenced, then compact.
    for (ei, error) in to_reject {
        let entry = &mut roster.entries[ei];
        match entry {
            Entry::Valid(pi) => {
                let p = &roster.persons[*pi];
                *entry = Entry::Rejected {
                    origin: p.origin,
                    key: Some(p.key.clone()),
                    errors: vec![error],
                };
            }
            Entry::Rejected { errors, .. } => {
                if !errors.contains(&error) {
                    errors.push(error)
                }
            }
        }
    }
    let mut persons = Vec::with_capacity(roster.persons.len());
    let old = std::mem::take(&mut roster.persons);
    let mut old: Vec<Option<Person>> = old.into_iter().map(Some).collect();
    for e in roster.entries.iter_mut() {
        if let Entry::Valid(pi) = e {
            if let Some(p) = old[*pi].take() {
                *pi = persons.len();
                persons.push(p);
            }
        }
    }
    roster.persons = persons;
}
