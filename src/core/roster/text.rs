//! [`Text`]: the roster's decoded text, kept for the results' echo. When the
//! file is UTF-8 already (most are), it is the file's own bytes, shared with
//! the run that read them rather than copied: one copy of the file fewer per
//! run (12 MB at 100k rows, 128 MB at a million).

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// UTF-8 text: `buf[start..]`, checked once when made.
#[derive(Clone, Default)]
pub struct Text {
    buf: Arc<Vec<u8>>,
    start: usize,
}

impl Text {
    /// Text decoded into a string of its own.
    pub fn owned(s: String) -> Text {
        Text {
            buf: Arc::new(s.into_bytes()),
            start: 0,
        }
    }

    /// `s`, shared, when it is the end of `bytes` (as the decoder's checked
    /// view of them after a byte-order mark is): the bytes are not copied
    /// nor checked again. `None` for any other `s`.
    pub fn tail_of(bytes: &Arc<Vec<u8>>, s: &str) -> Option<Text> {
        let start = (s.as_ptr() as usize).checked_sub(bytes.as_ptr() as usize)?;
        (start.checked_add(s.len())? == bytes.len()).then(|| Text {
            buf: Arc::clone(bytes),
            start,
        })
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        let bytes = self.buf.get(self.start..).unwrap_or_default();
        // SAFETY: `buf` never changes (it is shared, and only read here),
        // and `buf[start..]` is UTF-8: it was a `&str` when this `Text` was
        // made (`tail_of` takes the `&str`'s own bytes, `owned` a `String`).
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Text({} bytes)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_the_end_of_the_bytes_only() {
        let bytes = Arc::new(b"\xEF\xBB\xBFname\nZo\xC3\xAB\n".to_vec());
        let view = std::str::from_utf8(&bytes[3..]).unwrap(); // ok: test
        let t = Text::tail_of(&bytes, view).unwrap(); // ok: test
        assert_eq!(&*t, "name\nZoë\n");
        assert_eq!(Arc::strong_count(&bytes), 2, "the same bytes, not a copy");
        assert!(Text::tail_of(&bytes, &view[..4]).is_none(), "not the end of the bytes");
        assert!(Text::tail_of(&bytes, "name\nZoë\n").is_none(), "equal text elsewhere");
        assert_eq!(&*Text::owned("abc".into()), "abc");
        assert_eq!(&*Text::default(), "");
    }
}
