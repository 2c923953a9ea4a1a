//! Outcomes → the results CSV (the input plus verdict columns) and a summary.
//!
//! Values echoed here are neutralised against spreadsheet formula injection;
//! the target always gets the raw value. No password is ever written here.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;

use super::echo::{Echo, EchoSource};
use super::plan::{Change, Hold, Plan, PlanItem};
use super::policy::Policy;
use super::roster::{FileError, Roster};

/// The verdict on one plan item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    Done,
    Failed,
    Held,
    Skipped,
    Preview,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Done => "done",
            Verdict::Failed => "failed",
            Verdict::Held => "held",
            Verdict::Skipped => "skipped",
            Verdict::Preview => "preview",
        }
    }
    pub fn parse(s: &str) -> Option<Verdict> {
        Some(match s {
            "done" => Verdict::Done,
            "failed" => Verdict::Failed,
            "held" => Verdict::Held,
            "skipped" => Verdict::Skipped,
            "preview" => Verdict::Preview,
            _ => return None,
        })
    }
}

/// What applying (or previewing) one item came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    /// The target's error, or extra words ("password generated, mailed to the user").
    pub message: Option<String>,
}

impl Outcome {
    pub fn new(verdict: Verdict, message: Option<String>) -> Self {
        Outcome { verdict, message }
    }

    /// The outcome an item gets without touching the target: rejected rows
    /// and held or absent items are decided by the plan alone.
    pub fn from_plan(item: &PlanItem, preview: bool) -> Option<Outcome> {
        match (&item.change, item.held()) {
            (Change::Reject(_) | Change::Absent | Change::Scheduled, _) => Some(Outcome::new(Verdict::Skipped, None)),
            (_, Some(Hold::Limit(why))) => Some(Outcome::new(Verdict::Held, Some(why.clone()))),
            (_, Some(Hold::Policy(why))) => Some(Outcome::new(Verdict::Skipped, Some(why.clone()))),
            (Change::Unchanged, None) => Some(Outcome::new(
                if preview { Verdict::Preview } else { Verdict::Done },
                None,
            )),
            // Writes in a preview go to the backend's `validate` (sync), so a
            // dry run reports what the real run would fail on.
            _ => None,
        }
    }
}

/// Counts per change and per result, for stdout, logs and the results mail.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub changes: BTreeMap<&'static str, usize>,
    pub verdicts: BTreeMap<&'static str, usize>,
}

impl Summary {
    pub fn of(plan: &Plan, outcomes: &[Outcome]) -> Summary {
        let mut s = Summary::default();
        for (item, out) in plan.items.iter().zip(outcomes) {
            let name = if item.is_absent() { "absent" } else { item.change.name() };
            *s.changes.entry(name).or_default() += 1;
            *s.verdicts.entry(out.verdict.as_str()).or_default() += 1;
        }
        s
    }
    pub fn change(&self, name: &str) -> usize {
        self.changes.get(name).copied().unwrap_or(0)
    }
    pub fn verdict(&self, v: Verdict) -> usize {
        self.verdicts.get(v.as_str()).copied().unwrap_or(0)
    }
}

const CHANGE_ORDER: [&str; 11] = [
    "unchanged",
    "new",
    "scheduled",
    "adopt",
    "update",
    "reset",
    "leaver",
    "joiner",
    "delete",
    "absent",
    "error",
];

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let changes: Vec<String> = CHANGE_ORDER
            .iter()
            .filter_map(|c| self.changes.get(c).map(|n| format!("{n} {c}")))
            .collect();
        let verdicts: Vec<String> = ["done", "preview", "failed", "held", "skipped"]
            .iter()
            .filter_map(|v| self.verdicts.get(v).map(|n| format!("{n} {v}")))
            .collect();
        write!(f, "{} ({})", changes.join(", "), verdicts.join(", "))
    }
}

/// Prefix a cell that a spreadsheet would run as a formula.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    if is_formula(cell.as_bytes()) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// Whether a spreadsheet would run the cell as a formula (it starts with
/// one of `= + - @`, a tab or a carriage return): [`neutralise`] prefixes it.
pub fn is_formula(cell: &[u8]) -> bool {
    matches!(cell.first(), Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r'))
}

fn verdict_columns(header: &[String]) -> [String; 3] {
    let clash = header
        .iter()
        .any(|h| ["change", "result", "message"].contains(&h.trim().to_lowercase().as_str()));
    let p = if clash { "dirsync_" } else { "" };
    [format!("{p}change"), format!("{p}result"), format!("{p}message")]
}

/// The results file's message for one item.
pub fn item_message(item: &PlanItem, out: &Outcome, roster: &Roster, policy: &Policy) -> String {
    let mut parts: Vec<String> = Vec::new();
    match &item.change {
        Change::Reject(errors) => {
            // A valid row can be rejected by the plan (a value it cannot generate).
            let origin = item.entry().and_then(|e| match roster.entries.get(e) {
                Some(super::roster::Entry::Rejected(r)) => Some(r.origin),
                Some(super::roster::Entry::Valid(p)) => roster.persons.get(*p).map(|p| p.origin),
                None => None,
            });
            let at = match (origin, &roster.sheet) {
                // A workbook: the row a person finds in Excel.
                (Some(o), Some(_)) => format!("row {}: ", o.line),
                (Some(o), None) => format!("row {} (line {}): ", o.row, o.line),
                (None, _) => String::new(),
            };
            parts.extend(errors.iter().map(|e| format!("{at}{e}")))
        }
        Change::Update(d) => parts.push(d.describe(policy)),
        Change::Adopt(d) if !d.is_empty() => parts.push(d.describe(policy)),
        Change::Reset(d) if !d.is_empty() => parts.push(d.describe(policy)),
        Change::Rejoin(d) if !d.is_empty() => parts.push(format!("rejoins; {}", d.describe(policy))),
        Change::Rejoin(_) => parts.push("rejoins".into()),
        Change::Leave if item.is_absent() => parts.push("made a leaver".into()),
        Change::Delete if item.is_absent() => parts.push("deleted".into()),
        _ => {}
    }
    if let Some(notes) = item.entry().and_then(|e| roster.notes.get(&e)) {
        parts.extend(notes.iter().cloned());
    }
    if let Some(n) = item.note() {
        parts.push(n.to_string());
    }
    if let Some(m) = &out.message {
        parts.push(m.clone());
    }
    parts.join("; ")
}

/// Write the results file: the input's columns in input order, then the
/// verdict columns (and `layout` when the policy has layouts); one line per
/// input row, then one per absent account. A workbook's results are CSV in
/// UTF-8 with a byte-order mark, so that Excel opens them as such.
pub fn write_results<W: Write>(
    w: W,
    roster: &Roster,
    plan: &Plan,
    outcomes: &[Outcome],
    policy: &Policy,
) -> std::io::Result<()> {
    write_results_with(w, roster, (plan, outcomes), policy, &[], None)
}

/// [`write_results`], with the message of some items given (a resumed run
/// keeps the words journaled when the item was applied) and the input's
/// echo when it was rendered ahead. `messages` is indexed like
/// `plan.items`; missing or `None` entries are computed.
pub fn write_results_with<W: Write>(
    w: W,
    roster: &Roster,
    (plan, outcomes): (&Plan, &[Outcome]),
    policy: &Policy,
    messages: &[Option<String>],
    echo: Option<&Echo>,
) -> std::io::Result<()> {
    let rendered;
    let echo = match echo {
        Some(e) => e,
        None => {
            rendered = Echo::render(&EchoSource::of(roster))?;
            &rendered
        }
    };
    let mut w = w;
    if roster.sheet.is_some() {
        w.write_all(b"\xEF\xBB\xBF")?;
    }
    // Each row: its echo as rendered, then the rest through `out`, whose
    // bytes are taken from `tail` after each record.
    let tail = Tail::default();
    let mut out = csv::WriterBuilder::new()
        .delimiter(roster.delimiter)
        .flexible(true)
        .from_writer(tail.clone());
    let width = roster.header.len();
    let mut head: Vec<String> = roster.header.iter().map(|h| neutralise(h).into_owned()).collect();
    head.extend(verdict_columns(&roster.header));
    if roster.layout.is_some() {
        let clash = roster.header.iter().any(|h| h.trim().eq_ignore_ascii_case("layout"));
        head.push(if clash { "dirsync_layout" } else { "layout" }.to_string());
    }
    out.write_record(&head)?;
    out.flush()?;
    tail.drain_into(&mut w)?;
    let key_col = roster
        .columns
        .iter()
        .position(|c| *c == super::policy::Column::Key)
        .unwrap_or(0);
    let mut rows = 0;
    for (index, (item, o)) in plan.items.iter().zip(outcomes).enumerate() {
        if item.entry().is_some() {
            match echo.row(rows) {
                Some(cells) => w.write_all(cells)?,
                None => {
                    for _ in 0..width {
                        out.write_field("")?;
                    }
                }
            }
            rows += 1;
        } else {
            let key = item.key.as_ref().filter(|_| key_col < width);
            for i in 0..width {
                match key {
                    Some(k) if i == key_col => out.write_field(neutralise(k.as_str()).as_bytes())?,
                    _ => out.write_field("")?,
                }
            }
        }
        out.write_field(if item.is_absent() { "absent" } else { item.change.name() })?;
        out.write_field(o.verdict.as_str())?;
        match messages.get(index).and_then(Option::as_deref) {
            Some(m) => out.write_field(neutralise(m).as_bytes())?,
            None => out.write_field(neutralise(&item_message(item, o, roster, policy)).as_bytes())?,
        }
        if let Some(l) = &roster.layout {
            out.write_field(neutralise(l).as_bytes())?;
        }
        out.write_record(None::<&[u8]>)?;
        out.flush()?;
        tail.drain_into(&mut w)?;
    }
    w.flush()
}

/// The bytes a results row's csv writer wrote since they were last taken.
#[derive(Clone, Default)]
struct Tail(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl Tail {
    fn drain_into(&self, w: &mut impl Write) -> std::io::Result<()> {
        let mut buf = self.0.borrow_mut();
        w.write_all(&buf)?;
        buf.clear();
        Ok(())
    }
}

impl Write for Tail {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The results file of a file refused as a whole: every readable row of
/// `text` with the reason, hiding the cells of the columns the policy maps
/// to `password` (whatever their header); or one line with the reason when
/// no row is readable.
pub fn write_rejection<W: Write>(w: W, text: Option<(&str, &Policy)>, error: &FileError) -> std::io::Result<()> {
    match text {
        Some((text, policy)) => {
            write_rejection_hiding(w, Some(text), error, |header| policy.is_password_header(header))
        }
        None => write_rejection_hiding(w, None, error, |_| false),
    }
}

fn write_rejection_hiding<W: Write>(
    w: W,
    text: Option<&str>,
    error: &FileError,
    hide: impl Fn(&str) -> bool,
) -> std::io::Result<()> {
    let reason = match error.kind {
        super::roster::FileErrorKind::Target => format!("not processed: {error}"),
        _ => format!("file rejected, nothing was written: {error}"),
    };
    if let Some(text) = text {
        let delim = if text
            .lines()
            .next()
            .map(|l| l.matches(';').count() > l.matches(',').count())
            == Some(true)
        {
            b';'
        } else {
            b','
        };
        let mut r = csv::ReaderBuilder::new()
            .delimiter(delim)
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = r.records().take_while(Result::is_ok).flatten().collect();
        if let Some((head, data)) = rows.split_first() {
            if !data.is_empty() {
                let header: Vec<String> = head.iter().map(str::to_string).collect();
                let mut out = csv::WriterBuilder::new().delimiter(delim).flexible(true).from_writer(w);
                let mut h: Vec<String> = header.iter().map(|c| neutralise(c).into_owned()).collect();
                h.extend(verdict_columns(&header));
                out.write_record(&h)?;
                // A password column is never echoed back, also not here.
                let secret: Vec<bool> = header.iter().map(|c| hide(c.trim())).collect();
                for rec in data {
                    let mut row: Vec<String> = rec
                        .iter()
                        .take(header.len())
                        .enumerate()
                        .map(|(i, c)| {
                            if secret[i] && !c.is_empty() {
                                "(hidden)".to_string()
                            } else {
                                neutralise(c).into_owned()
                            }
                        })
                        .collect();
                    row.resize(header.len(), String::new());
                    row.extend([
                        "error".to_string(),
                        "skipped".to_string(),
                        neutralise(&reason).into_owned(),
                    ]);
                    out.write_record(&row)?;
                }
                out.flush()?;
                return Ok(());
            }
        }
    }
    let mut out = csv::Writer::from_writer(w);
    out.write_record(["change", "result", "message"])?;
    out.write_record(["error", "skipped", neutralise(&reason).as_ref()])?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
