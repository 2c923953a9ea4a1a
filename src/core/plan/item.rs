//! One item of a plan: the row, the person and the account it is about
//! (as positions), its change, and the rare parts (hold, note, due time).

use super::{Change, Hold};
use crate::core::types::UserKey;

/// One item of the plan.
///
/// A plan holds one per row and per absent account (a million at a
/// million rows), so its positions are 32-bit and its rare parts boxed:
/// 80 bytes an item where it was 192.
#[derive(Clone, Debug)]
pub struct PlanItem {
    pub key: Option<UserKey>,
    /// Position in `Roster::entries`; `None` for an account absent from the file.
    entry: Option<u32>,
    /// Position in `Roster::persons`, for valid rows.
    person: Option<u32>,
    /// Position in the snapshot, when the account exists.
    account: Option<u32>,
    pub change: Change,
    /// What most items (unchanged rows) have none of.
    more: Option<Box<More>>,
}

/// A plan item's rare parts.
#[derive(Clone, Debug, Default)]
struct More {
    hold: Option<Hold>,
    /// Extra words for the results file.
    note: Option<String>,
    /// `[lifecycle]`: when something the row's dates put ahead falls due
    /// (Unix seconds): a scheduled creation, a future last day.
    due: Option<i64>,
}

/// A position as a plan item holds it. A roster and a snapshot hold fewer
/// than 2³² rows and accounts (the parser and the snapshot refuse more).
fn position(i: Option<usize>) -> Option<u32> {
    i.and_then(|i| u32::try_from(i).ok())
}

impl PlanItem {
    /// An item for row `entry` (valid row `person`) or account `account`,
    /// neither held nor noted.
    pub fn new(
        key: Option<UserKey>,
        entry: Option<usize>,
        person: Option<usize>,
        account: Option<usize>,
        change: Change,
    ) -> Self {
        PlanItem {
            key,
            entry: position(entry),
            person: position(person),
            account: position(account),
            change,
            more: None,
        }
    }
    /// Position in `Roster::entries`; `None` for an account absent from the file.
    pub fn entry(&self) -> Option<usize> {
        self.entry.map(|i| i as usize)
    }
    /// Position in `Roster::persons`, for valid rows.
    pub fn person(&self) -> Option<usize> {
        self.person.map(|i| i as usize)
    }
    /// Position in the snapshot, when the account exists.
    pub fn account(&self) -> Option<usize> {
        self.account.map(|i| i as usize)
    }
    pub fn is_absent(&self) -> bool {
        self.entry.is_none()
    }
    pub fn will_write(&self) -> bool {
        self.change.writes() && !self.is_held()
    }
    /// The hold, if the item is held or skipped.
    pub fn held(&self) -> Option<&Hold> {
        self.more.as_ref()?.hold.as_ref()
    }
    pub fn is_held(&self) -> bool {
        self.held().is_some()
    }
    pub fn set_hold(&mut self, hold: Option<Hold>) {
        if hold.is_some() || self.more.is_some() {
            self.more().hold = hold;
        }
    }
    /// Extra words for the results file.
    pub fn note(&self) -> Option<&str> {
        self.more.as_ref()?.note.as_deref()
    }
    pub fn set_note(&mut self, note: Option<String>) {
        if note.is_some() || self.more.is_some() {
            self.more().note = note;
        }
    }
    /// Add `words` to the note, after what it says ("…; words").
    pub fn add_note(&mut self, words: String) {
        let more = self.more();
        more.note = Some(match more.note.take() {
            Some(n) => format!("{n}; {words}"),
            None => words,
        });
    }
    /// `[lifecycle]`: when something the row's dates put ahead falls due
    /// (Unix seconds): a scheduled creation, a future last day.
    pub fn due(&self) -> Option<i64> {
        self.more.as_ref()?.due
    }
    pub fn set_due(&mut self, due: Option<i64>) {
        if due.is_some() || self.more.is_some() {
            self.more().due = due;
        }
    }
    fn more(&mut self) -> &mut More {
        self.more.get_or_insert_with(Box::default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan holds an item per row: at a million rows every byte of an
    /// item is a megabyte of the run's memory (BENCHMARKS.md, P4).
    #[test]
    fn a_plan_item_stays_small() {
        assert_eq!(std::mem::size_of::<Change>(), 16);
        assert!(
            std::mem::size_of::<PlanItem>() <= 80,
            "{}",
            std::mem::size_of::<PlanItem>()
        );
    }

    #[test]
    fn rare_parts_are_boxed_only_when_set() {
        let mut item = PlanItem::new(Some(UserKey::new("a")), Some(3), Some(2), None, Change::Add);
        assert_eq!((item.entry(), item.person(), item.account()), (Some(3), Some(2), None));
        item.set_hold(None);
        item.set_note(None);
        item.set_due(None);
        assert!(item.more.is_none());
        assert!(!item.is_held() && item.will_write());
        item.add_note("first".into());
        item.add_note("second".into());
        item.set_due(Some(86_400));
        item.set_hold(Some(Hold::Limit("over".into())));
        assert_eq!(item.note(), Some("first; second"));
        assert_eq!(item.due(), Some(86_400));
        assert!(item.is_held() && !item.will_write());
        assert_eq!(item.held(), Some(&Hold::Limit("over".into())));
    }
}
