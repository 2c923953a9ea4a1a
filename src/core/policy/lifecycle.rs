//! `[lifecycle]`: how the `start_date` and `end_date` columns are read, and
//! the calendar they are counted in. Checked here when the policy is
//! compiled; the decisions they lead to are the planner's (`core::schedule`).

use chrono::format::{Item, StrftimeItems};
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

use super::Policy;

/// `[lifecycle]`: future-dated joiners and leavers. A row's `start_date`
/// ("Start Date", "Hire Date", …) and `end_date` ("Leaving Date", "Last
/// Day", …) are read in one of `date_formats`; the account of a row whose
/// start is still ahead is not created until then (change `scheduled`), a
/// row whose last day is over becomes a leaver, and the daemon carries out
/// what is due on its day without a new file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleSection {
    /// strftime formats a date cell may have, tried in order
    /// (`"%Y-%m-%d"`, `"%d/%m/%Y"`). A cell matching none rejects the row.
    pub date_formats: Vec<String>,
    /// The IANA time zone the dates are days of (`"Europe/London"`): a
    /// start date begins at midnight there, a last day ends at midnight there.
    pub time_zone: String,
    /// Create a joiner's account this many days before the start date
    /// (0: on the day).
    pub create_days_before_start: u32,
}

impl Default for LifecycleSection {
    fn default() -> Self {
        LifecycleSection {
            date_formats: vec!["%Y-%m-%d".into()],
            time_zone: "UTC".into(),
            create_days_before_start: 0,
        }
    }
}

/// `[lifecycle]`, checked.
#[derive(Clone, Debug)]
pub struct Lifecycle {
    pub date_formats: Vec<String>,
    pub time_zone: chrono_tz::Tz,
    pub create_days_before_start: u32,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            date_formats: vec!["%Y-%m-%d".into()],
            time_zone: chrono_tz::UTC,
            create_days_before_start: 0,
        }
    }
}

impl Lifecycle {
    /// A date cell → the day it names, trying each format in order. A
    /// year outside 1900–2199 is refused: chrono reads "27" for `%Y` as the
    /// year 27, and a two-digit year is not a date anyone means.
    pub fn parse_date(&self, cell: &str) -> Option<NaiveDate> {
        self.date_formats
            .iter()
            .filter_map(|f| NaiveDate::parse_from_str(cell, f).ok())
            .find(|d| (1900..2200).contains(&d.year()))
    }
}

impl Policy {
    /// A date cell → the day it names: in one of `lifecycle.date_formats`,
    /// or as a workbook's date cell reads (`roster.date_format`).
    pub fn parse_date(&self, cell: &str) -> Option<NaiveDate> {
        self.lifecycle.parse_date(cell).or_else(|| {
            let d = time::Date::parse(cell, self.date_format()).ok()?;
            NaiveDate::from_ymd_opt(d.year(), u32::from(u8::from(d.month())), u32::from(d.day()))
        })
    }
}

impl Policy {
    /// Add `[lifecycle]`: every format reads back a whole date; the time
    /// zone is an IANA name; creating early is bounded (a year).
    pub fn with_lifecycle(mut self, s: &LifecycleSection) -> Result<Policy, Vec<String>> {
        let mut errors = Vec::new();
        if s.date_formats.is_empty() {
            errors.push("lifecycle.date_formats: give at least one format, like \"%Y-%m-%d\"".into());
        }
        for f in &s.date_formats {
            if let Some(why) = format_problem(f) {
                errors.push(format!("lifecycle.date_formats: {f:?} {why}"));
            }
        }
        let time_zone = match s.time_zone.parse::<chrono_tz::Tz>() {
            Ok(tz) => tz,
            Err(_) => {
                errors.push(format!(
                    "lifecycle.time_zone: {:?} is not an IANA time zone name (like \"Europe/London\" or \"UTC\")",
                    s.time_zone
                ));
                chrono_tz::UTC
            }
        };
        if s.create_days_before_start > 366 {
            errors.push("lifecycle.create_days_before_start: at most 366 days".into());
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        self.lifecycle = Lifecycle {
            date_formats: s.date_formats.clone(),
            time_zone,
            create_days_before_start: s.create_days_before_start,
        };
        Ok(self)
    }
}

/// Why a strftime format cannot read a date, if it cannot: bad syntax, a
/// time part, or a date that does not read back as itself.
fn format_problem(f: &str) -> Option<&'static str> {
    if StrftimeItems::new(f).any(|i| matches!(i, Item::Error)) {
        return Some("is not a strftime format (write it like \"%d/%m/%Y\")");
    }
    let probe = NaiveDate::from_ymd_opt(2031, 12, 23)?;
    let text = probe.format(f).to_string();
    match NaiveDate::parse_from_str(&text, f) {
        Ok(d) if d == probe => None,
        _ => Some("does not name a whole date (it needs a year, a month and a day, and no time)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(formats: &[&str], tz: &str) -> LifecycleSection {
        LifecycleSection {
            date_formats: formats.iter().map(|f| f.to_string()).collect(),
            time_zone: tz.into(),
            create_days_before_start: 0,
        }
    }

    #[test]
    fn formats_and_zones_are_checked() {
        let err = Policy::defaults("t")
            .with_lifecycle(&section(&["%Y-%m-%d", "%d/%m", "%Q"], "Europe/Londres"))
            .unwrap_err() // ok: test
            .join("\n");
        assert!(err.contains("\"%d/%m\" does not name a whole date"), "{err}");
        assert!(err.contains("\"%Q\" is not a strftime format"), "{err}");
        assert!(err.contains("\"Europe/Londres\" is not an IANA time zone"), "{err}");
        assert!(!err.contains("%Y-%m-%d"), "{err}");
    }

    #[test]
    fn dates_are_read_in_the_first_format_that_fits() {
        let p = Policy::defaults("t")
            .with_lifecycle(&section(&["%Y-%m-%d", "%d/%m/%Y"], "Europe/London"))
            .unwrap(); // ok: test
        let l = &p;
        assert_eq!(l.parse_date("2027-01-04"), NaiveDate::from_ymd_opt(2027, 1, 4));
        assert_eq!(l.parse_date("04/01/2027"), NaiveDate::from_ymd_opt(2027, 1, 4));
        assert_eq!(l.parse_date("2027-02-30"), None);
        assert_eq!(l.parse_date("01/04/27"), None);
        assert_eq!(l.lifecycle.time_zone, chrono_tz::Europe::London);
    }
}
