//! Issue 15, black-box: the built `dirsync` binary on real-world input — an
//! XLSX export, a feed that switches header layout, decomposed (NFD) text,
//! one NUL in one cell — against the embedded SQLite target, checked with
//! the `sqlite3` program.

use std::path::{Path, PathBuf};
use std::process::Command;

use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};

const BIN: &str = env!("CARGO_BIN_EXE_dirsync");

const POLICY: &str = r#"
target = "db"
[roster]
sheet = "Users"
date_format = "[day]/[month]/[year]"
[fields.employee_id]
aliases = ["Staff No"]
[fields.start_date]
aliases = ["Start"]
[fields.title]
strip_invisible = true
[groups]
managed = ["staff"]
[sql]
table = "users"
key = "username"
status_column = "status"
must_change_column = "must_change"
[sql.columns]
firstname = "first_name"
surname = "last_name"
email = "email"
title = "title"
employee_id = "employee_id"
start_date = "start_date"
"#;

/// Two layouts of the same feed: the HR system's old export and its new one.
const LAYOUTS: &str = r#"
[[layouts]]
name = "NHSmail 2"
aliases = { username = ["User Name"], firstname = ["First Name"], surname = ["Last Name"], email = ["Email Address"] }
[[layouts]]
name = "NHSmail 1"
aliases = { username = ["Login ID"], firstname = ["Forename"], surname = ["Family Name"], email = ["Mail"] }
"#;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new(extra: &str) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("policies")).expect("mkdir");
        std::fs::write(
            dir.path().join("dirsync.toml"),
            "[targets.db]\nkind = \"sql\"\nurl = \"sqlite://state/dir.db\"\ncreate_schema = true\n[policies]\nstaff = \"policies/staff.toml\"\n",
        )
        .expect("write config");
        std::fs::write(dir.path().join("policies/staff.toml"), format!("{POLICY}{extra}")).expect("write policy");
        Env { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `dirsync CMD FILE`: (exit code, results file, stdout + stderr).
    fn sync(&self, cmd: &str, file: &Path) -> (i32, String, String) {
        let out = Command::new(BIN)
            .arg("--config")
            .arg(self.path("dirsync.toml"))
            .arg(cmd)
            .arg(file)
            .output()
            .expect("run dirsync");
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let results = std::fs::read_to_string(file.with_file_name(format!("{stem}.results.csv"))).unwrap_or_default();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), results, text)
    }

    /// `sqlite3 state/dir.db SQL`, one line per row, columns joined by `|`.
    fn sqlite3(&self, sql: &str) -> String {
        let out = Command::new("sqlite3")
            .arg(self.path("state/dir.db"))
            .arg(sql)
            .output()
            .expect("the sqlite3 program (apt-get install sqlite3)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The `change` and `message` of the results row whose first cell is `key`.
fn row(results: &str, key: &str) -> (String, String) {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(results.trim_start_matches('\u{feff}').as_bytes());
    let h = r.headers().expect("header").clone();
    let at = |name: &str| h.iter().position(|c| c == name).expect(name);
    for rec in r.records() {
        let rec = rec.expect("record");
        if &rec[0] == key {
            return (rec[at("change")].to_string(), rec[at("message")].to_string());
        }
    }
    panic!("no row {key} in {results}")
}

fn export() -> Vec<u8> {
    let mut wb = Workbook::new();
    // A sheet before the roster: the policy names the one to read.
    wb.add_worksheet()
        .set_name("Notes")
        .expect("name")
        .write_string(0, 0, "read me")
        .expect("cell");
    let ws = wb.add_worksheet().set_name("Users").expect("name");
    let header = [
        "Login",
        "First name",
        "Last name",
        "E-mail",
        "Staff No",
        "Start",
        "Job title",
        "Must change",
    ];
    for (c, h) in header.iter().enumerate() {
        ws.write_string(0, c as u16, *h).expect("header");
    }
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let people: [(&str, &str, &str, &str, &str, f64, &str); 3] = [
        (
            "jsmith",
            "Jane",
            "Smith",
            "jane@example.org",
            "00123",
            1.0,
            "Accountant",
        ),
        (
            "zmuller",
            "Zoë",
            "Müller",
            "zoe@example.org",
            "00456",
            2.0,
            "Nurse\u{200B}",
        ),
        (
            "bjones",
            "Bob",
            "Jones",
            "bob@example.org\u{200B}",
            "00789",
            3.0,
            "Porter",
        ),
    ];
    for (i, (u, f, l, e, n, day, t)) in people.iter().enumerate() {
        let r = i as u32 + 1;
        ws.write_string(r, 0, *u).expect("cell");
        if i == 0 {
            ws.write_formula(r, 1, Formula::new("=\"Ja\"&\"ne\"").set_result(*f))
                .expect("cell");
        } else {
            ws.write_string(r, 1, *f).expect("cell");
        }
        ws.write_string(r, 2, *l).expect("cell");
        ws.write_string(r, 3, *e).expect("cell");
        ws.write_string(r, 4, *n).expect("cell");
        let d = ExcelDateTime::from_ymd(2026, 11, *day as u8).expect("date");
        ws.write_datetime_with_format(r, 5, d, &date).expect("cell");
        ws.write_string(r, 6, *t).expect("cell");
        ws.write_boolean(r, 7, i == 0).expect("cell");
    }
    // A formatted, empty region below: not rows.
    let fill = Format::new().set_background_color("#DDEEFF");
    for r in 10..30 {
        ws.write_blank(r, 0, &fill).expect("cell");
    }
    wb.save_to_buffer().expect("workbook")
}

#[test]
fn an_xlsx_export_is_applied_to_sqlite() {
    let env = Env::new("");
    let file = env.path("HR export.xlsx");
    std::fs::write(&file, export()).expect("write");
    let (code, results, out) = env.sync("apply", &file);
    assert_eq!(code, 1, "one row is rejected: {out}\n{results}");
    assert_eq!(
        env.sqlite3("SELECT username, first_name, last_name, email, employee_id, start_date, title, must_change FROM users ORDER BY username"),
        "jsmith|Jane|Smith|jane@example.org|00123|01/11/2026|Accountant|1\n\
         zmuller|Zoë|Müller|zoe@example.org|00456|02/11/2026|Nurse|0\n"
    );
    // The results: CSV in UTF-8 with a BOM, the same rows, sheet rows and letters.
    assert!(results.starts_with("\u{feff}Login,First name,"), "{results}");
    assert_eq!(results.lines().count(), 4, "{results}");
    assert_eq!(row(&results, "jsmith").0, "new");
    let (change, message) = row(&results, "zmuller");
    assert_eq!(change, "new");
    assert!(
        message.contains("column \"Job title\": removed invisible character(s) U+200B at position 6 (strip_invisible)"),
        "{message}"
    );
    let (change, message) = row(&results, "bjones");
    assert_eq!(change, "error");
    assert_eq!(
        message,
        "row 4: column D, \"E-mail\": contains an invisible character (U+200B zero-width space) at position 16; remove it (or set strip_invisible = true for this field in the policy)"
    );

    // The same workbook again: nothing to do.
    let (code, results, _) = env.sync("apply", &file);
    assert_eq!(code, 1);
    assert_eq!(row(&results, "jsmith").0, "unchanged", "{results}");
    assert_eq!(row(&results, "zmuller").0, "unchanged", "{results}");
}

#[test]
fn a_macro_workbook_is_refused_with_a_reason_and_nothing_written() {
    let env = Env::new("");
    let ok = env.path("ok.xlsx");
    std::fs::write(&ok, export()).expect("write");
    env.sync("apply", &ok);
    let before = env.sqlite3("SELECT count(*) FROM users");
    // Excel's .xlsm: the same parts plus xl/vbaProject.bin.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (name, data) in [
        ("xl/workbook.xml", &b"<workbook/>"[..]),
        ("xl/vbaProject.bin", &b"\x01"[..]),
    ] {
        zip.start_file(name, opts).expect("zip");
        std::io::Write::write_all(&mut zip, data).expect("zip");
    }
    let f = env.path("macro.xlsm");
    std::fs::write(&f, zip.finish().expect("zip").into_inner()).expect("write");
    let (code, results, _) = env.sync("apply", &f);
    assert_eq!(code, 2);
    assert!(results.contains("contains macros"), "{results}");
    assert_eq!(env.sqlite3("SELECT count(*) FROM users"), before);
}

#[test]
fn a_feed_switching_layout_reports_no_change() {
    let env = Env::new(LAYOUTS);
    let old = env.path("old.csv");
    std::fs::write(
        &old,
        "Login ID,Forename,Family Name,Mail\njsmith,Jane,Smith,jane@example.org\nbjones,Bob,Jones,bob@example.org\n",
    )
    .expect("write");
    let (code, results, out) = env.sync("apply", &old);
    assert_eq!(code, 0, "{out}\n{results}");
    assert!(
        results.starts_with("Login ID,Forename,Family Name,Mail,change,result,message,layout\n"),
        "{results}"
    );
    assert!(results.lines().skip(1).all(|l| l.ends_with(",NHSmail 1")), "{results}");

    // The HR system upgrades its export: the same people, the new layout.
    let new = env.path("new.csv");
    std::fs::write(
        &new,
        "Email Address;User Name;Last Name;First Name\njane@example.org;jsmith;Smith;Jane\nbob@example.org;bjones;Jones;Bob\n",
    )
    .expect("write");
    let (code, results, out) = env.sync("apply", &new);
    assert_eq!(code, 0, "{out}\n{results}");
    for key in ["jane@example.org", "bob@example.org"] {
        assert_eq!(row(&results.replace(';', ","), key).0, "unchanged", "{results}");
    }
    assert!(results.lines().skip(1).all(|l| l.ends_with(";NHSmail 2")), "{results}");
    assert_eq!(
        env.sqlite3("SELECT username, first_name, last_name, email FROM users ORDER BY username"),
        "bjones|Bob|Jones|bob@example.org\njsmith|Jane|Smith|jane@example.org\n"
    );

    // A header of neither: refused, naming the closest layout and what it lacks.
    let odd = env.path("odd.csv");
    std::fs::write(
        &odd,
        "Login ID,Forename,Surname,Mail\njsmith,Jane,Smith,jane@example.org\n",
    )
    .expect("write");
    let (code, results, _) = env.sync("apply", &odd);
    assert_eq!(code, 2);
    assert!(
        results.contains("matches none of the layouts")
            && results.contains("the closest, \"\"NHSmail 1\"\", lacks: surname (\"\"Family Name\"\")"),
        "{results}"
    );
}

#[test]
fn decomposed_text_the_next_night_is_no_change() {
    let env = Env::new("");
    let nfc = env.path("monday.csv");
    std::fs::write(
        &nfc,
        "username,firstname,surname,email\nzmuller,Zoë,Müller,zoe@example.org\n",
    )
    .expect("write");
    assert_eq!(env.sync("apply", &nfc).0, 0);
    let nfd = env.path("tuesday.csv");
    std::fs::write(
        &nfd,
        "username,firstname,surname,email\nzmuller,Zoe\u{308},Mu\u{308}ller,zoe@example.org\n",
    )
    .expect("write");
    let (code, results, _) = env.sync("apply", &nfd);
    assert_eq!(code, 0);
    assert_eq!(row(&results, "zmuller").0, "unchanged", "{results}");
    // Stored composed: 'ü' is two bytes in NFC, three in NFD.
    assert_eq!(env.sqlite3("SELECT hex(last_name) FROM users"), "4DC3BC6C6C6572\n");
}

#[test]
fn one_nul_rejects_its_row_and_the_others_are_applied() {
    let env = Env::new("");
    let f = env.path("nul.csv");
    std::fs::write(
        &f,
        "username,firstname,surname,email\njsmith,Jane,Smith,jane@example.org\nbjones,B\u{0}ob,Jones,bob@example.org\n",
    )
    .expect("write");
    let (code, results, _) = env.sync("apply", &f);
    assert_eq!(code, 1, "{results}");
    assert_eq!(
        row(&results, "bjones").1,
        "row 2 (line 3): column \"firstname\": contains a control character (U+0000 NUL) at position 2; remove it"
    );
    assert_eq!(env.sqlite3("SELECT username FROM users"), "jsmith\n");
    // UTF-16 without a byte-order mark is still refused as a whole, with advice.
    let f = env.path("utf16.csv");
    let le: Vec<u8> = "username,firstname,surname,email\nx,X,Y,x@example.org\n"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    std::fs::write(&f, le).expect("write");
    let (code, results, _) = env.sync("apply", &f);
    assert_eq!(code, 2);
    assert!(results.contains("UTF-16 without a byte-order mark"), "{results}");
}

#[test]
fn template_xlsx_writes_a_workbook_that_checks_clean() {
    let env = Env::new("");
    let t = env.path("template.xlsx");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(env.path("dirsync.toml"))
        .args(["template", "--xlsx"])
        .arg(&t)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, results, out) = env.sync("check", &t);
    assert_eq!(code, 0, "{out}\n{results}");
    assert_eq!(row(&results, "jsmith").0, "new", "{results}");
}
