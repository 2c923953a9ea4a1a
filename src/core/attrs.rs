//! [`Attrs`]: a person's or an account's attribute values, indexed like the
//! policy's attribute list, packed in one allocation.
//!
//! A vector of optional strings cost 24 bytes a value however short the
//! value (and a heap string each past 24 bytes); a million rows of ten
//! attributes held 256 bytes of slots each, for about 90 bytes of text.
//! Packed, a row's values take 2 + 2 × n bytes of ends plus the text
//! (4 × n past 32 KiB of text; BENCHMARKS.md, issue 16: P4).

use std::fmt;

use super::types::Value;

/// Bytes before the ends: the head (u16, little-endian): the number of
/// values, and [`WIDE`].
const HEAD: usize = 2;
/// The head's top bit: the ends are u32 (text of 32 KiB or more), not u16.
const WIDE: u16 = 1 << 15;

/// Optional string values by index, read as `Option<&str>`.
///
/// Layout of `buf`: the head (u16: the count `n`, [`WIDE`] set for 4-byte
/// ends), then `n` little-endian ends (the end of each value in the text;
/// the end's top bit set for `None`), then the values' UTF-8 text one after
/// another. A row's text is almost always under 32 KiB, so its ends are
/// 2 bytes each. Built only from `&str`s, so the text is valid UTF-8 at
/// every boundary.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    buf: Box<[u8]>,
}

impl Attrs {
    /// Pack `values` (absent ones as `None`). A row cannot have more than
    /// 32,767 attributes or 2 GiB of text (the policy's attribute list and
    /// `max_field_len` bound both); values past those bounds would read as
    /// absent.
    pub fn pack<'a, I>(values: I) -> Attrs
    where
        I: IntoIterator<Item = Option<&'a str>>,
        I::IntoIter: Clone,
    {
        let it = values.into_iter();
        let (mut n, mut text) = (0usize, 0usize);
        for v in it.clone().take(usize::from(!WIDE)) {
            n += 1;
            text += v.map_or(0, str::len);
        }
        let wide = text >= usize::from(WIDE);
        let (width, absent) = if wide {
            (4, 1usize << 31)
        } else {
            (2, usize::from(WIDE))
        };
        let mut buf = Vec::with_capacity(HEAD + width * n + text);
        buf.extend_from_slice(&(n as u16 | if wide { WIDE } else { 0 }).to_le_bytes());
        buf.resize(HEAD + width * n, 0);
        let mut end = 0usize;
        for (i, v) in it.take(n).enumerate() {
            let slot = match v {
                Some(s) if end + s.len() < absent => {
                    buf.extend_from_slice(s.as_bytes());
                    end += s.len();
                    end
                }
                _ => end | absent,
            };
            let at = HEAD + width * i;
            if wide {
                buf[at..at + 4].copy_from_slice(&(slot as u32).to_le_bytes());
            } else {
                buf[at..at + 2].copy_from_slice(&(slot as u16).to_le_bytes());
            }
        }
        Attrs {
            buf: buf.into_boxed_slice(),
        }
    }

    fn head(&self) -> u16 {
        match self.buf.get(..HEAD) {
            Some(h) => u16::from_le_bytes([h[0], h[1]]),
            None => 0,
        }
    }

    /// How many values (present or not).
    pub fn len(&self) -> usize {
        usize::from(self.head() & !WIDE)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The width of an end, and value `i`'s end with whether it is absent.
    fn slot(&self, i: usize) -> (usize, usize, bool) {
        if self.head() & WIDE != 0 {
            let at = HEAD + 4 * i;
            let b = &self.buf[at..at + 4];
            let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            (4, (v & !(1 << 31)) as usize, v & (1 << 31) != 0)
        } else {
            let at = HEAD + 2 * i;
            let v = u16::from_le_bytes([self.buf[at], self.buf[at + 1]]);
            (2, usize::from(v & !WIDE), v & WIDE != 0)
        }
    }

    /// Value `i`: `None` when absent or past the end.
    pub fn get(&self, i: usize) -> Option<&str> {
        if i >= self.len() {
            return None;
        }
        let (width, end, absent) = self.slot(i);
        if absent {
            return None;
        }
        let start = if i == 0 { 0 } else { self.slot(i - 1).1 };
        let text = HEAD + width * self.len();
        let bytes = &self.buf[text + start..text + end];
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
        // One allocation: the head, six 2-byte ends, the text.
        assert_eq!(a.buf.len(), 2 + 2 * 6 + "Jane".len() + "Zoë Müller".len() + 1);
    }

    #[test]
    fn text_of_32_kib_or_more_takes_wide_ends() {
        // The row's whole text is `total` bytes: 3 of "a" and "zz", the rest long.
        for (total, width) in [(0x7fff, 2), (0x8000, 4), (100_000, 4)] {
            let len = total - 3;
            let long = "é".repeat(len / 2) + &"x".repeat(len % 2);
            let vals = [Some("a"), None, Some(long.as_str()), Some(""), Some("zz")];
            let a = Attrs::pack(vals);
            assert_eq!(a.iter().collect::<Vec<_>>(), vals, "{total}");
            assert_eq!(a.buf.len(), 2 + width * 5 + total, "{total}");
            assert_eq!(a.len(), 5);
            assert_eq!(a.get(1), None);
            assert_eq!(a.get(3), Some(""));
        }
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
