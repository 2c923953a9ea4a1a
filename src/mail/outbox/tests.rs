//! Tests of the outbox: enqueuing twice adds nothing, and the sender loop
//! delivers what is due, and again when woken.

use std::time::Duration;

use super::*;
use crate::mail::Mailer;

fn mail(id: &str, body: &str) -> NewMail {
    NewMail {
        id: id.into(),
        run_id: "run1".into(),
        kind: MailKind::Credentials,
        sender: "d@example.org".into(),
        recipients: vec!["u@example.org".into()],
        subject: "s".into(),
        message: format!("Subject: s\r\n\r\n{body}\r\n").into_bytes(),
        not_before: 0,
        rate_group: None,
        rate_per_minute: None,
    }
}

#[tokio::test]
async fn enqueue_is_idempotent_and_the_sender_loop_delivers() {
    let dir = tempfile::tempdir().unwrap(); // ok: test
    let url = format!("sqlite://{}", dir.path().join("j.db").display());
    let outbox = Outbox::open(&url, &dir.path().join("k")).await.unwrap(); // ok: test
    let mut tx = outbox.pool().begin().await.unwrap(); // ok: test
    assert!(enqueue(&mut tx, outbox.key(), &mail("a@x", "one"), 1).await.unwrap()); // ok: test
    assert!(!enqueue(&mut tx, outbox.key(), &mail("a@x", "one"), 1).await.unwrap()); // ok: test
    tx.commit().await.unwrap(); // ok: test
    assert_eq!(
        outbox
            .enqueue_all(&[mail("a@x", "one"), mail("b@x", "two")], 2)
            .await
            .unwrap(), // ok: test
        1
    ); // ok: test

    let cfg: super::super::MailConfig = toml::from_str("from = \"d@example.org\"\ntransport = \"file\"").unwrap(); // ok: test
    let cfg = cfg.resolved(dir.path(), Path::new("."));
    let mailer = Mailer::from_config(&cfg).unwrap(); // ok: test
    let folder = dir.path().join("mail");
    let wake = Arc::new(tokio::sync::Notify::new());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let opts = DeliverOptions {
        batch: 1,
        ..super::super::deliver_options(&cfg, false)
    };
    let task = tokio::spawn(run_sender(
        outbox.clone(),
        mailer,
        opts,
        wake.clone(),
        Duration::from_secs(30),
        || Box::pin(async { true }),
        async move {
            let _ = stopped.await;
        },
    ));
    let count = || std::fs::read_dir(&folder).map(|d| d.count()).unwrap_or(0);
    for _ in 0..200 {
        if count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count(), 2);
    outbox.enqueue_all(&[mail("c@x", "three")], 3).await.unwrap(); // ok: test
    wake.notify_one();
    for _ in 0..200 {
        if count() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count(), 3);
    let _ = stop.send(());
    task.await.unwrap(); // ok: test
    let states: Vec<String> = outbox.list(10).await.unwrap().into_iter().map(|e| e.state).collect(); // ok: test
    assert_eq!(states, ["sent", "sent", "sent"]);
}
