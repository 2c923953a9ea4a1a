//! The policy file's sections as serde reads them (`[roster]`, `[fields.*]`,
//! `[sync]`, `[passwords]`, `[limits]`, `[groups]`). Their doc comments are
//! the user documentation. Checked by [`Policy::compile`](super::Policy::compile).

use serde::Deserialize;

/// How one field is read from the file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// Extra header names that mean this field (matched ignoring case, spaces, `_`, `-`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// A row without a value is rejected. Built-in required: username, firstname, surname, email.
    pub required: Option<bool>,
    /// Longest accepted value, in characters.
    pub max_len: Option<usize>,
    /// Accepted values (case-insensitive; the spelling here is what is stored).
    pub allowed: Option<Vec<String>>,
    /// Value used when the cell is empty (seed 002: user type Standard, site HQ).
    pub default: Option<String>,
    /// An empty cell removes the value in the target (default: an empty cell leaves it alone).
    #[serde(default)]
    pub clear_when_empty: bool,
    /// Example value for `dirsync template`.
    pub example: Option<String>,
    /// Remove invisible characters (zero-width space, bidirectional
    /// overrides, control characters other than TAB) from this field's
    /// values instead of rejecting the row; the results say what was removed.
    /// Not allowed for `username`: a key is never changed silently.
    #[serde(default)]
    pub strip_invisible: bool,
    /// Generate the value of a new account whose cell is empty, from a
    /// template of the row's other fields: `"{firstname}.{surname}@example.org"`,
    /// `"{firstname:1}{surname}"` (first letter). Values are transliterated to
    /// ASCII (deunicode) and lower-cased; characters other than letters,
    /// digits, `.`, `-` and `_` are removed; a counter (`jsmith2`, …) makes the
    /// value unique in the target, the file and every value the journal has
    /// handed out. Only username and attribute fields.
    pub generate: Option<String>,
    /// When the target's value follows the file: `"always"` (default);
    /// `"create-only"`: written when the account is created and never
    /// overwritten afterwards (an address the user has been given); or
    /// `"never"`: never written by dirsync, not even on create — the value
    /// is read and checked, and can be matched (`sync.adopt`) or used in
    /// a generated value, but the target's own value is the one that counts.
    /// Either way a difference is not an update.
    #[serde(default)]
    pub update: UpdateRule,
}

/// `[fields.X] update`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateRule {
    #[default]
    Always,
    CreateOnly,
    Never,
}

impl UpdateRule {
    /// Whether dirsync writes the field when it creates an account.
    pub fn on_create(self) -> bool {
        self != UpdateRule::Never
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// UTF-8, or UTF-8/UTF-16 with a byte-order mark.
    #[default]
    Auto,
    #[serde(rename = "utf-8", alias = "utf8")]
    Utf8,
    #[serde(rename = "windows-1252", alias = "cp1252", alias = "windows1252")]
    Windows1252,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Duplicates {
    /// Every row of a duplicate group is rejected (nobody guesses which is right).
    #[default]
    RejectAll,
    /// The first row wins; later ones are rejected.
    KeepFirst,
}

/// ISO 8601: what a date cell becomes unless the policy says otherwise.
pub const DEFAULT_DATE_FORMAT: &str = "[year]-[month]-[day]";

/// `[roster]`: how the file is read.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RosterRules {
    pub encoding: Encoding,
    /// Longest accepted value of any field without its own `max_len`.
    pub max_field_len: usize,
    pub duplicates: Duplicates,
    /// Values of the status column that mean "leaver" (case-insensitive).
    pub leaver_values: Vec<String>,
    /// Values of the status column that mean "active" (empty always does).
    pub active_values: Vec<String>,
    /// Rows above this count reject the whole file (seed: batch limits).
    pub max_rows: Option<usize>,
    /// The worksheet of an XLSX workbook to read (default: the first).
    pub sheet: Option<String>,
    /// How a date cell of a workbook becomes text, in the `time` crate's
    /// format description ("[day]/[month]/[year]"); default ISO 8601.
    pub date_format: String,
}

impl Default for RosterRules {
    fn default() -> Self {
        RosterRules {
            encoding: Encoding::Auto,
            max_field_len: 256,
            duplicates: Duplicates::RejectAll,
            leaver_values: vec!["leaver".into(), "left".into(), "inactive".into()],
            active_values: vec!["active".into(), "joiner".into()],
            max_rows: None,
            sheet: None,
            date_format: DEFAULT_DATE_FORMAT.into(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AbsentAction {
    /// Report absent accounts, change nothing (seed "Old").
    #[default]
    Ignore,
    /// Make them leavers.
    Leaver,
    /// Delete them.
    Delete,
}

/// `[sync]`: what a file may change.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncRules {
    pub add: bool,
    pub update: bool,
    pub absent: AbsentAction,
    /// Keys never touched, whatever the file says (case-insensitive).
    pub protected: Vec<String>,
    /// Delete leavers this many days after they left (none: never).
    pub delete_leavers_after_days: Option<u32>,
    /// Adopt existing accounts: a row whose key is not in the target but
    /// whose value of this field (`"email"`, or another attribute field)
    /// matches exactly one account outside the managed scope takes that
    /// account over instead of creating a duplicate (change `adopt`).
    pub adopt: Option<String>,
}

impl Default for SyncRules {
    fn default() -> Self {
        SyncRules {
            add: true,
            update: true,
            absent: AbsentAction::Ignore,
            protected: Vec::new(),
            delete_leavers_after_days: None,
            adopt: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Generate {
    /// New users without a password in the file get a random one.
    #[default]
    New,
    /// Never generate; new users without a password get none.
    Never,
}

/// How a new account without a password in the file gets one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Deliver {
    /// A generated password, mailed to the user (with `generate = "new"`).
    #[default]
    Mail,
    /// No usable password: the user sets one through a one-time link mailed
    /// to them (`/activate/TOKEN` on the console).
    Activation,
    /// No password, no mail.
    None,
}

/// What a row flagged by the `invite` column ("Send invite" = 1) does to
/// its existing account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Existing {
    /// Nothing: the flag is ignored.
    #[default]
    Keep,
    /// An activation link, as for a new account (its password works until
    /// the user sets a new one).
    Activation,
    /// A generated password, mailed to the user.
    Generate,
}

/// `[passwords]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordRules {
    pub generate: Generate,
    pub length: usize,
    /// Characters a generated password is drawn from.
    pub alphabet: String,
    /// "Change password next time" for new users when the file has no such column.
    pub must_change_new: bool,
    /// How a new account without a password in the file gets one.
    pub deliver: Deliver,
    /// How long an activation link works, in hours.
    pub activation_valid_hours: u32,
    /// The shortest password a user may choose on the activation page.
    pub min_length: usize,
    /// Existing accounts whose row is flagged (the `invite` column).
    pub existing: Existing,
}

impl Default for PasswordRules {
    fn default() -> Self {
        PasswordRules {
            generate: Generate::New,
            length: 16,
            alphabet: "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.!".into(),
            must_change_new: true,
            deliver: Deliver::Mail,
            activation_valid_hours: 72,
            min_length: 12,
            existing: Existing::Keep,
        }
    }
}

/// A limit for one change class: held back when over either bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub max: Option<usize>,
    /// Percentage of the managed accounts in the target.
    pub max_percent: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnLimit {
    /// Hold back only the class over its limit; the others proceed.
    #[default]
    Hold,
    /// Hold back every write of the run.
    Stop,
}

/// `[limits]`: checked on the whole plan before any write.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub on_limit: OnLimit,
    pub adds: Limit,
    pub updates: Limit,
    pub leavers: Limit,
    pub rejoins: Limit,
    pub deletes: Limit,
    pub adopts: Limit,
    /// Entries a run creates for its accounts: missing organisational units
    /// (`ldap.create_containers`) and groups (`groups.create_missing`).
    /// Over `max`, the rows needing them are skipped and nothing is created.
    pub containers: Limit,
    /// Passwords of existing accounts set (from the file, generated, or an
    /// activation link sent).
    pub password_resets: Limit,
    /// Licence capacity: the managed active accounts may not exceed this
    /// (leavers in the same file free licences first; the adds beyond are held).
    pub max_accounts: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            on_limit: OnLimit::Hold,
            adds: Limit::default(),
            updates: Limit::default(),
            leavers: Limit {
                max: None,
                max_percent: Some(10.0),
            },
            rejoins: Limit::default(),
            deletes: Limit {
                max: Some(0),
                max_percent: None,
            },
            adopts: Limit::default(),
            containers: Limit::default(),
            password_resets: Limit {
                max: None,
                max_percent: Some(10.0),
            },
            max_accounts: None,
        }
    }
}

/// `[groups]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupRules {
    /// The only groups dirsync adds people to or removes them from.
    pub managed: Vec<String>,
    /// Groups for a row whose groups cell is empty (seed 003: "Belong to" left blank).
    pub default: Vec<String>,
    /// Create a managed group that does not exist yet when a member joins
    /// it (LDAP: at its configured DN, with its first members in the same
    /// add); listed in the preview, counted by `limits.containers`. SQL
    /// targets need nothing here.
    pub create_missing: bool,
}

/// `[[layouts]]`: one header layout a file may have (an HR system's old and
/// new export, say). When a policy lists layouts, the file's header must
/// match exactly one: every required field found through the layout's own
/// `aliases`. Optional columns are also matched through `[fields]` and the
/// built-in names.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutSection {
    /// Shown in the results and in a rejection ("NHSmail 1").
    pub name: String,
    /// Field → the header names that mean it in this layout.
    #[serde(default)]
    pub aliases: std::collections::BTreeMap<String, Vec<String>>,
}
