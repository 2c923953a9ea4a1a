//! Cell hygiene, one rule for every field: invisible characters (controls and
//! Unicode format characters) refuse the row or are stripped by policy, text
//! is stored in NFC, and email addresses follow RFC 5321.

use std::borrow::Cow;

use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// Unicode general category Cf (format characters) as of Unicode 15, plus the
/// line and paragraph separators: invisible, and never meant in a name, an
/// address or a key.
fn is_format(c: char) -> bool {
    matches!(c as u32,
        0x00AD
        | 0x0600..=0x0605
        | 0x061C
        | 0x06DD
        | 0x070F
        | 0x0890..=0x0891
        | 0x08E2
        | 0x180E
        | 0x200B..=0x200F
        | 0x2028..=0x202E
        | 0x2060..=0x2064
        | 0x2066..=0x206F
        | 0xFEFF
        | 0xFFF9..=0xFFFB
        | 0x110BD
        | 0x110CD
        | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A
        | 0xE0001
        | 0xE0020..=0xE007F)
}

/// One invisible character found in a value: a control (category Cc) or a
/// format character.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Invisible {
    pub ch: char,
    /// In characters from 1, counted in the value as trimmed.
    pub position: usize,
}

impl Invisible {
    pub fn is_control(self) -> bool {
        self.ch.is_control()
    }
}

fn invisible(c: char, allow_tab: bool) -> bool {
    (c.is_control() && !(allow_tab && c == '\t')) || is_format(c)
}

/// The first invisible character of `v`, if any. `allow_tab`: a TAB inside
/// a text field is kept.
pub(super) fn first_invisible(v: &str, allow_tab: bool) -> Option<Invisible> {
    // Every invisible character is either ASCII control or outside ASCII.
    if v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    v.chars()
        .enumerate()
        .find(|(_, c)| invisible(*c, allow_tab))
        .map(|(i, ch)| Invisible { ch, position: i + 1 })
}

/// `v` without its invisible characters, and which were removed.
pub(super) fn strip_invisible(v: &str, allow_tab: bool) -> (String, Vec<Invisible>) {
    let mut removed = Vec::new();
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        if invisible(c, allow_tab) {
            removed.push(Invisible { ch: c, position: i + 1 });
        } else {
            out.push(c);
        }
    }
    (out, removed)
}

/// Unicode NFC: a decomposed "Mu\u{308}ller" is stored and compared as "Müller".
pub(super) fn nfc(v: &str) -> Cow<'_, str> {
    if v.is_ascii() || is_nfc_quick(v.chars()) == IsNormalized::Yes {
        Cow::Borrowed(v)
    } else {
        Cow::Owned(v.nfc().collect())
    }
}

/// RFC 5321 atext, the characters of a dot-atom local part besides the dot.
fn atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

/// What is wrong with an email address, or `None` when it is one. The outer
/// `Some(None)` is "there is no @".
pub fn email_problem(v: &str) -> Option<Option<String>> {
    let Some((local, domain)) = v.rsplit_once('@') else {
        return Some(None);
    };
    let bad = |s: String| Some(Some(s));
    if local.contains('@') {
        return bad("it has more than one @".into());
    }
    if local.is_empty() {
        return bad("there is nothing before the @".into());
    }
    if local.len() > 64 {
        return bad(format!(
            "the part before the @ is {} characters long; at most 64 are allowed",
            local.chars().count()
        ));
    }
    if local.starts_with('.') {
        return bad("the part before the @ starts with a dot".into());
    }
    if local.ends_with('.') {
        return bad("the part before the @ ends with a dot".into());
    }
    if local.contains("..") {
        return bad("the part before the @ has two dots in a row".into());
    }
    if let Some(c) = local.chars().find(|c| !atext(*c) && *c != '.') {
        return bad(if c.is_whitespace() {
            "the part before the @ contains a space".into()
        } else if !c.is_ascii() {
            format!("the part before the @ contains {c:?}, which is not ASCII (most mail systems refuse it)")
        } else {
            format!("the part before the @ contains {c:?}, which an address may not have there")
        });
    }
    if domain.is_empty() {
        return bad("there is nothing after the @".into());
    }
    let ascii: Cow<'_, str> = if domain.is_ascii() {
        Cow::Borrowed(domain)
    } else {
        match idna::domain_to_ascii(domain) {
            Ok(a) => Cow::Owned(a),
            Err(_) => {
                return bad(format!(
                    "the domain {domain:?} is not a valid internationalised domain name"
                ))
            }
        }
    };
    if ascii.len() > 253 {
        return bad(format!(
            "the domain is {} characters long; at most 253 are allowed",
            ascii.len()
        ));
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return bad(format!("the domain {domain:?} has no dot (name@domain.tld)"));
    }
    for l in &labels {
        if l.is_empty() {
            return bad("the domain has an empty part (two dots in a row, or a dot at an end)".into());
        }
        if l.len() > 63 {
            return bad("a part of the domain is longer than 63 characters".into());
        }
        if let Some(c) = l.chars().find(|c| !c.is_ascii_alphanumeric() && *c != '-') {
            return bad(format!(
                "the domain contains {c:?}; only letters, digits, '-' and '.' are allowed"
            ));
        }
        if l.starts_with('-') || l.ends_with('-') {
            return bad(format!("the domain part {l:?} starts or ends with a hyphen"));
        }
    }
    if labels.last().is_some_and(|t| t.bytes().all(|b| b.is_ascii_digit())) {
        return bad("the domain ends in a number, not a name".into());
    }
    None
}

/// True when `v` is an email address by RFC 5321 (dot-atom local part, a
/// domain of LDH labels with a dot, internationalised domains via IDNA).
pub fn is_email(v: &str) -> bool {
    email_problem(v).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_invisible_character_is_found_with_its_position() {
        for c in [
            '\u{0}',
            '\u{1}',
            '\u{7}',
            '\u{1B}',
            '\u{7F}',
            '\u{85}',
            '\u{9F}',
            '\u{AD}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{202A}',
            '\u{202E}',
            '\u{2028}',
            '\u{2060}',
            '\u{2066}',
            '\u{2069}',
            '\u{FEFF}',
            '\u{E0001}',
        ] {
            let v = format!("ab{c}c");
            assert_eq!(
                first_invisible(&v, true),
                Some(Invisible { ch: c, position: 3 }),
                "U+{:04X}",
                c as u32
            );
        }
        assert_eq!(first_invisible("Zoë Müller-Ünal", false), None);
        assert_eq!(first_invisible("a\tb", true), None);
        assert_eq!(
            first_invisible("a\tb", false),
            Some(Invisible { ch: '\t', position: 2 })
        );
        // Positions count characters, not bytes.
        assert_eq!(first_invisible("éé\u{200B}", true).map(|i| i.position), Some(3));
    }

    #[test]
    fn stripping_removes_and_reports_each_character() {
        let (v, removed) = strip_invisible("\u{202E}abc\u{200B}", true);
        assert_eq!(v, "abc");
        assert_eq!(
            removed,
            vec![
                Invisible {
                    ch: '\u{202E}',
                    position: 1
                },
                Invisible {
                    ch: '\u{200B}',
                    position: 5
                }
            ]
        );
    }

    #[test]
    fn nfc_composes_and_leaves_composed_text_alone() {
        assert_eq!(nfc("Mu\u{308}ller"), "Müller");
        assert!(matches!(nfc("Müller"), Cow::Borrowed(_)));
        assert!(matches!(nfc("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn email_rules_of_rfc_5321_each_with_its_reason() {
        for ok in [
            "a@example.org",
            "first.last+tag@sub.example.co.uk",
            "o'brien@example.ie",
            "x_y-z@my-host.example",
            "jose@bücher.example",
            "a!#$%&*/=?^`{|}~@example.org",
        ] {
            assert_eq!(email_problem(ok), None, "{ok}");
        }
        let cases = [
            ("bad-at-example.org", None),
            ("a@@example.org", Some("more than one @")),
            ("@example.org", Some("nothing before the @")),
            (".a@example.org", Some("starts with a dot")),
            ("a.@example.org", Some("ends with a dot")),
            ("a..b@example.org", Some("two dots in a row")),
            ("a b@example.org", Some("contains a space")),
            ("<a>@example.org", Some("'<'")),
            ("josé@example.org", Some("not ASCII")),
            ("a@", Some("nothing after the @")),
            ("a@b", Some("has no dot")),
            ("a@example..org", Some("empty part")),
            ("a@example.org.", Some("empty part")),
            ("a@-x.org", Some("hyphen")),
            ("a@x_y.org", Some("'_'")),
            ("a@1.2.3.4", Some("ends in a number")),
            ("a@[1.2.3.4]", Some("'['")),
        ];
        for (v, want) in cases {
            match (email_problem(v), want) {
                (Some(None), None) => {}
                (Some(Some(why)), Some(w)) => assert!(why.contains(w), "{v}: {why}"),
                (got, _) => panic!("{v}: {got:?}"),
            }
        }
        let long = format!("{}@example.org", "a".repeat(65));
        assert!(email_problem(&long).is_some_and(|w| w.is_some_and(|w| w.contains("65 characters"))));
        let label = format!("a@{}.org", "b".repeat(64));
        assert!(!is_email(&label));
    }
}
