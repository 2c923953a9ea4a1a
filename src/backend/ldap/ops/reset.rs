//! A password set on an existing entry (`Change::Reset`): the row's other
//! differences as an update, then the password the way this flavour sets
//! one — Password Modify or `{SSHA512}` on OpenLDAP / 389 DS, `unicodePwd`
//! on Active Directory — and "must change" when asked. Without a password
//! (an activation link was sent instead) only the update is made.

use super::{
    m, ssha512, unicode_pwd, Builder, Diff, Dn, Flavour, ModKind, Modification, OpSteps, PasswordMethod, Step,
};

impl Builder<'_> {
    pub(super) fn reset(&self, d: &Diff) -> Result<OpSteps, String> {
        let mut out = self.update(d, false)?;
        let Some(pw) = self.op.password else {
            return Ok(out);
        };
        // Where the entry is once the update has run (it may move).
        let cur = self.current_dn()?;
        let want = self.target_dn()?;
        let dn = if want.normalised() != Dn::parse(&cur)?.normalised() {
            want.to_string_escaped()
        } else {
            cur
        };
        match (self.map.flavour, self.map.password) {
            (Flavour::Ad, _) => out.steps.push(Step::Modify {
                dn: dn.clone(),
                mods: vec![Modification {
                    kind: ModKind::Replace,
                    attr: "unicodePwd".into(),
                    values: vec![unicode_pwd(pw.expose())],
                }],
            }),
            (_, PasswordMethod::Passmod) => out.steps.push(Step::SetPassword {
                dn: dn.clone(),
                password: pw.clone(),
            }),
            (_, PasswordMethod::Ssha512) => out.steps.push(Step::Modify {
                dn: dn.clone(),
                mods: vec![Modification {
                    kind: ModKind::Replace,
                    attr: "userPassword".into(),
                    values: vec![ssha512(pw.expose(), &self.salt).into_bytes()],
                }],
            }),
        }
        if self.op.must_change {
            let (attr, value) = self.must_change_value();
            out.steps.push(Step::Modify {
                dn,
                mods: vec![m(ModKind::Replace, attr, &[value])],
            });
        }
        Ok(out)
    }
}
