//! The server's schema (subschema subentry), for the dry run: do the object
//! classes and attributes exist, are the MUST attributes there, do values
//! fit the syntaxes that can be checked here. Parsing is pure.

use std::collections::HashMap;

/// One object class.
#[derive(Clone, Debug, Default)]
pub struct ObjectClass {
    pub names: Vec<String>,
    pub sup: Vec<String>,
    pub must: Vec<String>,
    pub may: Vec<String>,
}

/// One attribute type.
#[derive(Clone, Debug, Default)]
pub struct AttributeType {
    pub names: Vec<String>,
    pub sup: Option<String>,
    pub syntax: Option<String>,
    pub operational: bool,
}

/// The parts of the schema dirsync checks against.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    classes: HashMap<String, ObjectClass>,
    attrs: HashMap<String, AttributeType>,
}

const IA5: &str = "1.3.6.1.4.1.1466.115.121.1.26";
const PRINTABLE: &str = "1.3.6.1.4.1.1466.115.121.1.44";
const TELEPHONE: &str = "1.3.6.1.4.1.1466.115.121.1.50";
const INTEGER: &str = "1.3.6.1.4.1.1466.115.121.1.27";
const BOOLEAN: &str = "1.3.6.1.4.1.1466.115.121.1.7";

fn tokens(def: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = def.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            '(' | ')' | '$' => {
                out.push(c.to_string());
                chars.next();
            }
            '\'' => {
                chars.next();
                let mut s = String::new();
                for ch in chars.by_ref() {
                    if ch == '\'' {
                        break;
                    }
                    s.push(ch);
                }
                out.push(s);
            }
            c if c.is_whitespace() => {
                chars.next();
            }
            _ => {
                let mut s = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_whitespace() || ch == '(' || ch == ')' || ch == '$' || ch == '\'' {
                        break;
                    }
                    s.push(ch);
                    chars.next();
                }
                out.push(s);
            }
        }
    }
    out
}

/// The values after a keyword: one token, or a parenthesised `$` list.
fn list(t: &[String], i: &mut usize) -> Vec<String> {
    let mut v = Vec::new();
    if t.get(*i).map(String::as_str) == Some("(") {
        *i += 1;
        while let Some(x) = t.get(*i) {
            *i += 1;
            match x.as_str() {
                ")" => break,
                "$" => {}
                _ => v.push(x.clone()),
            }
        }
    } else if let Some(x) = t.get(*i) {
        v.push(x.clone());
        *i += 1;
    }
    v
}

pub fn parse_object_class(def: &str) -> ObjectClass {
    let t = tokens(def);
    let mut oc = ObjectClass::default();
    let mut i = 0;
    while i < t.len() {
        let k = t[i].to_ascii_uppercase();
        i += 1;
        match k.as_str() {
            "NAME" => oc.names = list(&t, &mut i),
            "SUP" => oc.sup = list(&t, &mut i),
            "MUST" => oc.must = list(&t, &mut i),
            "MAY" => oc.may = list(&t, &mut i),
            "DESC" => i += 1,
            _ => {}
        }
    }
    oc
}

pub fn parse_attribute_type(def: &str) -> AttributeType {
    let t = tokens(def);
    let mut at = AttributeType::default();
    let mut i = 0;
    while i < t.len() {
        let k = t[i].to_ascii_uppercase();
        i += 1;
        match k.as_str() {
            "NAME" => at.names = list(&t, &mut i),
            "SUP" => at.sup = list(&t, &mut i).into_iter().next(),
            "SYNTAX" => {
                at.syntax = t.get(i).map(|s| s.split('{').next().unwrap_or(s).to_string());
                i += 1;
            }
            "USAGE" => {
                at.operational = t.get(i).is_some_and(|u| !u.eq_ignore_ascii_case("userApplications"));
                i += 1;
            }
            "DESC" | "EQUALITY" | "ORDERING" | "SUBSTR" | "X-ORDERED" => i += 1,
            _ => {}
        }
    }
    at
}

impl Schema {
    pub fn new(object_classes: &[String], attribute_types: &[String]) -> Schema {
        let mut s = Schema::default();
        for d in object_classes {
            let oc = parse_object_class(d);
            for n in &oc.names {
                s.classes.insert(n.to_lowercase(), oc.clone());
            }
        }
        for d in attribute_types {
            let at = parse_attribute_type(d);
            for n in &at.names {
                s.attrs.insert(n.to_lowercase(), at.clone());
            }
        }
        s
    }

    pub fn has_attribute(&self, a: &str) -> bool {
        let base = a.split(';').next().unwrap_or(a);
        self.attrs.contains_key(&base.to_lowercase())
    }

    /// MUST and MAY of the classes with their superclasses, lower-cased;
    /// Err names the unknown classes.
    pub fn allowed(&self, classes: &[String]) -> Result<(Vec<String>, Vec<String>), String> {
        let mut must = Vec::new();
        let mut may = Vec::new();
        let mut todo: Vec<String> = classes.iter().map(|c| c.to_lowercase()).collect();
        let mut seen = Vec::new();
        let mut unknown = Vec::new();
        while let Some(c) = todo.pop() {
            if seen.contains(&c) {
                continue;
            }
            seen.push(c.clone());
            match self.classes.get(&c) {
                None => unknown.push(c),
                Some(oc) => {
                    must.extend(oc.must.iter().map(|x| x.to_lowercase()));
                    may.extend(oc.may.iter().map(|x| x.to_lowercase()));
                    todo.extend(oc.sup.iter().map(|x| x.to_lowercase()));
                }
            }
        }
        if !unknown.is_empty() {
            return Err(format!(
                "object class {} is not in the server schema",
                unknown.join(", ")
            ));
        }
        Ok((must, may))
    }

    /// All names of an attribute (lower-cased), to match aliases like cn/commonName.
    fn names(&self, a: &str) -> Vec<String> {
        match self.attrs.get(&a.to_lowercase()) {
            Some(at) => at.names.iter().map(|n| n.to_lowercase()).collect(),
            None => vec![a.to_lowercase()],
        }
    }

    fn syntax(&self, a: &str) -> Option<String> {
        let mut cur = self.attrs.get(&a.to_lowercase())?;
        for _ in 0..10 {
            if let Some(s) = &cur.syntax {
                return Some(s.clone());
            }
            cur = self.attrs.get(&cur.sup.as_ref()?.to_lowercase())?;
        }
        None
    }

    fn operational(&self, a: &str) -> bool {
        self.attrs.get(&a.to_lowercase()).is_some_and(|at| at.operational)
    }

    /// Problems with one attribute of an entry of these classes.
    pub fn check_attribute(&self, attr: &str, values: &[Vec<u8>], allowed: &[String]) -> Option<String> {
        if !self.has_attribute(attr) {
            return Some(format!("attribute {attr} is not in the server schema"));
        }
        let names = self.names(attr);
        let extensible = allowed.iter().any(|a| a == "*extensible*");
        if !self.operational(attr)
            && !attr.eq_ignore_ascii_case("objectClass")
            && !extensible
            && !names.iter().any(|n| allowed.contains(n))
        {
            return Some(format!("attribute {attr} is not allowed by the entry's object classes"));
        }
        let syntax = self.syntax(attr)?;
        for v in values {
            let Ok(s) = std::str::from_utf8(v) else { continue };
            let bad = match syntax.as_str() {
                IA5 => !s.is_ascii(),
                PRINTABLE => !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c)),
                TELEPHONE => s.is_empty() || !s.chars().all(|c| c.is_ascii() && !c.is_ascii_control()),
                INTEGER => s.parse::<i64>().is_err(),
                BOOLEAN => s != "TRUE" && s != "FALSE",
                _ => false,
            };
            if bad {
                return Some(format!("value {s:?} of {attr} does not fit its syntax ({syntax})"));
            }
        }
        None
    }

    /// Check an add: classes exist, MUST present, every attribute allowed.
    /// Not `strict` (Active Directory): AD fills system MUST attributes itself
    /// and allows attributes through auxiliary classes its subschema entry
    /// does not list, so only existence and syntax are checked.
    pub fn check_add(&self, attrs: &[(String, Vec<Vec<u8>>)], strict: bool) -> Vec<String> {
        let classes: Vec<String> = attrs
            .iter()
            .filter(|(a, _)| a.eq_ignore_ascii_case("objectClass"))
            .flat_map(|(_, v)| v.iter().map(|x| String::from_utf8_lossy(x).into_owned()))
            .collect();
        let (must, mut may) = match self.allowed(&classes) {
            Ok(x) => x,
            Err(e) => return vec![e],
        };
        if !strict || classes.iter().any(|c| c.eq_ignore_ascii_case("extensibleObject")) {
            may.push("*extensible*".into());
        }
        let mut allowed = must.clone();
        allowed.extend(may);
        let mut problems = Vec::new();
        for m in must.iter().filter(|_| strict) {
            let present = attrs.iter().any(|(a, _)| self.names(a).contains(m));
            if !present && m != "objectclass" {
                problems.push(format!(
                    "required attribute {m} is missing (add it to ldap.fields or ldap.templates)"
                ));
            }
        }
        for (a, v) in attrs {
            if let Some(p) = self.check_attribute(a, v, &allowed) {
                problems.push(p);
            }
        }
        problems
    }

    /// Whether removing `attr` would drop a MUST attribute of these classes.
    pub fn is_required(&self, attr: &str, classes: &[String]) -> bool {
        let Ok((must, _)) = self.allowed(classes) else {
            return false;
        };
        self.names(attr).iter().any(|n| must.contains(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::new(
            &[
                "( 2.5.6.0 NAME 'top' ABSTRACT MUST objectClass )".into(),
                "( 2.5.6.6 NAME 'person' DESC 'RFC2256: a person' SUP top STRUCTURAL MUST ( sn $ cn ) MAY ( userPassword $ telephoneNumber ) )".into(),
                "( 2.16.840.1.113730.3.2.2 NAME 'inetOrgPerson' SUP person STRUCTURAL MAY ( mail $ uid $ givenName ) )".into(),
            ],
            &[
                "( 2.5.4.0 NAME 'objectClass' SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 )".into(),
                "( 2.5.4.41 NAME 'name' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{32768} )".into(),
                "( 2.5.4.3 NAME ( 'cn' 'commonName' ) SUP name )".into(),
                "( 2.5.4.4 NAME ( 'sn' 'surname' ) SUP name )".into(),
                "( 2.5.4.42 NAME ( 'givenName' 'gn' ) SUP name )".into(),
                "( 0.9.2342.19200300.100.1.1 NAME ( 'uid' 'userid' ) SUP name )".into(),
                "( 0.9.2342.19200300.100.1.3 NAME ( 'mail' 'rfc822Mailbox' ) SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{256} )".into(),
                "( 2.5.4.20 NAME 'telephoneNumber' SYNTAX 1.3.6.1.4.1.1466.115.121.1.50{32} )".into(),
                "( 1.3.6.1.4.1.42.2.27.8.1.22 NAME 'pwdReset' SYNTAX 1.3.6.1.4.1.1466.115.121.1.7 SINGLE-VALUE USAGE directoryOperation )".into(),
            ],
        )
    }

    fn v(s: &str) -> Vec<Vec<u8>> {
        vec![s.as_bytes().to_vec()]
    }

    #[test]
    fn a_complete_entry_passes() {
        let attrs = vec![
            ("objectClass".to_string(), v("inetOrgPerson")),
            ("uid".to_string(), v("jsmith")),
            ("commonName".to_string(), v("Jane Smith")),
            ("sn".to_string(), v("Smith")),
            ("mail".to_string(), v("j@example.org")),
            ("pwdReset".to_string(), v("TRUE")),
        ];
        assert_eq!(schema().check_add(&attrs, true), Vec::<String>::new());
    }

    #[test]
    fn missing_must_unknown_attribute_and_bad_syntax_are_found() {
        let attrs = vec![
            ("objectClass".to_string(), v("inetOrgPerson")),
            ("cn".to_string(), v("Jane Smith")),
            ("officeLocation".to_string(), v("HQ")),
            ("mail".to_string(), v("zoë@example.org")),
        ];
        let p = schema().check_add(&attrs, true).join("\n");
        assert!(p.contains("required attribute sn is missing"), "{p}");
        assert!(p.contains("officeLocation is not in the server schema"), "{p}");
        assert!(p.contains("of mail does not fit its syntax"), "{p}");
        let p = schema()
            .check_add(&[("objectClass".to_string(), v("nosuchClass"))], true)
            .join("\n");
        assert!(
            p.contains("object class nosuchclass is not in the server schema"),
            "{p}"
        );
        assert!(schema().is_required("surname", &["inetOrgPerson".into()]));
        // Lenient (AD): no MUST or allowed-by-class check, but existence and syntax still.
        let p = schema().check_add(&attrs, false).join("\n");
        assert!(!p.contains("required attribute"), "{p}");
        assert!(p.contains("officeLocation is not in the server schema"), "{p}");
        assert!(p.contains("of mail does not fit its syntax"), "{p}");
        assert!(!schema().is_required("mail", &["inetOrgPerson".into()]));
    }
}
