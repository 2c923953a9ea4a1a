//! Bytes → [`Roster`]: decoding, delimiter sniffing, header aliases, typed
//! rows, and a precise reason for every row or file that is refused.
//!
//! Pure: it takes bytes, never a path, so tests pass `&[u8]`.

use std::collections::{BTreeMap, HashMap};
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
        self.entries.iter().filter(|e| matches!(e, Entry::Rejected(_))).count()
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
    body: &'a [u8],
    first_line: u64,
    record: csv::StringRecord,
    header_done: bool,
    /// Newlines counted in `body[..scanned]` (the csv crate's own line
    /// numbers are wrong after CRLF line ends, so lines are counted here).
    scanned: usize,
    newlines: u64,
}

impl RecordIter<'_> {
    /// The physical line on which a record starting at byte `at` begins.
    fn line_at(&mut self, mut at: usize) -> u64 {
        // After CRLF (and blank lines) the reported offset points into the
        // previous terminator; a record never starts with CR or LF.
        while matches!(self.body.get(at), Some(b'\n' | b'\r')) {
            at += 1;
        }
        let at = at.min(self.body.len());
        if at > self.scanned {
            self.newlines += self.body[self.scanned..at].iter().filter(|b| **b == b'\n').count() as u64;
            self.scanned = at;
        }
        self.first_line + self.newlines
    }
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
        body: body.as_bytes(),
        first_line,
        record: csv::StringRecord::new(),
        header_done: false,
        scanned: 0,
        newlines: 0,
    }
}

impl RecordIter<'_> {
    /// Read the next data record into [`RecordIter::current`] without
    /// copying it; returns its line, or the parser's complaint with its line.
    pub fn advance(&mut self) -> Option<Result<u64, (u64, String)>> {
        loop {
            match self.reader.read_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) => {
                    let at = self.record.position().map(|p| p.byte() as usize).unwrap_or(0);
                    let line = self.line_at(at);
                    if !self.header_done {
                        self.header_done = true;
                        continue;
                    }
                    if self.record.len() == 1 && self.record[0].trim().is_empty() {
                        continue; // a blank line
                    }
                    return Some(Ok(line));
                }
                Err(e) => {
                    let at = e.position().map(|p| p.byte() as usize).unwrap_or(0);
                    let line = self.line_at(at);
                    return Some(Err((line, e.to_string())));
                }
            }
        }
    }

    /// The record `advance` last read.
    pub fn current(&self) -> &csv::StringRecord {
        &self.record
    }
}

impl Iterator for RecordIter<'_> {
    /// (line, fields) — or the parser's complaint with its line.
    type Item = Result<(u64, csv::StringRecord), (u64, String)>;
    fn next(&mut self) -> Option<Self::Item> {
        self.advance().map(|r| r.map(|line| (line, self.record.clone())))
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
    // Sized up front: growing by doubling would copy, and briefly hold,
    // two copies of a million rows.
    let lines = body.as_bytes().iter().filter(|b| **b == b'\n').count() + 1;
    let mut entries = Vec::with_capacity(lines);
    let mut persons = Vec::with_capacity(lines);
    let mut all = records(body, delimiter, first_line);
    let mut row = 0usize;
    // (line, fields) of the last record when it is short: a cut-off file.
    let mut last_short: Option<(u64, usize)> = None;
    while let Some(rec) = all.advance() {
        row += 1;
        last_short = None;
        let line = match rec {
            Ok(line) => line,
            Err((line, msg)) => {
                entries.push(Entry::rejected(
                    Origin { row, line },
                    None,
                    vec![RowError {
                        column: None,
                        message: format!("unreadable record: {msg}"),
                    }],
                ));
                continue;
            }
        };
        let record = all.current();
        let origin = Origin { row, line };
        if record.len() != header.len() {
            if record.len() < header.len() {
                last_short = Some((line, record.len()));
            }
            entries.push(Entry::rejected(
                origin,
                key_of(record, &columns),
                vec![RowError {
                    column: None,
                    message: format!(
                        "has {} fields but the header has {}; check for an unquoted delimiter ({:?}) in a value",
                        record.len(),
                        header.len(),
                        delimiter as char
                    ),
                }],
            ));
            continue;
        }
        match parse_row(origin, record, &header, &columns, policy) {
            Ok(p) => {
                entries.push(Entry::Valid(persons.len()));
                persons.push(p);
            }
            Err((key, errors)) => entries.push(Entry::rejected(origin, key, errors)),
        }
    }
    if let (Some((line, n)), false) = (last_short, ends_with_newline) {
        return Err(file_error(
            FileErrorKind::Truncated,
            format!(
                "the last record (line {line}) has {n} of {} fields and no line end: the file was cut off mid-row; export it again",
                header.len()
            ),
        ));
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
            if let Some(ch) = first_control_char(v) {
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
            Column::Attribute(i) => match check_value(v, i, policy) {
                Ok(val) => attrs[i] = val,
                Err(m) => err(&mut errors, h, m),
            },
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
                if v.is_empty() || policy.roster.active_values.iter().any(|a| same_word(a, v)) {
                    state = AccountState::Active;
                } else if policy.roster.leaver_values.iter().any(|a| same_word(a, v)) {
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
            Column::MustChange => {
                if v.is_empty() {
                } else if ["1", "true", "yes", "y"].iter().any(|w| v.eq_ignore_ascii_case(w)) {
                    must_change = Some(true)
                } else if ["0", "false", "no", "n"].iter().any(|w| v.eq_ignore_ascii_case(w)) {
                    must_change = Some(false)
                } else {
                    err(&mut errors, h, format!("{v:?} is not 1/0, yes/no or true/false"))
                }
            }
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
        let rule = policy.attr_rule(i);
        if attrs[i].is_none() {
            if let Some(d) = &rule.default {
                attrs[i] = Some(Value::from(d.as_str()));
            }
        }
        if attrs[i].is_none() && rule.required == Some(true) {
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
    too_long_max(v, policy.rule(field).max_len.unwrap_or(policy.roster.max_field_len))
}

fn too_long_max(v: &str, max: usize) -> Option<String> {
    // Bytes ≥ characters: count characters only when the bytes could be over.
    if v.len() <= max {
        return None;
    }
    let n = v.chars().count();
    (n > max).then(|| format!("is {n} characters long; at most {max} are allowed"))
}

/// Case-insensitive equality without allocating for ASCII.
fn same_word(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

fn first_control_char(v: &str) -> Option<char> {
    if v.is_ascii() {
        v.bytes().find(|b| *b < 0x20 || *b == 0x7f).map(char::from)
    } else {
        v.chars().find(|c| c.is_control())
    }
}

fn check_value(v: &str, i: usize, policy: &Policy) -> Result<Option<Value>, String> {
    if v.is_empty() {
        return Ok(None);
    }
    let rule = policy.attr_rule(i);
    if let Some(m) = too_long_max(v, rule.max_len.unwrap_or(policy.roster.max_field_len)) {
        return Err(m);
    }
    if policy.attributes[i] == "email" && !is_email(v) {
        return Err(format!("{v:?} is not an email address (name@domain.tld); correct it"));
    }
    if let Some(allowed) = &rule.allowed {
        return match allowed.iter().find(|a| same_word(a, v)) {
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
    // First index per key; only collisions get a group (no Vec per row).
    let n = roster.entries.len();
    let mut first_key: HashMap<&str, usize, foldhash::fast::RandomState> =
        HashMap::with_capacity_and_hasher(n, Default::default());
    let mut first_email: HashMap<std::borrow::Cow<'_, str>, usize, foldhash::fast::RandomState> =
        HashMap::with_capacity_and_hasher(n, Default::default());
    let mut key_groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut email_groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let note = |groups: &mut BTreeMap<usize, Vec<usize>>, first: usize, ei: usize| {
        groups.entry(first).or_insert_with(|| vec![first]).push(ei);
    };
    for (ei, e) in roster.entries.iter().enumerate() {
        let (key, mail) = match e {
            Entry::Valid(pi) => {
                let p = &roster.persons[*pi];
                (Some(p.key.folded()), email.and_then(|i| p.attrs[i].as_deref()))
            }
            Entry::Rejected(r) => (r.key.as_ref().map(|k| k.folded()), None),
        };
        if let Some(k) = key {
            match first_key.get(k) {
                Some(&first) => note(&mut key_groups, first, ei),
                None => {
                    first_key.insert(k, ei);
                }
            }
        }
        if let Some(m) = mail {
            let folded: std::borrow::Cow<'_, str> = if m.bytes().any(|b| !b.is_ascii() || b.is_ascii_uppercase()) {
                m.to_lowercase().into()
            } else {
                m.into()
            };
            match first_email.get(&folded) {
                Some(&first) => note(&mut email_groups, first, ei),
                None => {
                    first_email.insert(folded, ei);
                }
            }
        }
    }
    let by_key = key_groups;
    let by_email = email_groups;
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
                Entry::Rejected(r) => r.origin.line.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (what, col, groups) in [
        ("username", &key_col, by_key.into_values().collect::<Vec<_>>()),
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
                *entry = Entry::rejected(p.origin, Some(p.key.clone()), vec![error]);
            }
            Entry::Rejected(r) => {
                if !r.errors.contains(&error) {
                    r.errors.push(error)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::policy::{FieldRule, GroupRules, Limits, PasswordRules, RosterRules, SyncRules};
    use std::collections::BTreeMap;

    const HEAD: &str = "username,firstname,surname,email\n";

    fn policy() -> Policy {
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
            },
        )
        .unwrap()
    }

    fn parse(s: &str) -> Result<Roster, FileError> {
        parse_roster(s.as_bytes(), &policy())
    }

    fn rejected(r: &Roster) -> Vec<(usize, u64, String)> {
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

    #[test]
    fn simple_file_parses_with_trimming_and_defaults() {
        let r = parse(&format!("{HEAD} jsmith , Jane ,Smith,jane@example.org\n")).unwrap();
        assert_eq!(r.persons.len(), 1);
        let p = &r.persons[0];
        assert_eq!(p.key.as_str(), "jsmith");
        assert_eq!(p.attrs[0].as_deref(), Some("Jane"));
        let ut = policy().attribute_index("user_type").unwrap();
        assert_eq!(p.attrs[ut].as_deref(), Some("Standard"));
        assert_eq!(p.origin, Origin { row: 1, line: 2 });
    }

    #[test]
    fn encodings_utf8_bom_utf16_and_windows_1252() {
        let body = "username,firstname,surname,email\r\nzoe,Zoë,Müller,z@example.org\r\n";
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(body.as_bytes());
        let mut le = vec![0xFF, 0xFE];
        le.extend(body.encode_utf16().flat_map(|u| u.to_le_bytes()));
        let mut be = vec![0xFE, 0xFF];
        be.extend(body.encode_utf16().flat_map(|u| u.to_be_bytes()));
        for bytes in [body.as_bytes().to_vec(), bom, le, be] {
            let r = parse_roster(&bytes, &policy()).unwrap();
            assert_eq!(r.persons[0].attrs[0].as_deref(), Some("Zoë"));
        }
        // Windows-1252: ë = 0xEB, ü = 0xFC. Refused as UTF-8 with offset and line…
        let cp = b"username,firstname,surname,email\nzoe,Zo\xEB,M\xFCller,z@example.org\n";
        let e = parse_roster(cp, &policy()).unwrap_err();
        assert_eq!(e.kind, FileErrorKind::Encoding);
        assert!(e.message.contains("byte 39 (line 2)"), "{e}");
        assert!(e.message.contains("windows-1252"), "{e}");
        // …and read when the policy says so.
        let mut p = policy();
        p.roster.encoding = Encoding::Windows1252;
        let r = parse_roster(cp, &p).unwrap();
        assert_eq!(r.persons[0].attrs[1].as_deref(), Some("Müller"));
    }

    #[test]
    fn bad_utf16_is_refused_not_replaced() {
        let mut le = vec![0xFF, 0xFE];
        le.extend("username\n".encode_utf16().flat_map(|u| u.to_le_bytes()));
        le.extend([0x00, 0xD8, 0x41, 0x00]); // unpaired high surrogate
        let e = parse_roster(&le, &policy()).unwrap_err();
        assert_eq!(e.kind, FileErrorKind::Encoding);
        assert!(e.message.contains("line 2"), "{e}");
    }

    #[test]
    fn delimiters_are_sniffed_and_sep_line_honoured() {
        for (text, delim) in [
            ("username;firstname;surname;email\na;A;B;a@example.org\n", b';'),
            ("username\tfirstname\tsurname\temail\na\tA\tB\ta@example.org\n", b'\t'),
            ("sep=;\nusername;firstname;surname;email\na;A;B;a@example.org\n", b';'),
            ("sep=|\nusername|firstname|surname|email\na|A|B|a@example.org\n", b'|'),
        ] {
            let r = parse(text).unwrap();
            assert_eq!(r.delimiter, delim, "{text}");
            assert_eq!(r.persons.len(), 1, "{text}");
        }
        let r = parse("sep=;\nusername;firstname;surname;email\na;A;B;a@example.org\n").unwrap();
        assert_eq!(r.persons[0].origin.line, 3);
    }

    #[test]
    fn quoting_embedded_delimiters_quotes_newlines_and_mixed_line_ends() {
        // A newline inside a quoted cell of a column we do not sync is fine;
        // the next record starts on the line after it.
        let r = parse(
            "username,firstname,surname,email,notes\r\n\"a\",\"Ann, Jr\",\"O\"\"Neil\",a@example.org,\"x\ny\"\nb,B,C,b@example.org,t\r\n",
        )
        .unwrap();
        assert_eq!(r.persons.len(), 2);
        let a = &r.persons[0];
        assert_eq!(a.attrs[0].as_deref(), Some("Ann, Jr"));
        assert_eq!(a.attrs[1].as_deref(), Some("O\"Neil"));
        assert_eq!(r.persons[1].origin.line, 4);
        // In a synced field the same newline is a control character: rejected.
        let r = parse("username,firstname,surname,email,title\na,A,B,a@example.org,\"x\ny\"\n").unwrap();
        assert!(rejected(&r)[0].2.contains("control character"), "{:?}", rejected(&r));
    }

    #[test]
    fn whole_file_rejections() {
        let cases: Vec<(&[u8], FileErrorKind)> = vec![
            (b"", FileErrorKind::Empty),
            (&[0xEF, 0xBB, 0xBF], FileErrorKind::Empty),
            (b"\n\n", FileErrorKind::Empty),
            (HEAD.as_bytes(), FileErrorKind::HeaderOnly),
            (
                b"username,firstname,surname,email\na,A,B,a@example.org\nb,B",
                FileErrorKind::Truncated,
            ),
            (
                b"username,firstname,surname,email\na,A,\"B,a@example.org\n",
                FileErrorKind::Truncated,
            ),
            (b"username,firstname,email\na,A,a@example.org\n", FileErrorKind::Header),
            (b"username,login,firstname,surname,email\n", FileErrorKind::Header),
        ];
        for (bytes, kind) in cases {
            let e = parse_roster(bytes, &policy()).unwrap_err();
            assert_eq!(e.kind, kind, "{:?}: {e}", String::from_utf8_lossy(bytes));
        }
        let e = parse("username,firstname,email\na,A,a@example.org\n").unwrap_err();
        assert!(e.message.contains("surname"), "{e}");
        let e = parse("Username,Login,firstname,surname,email\n").unwrap_err();
        assert!(e.message.contains("\"Username\" and \"Login\""), "{e}");
    }

    #[test]
    fn max_rows_rejects_the_file() {
        let mut p = policy();
        p.roster.max_rows = Some(1);
        let e = parse_roster(b"username,firstname,surname,email\na,A,B,a@x.org\nb,B,C,b@x.org\n", &p).unwrap_err();
        assert_eq!(e.kind, FileErrorKind::TooManyRows);
    }

    #[test]
    fn per_row_rejections_name_row_line_column_and_reason() {
        let text = "username,firstname,surname,email,user_type,title,groups,status,change password next time\n\
            ok,A,B,ok@example.org,,,staff,,1\n\
            ,A,B,nokey@example.org,,,,,\n\
            bademail,A,B,bad@,,,,,\n\
            nofirst,,B,nf@example.org,,,,,\n\
            wrongtype,A,B,wt@example.org,Admin,,,,\n\
            longtitle,A,B,lt@example.org,,Chief Executive,,,\n\
            badgroup,A,B,bg@example.org,,,staff;wheel,,\n\
            badstatus,A,B,bs@example.org,,,,retired,\n\
            badflag,A,B,bf@example.org,,,,,maybe\n\
            fields,A,B\n\
            admin,A,B,adm@example.org,,,,,\n";
        let r = parse(text).unwrap();
        assert_eq!(r.persons.len(), 1);
        let rej = rejected(&r);
        let find = |row: usize| {
            rej.iter()
                .find(|(r, _, _)| *r == row)
                .map(|x| x.2.clone())
                .unwrap_or_default()
        };
        assert!(find(2).contains("column \"username\": is empty"), "{}", find(2));
        assert!(
            find(3).contains("column \"email\": \"bad@\" is not an email"),
            "{}",
            find(3)
        );
        assert!(find(4).contains("column \"firstname\": is empty"), "{}", find(4));
        assert!(
            find(5).contains("\"Admin\" is not allowed; use one of: Standard, Privileged"),
            "{}",
            find(5)
        );
        assert!(find(6).contains("15 characters long; at most 10"), "{}", find(6));
        assert!(find(7).contains("group \"wheel\" is not managed"), "{}", find(7));
        assert!(find(8).contains("\"retired\" is not a status"), "{}", find(8));
        assert!(find(9).contains("\"maybe\" is not 1/0"), "{}", find(9));
        assert!(find(10).contains("has 3 fields but the header has 9"), "{}", find(10));
        assert!(find(11).contains("protected account"), "{}", find(11));
        let lines: Vec<u64> = rej.iter().map(|x| x.1).collect();
        assert_eq!(lines, (3..=12).collect::<Vec<u64>>());
    }

    #[test]
    fn duplicate_keys_case_insensitive_reject_all_rows_of_the_group() {
        let text = format!("{HEAD}jsmith,A,B,a@example.org\nJSmith,C,D,c@example.org\nother,E,F,e@example.org\n");
        let r = parse(&text).unwrap();
        assert_eq!(r.persons.len(), 1);
        assert_eq!(r.persons[0].key.as_str(), "other");
        let rej = rejected(&r);
        assert_eq!(rej.len(), 2);
        assert!(
            rej[0].2.contains("duplicate username (case-insensitive) on lines 2, 3"),
            "{:?}",
            rej
        );
        let mut p = policy();
        p.roster.duplicates = Duplicates::KeepFirst;
        let r = parse_roster(text.as_bytes(), &p).unwrap();
        assert_eq!(r.persons.len(), 2);
        assert_eq!(r.persons[0].key.as_str(), "jsmith");
    }

    #[test]
    fn duplicate_email_rejects_both() {
        let r = parse(&format!("{HEAD}a,A,B,same@example.org\nb,C,D,SAME@example.org\n")).unwrap();
        assert!(r.persons.is_empty());
        assert!(rejected(&r)[1].2.contains("duplicate email"));
    }

    #[test]
    fn unknown_columns_warn_and_ignored_columns_are_silent() {
        let r =
            parse("username,firstname,surname,email,Shoe size,Creation date\na,A,B,a@example.org,9,2020\n").unwrap();
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].contains("Shoe size"));
        assert_eq!(r.persons.len(), 1);
    }

    #[test]
    fn status_groups_must_change_and_password() {
        let r = parse(
            "username,firstname,surname,email,status,belong to,change password next time,password\n\
             a,A,B,a@example.org,Leaver,VPN; staff,yes,s3cret pass\n",
        )
        .unwrap();
        let p = &r.persons[0];
        assert_eq!(p.state, AccountState::Leaver);
        assert_eq!(
            p.groups.as_deref(),
            Some(&[Value::from("vpn"), Value::from("staff")][..])
        );
        assert_eq!(p.must_change, Some(true));
        assert_eq!(p.password.as_ref().map(|s| s.expose()), Some("s3cret pass"));
    }

    #[test]
    fn line_numbers_are_right_with_crlf_and_embedded_newlines() {
        let text = "username,firstname,surname,email,notes\r\na,A,B,a@x.org,\"one\r\ntwo\"\r\nb,B,C,b@x.org,\r\n\r\nc,C,D,c@x.org,\r\n";
        let r = parse(text).unwrap();
        let lines: Vec<u64> = r.persons.iter().map(|p| p.origin.line).collect();
        assert_eq!(lines, vec![2, 4, 6]);
    }

    #[test]
    fn email_syntax() {
        for ok in [
            "a@example.org",
            "first.last+tag@sub.example.co.uk",
            "o'brien@example.ie",
        ] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@",
            "@example.org",
            "a@b",
            "a b@example.org",
            "a@@example.org",
            "a@example..org",
            "<a>@x.org",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn records_iterator_matches_entries_for_the_results_file() {
        let text = format!("{HEAD}a,A,B,a@example.org\n\nb,B\nc,C,D,c@example.org\n");
        let r = parse(&text).unwrap();
        let recs: Vec<_> = r.records().collect();
        assert_eq!(recs.len(), r.entries.len());
        assert_eq!(recs.len(), 3);
    }
}
