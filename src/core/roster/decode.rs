//! Bytes → text: byte-order marks, UTF-16, Windows-1252, and a refusal with
//! offset and line for bytes that do not decode (never a replacement).

use std::sync::Arc;

use super::error::{file_error, FileError, FileErrorKind};
use super::text::Text;
use crate::core::policy::Encoding;

/// Decode bytes to text. Never replaces: undecodable bytes refuse the file
/// with their offset and line.
pub fn decode(bytes: &[u8], encoding: Encoding) -> Result<String, FileError> {
    Ok(match decoded(bytes, encoding)? {
        Decoded::Utf8(s) => s.to_string(),
        Decoded::Owned(s) => s,
    })
}

/// [`decode`], sharing `bytes` when they are UTF-8 already.
pub fn decode_shared(bytes: &Arc<Vec<u8>>, encoding: Encoding) -> Result<Text, FileError> {
    match decoded(bytes, encoding)? {
        // `s` was checked once, and is the end of `bytes`.
        Decoded::Utf8(s) => Ok(Text::tail_of(bytes, s).unwrap_or_else(|| Text::owned(s.to_string()))),
        Decoded::Owned(s) => Ok(Text::owned(s)),
    }
}

/// What decoding found: the bytes' UTF-8 (after a byte-order mark), or
/// text decoded from another encoding.
enum Decoded<'a> {
    Utf8(&'a str),
    Owned(String),
}

fn decoded(bytes: &[u8], encoding: Encoding) -> Result<Decoded<'_>, FileError> {
    if bytes.is_empty() {
        return Err(file_error(
            FileErrorKind::Empty,
            "the file has no bytes; export it again",
        ));
    }
    let text = if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        Decoded::Utf8(utf8(rest, 3)?)
    } else if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        Decoded::Owned(utf16(rest, u16::from_le_bytes)?)
    } else if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        Decoded::Owned(utf16(rest, u16::from_be_bytes)?)
    } else if let Some(line) = utf16_without_bom(bytes) {
        return Err(file_error(
            FileErrorKind::Encoding,
            "the file has NUL bytes at every other position: it is UTF-16 without a byte-order mark; save it as UTF-8 (or UTF-16 with a byte-order mark)",
        )
        .at_line(line));
    } else if encoding == Encoding::Windows1252 {
        let (cow, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
        Decoded::Owned(cow.into_owned())
    } else {
        Decoded::Utf8(utf8(bytes, 0)?)
    };
    let s = match &text {
        Decoded::Utf8(s) => s,
        Decoded::Owned(s) => s.as_str(),
    };
    if s.trim().is_empty() {
        return Err(file_error(
            FileErrorKind::Empty,
            "the file holds no text (only a byte-order mark or blank lines); export it again",
        ));
    }
    Ok(text)
}

/// Many NUL bytes on the same side of each byte pair mean UTF-16 without a
/// byte-order mark (one NUL in a cell is that row's problem, not the
/// file's); returns the line of the first NUL.
fn utf16_without_bom(bytes: &[u8]) -> Option<u64> {
    let (mut even, mut odd) = (0usize, 0usize);
    for (i, b) in bytes.iter().enumerate() {
        if *b == 0 {
            if i % 2 == 0 {
                even += 1
            } else {
                odd += 1
            }
        }
    }
    let pairs = bytes.len() / 2;
    let side = even.max(odd);
    (side >= 2 && side * 4 >= pairs).then(|| line_of(bytes, bytes.iter().position(|b| *b == 0).unwrap_or(0)))
}

fn line_of(bytes: &[u8], offset: usize) -> u64 {
    bytes[..offset.min(bytes.len())].iter().filter(|b| **b == b'\n').count() as u64 + 1
}

/// `bytes` start at offset `base` of the file (after a byte-order mark).
fn utf8(bytes: &[u8], base: usize) -> Result<&str, FileError> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let at = e.valid_up_to();
            let (byte, line) = ((base + at) as u64, line_of(bytes, at));
            Err(file_error(
                FileErrorKind::Encoding,
                format!(
                    "byte {byte} (line {line}) is not valid UTF-8 (0x{:02X}); save the file as UTF-8, or if it is Windows-1252 (Excel's \"CSV\" on Western Windows) set roster.encoding = \"windows-1252\" in the policy",
                    bytes.get(at).copied().unwrap_or(0)
                ),
            )
            .at_byte(byte)
            .at_line(line))
        }
    }
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, FileError> {
    let mut units = Vec::with_capacity(bytes.len() / 2);
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        units.push(unit([c[0], c[1]]));
    }
    if !chunks.remainder().is_empty() {
        let byte = bytes.len() as u64 + 2;
        return Err(file_error(
            FileErrorKind::Truncated,
            format!(
                "the UTF-16 file ends in the middle of a character (byte {byte}); the file was cut off: export it again"
            ),
        )
        .at_byte(byte));
    }
    let mut out = String::with_capacity(units.len());
    let mut line = 1;
    for (i, r) in char::decode_utf16(units.iter().copied()).enumerate() {
        match r {
            Ok(c) => {
                if c == '\n' {
                    line += 1;
                }
                out.push(c)
            }
            Err(_) => {
                let byte = 2 + 2 * i as u64;
                return Err(file_error(
                    FileErrorKind::Encoding,
                    format!(
                        "byte {byte} (line {line}) is not valid UTF-16 (an unpaired surrogate); save the file as UTF-8"
                    ),
                )
                .at_byte(byte)
                .at_line(line));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::core::policy::Encoding;
    use crate::core::roster::fixtures::*;
    use crate::core::roster::{decode, parse_roster, FileErrorKind};

    #[test]
    fn encodings_utf8_bom_utf16_and_windows_1252() {
        let body = "username,firstname,surname,email\r\nzoe,Zoë,Müller,z@example.org\r\n";
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(body.as_bytes());
        let mut le = vec![0xFF, 0xFE];
        le.extend(body.encode_utf16().flat_map(|u| u.to_le_bytes()));
        let mut be = vec![0xFE, 0xFF];
        be.extend(body.encode_utf16().flat_map(|u| u.to_be_bytes()));
        for bytes in [body.as_bytes().to_vec(), bom, le, be] {
            let r = parse_roster(&bytes, &policy()).unwrap(); // ok: test
            assert_eq!(r.persons[0].attrs.get(0), Some("Zoë"));
        }
        // Windows-1252: ë = 0xEB, ü = 0xFC. Refused as UTF-8 with offset and line…
        let cp = b"username,firstname,surname,email\nzoe,Zo\xEB,M\xFCller,z@example.org\n";
        let e = parse_roster(cp, &policy()).unwrap_err();
        assert_eq!(e.kind, FileErrorKind::Encoding);
        assert_eq!((e.byte, e.line), (Some(39), Some(2)), "{e}");
        assert!(e.message.contains("byte 39 (line 2)"), "{e}");
        assert!(e.message.contains("windows-1252"), "{e}");
        // …and read when the policy says so.
        let mut p = policy();
        p.roster.encoding = Encoding::Windows1252;
        let r = parse_roster(cp, &p).unwrap(); // ok: test
        assert_eq!(r.persons[0].attrs.get(1), Some("Müller"));
    }

    #[test]
    fn bad_utf16_is_refused_not_replaced() {
        let mut le = vec![0xFF, 0xFE];
        le.extend("username\n".encode_utf16().flat_map(|u| u.to_le_bytes()));
        le.extend([0x00, 0xD8, 0x41, 0x00]); // unpaired high surrogate
        let e = parse_roster(&le, &policy()).unwrap_err();
        assert_eq!(e.kind, FileErrorKind::Encoding);
        // BOM (2) + "username\n" (18): the surrogate is at byte 20, on line 2.
        assert_eq!((e.byte, e.line), (Some(20), Some(2)), "{e}");
    }

    #[test]
    fn positions_count_the_byte_order_mark_and_lines() {
        // UTF-8 with BOM: the bad byte's offset is in the file, BOM included.
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(b"username\nzo\xEB\n");
        let e = decode(&bom, Encoding::Auto).unwrap_err();
        assert_eq!((e.kind, e.byte, e.line), (FileErrorKind::Encoding, Some(14), Some(2)));
        assert!(e.message.contains("byte 14 (line 2)"), "{e}");
        // UTF-16 without a byte-order mark: the line of the first NUL.
        let le: Vec<u8> = "username\nab\n".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        let e = decode(&le, Encoding::Auto).unwrap_err();
        assert_eq!((e.kind, e.byte, e.line), (FileErrorKind::Encoding, None, Some(1)));
        assert!(e.message.contains("UTF-16 without a byte-order mark"), "{e}");
        // One NUL is text: the row it is in is refused, not the file.
        assert_eq!(decode(b"a\nb\n\0", Encoding::Auto).unwrap(), "a\nb\n\0"); // ok: test

        // Odd UTF-16: where it ends.
        let e = decode(&[0xFF, 0xFE, 0x61, 0x00, 0x62], Encoding::Auto).unwrap_err();
        assert_eq!((e.kind, e.byte, e.line), (FileErrorKind::Truncated, Some(5), None));
    }
}
