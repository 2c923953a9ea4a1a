//! ldap3's `RawEntry` (vendor/ldap3/src/raw_entry.rs, the snapshot's
//! reader of search result entries): its tests live here, as the vendored
//! crate's own tests are not built in this workspace.

use ldap3::asn1::{parse_tag, StructureTag};
use ldap3::RawEntry;

type R = Result<(), String>;

/// An entry as OpenLDAP sends it: `uid=a,dc` with cn: A, B and mail: a@xy.
const ENTRY: &[u8] = &[
    0x64, 0x2a, 0x04, 0x08, b'u', b'i', b'd', b'=', b'a', b',', b'd', b'c', 0x30, 0x1e, 0x30, 0x0c, 0x04, 0x02, b'c',
    b'n', 0x31, 0x06, 0x04, 0x01, b'A', 0x04, 0x01, b'B', 0x30, 0x0e, 0x04, 0x04, b'm', b'a', b'i', b'l', 0x31, 0x06,
    0x04, 0x04, b'a', b'@', b'x', b'y',
];

type Attrs<'a> = Vec<(&'a [u8], Vec<&'a [u8]>)>;
/// Attributes as owned bytes: (description, values).
type OwnedAttrs = Vec<(Vec<u8>, Vec<Vec<u8>>)>;
/// An entry to encode: DN, and (description, values).
type Case<'a> = (Vec<u8>, Vec<(&'a [u8], Vec<Vec<u8>>)>);

fn read(ber: &[u8]) -> Result<(&[u8], Attrs<'_>), String> {
    let e = RawEntry::parse(ber).ok_or("not read")?;
    Ok((e.dn(), e.attrs().map(|(n, v)| (n, v.collect())).collect()))
}

/// The same entry as lber's tree, taken apart as the snapshot used to.
fn lber(ber: &[u8]) -> Result<(Vec<u8>, OwnedAttrs), String> {
    let (_, tag) = parse_tag(ber).map_err(|e| e.to_string())?;
    let mut top = tag.expect_constructed().ok_or("entry")?.into_iter();
    let dn = top.next().and_then(StructureTag::expect_primitive).ok_or("dn")?;
    let mut attrs = Vec::new();
    for pa in top.next().and_then(StructureTag::expect_constructed).ok_or("attrs")? {
        let mut parts = pa.expect_constructed().ok_or("attribute")?.into_iter();
        let name = parts.next().and_then(StructureTag::expect_primitive).ok_or("name")?;
        let vals = parts
            .next()
            .and_then(StructureTag::expect_constructed)
            .ok_or("values")?;
        attrs.push((
            name,
            vals.into_iter().filter_map(StructureTag::expect_primitive).collect(),
        ));
    }
    Ok((dn, attrs))
}

/// The BER of an entry (long-form lengths wherever they are needed).
fn encode(dn: &[u8], attrs: &[(&[u8], Vec<Vec<u8>>)]) -> Vec<u8> {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let n = content.len();
        if n < 0x80 {
            out.push(n as u8);
        } else {
            let bytes: Vec<u8> = n.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend(content);
        out
    }
    let mut list = Vec::new();
    for (name, vals) in attrs {
        let set: Vec<u8> = vals.iter().flat_map(|v| tlv(0x04, v)).collect();
        let mut pa = tlv(0x04, name);
        pa.extend(tlv(0x31, &set));
        list.extend(tlv(0x30, &pa));
    }
    let mut body = tlv(0x04, dn);
    body.extend(tlv(0x30, &list));
    tlv(0x64, &body)
}

#[test]
fn reads_dn_attributes_and_values() -> R {
    let (dn, attrs) = read(ENTRY)?;
    assert_eq!(dn, b"uid=a,dc");
    assert_eq!(
        attrs,
        vec![
            (&b"cn"[..], vec![&b"A"[..], &b"B"[..]]),
            (&b"mail"[..], vec![&b"a@xy"[..]])
        ]
    );
    Ok(())
}

#[test]
fn agrees_with_lber_whatever_the_sizes() -> R {
    let big = vec![b'v'; 70_000];
    let cases: Vec<Case> = vec![
        (b"uid=a,dc=x".to_vec(), vec![]),
        (Vec::new(), vec![(b"cn", vec![])]),
        (
            b"cn=b".to_vec(),
            vec![(b"x", vec![vec![b'v'; 300]]), (b"y", vec![Vec::new()])],
        ),
        (
            vec![b'd'; 200],
            vec![
                (b"jpegPhoto", vec![big.clone(), vec![0, 0xff]]),
                (b"mail", vec![b"m".to_vec()]),
            ],
        ),
    ];
    for (dn, attrs) in &cases {
        let ber = encode(dn, attrs);
        let (rdn, rattrs) = read(&ber)?;
        let (ldn, lattrs) = lber(&ber)?;
        assert_eq!(rdn, &ldn[..]);
        let rattrs: OwnedAttrs = rattrs
            .into_iter()
            .map(|(n, v)| (n.to_vec(), v.into_iter().map(<[u8]>::to_vec).collect()))
            .collect();
        assert_eq!(rattrs, lattrs);
    }
    Ok(())
}

#[test]
fn refuses_malformed_entries() {
    // Truncated anywhere.
    for n in 0..ENTRY.len() {
        assert!(RawEntry::parse(&ENTRY[..n]).is_none(), "cut at {n}");
    }
    // Not an entry (a SearchResultDone), trailing bytes, indefinite length,
    // a length of more octets than there are.
    assert!(RawEntry::parse(&[0x65, 0x00]).is_none());
    let mut trailing = ENTRY.to_vec();
    trailing.push(0);
    assert!(RawEntry::parse(&trailing).is_none());
    assert!(RawEntry::parse(&[0x64, 0x80, 0x00, 0x00]).is_none());
    assert!(RawEntry::parse(&[0x64, 0x84, 0xff, 0xff]).is_none());
    // An attribute whose values are not a set; a constructed DN.
    let mut bad = ENTRY.to_vec();
    bad[20] = 0x04;
    assert!(RawEntry::parse(&bad).is_none());
    let mut bad = ENTRY.to_vec();
    bad[2] = 0x24;
    assert!(RawEntry::parse(&bad).is_none());
}
