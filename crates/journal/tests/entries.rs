//! Every entry kind, verbose and not, as snapshots; and what sauve writes,
//! sauve reads back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use jiff::civil::date;
use sauve_journal::{AttachmentLine, Entry, Stamp, Title, parse_journal};

fn at(h: i8, m: i8, s: i8) -> Option<Stamp> {
    Some(Stamp::at(date(2025, 3, 14).at(h, m, s, 0)))
}

/// One example of every title, filled as the engine fills it.
fn examples() -> Vec<Entry> {
    let mut full = Entry::new(Title::FullBackup);
    full.creating_archive = Some("/bk/data[0042].4BK".into());
    full.creating_log_backup = Some("/bk/data[0041].4BL".into());
    full.deleted = vec!["/bk/data[0039].4BK".into(), "/bk/data[0038].4BL".into()];
    full.attachments = vec![
        AttachmentLine {
            path: "/app/Data/data.4DIndx".into(),
            found: Some(true),
        },
        AttachmentLine {
            path: "/app/Data/data.4DSyncData".into(),
            found: Some(false),
        },
    ];
    full.notes = vec![
        "data[0042].4BK already exists in the destination; numbering continues at 0043".into(),
    ];
    full.trigger = Some("scheduled".into());
    full.scheduled = at(2, 0, 0);
    full.starting = at(2, 0, 1);
    full.ending = at(2, 3, 27);
    full.data_lock = Some(Duration::from_millis(12_408));
    full.data_lock_how = Some("copied: the file system of /app/Data cannot clone files".into());
    full.structure_lock = Some(Duration::from_millis(1_050));
    full.status = Some(-43);
    full.errors = vec!["not found: /app/Data/data.4DSyncData".into()];

    let mut aborted = Entry::new(Title::FullBackupAborted);
    aborted.attempt = Some(2);
    aborted.trigger = Some("scheduled".into());
    aborted.scheduled = at(2, 0, 0);
    aborted.starting = at(2, 1, 0);
    aborted.ending = at(2, 1, 0);
    aborted.status = Some(1401);
    aborted.errors = vec![
        "1407 Destination invalid or cannot be created".into(),
        "cannot create /mnt/nas/bk: permission denied".into(),
    ];
    aborted.alerts = vec![
        "webhook https://hooks.example.com/sauve sent".into(),
        "email to ops@example.com failed after 3 attempts: cannot reach smtp.example.com:587: connection refused".into(),
    ];

    let mut stopped = Entry::new(Title::BackupStopped);
    stopped.trigger = Some("manual".into());
    stopped.starting = at(10, 12, 40);
    stopped.ending = at(10, 13, 2);
    stopped.status = Some(1406);

    let mut postponed = Entry::new(Title::BackupPostponed);
    postponed.scheduled = at(2, 0, 0);
    postponed.starting = at(2, 0, 0);
    postponed.reason = Some("data unchanged since backup 42".into());
    postponed.next_scheduled = Some(Stamp::at(date(2025, 3, 15).at(2, 0, 0, 0)));

    let mut restore = Entry::new(Title::Restore);
    restore.archive = Some("/bk/data[0042].4BK".into());
    restore.destination = Some("/bk/data[0042]".into());
    restore.starting = at(9, 0, 5);
    restore.ending = at(9, 1, 40);
    restore.status = Some(0);

    let mut integration = Entry::new(Title::LogIntegration);
    integration.data_file = Some("/bk/data[0042]/Data/data.4DD".into());
    integration.log_file = Some("/bk/data[0042].4BL".into());
    integration.operations = Some("1284 applied (50012 to 51295)".into());
    integration.starting = at(9, 2, 0);
    integration.ending = at(9, 2, 9);
    integration.result = Some("OK".into());

    let mut auto_restore = Entry::new(Title::AutomaticFullBackupRestore);
    auto_restore.archive = Some("/bk/data[0042].4BK".into());
    auto_restore.data_file = Some("/app/Data/data.4DD".into());
    auto_restore.replaced_files =
        Some("/app/Data/Replaced files (restoring) 2025-03-19 07-58-12".into());
    auto_restore.starting = at(7, 58, 12);
    auto_restore.ending = at(7, 58, 40);
    auto_restore.result = Some("backup not available".into());
    auto_restore.errors = vec!["1410 Archive to verify missing".into()];

    let mut auto_log = Entry::new(Title::AutomaticLogIntegration);
    auto_log.data_file = Some("/app/Data/data.4DD".into());
    auto_log.log_file = Some("/app/Data/data.journal".into());
    auto_log.starting = at(7, 58, 41);
    auto_log.ending = at(7, 58, 44);
    auto_log.result = Some("OK".into());

    let mut alert = Entry::new(Title::Alert);
    alert.reason = Some("no backup succeeded for 26 hours (alerts.stale_after)".into());
    alert.starting = at(4, 0, 0);
    alert.alerts = vec!["command notify-ops sent".into()];

    let mut rehearsal = Entry::new(Title::RestoreRehearsal);
    rehearsal.archive = Some("data[0042] from s3://bk/app/".into());
    rehearsal.trigger = Some("scheduled".into());
    rehearsal.starting = at(3, 0, 0);
    rehearsal.ending = at(3, 0, 14);
    rehearsal.operations =
        Some("1284 records integrated from 1 log backup (to sequence 51295)".into());
    rehearsal.status = Some(0);
    rehearsal.result = Some("proven restorable as of 2025-03-19 02:00:09".into());
    rehearsal.other = [
        ("Restore time", "12.504 s"),
        ("Integration time", "1.210 s"),
        ("Check time", "0.302 s"),
        ("Bytes restored", "734 MiB"),
        ("Check", "ok"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec();

    vec![
        full,
        aborted,
        stopped,
        postponed,
        restore,
        integration,
        auto_restore,
        auto_log,
        alert,
        rehearsal,
    ]
}

#[test]
fn every_entry_kind_renders_as_4d_writes_it() {
    let examples = examples();
    assert_eq!(
        examples
            .iter()
            .map(|e| e.title.unwrap())
            .collect::<Vec<_>>(),
        Title::ALL,
        "one example per title"
    );
    let verbose: String = examples.iter().map(|e| e.render(true)).collect();
    insta::assert_snapshot!("verbose", verbose);
    let terse: String = examples.iter().map(|e| e.render(false)).collect();
    insta::assert_snapshot!("non_verbose", terse);
}

#[test]
fn a_non_zero_status_always_reports_an_error() {
    let mut e = Entry::new(Title::BackupStopped);
    e.status = Some(1406);
    assert!(
        e.render(true)
            .contains("Error reported : 1406 Stopped by the user\n")
    );
    assert!(
        e.render(false)
            .contains("Error reported : 1406 Stopped by the user\n")
    );
    e.status = Some(0);
    assert!(!e.render(true).contains("Error reported"));
}

#[test]
fn values_cannot_break_the_entry_grammar() {
    let mut e = Entry::new(Title::FullBackup);
    e.notes = vec!["two\nlines\r\n\nand more".into()];
    let text = e.render(true);
    assert_eq!(text, "*** Full Backup\nNote : two lines   and more\n\n");
    assert_eq!(parse_journal(&text).len(), 1);
}

#[test]
fn what_sauve_writes_sauve_reads_back() {
    let examples = examples();
    let text: String = examples.iter().map(|e| e.render(true)).collect();
    let mut read = parse_journal(&text);
    // The writer adds the status line to errors only when none is given.
    let mut expected = examples;
    for e in &mut expected {
        if e.status.is_some_and(|s| s != 0) && e.errors.is_empty() {
            e.errors
                .push(sauve_status::Status::from_code(e.status.unwrap()).to_string());
        }
    }
    for (r, e) in read.iter_mut().zip(&expected) {
        assert_eq!(r, e);
    }
    assert_eq!(read.len(), expected.len());
}
