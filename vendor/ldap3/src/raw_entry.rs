//! Search result entries read in place.
//!
//! lber's parser builds a tree with one heap allocation per BER node (a
//! `Vec` for every value, every attribute, every sequence). For a large
//! search that is most of the client's work. A connection therefore keeps
//! each received SearchResultEntry as the bytes it arrived in (a cheap,
//! reference-counted slice of the read buffer), and a search run with
//! [`SearchOptions::raw_entries`](crate::SearchOptions::raw_entries) hands
//! them over undecoded: [`ResultEntry::raw`](crate::ResultEntry::raw) gives
//! the bytes and [`RawEntry::parse`] reads them without allocating.

/// The universal and context tag numbers above 30 need the high-tag-number
/// form, which no LDAP PDU uses; like lber, this reader does not take it.
const HIGH_TAG: u8 = 0x1f;
const CONSTRUCTED: u8 = 0x20;

/// One BER element: its identifier octet, its contents, and what follows.
/// None when the input is not a complete definite-length element.
pub(crate) fn tlv(i: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&ident, i) = i.split_first()?;
    if ident & HIGH_TAG == HIGH_TAG {
        return None;
    }
    let (&first, mut i) = i.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        // 0x80 is the indefinite form (not allowed in LDAP); more than 8
        // length octets cannot be a length on any machine this runs on.
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 8 || i.len() < n {
            return None;
        }
        let (octets, rest) = i.split_at(n);
        i = rest;
        let len = octets.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64);
        usize::try_from(len).ok()?
    };
    if i.len() < len {
        return None;
    }
    let (content, rest) = i.split_at(len);
    Some((ident, content, rest))
}

fn constructed(ident: u8) -> bool {
    ident & CONSTRUCTED != 0
}

/// A SearchResultEntry (`[APPLICATION 4]`), checked whole once and then
/// read without copying:
///
/// ```text
/// SearchResultEntry ::= [APPLICATION 4] SEQUENCE {
///      objectName      LDAPDN,
///      attributes      PartialAttributeList }
/// PartialAttributeList ::= SEQUENCE OF SEQUENCE {
///      type    AttributeDescription,
///      vals    SET OF AttributeValue }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RawEntry<'a> {
    dn: &'a [u8],
    attrs: &'a [u8],
}

impl<'a> RawEntry<'a> {
    /// Read the BER of a whole SearchResultEntry (as given by
    /// [`ResultEntry::raw`](crate::ResultEntry::raw)). None when it is not
    /// one, or is malformed anywhere; then nothing of it is to be trusted.
    pub fn parse(ber: &'a [u8]) -> Option<RawEntry<'a>> {
        let (ident, body, rest) = tlv(ber)?;
        // Application class, constructed, number 4.
        if ident != 0x64 || !rest.is_empty() {
            return None;
        }
        let (ident, dn, body) = tlv(body)?;
        if constructed(ident) {
            return None;
        }
        let (ident, attrs, rest) = tlv(body)?;
        if !constructed(ident) || !rest.is_empty() {
            return None;
        }
        let entry = RawEntry { dn, attrs };
        // Check every attribute now, so that the iterators need not fail.
        let mut i = attrs;
        while !i.is_empty() {
            let (ident, pa, rest) = tlv(i)?;
            if !constructed(ident) {
                return None;
            }
            let (ident, _name, pa) = tlv(pa)?;
            if constructed(ident) {
                return None;
            }
            let (ident, mut vals, pa) = tlv(pa)?;
            if !constructed(ident) || !pa.is_empty() {
                return None;
            }
            while !vals.is_empty() {
                vals = tlv(vals)?.2;
            }
            i = rest;
        }
        Some(entry)
    }

    /// The entry's DN, as sent.
    pub fn dn(&self) -> &'a [u8] {
        self.dn
    }

    /// The attributes, in the order sent.
    pub fn attrs(&self) -> RawAttrs<'a> {
        RawAttrs { rest: self.attrs }
    }
}

/// The attributes of a [`RawEntry`]: (description, values).
#[derive(Clone, Debug)]
pub struct RawAttrs<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for RawAttrs<'a> {
    type Item = (&'a [u8], RawValues<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        // RawEntry::parse checked the structure: a failure here is the end.
        let (_, pa, rest) = tlv(self.rest)?;
        self.rest = rest;
        let (_, name, pa) = tlv(pa)?;
        let (_, vals, _) = tlv(pa)?;
        Some((name, RawValues { rest: vals }))
    }
}

/// The values of one attribute. A constructed element in the set (not an
/// AttributeValue) is skipped, as lber-based readers skip it.
#[derive(Clone, Debug)]
pub struct RawValues<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for RawValues<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let (ident, v, rest) = tlv(self.rest)?;
            self.rest = rest;
            if !constructed(ident) {
                return Some(v);
            }
        }
    }
}
