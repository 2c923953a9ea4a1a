//! The sync rules as data: which columns a file may have, what they mean,
//! what is required, what the sync may do, and its safety limits.
//!
//! A policy file is TOML; `config` reads it and hands the sections
//! (`sections`) to [`Policy::compile`] (`compile`), which checks them and
//! builds the header lookup (`aliases`) the roster parser and the planner use.

mod aliases;
mod compile;
mod generators;
mod lifecycle;
mod sections;
mod template;

use std::collections::{BTreeMap, HashMap};

pub use aliases::{normalise_header, BUILTIN_ATTRIBUTES, SPECIAL_FIELDS};
pub use lifecycle::{Lifecycle, LifecycleSection};
pub use sections::{
    AbsentAction, Deliver, Duplicates, Encoding, Existing, FieldRule, Generate, GroupRules, LayoutSection, Limit,
    Limits, OnLimit, PasswordRules, RosterRules, SyncRules, UpdateRule, DEFAULT_DATE_FORMAT,
};
pub use template::{Part, Template};

/// The sync rules of one policy, checked.
#[derive(Clone, Debug)]
pub struct Policy {
    pub name: String,
    pub roster: RosterRules,
    pub sync: SyncRules,
    pub passwords: PasswordRules,
    pub limits: Limits,
    pub groups: GroupRules,
    /// `[lifecycle]`: how start and end dates are read.
    pub lifecycle: Lifecycle,
    /// The attributes holding the start and end dates, when the policy
    /// declares them under `[fields]` (else they are [`Column::StartDate`]
    /// and [`Column::EndDate`]).
    date_attrs: [Option<usize>; 2],
    /// Attribute fields in template order; `Person::attrs` is indexed by this.
    pub attributes: Vec<String>,
    rules: HashMap<String, FieldRule>,
    /// Per attribute (same index as `attributes`): its rule, for the hot path.
    attr_rules: Vec<FieldRule>,
    aliases: HashMap<String, Column>,
    /// `[[layouts]]`: alternative headers; empty means any header the
    /// aliases above can read.
    layouts: Vec<Layout>,
    /// `roster.date_format`, parsed.
    date_format: time::format_description::OwnedFormatItem,
    /// Generated fields (`[fields.X] generate`), the key first, then
    /// attributes in order: a template may use a field generated before it.
    generators: Vec<Generator>,
}

/// One generated field.
#[derive(Clone, Debug)]
pub struct Generator {
    pub field: String,
    /// `Column::Key` or `Column::Attribute(i)`.
    pub column: Column,
    pub template: Template,
}

/// One `[[layouts]]` entry, compiled.
#[derive(Clone, Debug)]
pub struct Layout {
    pub name: String,
    /// Normalised header → column, from the layout's own aliases.
    aliases: HashMap<String, Column>,
    /// The fields the layout names: for these its aliases replace the general ones.
    fields: Vec<Column>,
    /// Per required field: its column and how the layout names it.
    required: Vec<(Column, String)>,
    /// Field → the layout's first header name for it.
    names: HashMap<String, String>,
}

impl Layout {
    fn new(
        name: String,
        aliases: HashMap<String, Column>,
        fields: Vec<Column>,
        required: Vec<(Column, String)>,
        names: HashMap<String, String>,
    ) -> Layout {
        Layout {
            name,
            aliases,
            fields,
            required,
            names,
        }
    }

    /// What `header` means in this layout: its own aliases first; a field
    /// the layout names is never matched through the general aliases.
    fn column(&self, header: &str, policy: &Policy) -> Column {
        if let Some(c) = self.aliases.get(&normalise_header(header)) {
            return *c;
        }
        match policy.column(header) {
            c if self.fields.contains(&c) => Column::Unknown,
            c => c,
        }
    }

    /// How the layout names the required fields `header` lacks.
    pub fn lacks(&self, header: &[String], policy: &Policy) -> Vec<String> {
        let present: Vec<Column> = header.iter().map(|h| self.column(h, policy)).collect();
        self.required
            .iter()
            .filter(|(c, _)| !present.contains(c))
            .map(|(_, name)| name.clone())
            .collect()
    }
}

/// What a header cell means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    Key,
    Attribute(usize),
    Groups,
    Status,
    MustChange,
    Password,
    /// `start_date`: the first day (`[lifecycle]`).
    StartDate,
    /// `end_date`: the last day (`[lifecycle]`).
    EndDate,
    /// The flag that sends an existing account a new password or link
    /// (`[passwords] existing`).
    Invite,
    /// Recognised and deliberately not used.
    Ignored,
    Unknown,
}

impl Policy {
    /// A policy with every default, for tests and `template`.
    pub fn defaults(name: &str) -> Policy {
        match Policy::compile(
            name,
            RosterRules::default(),
            BTreeMap::new(),
            SyncRules::default(),
            PasswordRules::default(),
            Limits::default(),
            GroupRules::default(),
        ) {
            Ok(p) => p,
            Err(e) => unreachable!("the built-in defaults are valid: {e:?}"),
        }
    }

    /// The policy's `[[layouts]]` (empty: one layout, read through the aliases).
    pub fn layouts(&self) -> &[Layout] {
        &self.layouts
    }

    /// What a header cell means in layout `layout` (an index into
    /// [`Policy::layouts`]), or through the general aliases.
    pub fn column_in(&self, layout: Option<usize>, header: &str) -> Column {
        match layout.and_then(|i| self.layouts.get(i)) {
            Some(l) => l.column(header, self),
            None => self.column(header),
        }
    }

    /// True when some layout, or the general aliases, map `header` to the
    /// password: such a cell is never echoed.
    pub fn is_password_header(&self, header: &str) -> bool {
        self.column(header) == Column::Password
            || self.layouts.iter().any(|l| l.column(header, self) == Column::Password)
    }

    /// The generated fields, in the order they are generated.
    pub fn generators(&self) -> &[Generator] {
        &self.generators
    }

    /// Whether a row may leave this column empty because it is generated.
    pub fn generates(&self, column: Column) -> bool {
        self.generators.iter().any(|g| g.column == column)
    }

    /// Which lifecycle date attribute `i` holds: 0 the start, 1 the end.
    pub fn date_attr(&self, i: usize) -> Option<usize> {
        self.date_attrs.iter().position(|a| *a == Some(i))
    }

    /// `roster.date_format`, parsed.
    pub fn date_format(&self) -> &time::format_description::OwnedFormatItem {
        &self.date_format
    }

    /// What a header cell means.
    pub fn column(&self, header: &str) -> Column {
        self.aliases
            .get(&normalise_header(header))
            .copied()
            .unwrap_or(Column::Unknown)
    }

    /// The rule of a field (special or attribute) by canonical name.
    pub fn rule(&self, field: &str) -> &FieldRule {
        static EMPTY: FieldRule = FieldRule {
            aliases: Vec::new(),
            required: None,
            max_len: None,
            allowed: None,
            default: None,
            clear_when_empty: false,
            example: None,
            strip_invisible: false,
            generate: None,
            update: UpdateRule::Always,
        };
        self.rules.get(field).unwrap_or(&EMPTY)
    }

    /// The rule of attribute `i` (an index into `attributes`).
    pub fn attr_rule(&self, i: usize) -> &FieldRule {
        self.attr_rules.get(i).unwrap_or_else(|| self.rule(""))
    }

    pub fn required(&self, field: &str) -> bool {
        self.rule(field).required.unwrap_or(false)
    }

    pub fn attribute_index(&self, name: &str) -> Option<usize> {
        self.attributes.iter().position(|a| a == name)
    }

    pub fn is_protected(&self, key: &crate::core::types::UserKey) -> bool {
        self.sync.protected.iter().any(|p| p.to_lowercase() == key.folded())
    }

    pub fn is_managed_group(&self, g: &str) -> bool {
        self.groups.managed.iter().any(|m| m.eq_ignore_ascii_case(g))
    }

    /// The canonical spelling of a managed group.
    pub fn managed_group(&self, g: &str) -> Option<&str> {
        self.groups
            .managed
            .iter()
            .find(|m| m.eq_ignore_ascii_case(g))
            .map(String::as_str)
    }

    /// Header names for `dirsync template`, in order, and one example row.
    pub fn template(&self) -> (Vec<String>, Vec<String>) {
        let mut headers = vec!["username".to_string()];
        headers.extend(self.attributes.iter().cloned());
        headers.extend(["groups", "status", "change password next time"].map(String::from));
        let example = |f: &str| -> String {
            if let Some(e) = &self.rule(f).example {
                return e.clone();
            }
            match f {
                "username" => "jsmith".into(),
                "firstname" => "Jane".into(),
                "surname" => "Smith".into(),
                "email" => "jane.smith@example.org".into(),
                "title" => "Accountant".into(),
                "department" => "Finance".into(),
                "site" => "HQ".into(),
                "user_type" => "Standard".into(),
                "phone" => "+44 20 7946 0000".into(),
                "groups" => self.groups.managed.first().cloned().unwrap_or_default(),
                "status" => String::new(),
                "change password next time" => "1".into(),
                other => self
                    .rule(other)
                    .allowed
                    .as_ref()
                    .and_then(|a| a.first().cloned())
                    .or_else(|| self.rule(other).default.clone())
                    .unwrap_or_default(),
            }
        };
        let row = headers.iter().map(|h| example(h)).collect();
        // A policy with layouts: the first layout's names, so the template is read back.
        let headers = match self.layouts.first() {
            Some(l) => headers
                .into_iter()
                .map(|h| {
                    let field = if h == "change password next time" {
                        "must_change"
                    } else {
                        h.as_str()
                    };
                    l.names.get(field).cloned().unwrap_or(h)
                })
                .collect(),
            None => headers,
        };
        (headers, row)
    }
}
