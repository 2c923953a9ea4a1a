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

    /// `bytes[start..]`, shared, when it is UTF-8; `None` when it is not.
    pub fn shared(bytes: &Arc<Vec<u8>>, start: usize) -> Option<Text> {
        std::str::from_utf8(bytes.get(start..)?).ok()?;
        Some(Text {
            buf: Arc::clone(bytes),
            start,
        })
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        let bytes = self.buf.get(self.start..).unwrap_or_default();
        // SAFETY: `buf` never changes (it is shared, and only read here) and
        // `buf[start..]` was checked to be UTF-8 when this `Text` was made
        // (`shared`), or came from a `String` (`owned`).
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
    fn shares_utf8_and_refuses_the_rest() {
        let bytes = Arc::new(b"\xEF\xBB\xBFname\nZo\xC3\xAB\n".to_vec());
        let t = Text::shared(&bytes, 3).unwrap(); // ok: test
        assert_eq!(&*t, "name\nZoë\n");
        assert_eq!(Arc::strong_count(&bytes), 2, "the same bytes, not a copy");
        assert!(Text::shared(&bytes, 0).is_some(), "a BOM is UTF-8 too");
        assert!(Text::shared(&Arc::new(b"a\xFFb".to_vec()), 0).is_none());
        assert!(Text::shared(&bytes, 99).is_none());
        assert_eq!(&*Text::owned("abc".into()), "abc");
        assert_eq!(&*Text::default(), "");
    }
}
