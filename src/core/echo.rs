//! The input side of the results file, rendered ahead: each input row's
//! cells as the results echo them (formula-safe, password cells hidden,
//! cut or padded to the header's width), CSV-encoded, each row ending with
//! the delimiter the verdict columns follow. A run renders it on a thread
//! of its own while it plans and applies, so that writing the results file
//! afterwards is mostly a copy (issue 16: the echo was a fifth of a 100k
//! nightly run's time after its writes).

use super::policy::Column;
use super::report::neutralise;
use super::roster::{records, RecordIter, Roster, Sheet};

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
            first_line: roster.text[..roster.body_start].matches('\n').count() as u64 + 1,
            delimiter: roster.delimiter,
            sheet: roster.sheet.clone(),
            width: roster.header.len(),
            password_col: password_col(roster),
        }
    }

    fn records(&self) -> RecordIter<'_> {
        match &self.sheet {
            Some(sheet) => RecordIter::of_sheet(&sheet.rows),
            None => records(&self.text[self.body_start..], self.delimiter, self.first_line),
        }
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
    /// Render the echo of every record of `src`.
    pub fn render(src: &EchoSource) -> std::io::Result<Echo> {
        let mut out = csv::WriterBuilder::new()
            .delimiter(src.delimiter)
            .has_headers(false)
            .from_writer(Vec::with_capacity(src.text.len() + src.text.len() / 8));
        let mut ends = Vec::new();
        for next in src.records() {
            let mut cells = 0;
            // An unreadable record echoes as empty cells (its row says why).
            if let Ok((_, rec)) = next {
                for (i, cell) in rec.iter().take(src.width).enumerate() {
                    if Some(i) == src.password_col && !cell.is_empty() {
                        out.write_field("(hidden)")?;
                    } else {
                        out.write_field(neutralise(cell).as_bytes())?;
                    }
                    cells += 1;
                }
            }
            for _ in cells..src.width {
                out.write_field("")?;
            }
            // An empty last field writes the delimiter the verdict columns
            // follow; the record's line end is cut off by `row`.
            out.write_field("")?;
            out.write_record(None::<&[u8]>)?;
            out.flush()?;
            ends.push(out.get_ref().len());
        }
        let bytes = out.into_inner().map_err(|e| e.into_error())?;
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
}
