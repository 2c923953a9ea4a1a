//! The CSV layer: Excel's `sep=` line and delimiter sniffing, the header and
//! what its columns mean, and the data records with the physical line each
//! starts on.

use std::collections::HashMap;

use super::error::{file_error, FileError, FileErrorKind};
use crate::core::policy::{Column, Policy};

/// Find Excel's `sep=X` line and the delimiter of the header line.
pub(super) fn sniff(text: &str) -> (usize, u8) {
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
    /// A workbook's rows, when the records come from a sheet.
    sheet: Option<std::slice::Iter<'a, super::SheetRow>>,
}

impl<'a> RecordIter<'a> {
    /// The records of a sheet, each with its sheet row number as its line.
    pub fn of_sheet(rows: &'a [super::SheetRow]) -> RecordIter<'a> {
        RecordIter {
            sheet: Some(rows.iter()),
            ..records("", b',', 1)
        }
    }
}

impl RecordIter<'_> {
    /// The physical line on which a record starting at byte `at` begins.
    fn line_at(&mut self, at: usize) -> u64 {
        let at = record_start(self.body, at).min(self.body.len());
        if at > self.scanned {
            self.newlines += self.body[self.scanned..at].iter().filter(|b| **b == b'\n').count() as u64;
            self.scanned = at;
        }
        self.first_line + self.newlines
    }
}

/// Where the record the csv crate reports at byte `at` of `body` starts:
/// after CRLF (and blank lines) the reported offset points into the
/// previous terminator, and a record never starts with CR or LF.
pub fn record_start(body: &[u8], mut at: usize) -> usize {
    while matches!(body.get(at), Some(b'\n' | b'\r')) {
        at += 1;
    }
    at
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
        sheet: None,
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
        if let Some(rows) = &mut self.sheet {
            return rows.next().map(|r| Ok((r.row, r.record.clone())));
        }
        self.advance().map(|r| r.map(|line| (line, self.record.clone())))
    }
}

/// True when the text ends inside a quoted field (the file was cut).
pub(super) fn ends_inside_quotes(body: &str) -> bool {
    body.bytes().filter(|b| *b == b'"').count() % 2 == 1
}

/// What each header cell means, and which `[[layouts]]` entry the header
/// matches (exactly one must, when the policy has layouts).
pub(super) fn map_header(header: &[String], policy: &Policy) -> Result<(Option<usize>, Vec<Column>), FileError> {
    if header.iter().all(|h| h.is_empty()) {
        return Err(file_error(FileErrorKind::Header, "the header line is empty"));
    }
    let layouts = policy.layouts();
    if layouts.is_empty() {
        return map_in(header, policy, None).map(|c| (None, c));
    }
    let lacks: Vec<Vec<String>> = layouts.iter().map(|l| l.lacks(header, policy)).collect();
    let matching: Vec<usize> = (0..layouts.len()).filter(|i| lacks[*i].is_empty()).collect();
    match matching[..] {
        [one] => map_in(header, policy, Some(one)).map(|c| (Some(one), c)),
        [] => {
            // The closest layout lacks the fewest required columns (the first on a tie).
            let (closest, missing) = lacks
                .iter()
                .enumerate()
                .min_by_key(|(_, m)| m.len())
                .map(|(i, m)| (layouts[i].name.clone(), m.join(", ")))
                .unwrap_or_default();
            let names: Vec<String> = layouts.iter().map(|l| format!("{:?}", l.name)).collect();
            Err(file_error(
                FileErrorKind::Header,
                format!(
                    "the header matches none of the layouts of policy {:?} ({}); the closest, {closest:?}, lacks: {missing}; the header has {header:?}",
                    policy.name,
                    names.join(", ")
                ),
            ))
        }
        _ => {
            let names: Vec<String> = matching.iter().map(|i| format!("{:?}", layouts[*i].name)).collect();
            Err(file_error(
                FileErrorKind::Header,
                format!(
                    "the header matches more than one layout of policy {:?} ({}); give the layouts distinct aliases for a required field",
                    policy.name,
                    names.join(", ")
                ),
            ))
        }
    }
}

fn map_in(header: &[String], policy: &Policy, layout: Option<usize>) -> Result<Vec<Column>, FileError> {
    let columns: Vec<Column> = header.iter().map(|h| policy.column_in(layout, h)).collect();
    let mut seen: HashMap<Column, &str> = HashMap::new();
    let mut problems = Vec::new();
    // The first cell that is wrong, when one is.
    let mut column = None;
    for (h, c) in header.iter().zip(&columns) {
        if matches!(c, Column::Unknown | Column::Ignored) {
            continue;
        }
        if let Some(prev) = seen.insert(*c, h) {
            column.get_or_insert(h.as_str());
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
    match (problems.is_empty(), column) {
        (true, _) => Ok(columns),
        (false, Some(c)) => Err(file_error(FileErrorKind::Header, problems.join("; ")).in_column(c)),
        (false, None) => Err(file_error(FileErrorKind::Header, problems.join("; "))),
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
        Column::StartDate => "start_date".into(),
        Column::EndDate => "end_date".into(),
        Column::Invite => "invite".into(),
        Column::Ignored | Column::Unknown => "nothing".into(),
    }
}

/// The header line's cells, trimmed.
pub(super) fn read_header(body: &str, delimiter: u8, first_line: u64) -> Result<Vec<String>, FileError> {
    let mut hreader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(body.as_bytes());
    let mut hrec = csv::StringRecord::new();
    match hreader.read_record(&mut hrec) {
        Ok(true) => {}
        Ok(false) => return Err(file_error(FileErrorKind::Empty, "the file has no header line")),
        Err(e) => return Err(file_error(FileErrorKind::Header, format!("line {first_line}: {e}")).at_line(first_line)),
    }
    Ok(hrec.iter().map(|h| h.trim().to_string()).collect())
}

#[cfg(test)]
mod tests {
    use crate::core::roster::fixtures::*;

    #[test]
    fn delimiters_are_sniffed_and_sep_line_honoured() {
        for (text, delim) in [
            ("username;firstname;surname;email\na;A;B;a@example.org\n", b';'),
            ("username\tfirstname\tsurname\temail\na\tA\tB\ta@example.org\n", b'\t'),
            ("sep=;\nusername;firstname;surname;email\na;A;B;a@example.org\n", b';'),
            ("sep=|\nusername|firstname|surname|email\na|A|B|a@example.org\n", b'|'),
        ] {
            let r = parse(text).unwrap(); // ok: test
            assert_eq!(r.delimiter, delim, "{text}");
            assert_eq!(r.persons.len(), 1, "{text}");
        }
        let r = parse("sep=;\nusername;firstname;surname;email\na;A;B;a@example.org\n").unwrap(); // ok: test
        assert_eq!(r.persons[0].origin.line, 3);
    }

    #[test]
    fn quoting_embedded_delimiters_quotes_newlines_and_mixed_line_ends() {
        // A newline inside a quoted cell of a column we do not sync is fine;
        // the next record starts on the line after it.
        let r = parse(
            "username,firstname,surname,email,notes\r\n\"a\",\"Ann, Jr\",\"O\"\"Neil\",a@example.org,\"x\ny\"\nb,B,C,b@example.org,t\r\n",
        )
        .unwrap(); // ok: test
        assert_eq!(r.persons.len(), 2);
        let a = &r.persons[0];
        assert_eq!(a.attrs.get(0), Some("Ann, Jr"));
        assert_eq!(a.attrs.get(1), Some("O\"Neil"));
        assert_eq!(r.persons[1].origin.line, 4);
        // In a synced field the same newline is a control character: rejected.
        let r = parse("username,firstname,surname,email,title\na,A,B,a@example.org,\"x\ny\"\n").unwrap(); // ok: test
        assert!(rejected(&r)[0].2.contains("control character"), "{:?}", rejected(&r));
    }

    #[test]
    fn line_numbers_are_right_with_crlf_and_embedded_newlines() {
        let text = "username,firstname,surname,email,notes\r\na,A,B,a@x.org,\"one\r\ntwo\"\r\nb,B,C,b@x.org,\r\n\r\nc,C,D,c@x.org,\r\n";
        let r = parse(text).unwrap(); // ok: test
        let lines: Vec<u64> = r.persons.iter().map(|p| p.origin.line).collect();
        assert_eq!(lines, vec![2, 4, 6]);
    }

    #[test]
    fn records_iterator_matches_entries_for_the_results_file() {
        let text = format!("{HEAD}a,A,B,a@example.org\n\nb,B\nc,C,D,c@example.org\n");
        let r = parse(&text).unwrap(); // ok: test
        let recs: Vec<_> = r.records().collect();
        assert_eq!(recs.len(), r.entries.len());
        assert_eq!(recs.len(), 3);
    }

    #[test]
    fn the_header_picks_exactly_one_layout() {
        use crate::core::policy::LayoutSection;
        let layout = |name: &str, pairs: &[(&str, &str)]| LayoutSection {
            name: name.into(),
            aliases: pairs
                .iter()
                .map(|(f, n)| (f.to_string(), vec![n.to_string()]))
                .collect(),
        };
        let p = policy()
            .with_layouts(&[
                layout("v2", &[("username", "User Name"), ("email", "Email Address")]),
                layout(
                    "v1",
                    &[("username", "Login ID"), ("surname", "Family Name"), ("email", "Mail")],
                ),
            ])
            .unwrap(); // ok: test
        let r = crate::core::roster::parse_roster(b"Login ID,firstname,Family Name,Mail\na,A,B,a@example.org\n", &p)
            .unwrap(); // ok: test
        assert_eq!(r.layout.as_deref(), Some("v1"));
        assert_eq!(r.persons.len(), 1);
        assert!(
            r.warnings.iter().any(|w| w.contains("layout \"v1\"")),
            "{:?}",
            r.warnings
        );
        let r =
            crate::core::roster::parse_roster(b"User Name,firstname,surname,Email Address\na,A,B,a@example.org\n", &p)
                .unwrap(); // ok: test
        assert_eq!(r.layout.as_deref(), Some("v2"));
        // None matches: the closest and what it lacks.
        let e = crate::core::roster::parse_roster(b"Login ID,firstname,surname,Mail\na,A,B,a@example.org\n", &p)
            .unwrap_err();
        assert!(
            e.message
                .contains("the closest, \"v1\", lacks: surname (\"Family Name\")"),
            "{e}"
        );
        // Both match: refused, not guessed.
        let p = policy()
            .with_layouts(&[layout("x", &[("title", "Role")]), layout("y", &[("title", "Job")])])
            .unwrap(); // ok: test
        let e = crate::core::roster::parse_roster(format!("{HEAD}a,A,B,a@example.org\n").as_bytes(), &p).unwrap_err();
        assert!(e.message.contains("more than one layout"), "{e}");
    }
}
