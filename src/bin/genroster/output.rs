//! Output formats: a person as a CSV row (RFC 4180) or an LDIF entry (RFC 2849).

use super::data::GROUPS;
use super::people::Person;

/// Appends one CSV field, quoted per RFC 4180 only when it has to be.
pub(super) fn push_csv_field(out: &mut Vec<u8>, value: &str) {
    if value.bytes().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n')) {
        out.push(b'"');
        for b in value.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(value.as_bytes());
    }
}

pub(super) fn push_csv_row(out: &mut Vec<u8>, p: &Person) {
    for field in [&p.username, p.first, p.surname] {
        push_csv_field(out, field);
        out.push(b',');
    }
    push_csv_field(out, &p.username);
    out.extend_from_slice(b"@example.org,");
    for field in [p.title, p.department(), p.site_name(), p.user_type()] {
        push_csv_field(out, field);
        out.push(b',');
    }
    p.push_phone(out);
    out.push(b',');
    // Group names contain no CSV specials and `;` needs no quoting.
    let mut sep = false;
    for (i, group) in GROUPS.iter().enumerate() {
        if p.groups & (1 << i) != 0 {
            if sep {
                out.push(b';');
            }
            out.extend_from_slice(group.as_bytes());
            sep = true;
        }
    }
    out.extend_from_slice(if p.leaver { b",leaver," } else { b",," });
    if p.change_password {
        out.push(b'1');
    }
    out.push(b'\n');
}

/// Standard base64 (RFC 4648) with padding.
pub(super) fn push_base64(out: &mut Vec<u8>, data: &[u8]) {
    use base64::Engine;
    out.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(data).as_bytes());
}

/// Whether an LDIF value must be written as `attr:: base64` (RFC 2849): it is not a
/// SAFE-STRING (non-ASCII, NUL, CR or LF anywhere; space, ':' or '<' first), or it ends
/// with a space, which the RFC recommends encoding so it survives editors.
fn ldif_needs_base64(value: &str) -> bool {
    let bytes = value.as_bytes();
    matches!(bytes.first(), Some(b' ' | b':' | b'<'))
        || bytes.last() == Some(&b' ')
        || bytes.iter().any(|&b| b == 0 || b == b'\n' || b == b'\r' || b >= 0x80)
}

/// LDIF lines are folded at 76 columns; continuation lines start with one space.
pub(super) const LDIF_LINE_WIDTH: usize = 76;

/// Appends `name: value` (or `name:: base64`) and a newline, folding long lines.
pub(super) fn push_ldif_attr(out: &mut Vec<u8>, name: &str, value: &str) {
    let start = out.len();
    out.extend_from_slice(name.as_bytes());
    if ldif_needs_base64(value) {
        out.extend_from_slice(b":: ");
        push_base64(out, value.as_bytes());
    } else {
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    // Everything written is ASCII at this point, so folding on byte boundaries is safe.
    if out.len() - start > LDIF_LINE_WIDTH {
        let line = out.split_off(start);
        let (head, mut rest) = line.split_at(LDIF_LINE_WIDTH);
        out.extend_from_slice(head);
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rest.len().min(LDIF_LINE_WIDTH - 1));
            out.extend_from_slice(b"\n ");
            out.extend_from_slice(chunk);
            rest = tail;
        }
    }
    out.push(b'\n');
}

pub(super) fn push_ldif_entry(out: &mut Vec<u8>, p: &Person, base_dn: &str) {
    // Usernames are [a-z0-9] only, so the RDN value needs no DN escaping.
    let dn = format!("uid={},{}", p.username, base_dn);
    let cn = format!("{} {}", p.first, p.surname);
    let mail = format!("{}@example.org", p.username);
    let phone = p.phone_string();
    push_ldif_attr(out, "dn", &dn);
    for class in ["top", "person", "organizationalPerson", "inetOrgPerson"] {
        push_ldif_attr(out, "objectClass", class);
    }
    push_ldif_attr(out, "uid", &p.username);
    push_ldif_attr(out, "cn", &cn);
    push_ldif_attr(out, "givenName", p.first);
    push_ldif_attr(out, "sn", p.surname);
    push_ldif_attr(out, "mail", &mail);
    push_ldif_attr(out, "title", p.title);
    push_ldif_attr(out, "departmentNumber", p.department());
    push_ldif_attr(out, "l", p.site_name());
    push_ldif_attr(out, "employeeType", p.user_type());
    push_ldif_attr(out, "telephoneNumber", &phone);
}
