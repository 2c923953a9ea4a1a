//! The web console over HTTP, as a browser and a script use it: logins,
//! roles, CSRF, every route's refusals (401/403/404/413/429), the
//! upload → check → apply flow, approving a held run, the JSON API with a
//! bearer token, and a trusted proxy. The daemon is the real `dirsync serve`;
//! what it wrote is read back with `sqlite3`.

#[path = "common/certs.rs"]
mod certs;
#[path = "common/console_env.rs"]
mod console_env;
#[path = "common/serve.rs"]
mod serve;
#[path = "common/web.rs"]
mod web;

use std::fs;
use std::time::Duration;

use console_env::{roster, Env, BAD_ROW};
use serve::wait_until;
/// The path a 303 answer points to.
fn location(r: &web::Resp) -> String {
    assert_eq!(r.status, 303, "{}", r.text());
    r.header("location").unwrap_or_default().to_string()
}

#[test]
fn roles_logins_and_refusals_on_every_route() {
    let env = Env::new("max_upload_mb = 1");
    let _d = env.serve();
    let run = env.drop_file("staff.csv", &roster(3, "Clerk", Some(BAD_ROW)));
    let mut anon = env.client();

    // Probes answer without a login; nothing else does.
    assert_eq!(anon.get("/healthz").status, 200);
    assert_eq!(anon.get("/metrics").status, 200);
    for page in [
        "/",
        "/runs",
        &format!("/runs/{run}"),
        "/upload",
        &format!("/runs/{run}/results.csv"),
    ] {
        assert!(location(&anon.get(page)).starts_with("/login?next="), "{page}");
    }
    let api = anon.get("/api/v1/runs");
    assert_eq!(api.status, 401);
    assert_eq!(api.header("www-authenticate"), Some("Bearer"));
    let r = anon.post_form(&format!("/runs/{run}/reject"), &[("csrf", "x")]);
    assert!(location(&r).starts_with("/login"));

    // A login without the form's token is refused; a wrong password says so.
    assert_eq!(
        anon.post_form("/login", &[("user", "alice"), ("password", "correct horse battery")])
            .status,
        403
    );
    let wrong = anon.login("alice", "not the password");
    assert_eq!(wrong.status, 401);
    assert!(wrong.text().contains("Wrong user name or password"));

    // The viewer sees runs, rows and results, and nothing more.
    let mut viewer = env.client();
    let ok = viewer.login("victor", "viewer password 123");
    assert_eq!(location(&ok), "/");
    let cookie = ok.header("set-cookie").unwrap_or_default().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("victor"), "the session cookie is sealed: {cookie}");
    let runs = viewer.get("/runs");
    assert_eq!(runs.status, 200);
    assert!(runs.text().contains("staff.csv"));
    let page = viewer.get(&format!("/runs/{run}?errors=1"));
    assert_eq!(page.status, 200);
    let worker = env.journal(&format!("SELECT worker FROM runs WHERE id = {run}"));
    assert!(
        worker.contains(':') && page.text().contains(&worker),
        "which daemon ran it: {worker}"
    );
    let text = page.text();
    assert!(
        text.contains("tbroken") && !text.contains("user001"),
        "only the rejected row: {text}"
    );
    assert!(text.contains("is not an email address"));
    let page = viewer.get(&format!("/runs/{run}?key=USER002"));
    assert!(page.text().contains("user002") && !page.text().contains("user001"));
    let results = viewer.get(&format!("/runs/{run}/results.csv"));
    assert_eq!(results.status, 200);
    assert!(results.text().contains("user000"));
    assert_eq!(viewer.get(&format!("/runs/{run}/file")).status, 403);
    assert_eq!(viewer.get("/upload").status, 403);
    let csrf = viewer.get("/").csrf();
    let r = viewer.post_form(&format!("/runs/{run}/approve"), &[("csrf", &csrf), ("class", "adds")]);
    assert_eq!(r.status, 403);
    assert!(r.text().contains("operator role"));
    for h in ["x-frame-options", "content-security-policy", "x-content-type-options"] {
        assert!(page.header(h).is_some(), "{h} missing");
    }

    // The operator: CSRF on every POST, 404 and 409 pages that say why.
    let mut op = env.client();
    assert_eq!(location(&op.login("alice", "correct horse battery")), "/");
    let r = op.post_form(&format!("/runs/{run}/reject"), &[]);
    assert_eq!(r.status, 403);
    assert!(r.text().contains("security token"));
    let csrf = op.get("/").csrf();
    let r = op.post_form(&format!("/runs/{run}/reject"), &[("csrf", &csrf)]);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("holds nothing waiting for approval"));
    assert_eq!(op.get("/runs/99999").status, 404);
    assert_eq!(op.get("/nothing/here").status, 404);
    assert_eq!(op.get("/runs?state=bogus").status, 400);
    let r = op.get("/runs/not-a-number");
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("<h1>Bad request</h1>") && r.text().contains("not-a-number"),
        "{}",
        r.text()
    );
    let original = op.get(&format!("/runs/{run}/file"));
    assert_eq!(original.status, 200);
    assert!(original.text().starts_with("Username,"));

    // Uploads: over [http] max_upload_mb → 413, nothing spooled.
    let big = vec![b'x'; 1024 * 1024 + 10];
    let r = op.post_file("/upload", &[("csrf", &csrf), ("inbox", "hr")], "big.csv", &big);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("larger than 1 MB"));
    let r = op.post_file("/upload", &[("inbox", "hr")], "x.csv", b"a,b\n");
    assert_eq!(r.status, 403, "an upload without the token is refused");
    let spooled: Vec<_> = fs::read_dir(env.dir.join("state/uploads"))
        .expect("spool")
        .flatten()
        .collect(); // ok: test
    assert!(spooled.is_empty(), "{spooled:?}");

    // Logging out ends the session.
    let r = op.post_form("/logout", &[("csrf", &csrf)]);
    assert_eq!(location(&r), "/login");
    assert!(location(&op.get("/runs")).starts_with("/login"));

    // The API with a bearer token.
    let (code, token, err) = env.cli(&["http", "add-token", "nagios", "--role", "viewer"], "");
    assert_eq!(code, 0, "{err}");
    assert!(!fs::read_to_string(env.dir.join("http-users.toml"))
        .unwrap_or_default()
        .contains(token.trim()));
    let mut script = env.client();
    script
        .extra
        .push(("Authorization".into(), format!("Bearer {}", token.trim())));
    let list = script.get("/api/v1/runs?inbox=hr").json();
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["runs"][0]["state"], "done");
    let one = script.get(&format!("/api/v1/runs/{run}")).json();
    assert_eq!(one["counts"]["changes"]["new"], 3, "{one}");
    let rows = script.get(&format!("/api/v1/runs/{run}/rows?errors=1")).json();
    assert_eq!(rows["total"], 1, "{rows}");
    assert_eq!(rows["rows"][0]["key"], "tbroken");
    assert_eq!(script.get("/api/v1/runs/424242").status, 404);
    script.extra[0].1 = "Bearer dst_wrong".into();
    assert_eq!(script.get("/api/v1/runs").status, 401);

    // The users file from the command line: a short password is refused,
    // the list names everyone, and a removed user is logged out at once.
    let (code, _, err) = env.cli(&["http", "add-user", "carol", "--role", "viewer"], "short\n");
    assert_eq!(code, 2);
    assert!(err.contains("at least 12 characters"), "{err}");
    let (code, list, err) = env.cli(&["http", "users"], "");
    assert_eq!(code, 0, "{err}");
    assert!(
        list.contains("alice") && list.contains("victor") && list.contains("nagios") && !list.contains("carol"),
        "{list}"
    );
    let (code, _, err) = env.cli(&["http", "remove", "victor"], "");
    assert_eq!(code, 0, "{err}");
    assert!(
        location(&viewer.get("/runs")).starts_with("/login"),
        "a removed user keeps no session"
    );
    let (code, _, err) = env.cli(&["http", "remove", "victor"], "");
    assert_eq!(code, 2);
    assert!(err.contains("no user or token called"), "{err}");
}

#[test]
fn failed_logins_are_rate_limited() {
    let env = Env::new("");
    let _d = env.serve();
    let mut c = env.client();
    for _ in 0..5 {
        assert_eq!(c.login("alice", "guess").status, 401);
    }
    let r = c.login("alice", "correct horse battery");
    assert_eq!(r.status, 429, "even the right password waits: {}", r.text());
    assert!(r.header("retry-after").is_some());
    assert!(r.text().contains("Too many failed logins"));
    let log = fs::read_to_string(env.dir.join("serve-0.log")).unwrap_or_default();
    assert!(
        !log.contains("guess") && !log.contains("correct horse"),
        "no password in the log"
    );
}

#[test]
fn upload_check_apply_then_approve_a_held_run() {
    // Mail written as .eml files: the results mail of an upload is read back.
    let env = Env::new("\n[mail]\nfrom = \"dirsync <dirsync@localhost>\"\ntransport = \"file\"\nfolder = \"mail\"");
    let d = env.serve();
    let mut op = env.client();
    assert_eq!(location(&op.login("alice", "correct horse battery")), "/");
    let csrf = op.get("/upload").csrf();

    // Upload and check: a preview, nothing written.
    let r = op.post_file(
        "/upload",
        &[("csrf", &csrf), ("inbox", "hr")],
        "joiners.csv",
        &roster(10, "Clerk", Some(BAD_ROW)),
    );
    let preview = location(&r);
    assert!(preview.starts_with("/runs/"), "{preview}");
    let mut page = String::new();
    assert!(
        wait_until(Duration::from_secs(30), || {
            page = op.get(&preview).text();
            page.contains("id=\"apply\"")
        }),
        "{page}"
    );
    assert!(page.contains("10 new, 1 error"), "{page}");
    assert_eq!(env.db("SELECT COUNT(*) FROM users"), "0", "a preview writes nothing");
    let errors = op.get(&format!("{preview}?errors=1")).text();
    assert!(errors.contains("tbroken") && !errors.contains("user003"), "{errors}");

    // Apply: the inbox's run, mailed to its submitter and the uploader.
    let r = op.post_form(&format!("{preview}/apply"), &[("csrf", &csrf)]);
    let run = location(&r);
    let id: i64 = run.trim_start_matches("/runs/").parse().expect("run id"); // ok: test
    assert!(wait_until(Duration::from_secs(60), || env
        .journal(&format!("SELECT filed FROM runs WHERE id = {id}"))
        == "1"));
    assert_eq!(env.db("SELECT COUNT(*) FROM users"), "10");
    assert_eq!(
        env.journal(&format!(
            "SELECT inbox || ' ' || state || ' ' || submitter FROM runs WHERE id = {id}"
        )),
        "hr done hr@example.org, alice@example.org"
    );
    assert!(op.get(&run).text().contains("10 new, 1 error (10 done, 1 skipped)"));
    // One results mail to both, listed on the run's page (not its content).
    let mut results_mail = String::new();
    let mailed = wait_until(Duration::from_secs(30), || {
        let mails = fs::read_dir(env.dir.join("mail"))
            .map(|d| d.flatten().collect::<Vec<_>>())
            .unwrap_or_default();
        results_mail = mails
            .iter()
            .map(|m| fs::read_to_string(m.path()).unwrap_or_default())
            .find(|t| t.contains("joiners"))
            .unwrap_or_default();
        !results_mail.is_empty()
    });
    assert!(mailed, "no results mail in mail/");
    let to = results_mail.lines().find(|l| l.starts_with("To:")).unwrap_or_default();
    assert!(
        to.contains("hr@example.org") && to.contains("alice@example.org"),
        "{to}"
    );
    let page = op.get(&run).text();
    assert!(
        page.contains("id=\"mails\"") && page.contains("hr@example.org, alice@example.org"),
        "{page}"
    );

    // A file that changes every title goes over `updates` (50 %): held.
    let held = env.drop_file("promotions.csv", &roster(10, "Accountant", None));
    assert_eq!(
        env.journal(&format!("SELECT state FROM runs WHERE id = {held}")),
        "awaiting-approval"
    );
    let dash = op.get("/").text();
    assert!(
        dash.contains(&format!("/runs/{held}/approve")),
        "the dashboard lists it first: {dash}"
    );
    assert!(
        dash.contains("id=\"daemons\"") && dash.contains(&format!(":{}#", d.pid())),
        "the dashboard names the daemon at work on the journal: {dash}"
    );
    let review = op.get(&format!("/runs/{held}/approve"));
    assert_eq!(review.status, 200);
    let text = review.text();
    assert!(
        text.contains("Clerk") && text.contains("Accountant"),
        "the diff is shown: {text}"
    );
    assert!(text.contains("user009"));
    let r = op.post_form(
        &format!("/runs/{held}/approve"),
        &[("csrf", &csrf), ("class", "updates")],
    );
    assert_eq!(location(&r), format!("/runs/{held}"));
    assert_eq!(env.db("SELECT COUNT(*) FROM users WHERE title = 'Accountant'"), "10");
    assert_eq!(
        env.journal(&format!(
            "SELECT decision || ' ' || classes || ' ' || by_name FROM run_approvals WHERE run_id = {held}"
        )),
        "approve updates alice"
    );
    assert_eq!(
        env.journal(&format!("SELECT state FROM runs WHERE id = {held}")),
        "done"
    );
    assert!(op
        .get(&format!("/runs/{held}"))
        .text()
        .contains("approve updates by alice"));
}

#[test]
fn a_trusted_proxy_names_the_user_and_others_are_refused() {
    let env = Env::new(
        "trusted_proxy = { from = [\"127.0.0.1\"], user_header = \"X-Remote-User\", role_header = \"X-Remote-Role\" }",
    );
    let _d = env.serve();
    let mut via_proxy = env.client();
    via_proxy.extra = vec![
        ("X-Remote-User".into(), "pat".into()),
        ("X-Remote-Role".into(), "viewer".into()),
    ];
    let r = via_proxy.get("/runs");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("pat (viewer)"));
    assert_eq!(via_proxy.get("/upload").status, 403, "the proxy's role counts");
    let mut no_header = env.client();
    assert!(location(&no_header.get("/runs")).starts_with("/login"));
    via_proxy.extra[1].1 = "root".into();
    assert!(
        location(&via_proxy.get("/runs")).starts_with("/login"),
        "an unknown role is nobody"
    );
}

/// `GET path` over TLS, trusting only `ca`: status line and headers.
fn https_get(port: u16, ca: &std::path::Path, path: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    use std::io::{Read, Write};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).expect("read the test certificate") {
        roots.add(cert.expect("a PEM certificate")).expect("add the test CA"); // ok: test
    }
    let cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name"); // ok: test
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(cfg), name).expect("TLS client"); // ok: test
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect"); // ok: test
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("send over TLS"); // ok: test
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    text.split("\r\n\r\n").next().unwrap_or_default().to_string()
}

#[test]
fn with_tls_the_console_speaks_https_only_and_its_cookies_are_secure() {
    let env = Env::new("tls_cert = \"server.pem\"\ntls_key = \"server.key\"");
    certs::make_certs(&env.dir);
    let d = env.serve();
    let head = https_get(env.port, &env.dir.join("ca.pem"), "/healthz");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let head = https_get(env.port, &env.dir.join("ca.pem"), "/login");
    let cookie = head
        .lines()
        .find(|l| l.to_lowercase().starts_with("set-cookie:"))
        .unwrap_or_default();
    assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{head}");
    // Plain HTTP on the TLS port gets no page.
    let plain = env.client().get("/healthz");
    assert_ne!(plain.status, 200, "{}", plain.text());

    drop(d);
    // A key that is not a key: serve refuses to start and says which file.
    fs::write(env.dir.join("server.key"), "not a key").expect("write"); // ok: test
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .current_dir(&env.dir)
        .args(["--config", "dirsync.toml", "serve"])
        .output()
        .expect("run serve"); // ok: test
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("tls_key") && err.contains("server.key"), "{err}");
}

#[test]
fn a_preview_left_by_a_dead_daemon_is_abandoned_at_the_next_start() {
    let env = Env::new("");
    let d = env.serve();
    drop(d);
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    // A pid above the kernel's maximum: that process cannot exist.
    env.journal(&format!(
        "INSERT INTO runs (id, inbox, file_name, claimed, sha256, policy, target, state, claimed_at, worker) \
         VALUES (77, 'hr', 'upload.csv', '/nowhere/upload.csv', 'x', 'staff', 'staff', 'preview', 1, '{}:4194305')",
        host.trim()
    ));
    let _d = env.serve();
    let want = "abandoned the daemon stopped while checking this upload; upload it again";
    let mut state = String::new();
    let done = wait_until(Duration::from_secs(30), || {
        state = env.journal("SELECT state || ' ' || COALESCE(note, '') FROM runs WHERE id = 77");
        state == want
    });
    assert!(done, "{state}");
}
