//! The input side of the results file, rendered ahead: each input row's
//! cells as the results echo them (formula-safe, password cells hidden,
//! cut or padded to the header's width), CSV-encoded, each row ending with
//! the delimiter the verdict columns follow. A run renders it on a thread
//! of its own while it plans and applies, so that writing the results file
//! afterwards is mostly a copy (issue 16: the echo was a fifth of a 100k
//! nightly run's time after its writes).

use super::policy::Column;
use super::report::{is_formula, neutralise};
use super::roster::{record_start, records, Roster, Sheet};

/// What the echo is rendered from (the text shared, not copied), to take
/// to another thread.
pub struct EchoSource {
    text: super::roster::Text,
    body_start: usize,
    first_line: u64,
    delimiter: u8,
    sheet: Option<Sheet>,
    width: usize,
    password_col: Option<usize>,
}

impl EchoSource {
    pub fn of(roster: &Roster) -> EchoSource {
        EchoSource {
            text: roster.text.clone(),
            body_start: roster.body_start,
            first_line: roster.first_line(),
            delimiter: roster.delimiter,
            sheet: roster.sheet.clone(),
            width: roster.header.len(),
            password_col: password_col(roster),
        }
    }

    /// Write `rec`'s cells as the results echo them, then the delimiter
    /// the verdict columns follow (no record: empty cells).
    fn write_cells(&self, out: &mut csv::Writer<Vec<u8>>, rec: Option<&csv::StringRecord>) -> std::io::Result<()> {
        let mut cells = 0;
        for (i, cell) in rec.into_iter().flat_map(|r| r.iter().take(self.width)).enumerate() {
            if Some(i) == self.password_col && !cell.is_empty() {
                out.write_field("(hidden)")?;
            } else {
                out.write_field(neutralise(cell).as_bytes())?;
            }
            cells += 1;
        }
        for _ in cells..self.width {
            out.write_field("")?;
        }
        // An empty last field writes the delimiter the verdict columns
        // follow; the record's line end is cut off by `row`.
        out.write_field("")?;
        out.write_record(None::<&[u8]>)?;
        out.flush()
    }

    /// `rec`'s own bytes in the file (from `body`), when they can be echoed
    /// from there: the record has no quote, so it is one line, its cells
    /// are its bytes between delimiters, and writing them would quote none.
    fn raw<'b>(&self, body: &'b [u8], rec: &csv::StringRecord) -> Option<&'b [u8]> {
        let at = record_start(body, usize::try_from(rec.position()?.byte()).ok()?);
        let rest = body.get(at..)?;
        let raw = &rest[..rest
            .iter()
            .position(|b| matches!(b, b'\n' | b'\r'))
            .unwrap_or(rest.len())];
        // Exactly the cells and their delimiters, nothing quoted.
        let text: usize = rec.iter().map(str::len).sum();
        let delimiters = raw.iter().filter(|b| **b == self.delimiter).count();
        if raw.contains(&b'"') || delimiters + 1 != rec.len() || raw.len() != text + delimiters {
            return None;
        }
        Some(raw)
    }

    /// Echo an unquoted record from its bytes: what `write_cells` writes for
    /// it, without a CSV writer.
    fn echo_raw(&self, out: &mut Vec<u8>, raw: &[u8]) {
        let mut cells = 0;
        for (i, cell) in raw.split(|b| *b == self.delimiter).take(self.width).enumerate() {
            if Some(i) == self.password_col && !cell.is_empty() {
                out.extend_from_slice(b"(hidden)");
            } else {
                if is_formula(cell) {
                    out.push(b'\'');
                }
                out.extend_from_slice(cell);
            }
            out.push(self.delimiter);
            cells += 1;
        }
        out.extend(std::iter::repeat_n(self.delimiter, self.width - cells));
        out.push(b'\n');
    }
}

/// The column holding passwords, whose cells are never echoed.
fn password_col(roster: &Roster) -> Option<usize> {
    roster.columns.iter().position(|c| *c == Column::Password)
}

/// The echo of every input record, in file order.
#[derive(Debug, Default)]
pub struct Echo {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Echo {
    /// Render the echo of every record of `src`. A record without quotes
    /// (most are) is echoed from its bytes; the others, and a workbook's
    /// rows, are written cell by cell through a CSV writer.
    pub fn render(src: &EchoSource) -> std::io::Result<Echo> {
        // The writer's own buffer: a record's worth (never 0: it could not
        // write at all), apart from the vector it writes into.
        let writer = |buffer: usize, capacity: usize| {
            csv::WriterBuilder::new()
                .delimiter(src.delimiter)
                .has_headers(false)
                .buffer_capacity(buffer.max(64))
                .from_writer(Vec::with_capacity(capacity))
        };
        let capacity = src.text.len() + src.text.len() / 8;
        let mut ends = Vec::new();
        if let Some(sheet) = &src.sheet {
            let mut out = writer(8 * 1024, capacity);
            for row in &sheet.rows {
                src.write_cells(&mut out, Some(&row.record))?;
                ends.push(out.get_ref().len());
            }
            let bytes = out.into_inner().map_err(|e| e.into_error())?;
            return Ok(Echo { bytes, ends });
        }
        let mut bytes = Vec::with_capacity(capacity);
        let body = &src.text[src.body_start..];
        let mut it = records(body, src.delimiter, src.first_line);
        while let Some(next) = it.advance() {
            // An unreadable record echoes as empty cells (its row says why).
            let rec = next.ok().map(|_| it.current());
            match rec.and_then(|r| src.raw(body.as_bytes(), r)) {
                Some(raw) => src.echo_raw(&mut bytes, raw),
                None => {
                    let mut one = writer(256, 256);
                    src.write_cells(&mut one, rec)?;
                    bytes.extend_from_slice(&one.into_inner().map_err(|e| e.into_error())?);
                }
            }
            ends.push(bytes.len());
        }
        Ok(Echo { bytes, ends })
    }

    /// Record `k`'s echo, ending with a delimiter; `None` past the end.
    pub fn row(&self, k: usize) -> Option<&[u8]> {
        let end = self.ends.get(k)?.checked_sub(1)?;
        let start = k.checked_sub(1).and_then(|j| self.ends.get(j)).copied().unwrap_or(0);
        self.bytes.get(start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::roster::fixtures::policy;
    use crate::core::roster::parse_roster;

    /// Each row echoes as its cells would be written in one CSV record with
    /// the verdict columns: quoted where needed, formulas neutralised, the
    /// password hidden, short rows padded, an unreadable row empty.
    #[test]
    fn rows_echo_as_one_record_would_write_them() -> Result<(), String> {
        let file = "username,firstname,surname,email,password\n\
                    a1,\"Ann, Jr\",\"Lee\nSmith\",a@example.org,s3cret!\n\
                    b2,=cmd(),+x,b@example.org,\n\
                    c3,\"say \"\"hi\"\"\",Ng,c@example.org\n";
        let roster = parse_roster(file.as_bytes(), &policy()).map_err(|e| e.to_string())?;
        let echo = Echo::render(&EchoSource::of(&roster)).map_err(|e| e.to_string())?;
        let row = |k| echo.row(k).map(|b| String::from_utf8_lossy(b).into_owned());
        assert_eq!(
            row(0).as_deref(),
            Some("a1,\"Ann, Jr\",\"Lee\nSmith\",a@example.org,(hidden),")
        );
        assert_eq!(row(1).as_deref(), Some("b2,'=cmd(),'+x,b@example.org,,"));
        assert_eq!(row(2).as_deref(), Some("c3,\"say \"\"hi\"\"\",Ng,c@example.org,,"));
        assert_eq!(row(3), None);
        Ok(())
    }

    /// What each row's echo must be: its cells written by a CSV writer (the
    /// way the results file was written before records were copied).
    fn written(file: &str, delimiter: u8, width: usize, password: Option<usize>) -> Vec<String> {
        let mut r = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .from_reader(file.as_bytes());
        let mut rows = Vec::new();
        for rec in r.records() {
            let rec = rec.expect("a readable record"); // ok: test
            if rec.len() == 1 && rec[0].trim().is_empty() {
                continue;
            }
            let mut w = csv::WriterBuilder::new().delimiter(delimiter).from_writer(Vec::new());
            let mut n = 0;
            for (i, c) in rec.iter().take(width).enumerate() {
                let c = if Some(i) == password && !c.is_empty() {
                    "(hidden)".into()
                } else {
                    neutralise(c)
                };
                w.write_field(c.as_bytes()).expect("write"); // ok: test
                n += 1;
            }
            for _ in n..=width {
                w.write_field("").expect("write"); // ok: test
            }
            w.write_record(None::<&[u8]>).expect("write"); // ok: test
            let out = String::from_utf8(w.into_inner().expect("flush")).expect("utf-8"); // ok: test
            rows.push(out.strip_suffix('\n').unwrap_or(&out).to_string());
        }
        rows
    }

    /// A workbook's rows have no text to copy: each is written cell by cell.
    #[test]
    fn a_workbooks_rows_are_written_cell_by_cell() -> Result<(), String> {
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        let rows = [
            ["username", "firstname", "surname", "email"],
            ["a1", "Ann, Jr", "=1+1", "a@example.org"],
            ["b2", "Bo", "Ng", "b@example.org"],
        ];
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                ws.write_string(r as u32, c as u16, *cell).map_err(|e| e.to_string())?;
            }
        }
        let bytes = wb.save_to_buffer().map_err(|e| e.to_string())?;
        let roster = parse_roster(&bytes, &policy()).map_err(|e| e.to_string())?;
        let echo = Echo::render(&EchoSource::of(&roster)).map_err(|e| e.to_string())?;
        let row = |k| echo.row(k).map(|b| String::from_utf8_lossy(b).into_owned());
        assert_eq!(row(0).as_deref(), Some("a1,\"Ann, Jr\",'=1+1,a@example.org,"));
        assert_eq!(row(1).as_deref(), Some("b2,Bo,Ng,b@example.org,"));
        assert_eq!(row(2), None);
        Ok(())
    }

    #[test]
    fn records_copied_from_the_file_echo_as_written_ones() -> Result<(), String> {
        for (file, delimiter) in [
            (
                "username,firstname,surname,email,password,phone\r\n\
                 a1,Ann,Lee,a@example.org,,+44 20 7946 0101\r\n\
                 \r\n\
                 b2,=cmd(),-x,b@example.org,s3cret,@home\r\n\
                 c3,Zoë,Ng,c@example.org\r\n\
                 d4,Dan,Ho,d@example.org,,\t1,extra,cells\r\n\
                 e5,\"Eve, Jr\",\"O\"\"Hara\",e@example.org,,\r\n\
                 f6,Fay,Wu,f@example.org,,",
                b',',
            ),
            (
                "username;firstname;surname;email\nx1;Xi;Li;x@example.org\ny2;+1;Ro,se;y@example.org\n",
                b';',
            ),
        ] {
            let roster = parse_roster(file.as_bytes(), &policy()).map_err(|e| e.to_string())?;
            let src = EchoSource::of(&roster);
            assert_eq!(src.delimiter, delimiter);
            let echo = Echo::render(&src).map_err(|e| e.to_string())?;
            let want = written(file, delimiter, roster.header.len(), src.password_col);
            assert!(want.len() >= 2, "{want:?}");
            for (k, w) in want.iter().enumerate() {
                assert_eq!(
                    echo.row(k).map(|b| String::from_utf8_lossy(b).into_owned()).as_ref(),
                    Some(w),
                    "row {k}"
                );
            }
            assert_eq!(echo.row(want.len()), None);
        }
        Ok(())
    }
}
