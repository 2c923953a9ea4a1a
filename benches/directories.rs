//! Initial load into 389 DS and Samba AD DC: `dirsync apply` of N new people
//! vs `ldapadd -c` of the same entries as LDIF, each into a fresh copy of the
//! same provisioned server (tests/support/directories.rs), over the same TLS
//! (StartTLS on 389 DS, LDAPS on AD), bound as the same service account.
//!
//!   cargo bench --bench directories             # N = 2000 (389 DS), 500 (AD)
//!   DS_ROWS=5000 AD_ROWS=1000 cargo bench --bench directories
//!
//! Run by `cargo test` too (as every bench target is): then it says so and
//! measures nothing. On AD both sides set a password per account (dirsync
//! must: AD cannot enable an account without one), in the add itself.

#[path = "../tests/support/directories.rs"]
mod directories;
#[path = "../tests/support/servers.rs"]
mod servers;

use std::process::Command;
use std::time::Instant;

use directories::{unicode_pwd_base64, Ds389, SambaAd};

fn rows(n: usize, dept: &str) -> String {
    let mut s = String::from("username,firstname,surname,email,title,department\n");
    for i in 0..n {
        s.push_str(&format!("user{i:06},First{i},Last{i},u{i}@example.org,Clerk,{dept}\n"));
    }
    s
}

fn dirsync_load(dir: &std::path::Path, target: &str, ldap: &str, n: usize, dept: &str, generate: &str) -> f64 {
    std::fs::write(
        dir.join("dirsync.toml"),
        format!("{target}\n[policies]\np = \"p.toml\"\n"),
    )
    .expect("config");
    let policy = format!("target = \"dir\"\n[passwords]\ngenerate = \"{generate}\"\nmust_change_new = false\n{ldap}");
    std::fs::write(dir.join("p.toml"), policy).expect("policy");
    std::fs::write(dir.join("load.csv"), rows(n, dept)).expect("roster");
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .current_dir(dir)
        .args([
            "--config",
            "dirsync.toml",
            "apply",
            "load.csv",
            "--results",
            "load.results.csv",
        ])
        .output()
        .expect("run dirsync");
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "dirsync failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    secs
}

fn report(server: &str, n: usize, ours: f64, theirs: f64) {
    println!(
        "{server}: {n} adds — dirsync {ours:.2} s ({:.0}/s), ldapadd {theirs:.2} s ({:.0}/s): {:.2}x ldapadd's throughput",
        n as f64 / ours,
        n as f64 / theirs,
        theirs / ours
    );
}

fn ds389(n: usize) {
    let a = Ds389::start().expect("389 DS (run scripts/install-test-deps-directories)");
    let b = Ds389::start().expect("a second 389 DS");
    for s in [&a, &b] {
        s.ldapadd_ldif("dn: ou=Finance,ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: Finance\n")
            .expect("seed");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("bind.secret"), Ds389::SERVICE_PASSWORD).expect("secret");
    let target = format!(
        "[targets.dir]\nkind = \"ldap\"\nflavour = \"389ds\"\nurl = \"{}\"\nstarttls = true\nca_file = \"{}\"\n\
         bind_dn = \"{}\"\nbind_password_file = \"bind.secret\"\nbase = \"{}\"",
        a.url(),
        a.ca_file().display(),
        Ds389::SERVICE_DN,
        Ds389::PEOPLE_DN
    );
    let ldap = "[ldap]\nobject_classes = [\"top\", \"person\", \"organizationalPerson\", \"inetOrgPerson\"]\n\
                dn = \"uid={username},ou={department},ou=people,dc=example,dc=org\"\n[ldap.fields]\n\
                firstname = \"givenName\"\nsurname = \"sn\"\nemail = \"mail\"\ntitle = \"title\"\n\
                [ldap.templates]\ncn = \"{firstname} {surname}\"\n";
    let ours = dirsync_load(dir.path(), &target, ldap, n, "Finance", "never");
    let mut ldif = String::new();
    for i in 0..n {
        ldif.push_str(&format!(
            "dn: uid=user{i:06},ou=Finance,ou=people,dc=example,dc=org\nobjectClass: top\nobjectClass: person\n\
             objectClass: organizationalPerson\nobjectClass: inetOrgPerson\nuid: user{i:06}\ngivenName: First{i}\n\
             sn: Last{i}\ncn: First{i} Last{i}\nmail: u{i}@example.org\ntitle: Clerk\n\n"
        ));
    }
    // The same StartTLS as dirsync.
    let mut ldapadd = b
        .starttls_client("ldapadd", Some((Ds389::SERVICE_DN, Ds389::SERVICE_PASSWORD)))
        .expect("ldapadd");
    ldapadd.arg("-c");
    let theirs = timed_stdin(&mut ldapadd, &ldif);
    report("389 DS 2.3 (StartTLS)", n, ours, theirs);
}

fn samba(n: usize) {
    let a = SambaAd::start().expect("Samba AD DC (run scripts/install-test-deps-directories; needs root)");
    let b = SambaAd::start().expect("a second Samba AD DC");
    for s in [&a, &b] {
        s.ldapadd_ldif("dn: OU=Finance,OU=people,DC=example,DC=org\nobjectClass: organizationalUnit\n")
            .expect("seed");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("bind.secret"), SambaAd::SERVICE_PASSWORD).expect("secret");
    let target = format!(
        "[targets.dir]\nkind = \"ldap\"\nflavour = \"ad\"\nurl = \"{}\"\nca_file = \"{}\"\n\
         bind_dn = \"{}\"\nbind_password_file = \"bind.secret\"\nbase = \"{}\"",
        a.ldaps_url(),
        a.ca_file().display(),
        SambaAd::SERVICE_DN,
        SambaAd::PEOPLE_DN
    );
    let ldap = "[ldap]\nobject_classes = [\"top\", \"person\", \"organizationalPerson\", \"user\"]\n\
                dn = \"CN={username},OU={department},OU=people,DC=example,DC=org\"\n[ldap.fields]\n\
                firstname = \"givenName\"\nsurname = \"sn\"\nemail = \"mail\"\ntitle = \"title\"\n\
                [ldap.templates]\ndisplayName = \"{firstname} {surname}\"\nuserPrincipalName = \"{username}@example.org\"\n";
    let ours = dirsync_load(dir.path(), &target, ldap, n, "Finance", "new");
    // The same entries, created enabled with a password in one add each
    // (what an admin's LDIF would do; dirsync adds disabled, then enables).
    let mut ldif = String::new();
    for i in 0..n {
        ldif.push_str(&format!(
            "dn: CN=user{i:06},OU=Finance,OU=people,DC=example,DC=org\nobjectClass: top\nobjectClass: person\n\
             objectClass: organizationalPerson\nobjectClass: user\nsAMAccountName: user{i:06}\n\
             userPrincipalName: user{i:06}@example.org\ngivenName: First{i}\nsn: Last{i}\n\
             displayName: First{i} Last{i}\nmail: u{i}@example.org\ntitle: Clerk\n\
             unicodePwd:: {}\nuserAccountControl: 512\n\n",
            unicode_pwd_base64(&format!("Pw-{i:06}-xYz9k2Lq"))
        ));
    }
    let mut cmd = b
        .client("ldapadd", Some((SambaAd::SERVICE_DN, SambaAd::SERVICE_PASSWORD)))
        .expect("ldapadd");
    cmd.arg("-c");
    let theirs = timed_stdin(&mut cmd, &ldif);
    report("Samba 4.17 AD DC (LDAPS)", n, ours, theirs);
}

fn timed_stdin(cmd: &mut Command, input: &str) -> f64 {
    use std::io::Write;
    use std::process::Stdio;
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ldapadd");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("feed ldapadd");
    let out = child.wait_with_output().expect("ldapadd");
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "ldapadd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    secs
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("directories bench: run with `cargo bench --bench directories`; skipping under cargo test");
        return;
    }
    let n = |var: &str, default: usize| std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    ds389(n("DS_ROWS", 2000));
    samba(n("AD_ROWS", 500));
}
