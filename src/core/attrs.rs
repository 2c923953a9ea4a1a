//! [`Attrs`]: a person's or an account's attribute values, indexed like the
//! policy's attribute list, packed in one allocation.
//!
//! A vector of optional strings cost 24 bytes a value however short the
//! value (and a heap string each past 24 bytes); a million rows of ten
//! attributes held 256 bytes of slots each, for about 90 bytes of text.
//! Packed, a row's values take 2 + 4 × n bytes of ends plus the text
//! (BENCHMARKS.md, issue 16: P4).

use std::fmt;

use super::types::Value;

/// The ends' top bit: the value is absent (`None`), not empty.
const ABSENT: u32 = 1 << 31;
/// Bytes before the ends: the number of values (u16, little-endian).
const HEAD: usize = 2;

/// Optional string values by index, read as `Option<&str>`.
///
/// Layout of `buf`: the count `n` (u16), then `n` little-endian u32 ends
/// (the end of each value in the text, [`ABSENT`] set for `None`), then
/// the values' UTF-8 text one after another. Built only from `&str`s, so the
/// text is valid UTF-8 at every boundary.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    buf: Box<[u8]>,
}

impl Attrs {
    /// Pack `values` (absent ones as `None`). A row cannot have more than
    /// 65,535 attributes or 2 GiB of text (the policy's attribute list and
    /// `max_field_len` bound both); values past those bounds would read as
    /// absent.
    pub fn pack<'a, I>(values: I) -> Attrs
    where
        I: IntoIterator<Item = Option<&'a str>>,
        I::IntoIter: Clone,
    {
        let it = values.into_iter();
        let (mut n, mut text) = (0usize, 0usize);
        for v in it.clone().take(u16::MAX as usize) {
            n += 1;
            text += v.map_or(0, str::len);
        }
        let mut buf = Vec::with_capacity(HEAD + 4 * n + text);
        buf.extend_from_slice(&(n as u16).to_le_bytes());
        buf.resize(HEAD + 4 * n, 0);
        let mut end = 0usize;
        for (i, v) in it.take(n).enumerate() {
            let slot = match v {
                Some(s) if end + s.len() < ABSENT as usize => {
                    buf.extend_from_slice(s.as_bytes());
                    end += s.len();
                    end as u32
                }
                _ => end as u32 | ABSENT,
            };
            buf[HEAD + 4 * i..HEAD + 4 * i + 4].copy_from_slice(&slot.to_le_bytes());
        }
        Attrs {
            buf: buf.into_boxed_slice(),
        }
    }

    /// How many values (present or not).
    pub fn len(&self) -> usize {
        match self.buf.get(..HEAD) {
            Some(h) => u16::from_le_bytes([h[0], h[1]]) as usize,
            None => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(&self, i: usize) -> u32 {
        let at = HEAD + 4 * i;
        let b = &self.buf[at..at + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Value `i`: `None` when absent or past the end.
    pub fn get(&self, i: usize) -> Option<&str> {
        if i >= self.len() {
            return None;
        }
        let end = self.slot(i);
        if end & ABSENT != 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.slot(i - 1) & !ABSENT };
        let text = HEAD + 4 * self.len();
        let bytes = &self.buf[text + start as usize..text + end as usize];
        // SAFETY: `buf`'s text is only ever written by `pack`, from whole
        // `&str`s, and each end is a boundary between two of them.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    }

    /// Every value in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<&str>> + Clone + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Set value `i` (past the end: nothing). Repacks: for the rare rows a
    /// generated name or a test changes, not for the bulk of a run.
    pub fn set(&mut self, i: usize, value: Option<&str>) {
        if i >= self.len() {
            return;
        }
        let values: Vec<Option<&str>> = self
            .iter()
            .enumerate()
            .map(|(j, v)| if j == i { value } else { v })
            .collect();
        *self = Attrs::pack(values);
    }
}

impl From<Vec<Option<Value>>> for Attrs {
    fn from(values: Vec<Option<Value>>) -> Attrs {
        Attrs::pack(values.iter().map(|v| v.as_deref()))
    }
}

impl fmt::Debug for Attrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_back_as_packed() {
        let vals = [Some("Jane"), None, Some(""), Some("Zoë Müller"), None, Some("x")];
        let a = Attrs::pack(vals);
        assert_eq!(a.len(), 6);
        assert_eq!(a.iter().collect::<Vec<_>>(), vals);
        assert_eq!(a.get(2), Some(""), "empty is not absent");
        assert_eq!(a.get(6), None, "past the end");
        // One allocation: count, six ends, the text.
        assert_eq!(a.buf.len(), 2 + 4 * 6 + "Jane".len() + "Zoë Müller".len() + 1);
    }

    #[test]
    fn set_changes_one_value_only() {
        let mut a = Attrs::pack([Some("a"), Some("bb"), None]);
        a.set(1, None);
        a.set(2, Some("ccc"));
        a.set(9, Some("ignored"));
        assert_eq!(a.iter().collect::<Vec<_>>(), [Some("a"), None, Some("ccc")]);
        assert_eq!(a, Attrs::pack([Some("a"), None, Some("ccc")]));
    }

    #[test]
    fn empty_and_absent_rows() {
        assert_eq!(Attrs::default().len(), 0);
        assert_eq!(Attrs::default().get(0), None);
        let a = Attrs::pack([None, None, None]);
        assert_eq!(a.iter().collect::<Vec<_>>(), [None, None, None]);
        let from: Attrs = vec![Some(Value::from("v")), None].into();
        assert_eq!(from.iter().collect::<Vec<_>>(), [Some("v"), None]);
    }
}
