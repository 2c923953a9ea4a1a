//! Embedded data: names, departments and their titles, sites and their phone prefixes,
//! groups. Names are roughly ordered most-common-first; picks are skewed towards the front
//! of each list (see `Rng::pick_skewed`). Note the deliberately awkward entries: non-ASCII,
//! apostrophes, hyphens, spaces, a nickname in quotes and titles with commas.

#[rustfmt::skip]
pub(super) static FIRST_NAMES: &[&str] = &[
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
pub(super) static SURNAMES: &[&str] = &[
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
pub(super) struct Department {
    pub(super) name: &'static str,
    pub(super) weight: u32,
    pub(super) titles: &'static [&'static str],
}

pub(super) static DEPARTMENTS: &[Department] = &[
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
pub(super) struct Site {
    pub(super) name: &'static str,
    pub(super) weight: u32,
    pub(super) phone_prefix: &'static str,
}

pub(super) static SITES: &[Site] = &[
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
pub(super) static GROUPS: &[&str] = &["staff", "vpn", "finance-share", "eng-wiki", "sales-crm", "hr-portal"];

/// Relative weights for holding 0, 1, 2 or 3 groups.
pub(super) static GROUP_COUNT_WEIGHTS: &[u32] = &[15, 35, 30, 20];
