//! People: a row index turned into a person, usernames folded to ASCII, next night's updates.

use super::data::{DEPARTMENTS, FIRST_NAMES, GROUP_COUNT_WEIGHTS, SITES, SURNAMES};
use super::rng::{Rng, Stream};
use super::{MAX_USERNAME_LEN, SUFFIX_LEN, USERNAME_SPACE};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Person {
    pub(super) username: String,
    pub(super) first: &'static str,
    pub(super) surname: &'static str,
    pub(super) title: &'static str,
    pub(super) dept: usize,
    pub(super) site: usize,
    pub(super) privileged: bool,
    /// Last three digits of the phone number; the rest comes from the site.
    pub(super) phone: u16,
    /// Bitmask over `GROUPS`.
    pub(super) groups: u8,
    pub(super) leaver: bool,
    pub(super) change_password: bool,
}

impl Person {
    pub(super) fn department(&self) -> &'static str {
        DEPARTMENTS[self.dept].name
    }

    pub(super) fn site_name(&self) -> &'static str {
        SITES[self.site].name
    }

    pub(super) fn user_type(&self) -> &'static str {
        if self.privileged {
            "Privileged"
        } else {
            "Standard"
        }
    }

    pub(super) fn push_phone(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(SITES[self.site].phone_prefix.as_bytes());
        push_digits3(out, self.phone);
    }

    pub(super) fn phone_string(&self) -> String {
        let mut buf = Vec::with_capacity(20);
        self.push_phone(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

fn push_digits3(out: &mut Vec<u8>, n: u16) {
    out.push(b'0' + (n / 100 % 10) as u8);
    out.push(b'0' + (n / 10 % 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

/// Turns row indices into people. Holds the precomputed, ASCII-folded username stems.
pub(super) struct Generator {
    seed: u64,
    pub(super) leaver_percent: f64,
    /// Username suffixes are `(mul * index + add) mod 36^5`: an affine bijection (mul is
    /// coprime to 36^5 = 2^10 * 3^10), so suffixes look random yet never collide.
    pub(super) perm_mul: u64,
    perm_add: u64,
    first_initials: Vec<u8>,
    surname_stems: Vec<String>,
}

impl Generator {
    pub(super) fn new(seed: u64, leaver_percent: f64) -> Generator {
        let mut rng = Rng::new(seed, Stream::Username, 0);
        // 6k + 1 is odd and not a multiple of 3, hence coprime to 36^5.
        let perm_mul = 6 * rng.below(USERNAME_SPACE / 6) + 1;
        let perm_add = rng.below(USERNAME_SPACE);
        let stem_len = MAX_USERNAME_LEN - SUFFIX_LEN - 1;
        Generator {
            seed,
            leaver_percent,
            perm_mul,
            perm_add,
            first_initials: FIRST_NAMES
                .iter()
                .map(|n| ascii_fold(n).bytes().next().unwrap_or(b'x'))
                .collect(),
            surname_stems: SURNAMES
                .iter()
                .map(|n| {
                    let mut s = ascii_fold(n);
                    s.truncate(stem_len);
                    s
                })
                .collect(),
        }
    }

    /// The base person for row `index` (a pure function of seed and index).
    pub(super) fn person(&self, index: u64) -> Person {
        let mut rng = Rng::new(self.seed, Stream::Person, index);
        let first = rng.pick_skewed(FIRST_NAMES.len());
        let surname = rng.pick_skewed(SURNAMES.len());
        let dept = rng.pick_weighted(DEPARTMENTS, |d| d.weight);
        let titles = DEPARTMENTS[dept].titles;
        let title = titles[rng.below_usize(titles.len())];
        let site = rng.pick_weighted(SITES, |s| s.weight);
        let privileged = rng.percent(5.0);
        let phone = rng.below(1000) as u16;
        let groups = pick_groups(&mut rng);
        let change_password = rng.below(3) == 0;
        Person {
            username: self.username(index, first, surname),
            first: FIRST_NAMES[first],
            surname: SURNAMES[surname],
            title,
            dept,
            site,
            privileged,
            phone,
            groups,
            leaver: self.is_base_leaver(index),
            change_password,
        }
    }

    /// Whether row `index` is a leaver in the base export (own stream, so it is cheap).
    pub(super) fn is_base_leaver(&self, index: u64) -> bool {
        self.leaver_percent > 0.0 && Rng::new(self.seed, Stream::Leaver, index).percent(self.leaver_percent)
    }

    /// First initial + up to 14 chars of surname + 5 base-36 chars encoding the index.
    /// The fixed-width suffix alone identifies the row, so usernames are unique for all
    /// indices below 36^5 however the stems collide.
    pub(super) fn username(&self, index: u64, first: usize, surname: usize) -> String {
        const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut code = (self.perm_mul * (index % USERNAME_SPACE) + self.perm_add) % USERNAME_SPACE;
        let mut suffix = [0u8; SUFFIX_LEN];
        for slot in suffix.iter_mut().rev() {
            *slot = DIGITS[(code % 36) as usize];
            code /= 36;
        }
        let mut name = String::with_capacity(MAX_USERNAME_LEN);
        name.push(char::from(self.first_initials[first]));
        name.push_str(&self.surname_stems[surname]);
        name.extend(suffix.iter().map(|&b| char::from(b)));
        name
    }

    /// Next night's change to an existing row: a new title, department or phone number.
    pub(super) fn apply_update(&self, person: &mut Person, index: u64) {
        let mut rng = Rng::new(self.seed, Stream::Update, index);
        match rng.below(3) {
            0 => {
                let titles = DEPARTMENTS[person.dept].titles;
                let current = titles.iter().position(|t| *t == person.title).unwrap_or(0);
                person.title = titles[rng.other_than(current, titles.len())];
            }
            // A transfer: the title is kept, as HR systems often do until it is reviewed.
            1 => person.dept = rng.other_than(person.dept, DEPARTMENTS.len()),
            _ => person.phone = rng.other_than(usize::from(person.phone), 1000) as u16,
        }
    }
}

fn pick_groups(rng: &mut Rng) -> u8 {
    let count = rng.pick_weighted(GROUP_COUNT_WEIGHTS, |w| *w);
    // Partial Fisher-Yates over the group indices.
    let mut order = [0usize, 1, 2, 3, 4, 5];
    let mut mask = 0u8;
    for i in 0..count {
        let j = i + rng.below_usize(order.len() - i);
        order.swap(i, j);
        mask |= 1 << order[i];
    }
    mask
}

/// Lowercase ASCII letters only: diacritics folded (é -> e, ß -> ss, Ł -> l),
/// apostrophes, hyphens and spaces dropped.
pub(super) fn ascii_fold(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() {
            out.push(c);
        } else if let Some(folded) = fold_char(c) {
            out.push_str(folded);
        }
    }
    out
}

/// ASCII transliteration of a lowercase non-ASCII letter; `None` for anything else.
pub(super) fn fold_char(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' | 'ạ' | 'ả' | 'ấ' | 'ầ' | 'ẩ' | 'ẫ' | 'ậ' | 'ắ' | 'ằ'
        | 'ẳ' | 'ẵ' | 'ặ' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' | 'ẹ' | 'ẻ' | 'ẽ' | 'ế' | 'ề' | 'ể' | 'ễ' | 'ệ' => {
            "e"
        }
        'ğ' => "g",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'ı' | 'ĩ' | 'ỉ' | 'ị' => "i",
        'ł' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' | 'ơ' | 'ọ' | 'ỏ' | 'ố' | 'ồ' | 'ổ' | 'ỗ' | 'ộ' | 'ớ' | 'ờ'
        | 'ở' | 'ỡ' | 'ợ' => "o",
        'œ' => "oe",
        'ř' => "r",
        'ś' | 'š' | 'ş' | 'ș' => "s",
        'ß' => "ss",
        'ť' | 'ţ' | 'ț' => "t",
        'þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ũ' | 'ư' | 'ụ' | 'ủ' | 'ứ' | 'ừ' | 'ử' | 'ữ' | 'ự' => {
            "u"
        }
        'ý' | 'ÿ' | 'ỳ' | 'ỵ' | 'ỷ' | 'ỹ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}
