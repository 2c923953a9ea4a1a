//! XLSX workbooks built in the test with rust_xlsxwriter: each cell type as
//! a person sees it, sheet rows and column letters in messages, and the
//! workbooks that are refused (macros, ODS, password, damaged, bombs).

use std::io::Write;

use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};

use super::fixtures::*;
use super::{parse_roster, FileErrorKind, RowErrorKind};
use crate::core::policy::{FieldRule, GroupRules, Limits, PasswordRules, Policy, RosterRules, SyncRules};

fn policy_with(roster: RosterRules) -> Policy {
    let mut fields = std::collections::BTreeMap::new();
    for f in ["employee_id", "start_date", "grade"] {
        fields.insert(f.to_string(), FieldRule::default());
    }
    Policy::compile(
        "t",
        roster,
        fields,
        SyncRules::default(),
        PasswordRules::default(),
        Limits::default(),
        GroupRules::default(),
    )
    .unwrap() // ok: test
}

/// Header in row 1: username, firstname, surname, email, employee_id,
/// start_date, grade, change password next time, phone.
fn book() -> Workbook {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("Users").unwrap(); // ok: test
    let header = [
        "username",
        "firstname",
        "surname",
        "email",
        "employee_id",
        "start_date",
        "grade",
        "change password next time",
        "phone",
    ];
    for (c, h) in header.iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap(); // ok: test
    }
    let date = Format::new().set_num_format("dd/mm/yyyy");
    // Row 2: every kind of cell.
    ws.write_string(1, 0, "jsmith").unwrap(); // ok: test
    ws.write_formula(1, 1, Formula::new("=\"Ja\"&\"ne\"").set_result("Jane"))
        .unwrap(); // ok: test
    ws.write_string(1, 2, "Smith").unwrap(); // ok: test
    ws.write_string(1, 3, "jane@example.org").unwrap(); // ok: test
    ws.write_string(1, 4, "00123").unwrap(); // ok: test
    ws.write_datetime_with_format(1, 5, ExcelDateTime::from_ymd(2026, 11, 21).unwrap(), &date) // ok: test
        .unwrap(); // ok: test
    ws.write_number(1, 6, 7.0).unwrap(); // ok: test
    ws.write_boolean(1, 7, true).unwrap(); // ok: test
    ws.write_number(1, 8, 4420794600.0).unwrap(); // ok: test

    // Row 3 is empty; row 4 has a zero-width space at the end of the email.
    ws.write_string(3, 0, "bjones").unwrap(); // ok: test
    ws.write_string(3, 1, "Bob").unwrap(); // ok: test
    ws.write_string(3, 2, "Jones").unwrap(); // ok: test
    ws.write_string(3, 3, "bob@example.org\u{200B}").unwrap(); // ok: test
    ws.write_number(3, 6, 2.5).unwrap(); // ok: test
    ws.write_boolean(3, 7, false).unwrap(); // ok: test

    // A formatted but empty region below and to the right: not rows.
    let fill = Format::new().set_background_color("#FFFF00");
    for r in 10..20 {
        for c in 0..12 {
            ws.write_blank(r, c, &fill).unwrap(); // ok: test
        }
    }
    wb
}

fn bytes(mut wb: Workbook) -> Vec<u8> {
    wb.save_to_buffer().unwrap() // ok: test
}

#[test]
fn cells_read_as_excel_shows_them() {
    let p = policy_with(RosterRules::default());
    let r = parse_roster(&bytes(book()), &p).unwrap(); // ok: test
    assert_eq!(r.entries.len(), 2, "{:?}", r.entries);
    let a = &r.persons[0];
    let v = |name: &str| a.attrs.get(p.attribute_index(name).unwrap()).map(str::to_string); // ok: test
    assert_eq!(a.key.as_str(), "jsmith");
    assert_eq!(v("firstname").as_deref(), Some("Jane"), "formula: its cached value");
    assert_eq!(v("employee_id").as_deref(), Some("00123"), "text keeps leading zeros");
    assert_eq!(
        v("start_date").as_deref(),
        Some("2026-11-21"),
        "date in the policy's format"
    );
    assert_eq!(v("grade").as_deref(), Some("7"), "no trailing .0");
    assert_eq!(v("phone").as_deref(), Some("4420794600"));
    assert_eq!(a.must_change, Some(true), "TRUE is 1");
    assert_eq!(a.origin.line, 2, "the sheet's row number");
    // The records for the results file are the same rows, with their rows.
    let recs: Vec<_> = r.records().map(|x| x.unwrap()).collect(); // ok: test
    assert_eq!(recs.iter().map(|x| x.0).collect::<Vec<_>>(), vec![2, 4]);
    assert_eq!(&recs[1].1[6], "2.5");
    assert_eq!(&recs[1].1[7], "0");
}

#[test]
fn a_rejected_cell_names_its_sheet_row_letter_header_and_code_point() {
    let p = policy_with(RosterRules::default());
    let r = parse_roster(&bytes(book()), &p).unwrap(); // ok: test
    let rej = rejected(&r);
    assert_eq!(rej.len(), 1);
    assert_eq!(rej[0].1, 4, "sheet row 4");
    assert_eq!(
        rej[0].2,
        "column D, \"email\": contains an invisible character (U+200B zero-width space) at position 16; remove it (or set strip_invisible = true for this field in the policy)"
    );
}

#[test]
fn the_policy_date_format_and_sheet_are_used() {
    let mut wb = book();
    let other = wb.add_worksheet();
    other.set_name("Notes").unwrap(); // ok: test
    other.write_string(0, 0, "nothing here").unwrap(); // ok: test
    let data = bytes(wb);
    let p = policy_with(RosterRules {
        sheet: Some("users".into()),
        date_format: "[day]/[month]/[year]".into(),
        ..Default::default()
    });
    let r = parse_roster(&data, &p).unwrap(); // ok: test
    let i = p.attribute_index("start_date").unwrap(); // ok: test
    assert_eq!(r.persons[0].attrs.get(i), Some("21/11/2026"));
    assert_eq!(r.sheet.as_ref().map(|s| s.name.as_str()), Some("Users"));
    let p = policy_with(RosterRules {
        sheet: Some("Staff".into()),
        ..Default::default()
    });
    let e = parse_roster(&data, &p).unwrap_err();
    assert_eq!(e.kind, FileErrorKind::Workbook);
    assert!(
        e.message.contains("no sheet \"Staff\"") && e.message.contains("\"Users\", \"Notes\""),
        "{e}"
    );
}

#[test]
fn a_header_problem_names_the_sheet_row_and_letter() {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    // Title rows above the table are not a header: the first row with cells is.
    for (c, h) in ["username", "Login", "firstname", "surname", "email"]
        .iter()
        .enumerate()
    {
        ws.write_string(2, c as u16 + 1, *h).unwrap(); // ok: test
    }
    ws.write_string(3, 1, "a").unwrap(); // ok: test
    let e = parse_roster(&bytes(wb), &policy()).unwrap_err();
    assert_eq!((e.kind, e.line), (FileErrorKind::Header, Some(3)));
    assert!(
        e.message
            .starts_with("sheet \"Sheet1\" row 3, column C: columns \"username\" and \"Login\""),
        "{e}"
    );
}

#[test]
fn excel_errors_and_values_outside_the_header_reject_the_row() {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["username", "firstname", "surname", "email"].iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap(); // ok: test
    }
    for (c, v) in ["a", "A", "B"].iter().enumerate() {
        ws.write_string(1, c as u16, *v).unwrap(); // ok: test
    }
    ws.write_formula(1, 3, Formula::new("=NA()").set_result("#N/A"))
        .unwrap(); // ok: test
    for (c, v) in ["b", "B", "C", "b@example.org"].iter().enumerate() {
        ws.write_string(2, c as u16, *v).unwrap(); // ok: test
    }
    ws.write_string(2, 6, "stray").unwrap(); // ok: test
    let r = parse_roster(&bytes(wb), &policy()).unwrap(); // ok: test
    let errors = rejected_errors(&r);
    assert!(
        matches!(&errors[0].2[..], [e] if matches!(&e.kind, RowErrorKind::CellError { error } if error == "#N/A") && e.letter.as_deref() == Some("D")),
        "{errors:?}"
    );
    assert!(
        matches!(&errors[1].2[..], [e] if e.kind == RowErrorKind::OutsideHeader { letter: "G".into() }),
        "{errors:?}"
    );
}

/// A ZIP with these entries.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap(); // ok: test
        w.write_all(data).unwrap(); // ok: test
    }
    w.finish().unwrap().into_inner() // ok: test
}

#[test]
fn workbooks_that_cannot_be_read_are_refused_with_what_to_do() {
    let p = policy();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            zip_of(&[("xl/workbook.xml", b"<workbook/>"), ("xl/vbaProject.bin", b"macro")]),
            "contains macros",
        ),
        (
            zip_of(&[
                ("mimetype", b"application/vnd.oasis.opendocument.spreadsheet"),
                ("content.xml", b"<x/>"),
            ]),
            "OpenDocument",
        ),
        (zip_of(&[("word/document.xml", b"<w/>")]), "not an Excel workbook"),
        (zip_of(&[("xl/workbook.xml", b"<not a workbook")]), "cannot be read"),
        (b"PK\x03\x04 cut off".to_vec(), "cannot be opened"),
        (
            {
                let mut cfb = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
                cfb.extend("EncryptedPackage".encode_utf16().flat_map(|u| u.to_le_bytes()));
                cfb
            },
            "password-protected",
        ),
        (
            vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0],
            "Excel 97-2003",
        ),
    ];
    for (data, want) in cases {
        let e = parse_roster(&data, &p).unwrap_err();
        assert_eq!(e.kind, FileErrorKind::Workbook, "{want}: {e}");
        assert!(e.message.contains(want), "{want}: {e}");
    }
    // A real workbook with a cut-off end is damaged, not a panic.
    let good = bytes(book());
    for cut in [good.len() / 2, good.len() - 10] {
        let e = parse_roster(&good[..cut], &p).unwrap_err();
        assert_eq!(e.kind, FileErrorKind::Workbook, "{e}");
    }
}

#[test]
fn a_zip_bomb_is_refused_before_it_is_expanded() {
    // 200 MB of zeros deflate to about 200 kB: far beyond the budget.
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    w.start_file("xl/workbook.xml", opts).unwrap(); // ok: test
    w.start_file("xl/sharedStrings.xml", opts).unwrap(); // ok: test
    let zeros = vec![b'0'; 1 << 20];
    for _ in 0..200 {
        w.write_all(&zeros).unwrap(); // ok: test
    }
    let data = w.finish().unwrap().into_inner(); // ok: test
    assert!(data.len() < 2_000_000, "{}", data.len());
    let e = parse_roster(&data, &policy()).unwrap_err();
    assert!(e.message.contains("expands to more than"), "{e}");
}

#[test]
fn a_header_cell_in_column_xfd_over_many_rows_is_refused_not_expanded() {
    // Found by review, not by the fuzzer: cells are stored sparse, so a tiny
    // file can claim a table of 16,384 columns × many rows.
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "username").unwrap(); // ok: test
    ws.write_string(0, 16383, "far away").unwrap(); // ok: test
    for r in 1..400 {
        ws.write_string(r, 0, "x").unwrap(); // ok: test
    }
    let data = bytes(wb);
    assert!((16384 * 399) as u64 > super::sheet::dense_budget(data.len()));
    let e = parse_roster(&data, &policy()).unwrap_err();
    assert_eq!(e.kind, FileErrorKind::Workbook);
    assert!(
        e.message.contains("spans 16384 columns") && e.message.contains("A to XFD"),
        "{e}"
    );
}

/// Writes the workbooks of these tests into the fuzz seed corpus:
/// `cargo test --lib write_fuzz_seeds -- --ignored`.
#[test]
#[ignore = "writes files: run it to refresh fuzz/corpus/roster"]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/roster");
    std::fs::create_dir_all(&dir).unwrap(); // ok: test
    let mut small = Workbook::new();
    let ws = small.add_worksheet();
    for (c, h) in ["username", "firstname", "surname", "email"].iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap(); // ok: test
    }
    for (c, v) in ["a", "A", "B", "a@example.org"].iter().enumerate() {
        ws.write_string(1, c as u16, *v).unwrap(); // ok: test
    }
    ws.write_number(2, 0, 1.5).unwrap(); // ok: test
    std::fs::write(dir.join("small.xlsx"), bytes(small)).unwrap(); // ok: test
    std::fs::write(dir.join("types.xlsx"), bytes(book())).unwrap(); // ok: test
}
