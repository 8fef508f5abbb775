//! `sauve.toml` (behaviour §17.1): a complete file reads into the typed model;
//! every mistake is located and says what is accepted; secrets come only
//! from the environment or from 0600 files, and never show.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use sauve_settings::{AlertOn, SecretFrom, SettingsError, SmtpTls, parse_sauve_toml};

/// The complete example of docs/settings.md, without its comments.
const COMPLETE: &str = r#"# sauve's own settings, beside backup.4DSettings.
[alerts]
on = "failure"
stale_after = "26h"

[[alerts.webhook]]
url = "https://hooks.example.com/sauve"
secret_env = "SAUVE_WEBHOOK_SECRET"

[[alerts.email]]
host = "smtp.example.com"
port = 587
tls = "starttls"
user = "sauve"
password_file = "../secrets/smtp-password"
from = "sauve@example.com"
to = ["ops@example.com", "oncall@example.com"]

[[alerts.command]]
run = "logger -t sauve \"$SAUVE_STATUS_TEXT\""

[metrics]
token_env = "SAUVE_METRICS_TOKEN"
"#;

fn env(name: &str) -> Option<String> {
    match name {
        "SAUVE_WEBHOOK_SECRET" => Some("hook-secret".to_owned()),
        "SAUVE_METRICS_TOKEN" => Some("metrics-token".to_owned()),
        _ => None,
    }
}

/// An app folder `ROOT/App` with `ROOT/secrets/smtp-password` of `mode`.
fn app_with_secret(mode: u32) -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let app = root.path().join("App");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::create_dir_all(root.path().join("secrets")).unwrap();
    let secret = root.path().join("secrets/smtp-password");
    std::fs::write(&secret, "s3cret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(mode)).unwrap();
    (root, app)
}

fn errors(text: &str, app: &Path) -> Vec<String> {
    match parse_sauve_toml(text, "sauve.toml", app, &env) {
        Ok(s) => panic!("accepted: {s:?}"),
        Err(SettingsError::Invalid { problems }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        Err(e) => vec![e.to_string()],
    }
}

#[test]
fn the_complete_example_reads_into_the_model_with_its_secrets() {
    let (_root, app) = app_with_secret(0o600);
    let s = parse_sauve_toml(COMPLETE, "sauve.toml", &app, &env).unwrap();
    let a = &s.alerts;
    assert_eq!(a.on, AlertOn::Failure);
    assert_eq!(a.stale_after, Some(Duration::from_secs(26 * 3600)));
    assert_eq!(a.webhooks[0].url, "https://hooks.example.com/sauve");
    let secret = a.webhooks[0].secret.as_ref().unwrap();
    assert_eq!(secret.expose(), "hook-secret");
    assert_eq!(secret.from, SecretFrom::Env("SAUVE_WEBHOOK_SECRET".into()));
    let e = &a.emails[0];
    assert_eq!(
        (e.host.as_str(), e.port, e.tls),
        ("smtp.example.com", 587, SmtpTls::StartTls)
    );
    assert_eq!(
        e.password.as_ref().unwrap().expose(),
        "s3cret",
        "one trailing newline dropped"
    );
    assert_eq!(e.to, ["ops@example.com", "oncall@example.com"]);
    assert_eq!(a.commands[0].run, "logger -t sauve \"$SAUVE_STATUS_TEXT\"");
    assert_eq!(s.metrics.token.as_ref().unwrap().expose(), "metrics-token");
    // Shown, the secrets are stars.
    let shown = s.to_json().to_string();
    assert!(
        !shown.contains("hook-secret")
            && !shown.contains("s3cret")
            && !shown.contains("metrics-token"),
        "{shown}"
    );
    assert!(shown.contains("\"value\":\"***\""), "{shown}");
    assert!(!format!("{s:?}").contains("s3cret"));
}

#[test]
fn no_file_means_every_feature_off_and_defaults_are_sensible() {
    let dir = tempfile::tempdir().unwrap();
    let s = sauve_settings::load_sauve_toml(dir.path()).unwrap();
    assert_eq!(s, sauve_settings::SauveToml::default());
    assert!(!s.alerts.has_notifiers());
    let minimal =
        "[[alerts.email]]\nhost = \"relay\"\ntls = \"tls\"\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\n";
    let s = parse_sauve_toml(minimal, "sauve.toml", dir.path(), &env).unwrap();
    assert_eq!(s.alerts.on, AlertOn::GiveUp);
    assert_eq!(s.alerts.emails[0].port, 465, "the port follows tls");
}

#[test]
fn data_settings_win_over_structure_settings_as_for_backup_4dsettings() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path();
    std::fs::create_dir_all(app.join("Settings")).unwrap();
    std::fs::create_dir_all(app.join("Data/Settings")).unwrap();
    std::fs::write(
        app.join("Settings/sauve.toml"),
        "[alerts]\non = \"always\"\n",
    )
    .unwrap();
    assert_eq!(
        sauve_settings::load_sauve_toml(app).unwrap().alerts.on,
        AlertOn::Always
    );
    std::fs::write(
        app.join("Data/Settings/sauve.toml"),
        "[alerts]\non = \"failure\"\n",
    )
    .unwrap();
    let s = sauve_settings::load_sauve_toml(app).unwrap();
    assert_eq!(s.alerts.on, AlertOn::Failure);
    assert_eq!(s.source, Some(app.join("Data/Settings/sauve.toml")));
}

#[test]
fn every_mistake_is_located_and_says_what_is_accepted() {
    let (_root, app) = app_with_secret(0o644);
    let table: &[(&str, &str)] = &[
        (
            "[alerts]\nwebhok = []\n",
            "sauve.toml:2:1: unknown key \"webhok\" (accepted: on, stale_after, proven_stale_after, webhook, email, command)",
        ),
        (
            "[alert]\n",
            "sauve.toml:1:2: unknown key \"alert\" (accepted: alerts, metrics, ui, destination, offsite, incremental, security, rehearsal, verify)",
        ),
        (
            "[[alerts.webhook]]\nurl = \"hooks.example.com\"\n",
            "sauve.toml:2:7: alerts.webhook[0].url: invalid value \"hooks.example.com\": not an http or https URL (accepted: an http:// or https:// URL with a host)",
        ),
        (
            "[[alerts.email]]\nhost = \"smtp\"\nport = 70000\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\n",
            "sauve.toml:3:8: alerts.email[0].port: invalid value \"70000\" (accepted: a port from 1 to 65535; default 587 with starttls, 465 with tls, 25 with none)",
        ),
        (
            "[[alerts.webhook]]\nurl = \"https://h/\"\nsecret_env = \"NOT_SET_ANYWHERE\"\n",
            "sauve.toml:3:14: alerts.webhook[0].secret_env: the environment variable NOT_SET_ANYWHERE is not set or empty (accepted: the name of a variable set for sauve, e.g. in its service unit)",
        ),
        (
            "[[alerts.webhook]]\nurl = \"https://h/\"\nsecret = \"hunter2\"\n",
            "sauve.toml:3:10: alerts.webhook[0].secret: a secret is never a value in the file (accepted: secret_env = \"VARIABLE\" naming an environment variable, or secret_file = \"PATH\" naming a file of mode 0600)",
        ),
        (
            "[alerts]\non = \"sometimes\"\nstale_after = \"10s\"\n",
            "sauve.toml:2:6: alerts.on: invalid value \"sometimes\" (accepted: give-up, failure, always)",
        ),
        (
            "[[alerts.email]]\nhost = \"smtp\"\nfrom = \"a@b.c\"\n",
            "sauve.toml:1:1: missing key \"to\"",
        ),
        ("[alerts\n", "sauve.toml:1:8: "),
        (
            "[ui]\npassword_hash = \"hunter2\"\n",
            "sauve.toml:2:17: ui.password_hash: is not an argon2 hash (accepted: a PHC string",
        ),
    ];
    for (text, want) in table {
        let got = errors(text, &app);
        assert!(
            got.first().is_some_and(|g| g.starts_with(want)),
            "for\n{text}\nwanted {want}\ngot {got:#?}"
        );
    }
    // The secret file is readable by others: refused, naming it and its mode.
    let text = "[[alerts.email]]\nhost = \"smtp\"\nuser = \"u\"\npassword_file = \"../secrets/smtp-password\"\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\n";
    let got = errors(text, &app);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("sauve.toml:4:17: alerts.email[0].password_file: the secret file \"")
            && got[0].contains(
                "secrets/smtp-password\" has mode 0644: others can read it (accepted: mode 0600;"
            ),
        "{got:?}"
    );
    // Several problems: all of them, in file order.
    let text = "[alerts]\non = \"x\"\nstale_after = \"soon\"\n[[alerts.command]]\nrun = \"\"\n";
    let got = errors(text, &app);
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(
        got[1].starts_with("sauve.toml:3:15: alerts.stale_after: invalid value \"soon\""),
        "{got:#?}"
    );
    assert!(
        got[2].starts_with("sauve.toml:5:7: alerts.command[0].run: empty command"),
        "{got:#?}"
    );
}
