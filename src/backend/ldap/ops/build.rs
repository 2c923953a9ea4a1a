//! The steps of one op: a new entry, an update (attributes, a move, the
//! account's lock), a leaver, a rejoin, a delete, and the memberships each
//! adds or removes.

use super::*;

impl Builder<'_> {
    /// A field's value for templates: the row's, else (unless the row clears
    /// it) what the target holds.
    pub(in crate::backend::ldap) fn value(&self, field: &str) -> Option<String> {
        if field == "username" {
            return Some(self.op.key.as_str().to_string());
        }
        let i = self.map.attributes.iter().position(|a| a == field)?;
        if let Some(v) = self.op.person.and_then(|p| p.attrs.get(i)) {
            return Some(v.to_string());
        }
        let cleared = self
            .diff()
            .is_some_and(|d| d.attrs.iter().any(|c| c.attr == i && c.new.is_none()));
        if cleared {
            return None;
        }
        self.op.account.and_then(|a| a.attrs.get(i)).map(str::to_string)
    }

    pub(super) fn diff(&self) -> Option<&Diff> {
        match self.op.change {
            Change::Update(d) | Change::Rejoin(d) | Change::Adopt(d) | Change::Reset(d) => Some(d),
            _ => None,
        }
    }

    pub(super) fn target_dn(&self) -> Result<Dn, String> {
        self.map.dn.render(&|f| self.value(f))
    }

    pub(in crate::backend::ldap) fn current_dn(&self) -> Result<String, String> {
        self.op
            .account
            .and_then(|a| a.locator.as_deref().map(str::to_string))
            .ok_or_else(|| "the account's DN is unknown (not in the snapshot)".to_string())
    }

    pub(super) fn key(&self) -> &str {
        self.op.key.as_str()
    }

    pub fn build(&self) -> Result<OpSteps, String> {
        if self.map.flavour == Flavour::Ad && self.map.key_attr.eq_ignore_ascii_case("sAMAccountName") {
            if let Change::Add = self.op.change {
                check_sam_account_name(self.key())?;
            }
        }
        match self.op.change {
            Change::Add => self.add(),
            Change::Update(d) => self.update(d, false),
            Change::Rejoin(d) => self.update(d, true),
            Change::Reset(d) => self.reset(d),
            Change::Leave => self.leave(),
            Change::Delete => self.delete(),
            // `config check` refuses sync.adopt on LDAP targets; never planned here.
            Change::Adopt(d) => self.adopt(d),
            Change::Unchanged | Change::Absent | Change::Reject(_) | Change::Scheduled => Ok(OpSteps::default()),
        }
    }

    pub(super) fn add(&self) -> Result<OpSteps, String> {
        let person = self.op.person.ok_or("an add without its row")?;
        let dn = self.target_dn()?;
        let dn_s = dn.to_string_escaped();
        let mut attrs: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
        let mut put = |attr: &str, v: Vec<u8>| {
            if let Some((_, vals)) = attrs.iter_mut().find(|(a, _)| a.eq_ignore_ascii_case(attr)) {
                if !vals.contains(&v) {
                    vals.push(v);
                }
            } else {
                attrs.push((attr.to_string(), vec![v]));
            }
        };
        for oc in &self.map.object_classes {
            put("objectClass", oc.as_bytes().to_vec());
        }
        put(&self.map.key_attr, self.key().as_bytes().to_vec());
        for (i, attr) in self.map.fields.iter().filter(|(i, _)| !self.map.never.contains(i)) {
            if let Some(v) = person.attrs.get(*i) {
                put(attr, v.as_bytes().to_vec());
            }
        }
        for (attr, t, _) in &self.map.templates {
            let v = t.render(&|f| self.value(f));
            if !v.is_empty() {
                put(attr, v.into_bytes());
            }
        }
        // The naming value must be in the entry.
        if let Some(ava) = dn.0.first().and_then(|r| r.first()) {
            put(&ava.attr, ava.value.as_bytes().to_vec());
        }
        let mut steps = Vec::new();
        match self.map.flavour {
            Flavour::Openldap | Flavour::Ds389 => {
                if let (Some(pw), PasswordMethod::Ssha512) = (self.op.password, self.map.password) {
                    put("userPassword", ssha512(pw.expose(), &self.salt).into_bytes());
                }
                let passmod = self.map.password == PasswordMethod::Passmod;
                if self.op.must_change && self.op.password.is_some() && !passmod {
                    let (attr, value) = self.must_change_value();
                    put(attr, value.as_bytes().to_vec());
                }
                steps.push(Step::Add {
                    dn: dn_s.clone(),
                    attrs,
                });
                if let (Some(pw), PasswordMethod::Passmod) = (self.op.password, self.map.password) {
                    steps.push(Step::SetPassword {
                        dn: dn_s.clone(),
                        password: pw.clone(),
                    });
                    // ppolicy clears pwdReset on an administrative reset
                    // (without pwdMustChange), and 389 DS sets its own
                    // expiration time, so the flag is set afterwards.
                    if self.op.must_change {
                        let (attr, value) = self.must_change_value();
                        steps.push(Step::Modify {
                            dn: dn_s.clone(),
                            mods: vec![m(ModKind::Replace, attr, &[value])],
                        });
                    }
                }
            }
            Flavour::Ad => {
                // Windows refuses to enable an account without a password
                // (Samba allows it): never create one that cannot be enabled.
                let pending = self.op.password.is_none() && self.map.activation;
                if self.op.password.is_none() && !pending {
                    return Err(
                        "Active Directory cannot enable an account without a password: give the row \
                                a password or set [passwords] generate = \"new\""
                            .into(),
                    );
                }
                // Created disabled with its password in the same add (so a
                // password the domain's policy refuses writes nothing), then
                // enabled: Windows refuses to enable an account first.
                if let Some(pw) = self.op.password {
                    put("unicodePwd", unicode_pwd(pw.expose()));
                }
                put(
                    "userAccountControl",
                    (UAC_NORMAL_ACCOUNT | UAC_ACCOUNTDISABLE).to_string().into_bytes(),
                );
                steps.push(Step::Add {
                    dn: dn_s.clone(),
                    attrs,
                });
                if !pending {
                    let mut mods = Vec::new();
                    if self.op.must_change {
                        mods.push(m(ModKind::Replace, "pwdLastSet", &["0"]));
                    }
                    mods.push(m(
                        ModKind::Replace,
                        "userAccountControl",
                        &[&UAC_NORMAL_ACCOUNT.to_string()],
                    ));
                    steps.push(Step::Modify { dn: dn_s.clone(), mods });
                }
            }
        }
        let mut group_add = Vec::new();
        for g in person.groups.iter().flatten() {
            group_add.push(self.map.membership(g, &dn_s, self.key())?);
        }
        Ok(OpSteps {
            group_remove: Vec::new(),
            steps,
            group_remove_after: Vec::new(),
            group_add,
        })
    }

    /// Update, or rejoin (unlock, move back, restore groups).
    pub(in crate::backend::ldap) fn update(&self, diff: &Diff, rejoin: bool) -> Result<OpSteps, String> {
        let cur = self.current_dn()?;
        let cur_dn = Dn::parse(&cur)?;
        let want = self.target_dn()?;
        let mut steps = Vec::new();
        let moved = want.normalised() != cur_dn.normalised();
        let final_dn = if moved {
            let (new_rdn, new_parent) = want.split_first();
            let (_, old_parent) = cur_dn.split_first();
            let new_dn = want.to_string_escaped();
            steps.push(Step::Rename {
                dn: cur.clone(),
                new_rdn,
                new_superior: (new_parent.normalised() != old_parent.normalised())
                    .then(|| new_parent.to_string_escaped()),
                new_dn: new_dn.clone(),
            });
            new_dn
        } else {
            cur.clone()
        };
        let mut mods = Vec::new();
        for c in &diff.attrs {
            for (i, attr) in &self.map.fields {
                if *i == c.attr {
                    match &c.new {
                        Some(v) => mods.push(m(ModKind::Replace, attr, &[v])),
                        None => mods.push(m(ModKind::Replace, attr, &[])),
                    }
                }
            }
        }
        for (attr, t, uses) in &self.map.templates {
            if diff.attrs.iter().any(|c| uses.contains(&c.attr)) {
                let v = t.render(&|f| self.value(f));
                mods.push(if v.is_empty() {
                    m(ModKind::Replace, attr, &[])
                } else {
                    m(ModKind::Replace, attr, &[v.as_str()])
                });
            }
        }
        if rejoin {
            mods.extend(self.unlock_mods());
        }
        if !mods.is_empty() {
            steps.push(Step::Modify {
                dn: final_dn.clone(),
                mods,
            });
        }
        let mut group_remove = Vec::new();
        let mut group_remove_after = Vec::new();
        let mut group_add = Vec::new();
        for g in &diff.groups_remove {
            group_remove.push(self.map.membership(g, &cur, self.key())?);
        }
        // Memberships that stay follow the entry to its new DN (Active
        // Directory's `member` is a linked attribute: the server moves it).
        if moved && self.map.group_kind.by_dn() && !self.map.flavour.moves_memberships() {
            let account_groups = self.op.account.map(|a| a.groups.as_slice()).unwrap_or(&[]);
            for g in account_groups {
                if !diff.groups_remove.iter().any(|r| r.eq_ignore_ascii_case(g)) {
                    group_remove_after.push(self.map.membership(g, &cur, self.key())?);
                    group_add.push(self.map.membership(g, &final_dn, self.key())?);
                }
            }
        }
        for g in &diff.groups_add {
            group_add.push(self.map.membership(g, &final_dn, self.key())?);
        }
        Ok(OpSteps {
            group_remove,
            steps,
            group_remove_after,
            group_add,
        })
    }

    /// The attribute and value that say "change the password at next login".
    pub(super) fn must_change_value(&self) -> (&'static str, &'static str) {
        match self.map.flavour {
            Flavour::Openldap => ("pwdReset", "TRUE"),
            Flavour::Ad => ("pwdLastSet", "0"),
            // What 389 DS itself writes on an administrative reset when
            // passwordMustChange is on; binds then may only change the password.
            Flavour::Ds389 => ("passwordExpirationTime", "19700101000000Z"),
        }
    }

    pub(super) fn unlock_mods(&self) -> Vec<Modification> {
        let mut mods = Vec::new();
        match &self.map.lock {
            Lock::Uac => {
                let uac = self.uac.unwrap_or(UAC_NORMAL_ACCOUNT | UAC_ACCOUNTDISABLE) & !UAC_ACCOUNTDISABLE;
                mods.push(m(ModKind::Replace, "userAccountControl", &[&uac.to_string()]));
            }
            Lock::PwdLockedTime => {
                // Replace with nothing: removes the lock, and is no error when there is none.
                mods.push(m(ModKind::Replace, "pwdAccountLockedTime", &[]));
            }
            Lock::Attribute(attr, _) => {
                // Restore the row's value when the attribute is mapped, else remove it.
                let mapped = self
                    .map
                    .fields
                    .iter()
                    .find(|(_, a)| a.eq_ignore_ascii_case(attr))
                    .and_then(|(i, _)| self.op.person.and_then(|p| p.attrs.get(*i)));
                match mapped {
                    Some(v) => mods.push(m(ModKind::Replace, attr, &[v])),
                    None => mods.push(m(ModKind::Replace, attr, &[])),
                }
            }
        }
        if self.op.must_change {
            let (attr, value) = self.must_change_value();
            mods.push(m(ModKind::Replace, attr, &[value]));
        }
        // A mapped attribute restored above must not be replaced twice.
        let mut seen: Vec<String> = Vec::new();
        mods.retain(|x| {
            let k = x.attr.to_lowercase();
            if seen.contains(&k) {
                false
            } else {
                seen.push(k);
                true
            }
        });
        mods
    }

    pub(super) fn leave(&self) -> Result<OpSteps, String> {
        let cur = self.current_dn()?;
        let cur_dn = Dn::parse(&cur)?;
        let mut group_remove = Vec::new();
        if self.map.strip_groups {
            for g in self.op.account.map(|a| a.groups.as_slice()).unwrap_or(&[]) {
                group_remove.push(self.map.membership(g, &cur, self.key())?);
            }
        }
        let lock = match &self.map.lock {
            Lock::Uac => {
                let uac = self.uac.unwrap_or(UAC_NORMAL_ACCOUNT) | UAC_ACCOUNTDISABLE;
                m(ModKind::Replace, "userAccountControl", &[&uac.to_string()])
            }
            Lock::PwdLockedTime => m(
                ModKind::Replace,
                "pwdAccountLockedTime",
                &[&generalized_time(self.op.now)],
            ),
            Lock::Attribute(a, v) => m(ModKind::Replace, a, &[v]),
        };
        let mut steps = vec![Step::Modify {
            dn: cur.clone(),
            mods: vec![lock],
        }];
        if let Some(container) = &self.map.leavers_container {
            let (rdn, parent) = cur_dn.split_first();
            let target = Dn::parse(container)?;
            if parent.normalised() != target.normalised() {
                let new_dn = format!("{rdn},{}", target.to_string_escaped());
                steps.push(Step::Rename {
                    dn: cur.clone(),
                    new_rdn: rdn,
                    new_superior: Some(target.to_string_escaped()),
                    new_dn,
                });
            }
        }
        Ok(OpSteps {
            group_remove,
            steps,
            group_remove_after: Vec::new(),
            group_add: Vec::new(),
        })
    }

    pub(super) fn delete(&self) -> Result<OpSteps, String> {
        let cur = self.current_dn()?;
        let mut group_remove = Vec::new();
        for g in self.op.account.map(|a| a.groups.as_slice()).unwrap_or(&[]) {
            group_remove.push(self.map.membership(g, &cur, self.key())?);
        }
        Ok(OpSteps {
            group_remove,
            steps: vec![Step::Delete { dn: cur }],
            group_remove_after: Vec::new(),
            group_add: Vec::new(),
        })
    }
}
