//! `dirsync-genroster`: a deterministic generator of large, realistic HR rosters.
//!
//! Used to load-test and soak-test dirsync: it writes an HR-style CSV export (or the
//! equivalent LDIF for seeding a directory with `ldapadd`) of N people, and can also
//! write "the next night's export" of the same population with a controlled amount of
//! churn (new starters, changes, leavers).
//!
//! Design notes:
//! * Standard library only, so it builds as a bin of the main package with no extra deps.
//! * Every base row is a pure function of `(seed, index)`: each row draws from its own
//!   PRNG stream keyed by the row index, so rows never depend on their neighbours, on
//!   `--rows`, or on output format. Two runs with the same arguments are byte-identical.
//! * Output is streamed row by row through a `BufWriter`; memory use is constant.
//! * Phone numbers use Ofcom's ranges reserved for drama/fiction, so they can never ring
//!   anyone real.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

const USAGE: &str = "\
dirsync-genroster - generate a large, deterministic, realistic HR roster for testing dirsync

USAGE:
    dirsync-genroster --rows N [--seed S] [--out FILE] [--format csv|ldif] [--base DN]
                      [--next-night PCT] [--leaver-percent P]

OPTIONS:
    --rows N              number of people in the base roster (required, 0..=60466176;
                          underscores allowed, e.g. 1_000_000)
    --seed S              PRNG seed, decimal or 0x-prefixed hex (default 0)
    --out FILE            write to FILE instead of stdout ('-' means stdout)
    --format csv|ldif     output format (default csv)
    --base DN             base DN for LDIF entries (default ou=people,dc=example,dc=org)
    --next-night PCT      write the *next* night's export of the same population instead:
                          about PCT% (0..=100) of N churned, split roughly evenly into
                          adds (new rows N, N+1, ...), updates (title, department or phone
                          changed) and leavers (status=leaver); all other rows identical
                          to the base export made with the same --rows, --seed and
                          --leaver-percent. A summary line is printed to stderr.
    --leaver-percent P    mark P% (0..=100) of base rows as status=leaver (default 0)
    -h, --help            print this help

Every row is a pure function of (seed, row index): the same arguments always produce
byte-identical output. CSV is UTF-8 (no BOM), LF line endings, RFC 4180 quoting.
LDIF entries are inetOrgPerson; LDIF has no status attribute, so leavers are written
like everyone else. Exit status: 0 ok, 1 I/O error, 2 bad arguments.
";

const CSV_HEADER: &str = "username,firstname,surname,email,title,department,site,user_type,\
phone,groups,status,change password next time\n";

const DEFAULT_BASE_DN: &str = "ou=people,dc=example,dc=org";

/// Usernames end in a fixed-width 5-character base-36 code for the row index, so at
/// most 36^5 distinct rows (base plus next-night adds) can be generated.
const USERNAME_SPACE: u64 = 36 * 36 * 36 * 36 * 36;
const SUFFIX_LEN: usize = 5;
const MAX_USERNAME_LEN: usize = 20;

// ---------------------------------------------------------------------------------------
// Embedded data. Names are roughly ordered most-common-first; picks are skewed towards
// the front of each list (see `pick_skewed`). Note the deliberately awkward entries:
// non-ASCII, apostrophes, hyphens, spaces, a nickname in quotes and titles with commas.
// ---------------------------------------------------------------------------------------

#[rustfmt::skip]
static FIRST_NAMES: &[&str] = &[
    "James", "Sarah", "David", "Emma", "John", "Olivia", "Michael", "Sophie", "Robert", "Emily",
    "William", "Jessica", "Richard", "Charlotte", "Thomas", "Lucy", "Daniel", "Hannah", "Paul",
    "Laura", "Mark", "Rebecca", "Andrew", "Rachel", "Christopher", "Claire", "Matthew", "Helen",
    "Peter", "Karen", "Steven", "Susan", "Simon", "Elizabeth", "Stephen", "Catherine", "Jonathan",
    "Victoria", "Anthony", "Grace", "Joseph", "Chloe", "Benjamin", "Amelia", "Samuel", "Isla",
    "Oliver", "Ava", "Harry", "Mary", "Jack", "Ruby", "George", "Ella", "Charlie", "Mia", "Jacob",
    "Freya", "Alfie", "Poppy", "Noah", "Evie", "Oscar", "Lily", "Leo", "Isabella", "Henry",
    "Florence", "Freddie", "Alice", "Archie", "Harriet", "Ethan", "Megan", "Lucas", "Bethany",
    "Mohammed", "Natalie", "Muhammad", "Amy", "Ali", "Jennifer", "Omar", "Nicola", "Ahmed",
    "Michelle", "Hassan", "Joanne", "Ravi", "Kelly", "Arjun", "Gemma", "Rohan", "Leanne", "Sanjay",
    "Priya", "Vikram", "Aisha", "Raj", "Fatima", "Wei", "Ayesha", "Chen", "Zainab", "Hiroshi",
    "Sana", "Kenji", "Anjali", "Minh", "Deepa", "Tuan", "Sunita", "Kwame", "Mei", "Kofi", "Ling",
    "Chinedu", "Yuki", "Oluwaseun", "Sakura", "Tomasz", "Linh", "Piotr", "Ngozi", "Łukasz", "Amara",
    "Paweł", "Chiamaka", "Jakub", "Adaeze", "Krzysztof", "Agnieszka", "José", "Katarzyna", "Luis",
    "Małgorzata", "Carlos", "Magdalena", "Javier", "Zofia", "Miguel", "María", "Alejandro", "Lucía",
    "Pablo", "Sofía", "Diego", "Ana", "João", "Carmen", "Luca", "Inés", "Marco", "Giulia",
    "Giovanni", "Francesca", "Matteo", "Chiara", "François", "Zoë", "Jean-Luc", "Chloé", "Pierre",
    "Anne-Marie", "Étienne", "Marie-Claire", "Hans", "Renée", "Jürgen", "Hélène", "Björn",
    "Françoise", "Søren", "Sinéad", "Lars", "Siobhán", "Erik", "Aoife", "Seán", "Niamh", "Ciarán",
    "Saoirse", "Eoin", "Ingrid", "Dmitri", "Astrid", "Sergei", "Åsa", "Andrzej", "Sigríður",
    "Mehmet", "Olga", "Emre", "Natalia", "Çağan", "Ayşe", "D'Arcy", "Elif", "Mary-Jane", "Zeynep",
    "Nadia", "Zoe", "Elizabeth \"Liz\"", "Robert \"Bob\"",
];

#[rustfmt::skip]
static SURNAMES: &[&str] = &[
    "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas",
    "Johnson", "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards", "Hughes",
    "Green", "Hall", "Lewis", "Harris", "Clarke", "Patel", "Jackson", "Wood", "Turner", "Martin",
    "Cooper", "Hill", "Ward", "Morris", "Moore", "Clark", "Lee", "King", "Baker", "Harrison",
    "Morgan", "Allen", "James", "Scott", "Phillips", "Watson", "Davis", "Parker", "Price",
    "Bennett", "Young", "Griffiths", "Mitchell", "Kelly", "Cook", "Carter", "Richardson", "Bailey",
    "Collins", "Bell", "Shaw", "Murphy", "Miller", "Cox", "Richards", "Khan", "Marshall",
    "Anderson", "Simpson", "Ellis", "Adams", "Singh", "Begum", "Wilkinson", "Foster", "Chapman",
    "Powell", "Webb", "Rogers", "Gray", "Mason", "Ali", "Hunt", "Hussain", "Campbell", "Matthews",
    "Owen", "Palmer", "Holmes", "Mills", "Barnes", "Knight", "Lloyd", "Butler", "Russell", "Barker",
    "Fisher", "Stevens", "Jenkins", "Murray", "Dixon", "Harvey", "Graham", "Pearson", "Ahmed",
    "Fletcher", "Walsh", "Kaur", "Gibson", "Howard", "Andrews", "Stewart", "Elliott", "Reynolds",
    "Saunders", "Payne", "Fox", "Ford", "Pearce", "Day", "Brooks", "West", "Lawrence", "Cole",
    "Atkinson", "Bradley", "Spencer", "Gill", "Dawson", "Ball", "Burton", "O'Brien", "Watts",
    "Rose", "Booth", "Perry", "Ryan", "Grant", "Wells", "Armstrong", "Francis", "Rees", "Hayes",
    "Hart", "Hudson", "Newman", "Barrett", "Webster", "Hunter", "Gregory", "Carr", "Lowe", "Page",
    "Marsh", "Riley", "Dunn", "Woods", "Parsons", "Berry", "Stone", "Reid", "Holland", "Hawkins",
    "Harding", "Porter", "Robertson", "Newton", "Oliver", "Reed", "Kennedy", "Williamson", "Bird",
    "Gardner", "Shah", "Dean", "Lane", "Cooke", "Bates", "Henderson", "Parry", "Burgess", "Bishop",
    "Walton", "Burns", "Nicholson", "Shepherd", "Ross", "Cross", "Long", "Freeman", "Warren",
    "Nicholls", "Hamilton", "Byrne", "Sutton", "McDonald", "Yates", "Hodgson", "Robson", "Curtis",
    "Hopkins", "O'Connor", "Harper", "Coleman", "Watkins", "Moss", "McCarthy", "Chambers",
    "O'Neill", "Griffin", "Sharp", "Hardy", "Wheeler", "Potter", "Osborne", "Johnston", "Gordon",
    "Doyle", "Wallace", "George", "Jordan", "Hutchinson", "Rahman", "Chowdhury", "Sharma", "Gupta",
    "Kumar", "Mistry", "Iqbal", "Akhtar", "Malik", "Nguyễn", "Trần", "Lê", "Phạm", "Wang", "Zhang",
    "Liu", "Chen", "Li", "Huang", "Tanaka", "Suzuki", "Satō", "Kim", "Park", "Okafor", "Adeyemi",
    "Mensah", "Owusu", "Okonkwo", "Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk",
    "Lewandowski", "Zieliński", "Żak", "Dvořák", "Novák", "Müller", "Schmidt", "Schröder", "Weiß",
    "Jäger", "Fischer", "Becker", "Hoffmann", "García", "Rodríguez", "González", "Fernández",
    "López", "Martínez", "Pérez", "Sánchez", "Núñez", "Gómez", "Rossi", "Russo", "Ferrari",
    "Esposito", "Bianchi", "Romano", "Dubois", "Lefèvre", "Moreau", "Girard", "Bernard", "Fontaine",
    "Jensen", "Nielsen", "Østergaard", "Andersson", "Johansson", "Åberg", "Lindström", "Björk",
    "Ólafsson", "Jónsdóttir", "Yılmaz", "Kaya", "Demir", "Çelik", "Şahin", "Öztürk", "Đorđević",
    "Popović", "Petrović", "Ivanov", "Smirnov", "Petrova", "Kovács", "Nagy", "Szabó", "Horváth",
    "O'Sullivan", "Ó Súilleabháin", "D'Angelo", "N'Diaye", "van der Berg", "de la Cruz", "Da Silva",
    "dos Santos", "McKenzie", "MacLeod", "Fitzgerald", "Smith-Jones", "Lloyd-Webber", "Bowes-Lyon",
    "Hughes-Davies", "Rees-Mogg", "Montgomery-Smythe", "Featherstonehaugh",
    "Wolfeschlegelsteinhausen",
];

/// A department, its relative headcount weight and the titles people in it hold.
struct Department {
    name: &'static str,
    weight: u32,
    titles: &'static [&'static str],
}

static DEPARTMENTS: &[Department] = &[
    Department {
        name: "Finance",
        weight: 8,
        titles: &[
            "Accountant",
            "Senior Accountant",
            "Payroll Administrator",
            "Director, Finance",
        ],
    },
    Department {
        name: "Engineering",
        weight: 20,
        titles: &[
            "Software Engineer",
            "Senior Software Engineer",
            "Principal Engineer",
            "Engineering Manager",
            "Vice President, Engineering",
        ],
    },
    Department {
        name: "Sales",
        weight: 14,
        titles: &[
            "Sales Executive",
            "Account Manager",
            "Business Development Manager",
            "Head of Sales, EMEA",
        ],
    },
    Department {
        name: "HR",
        weight: 4,
        titles: &["HR Advisor", "HR Business Partner", "Recruiter"],
    },
    Department {
        name: "Legal",
        weight: 3,
        titles: &["Solicitor", "Paralegal", "General Counsel"],
    },
    Department {
        name: "Operations",
        weight: 10,
        titles: &["Operations Manager", "Project Manager", "Programme Manager"],
    },
    Department {
        name: "Marketing",
        weight: 7,
        titles: &["Marketing Executive", "Content Designer", "Brand Manager"],
    },
    Department {
        name: "Support",
        weight: 12,
        titles: &["Support Analyst", "Customer Success Manager", "Team Leader"],
    },
    Department {
        name: "IT",
        weight: 8,
        titles: &["Service Desk Technician", "Systems Administrator", "Network Engineer"],
    },
    Department {
        name: "Research",
        weight: 6,
        titles: &["Research Scientist", "Data Scientist", "Data Analyst"],
    },
    Department {
        name: "Facilities",
        weight: 3,
        titles: &["Facilities Coordinator", "Office Manager"],
    },
    Department {
        name: "Procurement",
        weight: 5,
        titles: &["Procurement Officer", "Category Manager"],
    },
];

/// A site, its relative headcount weight and its phone prefix. Every prefix is followed
/// by three digits and lies in an Ofcom range reserved for drama (020 7946 0xxx,
/// 0113/0117/0161 496 0xxx, 07700 900xxx), so no generated number is real.
struct Site {
    name: &'static str,
    weight: u32,
    phone_prefix: &'static str,
}

static SITES: &[Site] = &[
    Site {
        name: "HQ",
        weight: 35,
        phone_prefix: "+44 20 7946 0",
    },
    Site {
        name: "London",
        weight: 20,
        phone_prefix: "+44 20 7946 0",
    },
    Site {
        name: "Leeds",
        weight: 10,
        phone_prefix: "+44 113 496 0",
    },
    Site {
        name: "Manchester",
        weight: 12,
        phone_prefix: "+44 161 496 0",
    },
    Site {
        name: "Bristol",
        weight: 8,
        phone_prefix: "+44 117 496 0",
    },
    Site {
        name: "Remote",
        weight: 15,
        phone_prefix: "+44 7700 900",
    },
];

/// Group names; a person's groups are a bitmask over this list (always written in this order).
static GROUPS: &[&str] = &["staff", "vpn", "finance-share", "eng-wiki", "sales-crm", "hr-portal"];

/// Relative weights for holding 0, 1, 2 or 3 groups.
static GROUP_COUNT_WEIGHTS: &[u32] = &[15, 35, 30, 20];

// ---------------------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------------------

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The splitmix64 finaliser: a bijective 64-bit mixer.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Independent random streams, so that e.g. the leaver roll can be computed without
/// generating the whole person, and churn never perturbs a row's base content.
#[derive(Clone, Copy)]
enum Stream {
    Person = 1,
    Leaver = 2,
    Churn = 3,
    Update = 4,
    Username = 5,
}

/// splitmix64: tiny, fast, and plenty good for test data.
struct Rng(u64);

impl Rng {
    /// The stream for `(seed, stream, index)`. `mix64` is a bijection, so distinct indices
    /// get distinct starting states for a given seed and stream.
    fn new(seed: u64, stream: Stream, index: u64) -> Rng {
        let key = mix64(seed ^ (stream as u64).wrapping_mul(GOLDEN_GAMMA));
        Rng(mix64(key ^ index))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN_GAMMA);
        mix64(self.0)
    }

    /// Uniform in `0..n` (multiply-high; the bias for small n is negligible). `n` must be > 0.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn below_usize(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// True with probability `pct`/100. Exact for 0 and 100.
    fn percent(&mut self, pct: f64) -> bool {
        // 53 random bits -> [0, 1); IEEE arithmetic keeps this identical on every platform.
        let unit = (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        unit * 100.0 < pct
    }

    /// Index into a list, skewed towards the front (density falls linearly from 2x the
    /// mean at the head to ~0 at the tail), so early "common" names dominate.
    fn pick_skewed(&mut self, len: usize) -> usize {
        self.below_usize(len).min(self.below_usize(len))
    }

    fn pick_weighted<T>(&mut self, items: &[T], weight: impl Fn(&T) -> u32) -> usize {
        let total: u64 = items.iter().map(|i| u64::from(weight(i))).sum();
        let mut roll = self.below(total);
        for (i, item) in items.iter().enumerate() {
            let w = u64::from(weight(item));
            if roll < w {
                return i;
            }
            roll -= w;
        }
        items.len() - 1
    }

    /// A value in `0..n` different from `current` (n >= 2).
    fn other_than(&mut self, current: usize, n: usize) -> usize {
        (current + 1 + self.below_usize(n - 1)) % n
    }
}

// ---------------------------------------------------------------------------------------
// People
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
struct Person {
    username: String,
    first: &'static str,
    surname: &'static str,
    title: &'static str,
    dept: usize,
    site: usize,
    privileged: bool,
    /// Last three digits of the phone number; the rest comes from the site.
    phone: u16,
    /// Bitmask over `GROUPS`.
    groups: u8,
    leaver: bool,
    change_password: bool,
}

impl Person {
    fn department(&self) -> &'static str {
        DEPARTMENTS[self.dept].name
    }

    fn site_name(&self) -> &'static str {
        SITES[self.site].name
    }

    fn user_type(&self) -> &'static str {
        if self.privileged {
            "Privileged"
        } else {
            "Standard"
        }
    }

    fn push_phone(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(SITES[self.site].phone_prefix.as_bytes());
        push_digits3(out, self.phone);
    }

    fn phone_string(&self) -> String {
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
struct Generator {
    seed: u64,
    leaver_percent: f64,
    /// Username suffixes are `(mul * index + add) mod 36^5`: an affine bijection (mul is
    /// coprime to 36^5 = 2^10 * 3^10), so suffixes look random yet never collide.
    perm_mul: u64,
    perm_add: u64,
    first_initials: Vec<u8>,
    surname_stems: Vec<String>,
}

impl Generator {
    fn new(seed: u64, leaver_percent: f64) -> Generator {
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
    fn person(&self, index: u64) -> Person {
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
    fn is_base_leaver(&self, index: u64) -> bool {
        self.leaver_percent > 0.0 && Rng::new(self.seed, Stream::Leaver, index).percent(self.leaver_percent)
    }

    /// First initial + up to 14 chars of surname + 5 base-36 chars encoding the index.
    /// The fixed-width suffix alone identifies the row, so usernames are unique for all
    /// indices below 36^5 however the stems collide.
    fn username(&self, index: u64, first: usize, surname: usize) -> String {
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
    fn apply_update(&self, person: &mut Person, index: u64) {
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
fn ascii_fold(name: &str) -> String {
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
fn fold_char(c: char) -> Option<&'static str> {
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

// ---------------------------------------------------------------------------------------
// Next-night churn
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    None,
    Update,
    Leaver,
}

/// How many of each change the next night gets, fixed before any output is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ChurnPlan {
    adds: u64,
    updates: u64,
    leavers: u64,
    /// Base rows eligible for updates/leaving (i.e. not already leavers).
    eligible: u64,
}

impl ChurnPlan {
    fn new(gen: &Generator, rows: u64, pct: f64) -> ChurnPlan {
        let target = (rows as f64 * pct / 100.0).round() as u64;
        let eligible = if gen.leaver_percent > 0.0 {
            (0..rows).filter(|&i| !gen.is_base_leaver(i)).count() as u64
        } else {
            rows
        };
        let updates = (target / 3).min(eligible);
        let leavers = (target / 3).min(eligible - updates);
        ChurnPlan {
            adds: target - 2 * (target / 3),
            updates,
            leavers,
            eligible,
        }
    }
}

/// Streams the churn selection in index order using Knuth's selection sampling
/// (Algorithm S): each eligible row is picked with probability needed/remaining, which
/// yields exactly the planned counts, uniformly spread, in one pass and O(1) memory.
struct ChurnSelector {
    rng: Rng,
    pool_left: u64,
    updates_left: u64,
    leavers_left: u64,
}

impl ChurnSelector {
    fn new(seed: u64, plan: &ChurnPlan) -> ChurnSelector {
        ChurnSelector {
            rng: Rng::new(seed, Stream::Churn, 0),
            pool_left: plan.eligible,
            updates_left: plan.updates,
            leavers_left: plan.leavers,
        }
    }

    /// Must be called for every base row in index order.
    fn next(&mut self, eligible: bool) -> Change {
        if !eligible || self.pool_left == 0 {
            return Change::None;
        }
        let needed = self.updates_left + self.leavers_left;
        let pool = self.pool_left;
        self.pool_left -= 1;
        if needed == 0 || self.rng.below(pool) >= needed {
            return Change::None;
        }
        if self.rng.below(needed) < self.updates_left {
            self.updates_left -= 1;
            Change::Update
        } else {
            self.leavers_left -= 1;
            Change::Leaver
        }
    }
}

// ---------------------------------------------------------------------------------------
// Output formats
// ---------------------------------------------------------------------------------------

/// Appends one CSV field, quoted per RFC 4180 only when it has to be.
fn push_csv_field(out: &mut Vec<u8>, value: &str) {
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

fn push_csv_row(out: &mut Vec<u8>, p: &Person) {
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
fn push_base64(out: &mut Vec<u8>, data: &[u8]) {
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
const LDIF_LINE_WIDTH: usize = 76;

/// Appends `name: value` (or `name:: base64`) and a newline, folding long lines.
fn push_ldif_attr(out: &mut Vec<u8>, name: &str, value: &str) {
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

fn push_ldif_entry(out: &mut Vec<u8>, p: &Person, base_dn: &str) {
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

// ---------------------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Csv,
    Ldif,
}

#[derive(Clone, Debug, PartialEq)]
struct Config {
    rows: u64,
    seed: u64,
    out: Option<String>,
    format: Format,
    base_dn: String,
    next_night: Option<f64>,
    leaver_percent: f64,
}

#[cfg(test)]
impl Config {
    fn new(rows: u64) -> Config {
        Config {
            rows,
            seed: 0,
            out: None,
            format: Format::Csv,
            base_dn: DEFAULT_BASE_DN.to_string(),
            next_night: None,
            leaver_percent: 0.0,
        }
    }
}

#[derive(Debug, PartialEq)]
enum Command {
    Help,
    Run(Config),
}

/// Everything decided before the first byte is written, so argument-dependent failures
/// (exit 2) happen before the output file is created.
struct Plan {
    gen: Generator,
    churn: Option<ChurnPlan>,
}

impl Plan {
    fn new(cfg: &Config) -> Result<Plan, String> {
        let gen = Generator::new(cfg.seed, cfg.leaver_percent);
        let churn = cfg.next_night.map(|pct| ChurnPlan::new(&gen, cfg.rows, pct));
        let total = cfg.rows + churn.map_or(0, |c| c.adds);
        if total > USERNAME_SPACE {
            return Err(format!(
                "{total} rows requested in total, but at most {USERNAME_SPACE} can be generated \
                 (usernames carry a 5-character base-36 row code)"
            ));
        }
        Ok(Plan { gen, churn })
    }
}

/// Writes the roster; returns the churn plan actually applied (if `--next-night`).
fn write_roster<W: Write>(cfg: &Config, plan: &Plan, out: &mut W) -> io::Result<Option<ChurnPlan>> {
    let mut buf = Vec::with_capacity(1024);
    let emit = |buf: &mut Vec<u8>, p: &Person| match cfg.format {
        Format::Csv => push_csv_row(buf, p),
        Format::Ldif => {
            buf.push(b'\n');
            push_ldif_entry(buf, p, &cfg.base_dn);
        }
    };
    match cfg.format {
        Format::Csv => out.write_all(CSV_HEADER.as_bytes())?,
        Format::Ldif => out.write_all(b"version: 1\n")?,
    }
    let mut selector = plan.churn.as_ref().map(|c| ChurnSelector::new(cfg.seed, c));
    for index in 0..cfg.rows {
        let mut person = plan.gen.person(index);
        if let Some(sel) = selector.as_mut() {
            match sel.next(!person.leaver) {
                Change::None => {}
                Change::Update => plan.gen.apply_update(&mut person, index),
                Change::Leaver => person.leaver = true,
            }
        }
        buf.clear();
        emit(&mut buf, &person);
        out.write_all(&buf)?;
    }
    if let Some(churn) = plan.churn {
        // New starters: the people the base roster would have had at these indices.
        for index in cfg.rows..cfg.rows + churn.adds {
            let mut person = plan.gen.person(index);
            person.leaver = false;
            buf.clear();
            emit(&mut buf, &person);
            out.write_all(&buf)?;
        }
    }
    out.flush()?;
    Ok(plan.churn)
}

fn parse_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<Command, String> {
    let mut rows = None;
    let mut seed = None;
    let mut out = None;
    let mut format = None;
    let mut base_dn = None;
    let mut next_night = None;
    let mut leaver_percent = None;

    let mut args = args.into_iter();
    while let Some(raw) = args.next() {
        let arg = raw
            .into_string()
            .map_err(|a| format!("argument is not valid UTF-8: {}", a.to_string_lossy()))?;
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_string(), Some(value.to_string())),
            _ => (arg, None),
        };
        if !matches!(
            flag.as_str(),
            "--rows" | "--seed" | "--out" | "--format" | "--base" | "--next-night" | "--leaver-percent"
        ) {
            return Err(if flag.starts_with('-') {
                format!("unknown option '{flag}'")
            } else {
                format!("unexpected argument '{flag}'")
            });
        }
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .ok_or_else(|| format!("{flag} needs a value"))?
                .into_string()
                .map_err(|_| format!("the value of {flag} is not valid UTF-8"))?,
        };
        match flag.as_str() {
            "--rows" => {
                let n = parse_u64(&value).ok_or_else(|| format!("--rows: '{value}' is not a whole number"))?;
                if n > USERNAME_SPACE {
                    return Err(format!("--rows: at most {USERNAME_SPACE} rows are supported"));
                }
                set_once(&mut rows, n, &flag)?;
            }
            "--seed" => {
                let s = parse_seed(&value)
                    .ok_or_else(|| format!("--seed: '{value}' is not a 64-bit unsigned number (decimal or 0x-hex)"))?;
                set_once(&mut seed, s, &flag)?;
            }
            "--out" => {
                if value.is_empty() {
                    return Err("--out: the file name is empty".to_string());
                }
                set_once(&mut out, value, &flag)?;
            }
            "--format" => {
                let f = match value.to_ascii_lowercase().as_str() {
                    "csv" => Format::Csv,
                    "ldif" => Format::Ldif,
                    _ => return Err(format!("--format: '{value}' is not one of csv, ldif")),
                };
                set_once(&mut format, f, &flag)?;
            }
            "--base" => {
                if !value.contains('=') || value.contains(['\r', '\n']) {
                    return Err(format!(
                        "--base: '{value}' does not look like a DN (e.g. {DEFAULT_BASE_DN})"
                    ));
                }
                set_once(&mut base_dn, value, &flag)?;
            }
            "--next-night" => set_once(&mut next_night, parse_percent(&value, &flag)?, &flag)?,
            _ => set_once(&mut leaver_percent, parse_percent(&value, &flag)?, &flag)?,
        }
    }

    let rows = rows.ok_or("--rows is required")?;
    Ok(Command::Run(Config {
        rows,
        seed: seed.unwrap_or(0),
        out: out.filter(|o| o != "-"),
        format: format.unwrap_or(Format::Csv),
        base_dn: base_dn.unwrap_or_else(|| DEFAULT_BASE_DN.to_string()),
        next_night,
        leaver_percent: leaver_percent.unwrap_or(0.0),
    }))
}

fn set_once<T>(slot: &mut Option<T>, value: T, flag: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("{flag} given more than once"));
    }
    *slot = Some(value);
    Ok(())
}

fn parse_u64(s: &str) -> Option<u64> {
    let digits: String = s.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn parse_seed(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() => u64::from_str_radix(&hex.replace('_', ""), 16).ok(),
        Some(_) => None,
        None => parse_u64(s),
    }
}

fn parse_percent(s: &str, flag: &str) -> Result<f64, String> {
    let trimmed = s.strip_suffix('%').unwrap_or(s);
    match trimmed.parse::<f64>() {
        Ok(p) if p.is_finite() && (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{flag}: '{s}' is not a percentage between 0 and 100")),
    }
}

fn run(cfg: &Config) -> ExitCode {
    let plan = match Plan::new(cfg) {
        Ok(plan) => plan,
        Err(msg) => {
            eprintln!("dirsync-genroster: {msg}");
            return ExitCode::from(2);
        }
    };
    let result = match &cfg.out {
        Some(path) => match File::create(path) {
            Ok(file) => write_roster(cfg, &plan, &mut BufWriter::with_capacity(1 << 16, file)),
            Err(e) => {
                eprintln!("dirsync-genroster: cannot create {path}: {e}");
                return ExitCode::from(1);
            }
        },
        None => write_roster(cfg, &plan, &mut BufWriter::with_capacity(1 << 16, io::stdout().lock())),
    };
    match result {
        Ok(Some(churn)) => {
            eprintln!(
                "dirsync-genroster: next night for {} base rows (seed {}): {} adds, {} updates, {} leavers; {} rows written",
                cfg.rows,
                cfg.seed,
                churn.adds,
                churn.updates,
                churn.leavers,
                cfg.rows + churn.adds
            );
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        // The reader went away (e.g. `| head`): not worth a complaint.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dirsync-genroster: write failed: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    match parse_args(std::env::args_os().skip(1)) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Command::Run(cfg)) => run(&cfg),
        Err(msg) => {
            eprintln!("dirsync-genroster: {msg}\nRun 'dirsync-genroster --help' for usage.");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
#[path = "genroster/tests.rs"]
mod tests;
