//! Future-dated joiners and leavers: from a row's start and end dates, the
//! policy's calendar (`[lifecycle]`) and `now`, whether the row's account
//! should exist yet, whether its last day is over, and when what is still
//! ahead falls due. Pure: `now` is a parameter, the time zone data is
//! compiled in.

use chrono::{Days, NaiveDate, TimeZone};

use super::plan::Change;
use super::policy::Lifecycle;
use super::types::{AccountState, Dates};

/// A day and the instant (Unix seconds) it begins in the policy's zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moment {
    pub day: NaiveDate,
    pub at: i64,
}

/// What a row's dates mean at `now`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timing {
    /// The last day, when it is over: the row is a leaver whatever its status.
    pub left: Option<NaiveDate>,
    /// When the account may be created, while that is still ahead.
    pub create: Option<Moment>,
    /// The day after the last day, while that is still ahead: the account
    /// is disabled then.
    pub leave: Option<Moment>,
}

/// The instant `day` begins in `tz`. A midnight skipped by a clock change
/// is taken as the first hour the day has.
pub fn start_of_day(day: NaiveDate, tz: chrono_tz::Tz) -> i64 {
    for hour in 0..4 {
        if let Some(t) = day
            .and_hms_opt(hour, 0, 0)
            .and_then(|local| tz.from_local_datetime(&local).earliest())
        {
            return t.timestamp();
        }
    }
    // No zone skips four hours; read the day as UTC rather than fail.
    day.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp()).unwrap_or(0)
}

/// What `dates` mean at `now` (Unix seconds).
pub fn timing(dates: &Dates, lc: &Lifecycle, now: i64) -> Timing {
    let mut t = Timing::default();
    if let Some(start) = dates.start {
        let day = start
            .checked_sub_days(Days::new(u64::from(lc.create_days_before_start)))
            .unwrap_or(start);
        let at = start_of_day(day, lc.time_zone);
        if now < at {
            t.create = Some(Moment { day, at });
        }
    }
    if let Some(end) = dates.end {
        let day = end.checked_add_days(Days::new(1)).unwrap_or(end);
        let at = start_of_day(day, lc.time_zone);
        if now < at {
            t.leave = Some(Moment { day, at });
        } else {
            t.left = Some(end);
        }
    }
    t
}

impl Timing {
    /// The row's state once its end date is counted: a row whose last day is
    /// over is a leaver; a future end date never makes a leaver active.
    pub fn state(&self, row: AccountState) -> AccountState {
        if self.left.is_some() {
            AccountState::Leaver
        } else {
            row
        }
    }

    /// The change the dates allow now, with words for the results and when
    /// the daemon should look at the row again (Unix seconds).
    pub fn schedule(
        &self,
        change: Change,
        note: Option<String>,
        dates: &Dates,
        lc: &Lifecycle,
    ) -> (Change, Option<String>, Option<i64>) {
        let zone = lc.time_zone.name();
        let start = dates.start.map(|d| d.to_string()).unwrap_or_default();
        let mut words: Vec<String> = note.into_iter().collect();
        if let (Change::Add | Change::Rejoin(_), Some(c)) = (&change, self.create) {
            let what = if matches!(change, Change::Add) {
                "created"
            } else {
                "re-enabled"
            };
            words.push(format!(
                "starts on {start}: the account will be {what} on {} ({zone})",
                c.day
            ));
            return (Change::Scheduled, Some(words.join("; ")), Some(c.at));
        }
        let mut due = None;
        if let (Some(end), Change::Leave) = (self.left, &change) {
            words.push(format!("last day {end} is over"));
        }
        if let (Some(l), Some(end)) = (self.leave, dates.end) {
            if !matches!(change, Change::Leave | Change::Delete | Change::Reject(_)) {
                words.push(format!(
                    "last day {end}: the account will be disabled on {} ({zone})",
                    l.day
                ));
                due = Some(l.at);
            }
        }
        let note = (!words.is_empty()).then(|| words.join("; "));
        (change, note, due)
    }
}

#[cfg(test)]
#[path = "schedule/tests.rs"]
mod tests;
