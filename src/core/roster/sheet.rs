//! Workbook bytes → the cells of one sheet as text, the way a person sees
//! them in Excel: numbers without a trailing `.0`, text with its leading
//! zeros, dates in the policy's format, booleans as 1/0, formulas as their
//! cached values. Rows keep their sheet row number and columns their letter.
//!
//! Only XLSX is read. Other spreadsheet files (ODS, XLSB, Excel 97–2003
//! `.xls`), password-protected or macro workbooks are refused with what to do.
//! Memory stays bounded by the file's size: the parts of the workbook may
//! expand to at most [`expansion_budget`] bytes, and cells are kept sparse.

use std::io::{Cursor, Read};

use calamine::{DataRef, Reader, Xlsx};

use super::error::{file_error, FileError, FileErrorKind};
use crate::core::policy::Policy;

/// What kind of workbook the bytes are, by their magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Book {
    /// A ZIP container: XLSX (or ODS, XLSB, XLSM — told apart inside).
    Zip,
    /// An OLE compound file: Excel 97–2003, or an encrypted (password) workbook.
    Compound,
}

pub(super) fn sniff(bytes: &[u8]) -> Option<Book> {
    if bytes.starts_with(b"PK\x03\x04") {
        Some(Book::Zip)
    } else if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        Some(Book::Compound)
    } else {
        None
    }
}

/// One data row of the sheet.
#[derive(Clone, Debug)]
pub struct SheetRow {
    /// The sheet's row number (from 1), as Excel shows it.
    pub row: u64,
    /// The cells under the header, as text.
    pub record: csv::StringRecord,
    /// Cells (index into the record) holding an Excel error, with its text.
    pub errors: Vec<(usize, String)>,
    /// The letter of the first non-empty cell outside the header's columns.
    pub outside: Option<String>,
}

/// The sheet as read: its header and data rows.
#[derive(Clone, Debug)]
pub struct Sheet {
    pub name: String,
    pub header_row: u64,
    /// Column index (from 0) of the header's first cell: letters count from it.
    pub first_col: usize,
    pub header: Vec<String>,
    pub rows: Vec<SheetRow>,
}

impl Sheet {
    /// The letter of record column `i`.
    pub fn letter(&self, i: usize) -> String {
        letter(self.first_col + i)
    }
}

/// A column's letters: 0 → A, 25 → Z, 26 → AA.
pub fn letter(mut col: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (col % 26) as u8);
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// How many bytes the workbook's parts may expand to: a real workbook
/// compresses XML about ten to one; a ZIP bomb a thousand to one.
pub fn expansion_budget(file_len: usize) -> u64 {
    64 * 1024 * 1024 + 100 * file_len as u64
}

/// How many cells the rows under the header may span (columns × rows): a
/// workbook stores only the cells it has, so a header cell in column XFD
/// over many one-cell rows would otherwise make a tiny file a huge table.
pub fn dense_budget(file_len: usize) -> u64 {
    expansion_budget(file_len) / 16
}

fn refuse(message: impl Into<String>) -> FileError {
    file_error(FileErrorKind::Workbook, message)
}

/// Read the policy's sheet (or the first) of a workbook.
pub(super) fn read_sheet(bytes: &[u8], book: Book, policy: &Policy) -> Result<Sheet, FileError> {
    if book == Book::Compound {
        let encrypted: Vec<u8> = "EncryptedPackage"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        if bytes.windows(encrypted.len()).any(|w| w == encrypted.as_slice()) {
            return Err(refuse(
                "the workbook is password-protected (encrypted); open it in Excel, remove the password (File > Info > Protect Workbook) and save it again",
            ));
        }
        return Err(refuse(
            "this is an Excel 97-2003 workbook (.xls); open it in Excel and save it as \"Excel Workbook (.xlsx)\" or as CSV UTF-8",
        ));
    }
    check_container(bytes)?;
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(|e| {
        refuse(format!(
            "the workbook cannot be read ({e}); it may be damaged: open it in Excel and save it again as .xlsx, or export CSV"
        ))
    })?;
    let names = book.sheet_names();
    let name = match &policy.roster.sheet {
        Some(want) => names
            .iter()
            .find(|n| n.as_str() == want.as_str())
            .or_else(|| names.iter().find(|n| n.trim().eq_ignore_ascii_case(want.trim())))
            .cloned()
            .ok_or_else(|| {
                refuse(format!(
                    "the workbook has no sheet {want:?} (roster.sheet of policy {:?}); its sheets are: {}",
                    policy.name,
                    quoted(&names)
                ))
            })?,
        None => names
            .first()
            .cloned()
            .ok_or_else(|| refuse("the workbook has no sheet; export it again"))?,
    };
    let cells = read_cells(&mut book, &name, policy)?;
    to_rows(name, cells, dense_budget(bytes.len()))
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
}

/// The ZIP holds an XLSX workbook without macros, and does not expand
/// beyond the budget.
fn check_container(bytes: &[u8]) -> Result<(), FileError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
        refuse(format!(
            "the file starts like a workbook (ZIP) but cannot be opened ({e}); it is damaged or was cut off: export it again"
        ))
    })?;
    let has = |zip: &zip::ZipArchive<_>, name: &str| zip.file_names().any(|n| n.eq_ignore_ascii_case(name));
    if has(&zip, "mimetype") && has(&zip, "content.xml") {
        return Err(refuse(
            "this is an OpenDocument spreadsheet (.ods); save it as \"Excel Workbook (.xlsx)\" or as CSV UTF-8",
        ));
    }
    if has(&zip, "xl/workbook.bin") {
        return Err(refuse(
            "this is an Excel binary workbook (.xlsb); save it as \"Excel Workbook (.xlsx)\" or as CSV UTF-8",
        ));
    }
    if has(&zip, "xl/vbaProject.bin") {
        return Err(refuse(
            "the workbook contains macros (.xlsm); dirsync does not read macro workbooks: save it as \"Excel Workbook (.xlsx)\" or as CSV UTF-8",
        ));
    }
    if !has(&zip, "xl/workbook.xml") {
        return Err(refuse(
            "the file is a ZIP archive but not an Excel workbook (no xl/workbook.xml); send the .xlsx or a CSV file",
        ));
    }
    let budget = expansion_budget(bytes.len());
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let mut part = zip.by_index(i).map_err(|e| {
            refuse(format!(
                "part {i} of the workbook cannot be read ({e}); it is damaged: open it in Excel and save it again"
            ))
        })?;
        let left = budget.saturating_sub(total);
        let n = std::io::copy(&mut (&mut part).take(left + 1), &mut std::io::sink()).map_err(|e| {
            refuse(format!(
                "part {:?} of the workbook cannot be read ({e}); it is damaged: open it in Excel and save it again",
                part.name()
            ))
        })?;
        total += n;
        if total > budget {
            return Err(refuse(format!(
                "the workbook expands to more than {} MB, far more than a roster of its size needs (a damaged or malicious file); export it again",
                budget / 1_000_000
            )));
        }
    }
    Ok(())
}

/// One non-empty cell: (row, column, text, is an Excel error).
type CellText = (u32, u32, String, bool);

fn read_cells<R: Read + std::io::Seek>(
    book: &mut Xlsx<R>,
    name: &str,
    policy: &Policy,
) -> Result<Vec<CellText>, FileError> {
    let damaged = |e: calamine::XlsxError| {
        refuse(format!(
            "sheet {name:?} cannot be read ({e}); it may be damaged: open the workbook in Excel and save it again"
        ))
    };
    let mut reader = book.worksheet_cells_reader(name).map_err(damaged)?;
    let mut cells = Vec::new();
    while let Some(cell) = reader.next_cell().map_err(damaged)? {
        let (row, col) = cell.get_position();
        let (text, error) = match cell.get_value() {
            DataRef::Empty => continue,
            DataRef::Int(i) => (i.to_string(), false),
            DataRef::Float(f) => (number(*f), false),
            DataRef::String(s) => (s.clone(), false),
            DataRef::SharedString(s) => (s.to_string(), false),
            DataRef::Bool(b) => ((if *b { "1" } else { "0" }).to_string(), false),
            DataRef::DateTime(d) if d.is_datetime() => (date(d, policy), false),
            DataRef::DateTime(d) => (number(d.as_f64()), false),
            DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => (s.clone(), false),
            DataRef::Error(e) => (e.to_string(), true),
        };
        if text.is_empty() {
            continue;
        }
        cells.push((row, col, text, error));
    }
    Ok(cells)
}

/// A number as Excel's General format shows it: integers without `.0`, at
/// most 15 significant digits.
fn number(f: f64) -> String {
    if !f.is_finite() {
        return f.to_string();
    }
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return format!("{}", f as i64);
    }
    let magnitude = if f == 0.0 { 0 } else { f.abs().log10().floor() as i32 };
    if !(-5..15).contains(&magnitude) {
        return format!("{f:E}");
    }
    let decimals = (14 - magnitude).clamp(0, 20) as usize;
    let s = format!("{f:.decimals$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// A date cell in the policy's date format; a time of day, when there is one,
/// after it as HH:MM:SS.
fn date(d: &calamine::ExcelDateTime, policy: &Policy) -> String {
    let v = d.as_f64();
    // Excel's own range: 1900-01-01 to 9999-12-31.
    if !(0.0..2_958_466.0).contains(&v) {
        return number(v);
    }
    let (y, m, day, h, min, s, _) = d.to_ymd_hms_milli();
    let formatted = time::Month::try_from(m)
        .ok()
        .and_then(|m| time::Date::from_calendar_date(i32::from(y), m, day).ok())
        .and_then(|date| date.format(policy.date_format()).ok());
    match formatted {
        Some(f) if (h, min, s) == (0, 0, 0) => f,
        Some(f) => format!("{f} {h:02}:{min:02}:{s:02}"),
        None => number(v),
    }
}

/// Sparse cells → the header (the first non-empty row) and the data rows
/// under it. Empty rows, and empty cells of a formatted sheet, are not rows.
fn to_rows(name: String, mut cells: Vec<CellText>, budget: u64) -> Result<Sheet, FileError> {
    cells.sort_by_key(|c| (c.0, c.1));
    let mut rows = cells.chunk_by(|a, b| a.0 == b.0);
    let Some(head) = rows.next() else {
        return Ok(Sheet {
            name,
            header_row: 1,
            first_col: 0,
            header: Vec::new(),
            rows: Vec::new(),
        });
    };
    let first_col = head.first().map(|c| c.1).unwrap_or(0);
    let last_col = head.last().map(|c| c.1).unwrap_or(0);
    let width = (last_col - first_col) as usize + 1;
    let data_rows = rows.clone().count();
    if width as u64 * data_rows as u64 > budget {
        return Err(refuse(format!(
            "sheet {name:?} spans {width} columns (header row {}, columns {} to {}) over {data_rows} rows, far more cells than the file holds; delete the stray cells right of the table (or their formatting) and export it again",
            head[0].0 + 1,
            letter(first_col as usize),
            letter(last_col as usize)
        )));
    }
    let mut header = vec![String::new(); width];
    for (_, col, text, _) in head {
        header[(col - first_col) as usize] = text.trim().to_string();
    }
    let mut out = Vec::new();
    let mut fields = vec![String::new(); width];
    for row in rows {
        fields.iter_mut().for_each(String::clear);
        let mut errors = Vec::new();
        let mut outside = None;
        for (_, col, text, error) in row {
            if *col < first_col || *col > last_col {
                outside.get_or_insert_with(|| letter(*col as usize));
                continue;
            }
            let i = (col - first_col) as usize;
            fields[i].clone_from(text);
            if *error {
                errors.push((i, text.clone()));
            }
        }
        out.push(SheetRow {
            row: u64::from(row[0].0) + 1,
            record: csv::StringRecord::from(fields.clone()),
            errors,
            outside,
        });
    }
    Ok(Sheet {
        name,
        header_row: u64::from(head[0].0) + 1,
        first_col: first_col as usize,
        header,
        rows: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_and_numbers_as_excel_shows_them() {
        let l: Vec<String> = [0, 4, 25, 26, 27, 51, 52, 701, 702, 16383].map(letter).to_vec();
        assert_eq!(l, ["A", "E", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA", "XFD"]);
        for (f, s) in [
            (42.0, "42"),
            (-3.0, "-3"),
            (0.1 + 0.2, "0.3"),
            (1.5, "1.5"),
            (1234567.891, "1234567.891"),
            (44000000000000.0, "44000000000000"),
            (1e20, "1E20"),
            (-0.0, "0"),
        ] {
            assert_eq!(number(f), s, "{f}");
        }
    }
}
