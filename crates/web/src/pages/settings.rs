//! The Settings page (behaviour §18): the backup settings as 4D's Scheduler,
//! Configuration and Backup & Restore pages, and the alerts of sauve.toml.
//! Save checks every value with the rules of `sauve settings validate`
//! (through sauve-settings, which also writes the files atomically and
//! keeps what it does not change), shows each refusal beside its field with
//! what is accepted, writes nothing when anything is refused, and tells the
//! scheduler to apply the new settings at once.

use std::collections::HashMap;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use sauve_settings::{
    AlertsChange, Change, ChangeError, Input, Settings, key_info, prepare_alerts_change,
    prepare_settings_change,
};

use crate::PageState;
use crate::auth::{Viewer, check_post};
use crate::layout::{Notice, Tab};
use crate::pages::render;

/// The form's keys for sauve.toml.
const ALERTS_ON: &str = "alerts.on";
const STALE_AFTER: &str = "alerts.stale_after";
const ATTACHMENTS: &str = "General/IncludesFiles";

/// One field: its key and the words of 4D's page for it.
struct Field {
    key: &'static str,
    label: &'static str,
    help: &'static str,
}

const fn f(key: &'static str, label: &'static str, help: &'static str) -> Field {
    Field { key, label, help }
}

/// A group of fields under a heading.
struct Group {
    id: &'static str,
    title: &'static str,
    intro: &'static str,
    fields: &'static [Field],
}

const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

const SCHEDULER: &[Field] = &[
    f(
        "Scheduler/Frequency",
        "Automatic backup",
        "When backups run by themselves.",
    ),
    f(
        "Scheduler/Hourly/Every",
        "Every … hours",
        "Hourly: the number of hours between backups.",
    ),
    f(
        "Scheduler/Hourly/StartingAt",
        "Starting at",
        "Hourly: the time of day the grid starts from.",
    ),
    f(
        "Scheduler/Daily/Every",
        "Every … days",
        "Daily: the number of days between backups.",
    ),
    f("Scheduler/Daily/Hour", "At", "Daily: the time of day."),
    f(
        "Scheduler/Weekly/Every",
        "Every … weeks",
        "Weekly: the number of weeks between backups; choose the days below.",
    ),
    f(
        "Scheduler/Monthly/Every",
        "Every … months",
        "Monthly: the number of months between backups.",
    ),
    f(
        "Scheduler/Monthly/Day",
        "On day",
        "Monthly: the day of the month, or Last.",
    ),
    f("Scheduler/Monthly/Hour", "At", "Monthly: the time of day."),
];

const GROUPS: &[Group] = &[
    Group {
        id: "configuration",
        title: "Configuration",
        intro: "What a backup holds and where it goes.",
        fields: &[
            f(
                "General/IncludeStructureFile",
                "Project files",
                "Project/ and Settings/.",
            ),
            f(
                "General/IncludeDataFile",
                "Data file",
                "The data file, its settings and the log file.",
            ),
            f(
                "General/DestinationFolder",
                "Backup file destination folder",
                "Relative to the app folder, or absolute.",
            ),
        ],
    },
    Group {
        id: "backup-restore",
        title: "Backup & Restore",
        intro: "How backups are kept, checked and retried, and what happens when the data is damaged.",
        fields: &[
            f(
                "Advanced/SetNumber/Enable",
                "Keep only the last … backup files",
                "Older sets are deleted after a successful backup.",
            ),
            f("Advanced/SetNumber/Value", "Number of sets kept", ""),
            f(
                "Advanced/BackupIfDataChange",
                "Back up only if the data file has been modified",
                "Scheduled backups of unchanged data are postponed.",
            ),
            f(
                "Advanced/EraseOldBackupBefore",
                "Delete oldest backup file before backup",
                "Frees space first; the set is gone even if the backup then fails.",
            ),
            f(
                "Advanced/CheckArchiveFileDuringBackup",
                "Verify the backup file",
                "Reads the set back before it gets its final name.",
            ),
            f(
                "Advanced/BackupJournalVerboseMode",
                "Verbose Backup Journal",
                "Every line of each entry, not only the title and errors.",
            ),
            f(
                "Advanced/BackupFailure/TryBackupAtTheNextScheduledDate",
                "If a backup fails: retry at the next scheduled date",
                "",
            ),
            f(
                "Advanced/BackupFailure/TryToBackupAfter",
                "… or retry after",
                "A duration such as 00:15:00.",
            ),
            f(
                "Advanced/BackupFailure/AbortIfBackupFail",
                "Give up after … attempts (1401)",
                "Scheduled backups stop until a manual backup succeeds.",
            ),
            f(
                "Advanced/BackupFailure/RetryCountBeforeAbort",
                "Attempts before giving up",
                "",
            ),
            f(
                "Advanced/FileSegmentation/DefaultSize",
                "Segment size (MB)",
                "0 writes one file per set.",
            ),
            f(
                "Advanced/CompressionRate",
                "Compression",
                "None, Fast (zstd 1) or Compact (zstd 19).",
            ),
            f(
                "Advanced/AutomaticRestore",
                "Restore last backup if data is damaged",
                "At open, the newest sound set is restored.",
            ),
            f(
                "Advanced/AutomaticLogIntegration",
                "Integrate the last log after a restore",
                "",
            ),
            f(
                "Advanced/AutomaticRestart",
                "Go on opening after an automatic restore",
                "",
            ),
        ],
    },
];

/// The values to show: the file's, or what the person typed.
type Values = HashMap<String, String>;

fn current(settings: &Settings) -> Values {
    let mut v: Values = settings
        .entries()
        .map(|(k, val)| (k.to_owned(), val.to_string()))
        .collect();
    v.insert(
        ATTACHMENTS.to_owned(),
        settings.general.includes_files.join("\n"),
    );
    v
}

fn field(key: &str, label: &str, help: &str, values: &Values, errors: &Values) -> Markup {
    let id = key.replace(['/', '.'], "-");
    let value = values.get(key).map(String::as_str).unwrap_or("");
    let error = errors.get(key);
    let info = key_info(key);
    let accepted = info.as_ref().map(|i| i.accepted.clone());
    let described = format!(
        "{id}-hint{}",
        if error.is_some() {
            format!(" {id}-error")
        } else {
            String::new()
        }
    );
    html! {
        div class={"field" @if error.is_some() { " invalid" }} {
            label for=(id) { (label) span class="key" { (key) } }
            div {
                @match info.map(|i| i.input) {
                    Some(Input::Bool) => {
                        input type="hidden" name=(key) value="False";
                        input type="checkbox" id=(id) name=(key) value="True" checked[value.eq_ignore_ascii_case("true")] aria-describedby=(described);
                    }
                    Some(Input::Choice(tokens)) => {
                        select id=(id) name=(key) aria-describedby=(described) aria-invalid=[error.map(|_| "true")] {
                            @for t in tokens { option value=(t) selected[t.eq_ignore_ascii_case(value)] { (t) } }
                            @if !tokens.iter().any(|t| t.eq_ignore_ascii_case(value)) {
                                option value=(value) selected { (value) }
                            }
                        }
                    }
                    Some(Input::Paths) => {
                        textarea id=(id) name=(key) rows="4" spellcheck="false" aria-describedby=(described) aria-invalid=[error.map(|_| "true")] { (value) }
                    }
                    Some(Input::Int { .. }) => {
                        input type="text" inputmode="numeric" id=(id) name=(key) value=(value) aria-describedby=(described) aria-invalid=[error.map(|_| "true")];
                    }
                    _ => {
                        input type="text" id=(id) name=(key) value=(value) spellcheck="false" aria-describedby=(described) aria-invalid=[error.map(|_| "true")];
                    }
                }
                @if let Some(e) = error { div class="error" id={(id) "-error"} role="alert" { "✗ " (e) } }
                div class="hint" id={(id) "-hint"} {
                    (help)
                    @if let Some(a) = &accepted { @if !matches!(key_info(key).map(|i| i.input), Some(Input::Bool | Input::Choice(_))) { " Accepted: " (a) "." } }
                }
            }
        }
    }
}

fn form(
    csrf: &str,
    values: &Values,
    errors: &Values,
    source: &str,
    own: &sauve_settings::SauveToml,
) -> Markup {
    html! {
        form method="post" action="/settings" class="settings" novalidate {
            input type="hidden" name="csrf" value=(csrf);
            p class="muted small" { "Backup settings: " code { (source) } }
            fieldset id="scheduler" {
                legend { "Scheduler" }
                @for x in SCHEDULER { (field(x.key, x.label, x.help, values, errors)) }
                h3 { "Weekly: days and times" }
                @for day in DAYS {
                    @let save = format!("Scheduler/Weekly/{day}/Save");
                    @let hour = format!("Scheduler/Weekly/{day}/Hour");
                    (field(&save, day, "", values, errors))
                    (field(&hour, &format!("{day} at"), "", values, errors))
                }
            }
            @for g in GROUPS {
                fieldset id=(g.id) {
                    legend { (g.title) }
                    p class="small muted" { (g.intro) }
                    @for x in g.fields { (field(x.key, x.label, x.help, values, errors)) }
                    @if g.id == "configuration" {
                        (field(ATTACHMENTS, "Attachments", "Files and folders backed up with the app, one path per line; a missing one makes the backup partial (-43).", values, errors))
                    }
                }
            }
            fieldset id="alerts-settings" {
                legend { "Alerts" }
                p class="small muted" { "In " code { (own.source.as_ref().map_or_else(|| "APP/Settings/sauve.toml (created on save)".to_owned(), |p| p.display().to_string())) } ". A scheduled backup that gives up (1401) always raises an alert." }
                div class={"field" @if errors.contains_key(ALERTS_ON) { " invalid" }} {
                    label for="alerts-on" { "Also alert on" span class="key" { (ALERTS_ON) } }
                    div {
                        @let on = values.get(ALERTS_ON).map_or("give-up", String::as_str);
                        select id="alerts-on" name=(ALERTS_ON) aria-describedby="alerts-on-hint" {
                            @for (t, label) in [("give-up", "give-up: only when scheduled backups give up"), ("failure", "failure: every failed backup"), ("always", "always: every backup (a heartbeat)")] {
                                option value=(t) selected[t == on] { (label) }
                            }
                        }
                        @if let Some(e) = errors.get(ALERTS_ON) { div class="error" role="alert" { "✗ " (e) } }
                        div class="hint" id="alerts-on-hint" { "Accepted: give-up, failure or always." }
                    }
                }
                div class={"field" @if errors.contains_key(STALE_AFTER) { " invalid" }} {
                    label for="alerts-stale_after" { "Alert when no backup succeeded for" span class="key" { (STALE_AFTER) } }
                    div {
                        input type="text" id="alerts-stale_after" name=(STALE_AFTER) value=(values.get(STALE_AFTER).map_or("", String::as_str)) placeholder="off" aria-describedby="alerts-stale_after-hint" aria-invalid=[errors.get(STALE_AFTER).map(|_| "true")];
                        @if let Some(e) = errors.get(STALE_AFTER) { div class="error" id="alerts-stale_after-error" role="alert" { "✗ " (e) } }
                        div class="hint" id="alerts-stale_after-hint" { "Empty for no such alert. Accepted: a duration of at least a minute, such as 26h, 90m or 2d 12h." }
                    }
                }
                h3 { "Notifiers" }
                @let a = &own.alerts;
                @if !a.has_notifiers() {
                    p class="small" { "None yet. Add " code { "[[alerts.webhook]]" } ", " code { "[[alerts.email]]" } " or " code { "[[alerts.command]]" } " to sauve.toml; secrets come from " code { "*_env" } " variables or 0600 " code { "*_file" } "s, never from the file itself. " code { "sauve alert test" } " tries them." }
                } @else {
                    ul class="small" {
                        @for w in &a.webhooks { li { "Webhook " code { (sauve_settings::shown_url(&w.url)) } @if w.secret.is_some() { " (signed)" } } }
                        @for e in &a.emails { li { "Email to " (e.to.join(", ")) " via " code { (e.host) ":" (e.port) } " (" (e.tls.token()) ")" } }
                        @for c in &a.commands { li { "Command " code { (c.run) } } }
                    }
                }
            }
            div class="actions" {
                button type="submit" class="primary" { "Save" }
                a class="button" href="/settings" { "Discard changes" }
            }
        }
    }
}

async fn show(
    state: &PageState,
    viewer: &Viewer,
    values: Option<Values>,
    errors: Values,
    notice: Option<Notice>,
) -> Response {
    let app = state.inner.handle.app().to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || {
        let doc = sauve_settings::settings_file_for_change(&app);
        let own = sauve_settings::load_sauve_toml(&app);
        let written = sauve_settings::alerts_as_written(&app);
        (doc, own, written)
    })
    .await;
    let Ok((doc, own, written)) = loaded else {
        return crate::pages::errors::page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Settings",
            "the settings could not be read",
            "/",
        );
    };
    let body = match doc {
        Ok((doc, path)) => {
            let mut vals = current(doc.settings());
            if let Ok((on, stale)) = &written {
                vals.insert(
                    ALERTS_ON.to_owned(),
                    on.clone().unwrap_or_else(|| "give-up".to_owned()),
                );
                vals.insert(STALE_AFTER.to_owned(), stale.clone().unwrap_or_default());
            }
            if let Some(v) = values {
                vals.extend(v);
            }
            let (own_problem, own) = match own {
                Ok(o) => (None, o),
                Err(e) => (Some(e.to_string()), sauve_settings::SauveToml::default()),
            };
            html! {
                @if let Some(p) = own_problem {
                    p class="notice error" { "sauve.toml is not valid, so its alerts cannot be changed here until it is fixed: " (p) }
                }
                (form(&viewer.csrf, &vals, &errors, &path.display().to_string(), &own))
            }
        }
        Err(e) => html! {
            p class="notice error" { "The settings file is not valid (backups end with 1419 until it is fixed):" }
            pre class="card small" { (e.to_string()) }
            p class="small" { "Fix it in the file; " code { "sauve settings validate FILE" } " lists the same problems." }
        },
    };
    render(state, viewer, "Settings", Tab::Settings, notice, body).await
}

/// `GET /settings`.
pub(crate) async fn page(State(state): State<PageState>, viewer: Viewer) -> Response {
    show(&state, &viewer, None, Values::new(), None).await
}

/// `POST /settings`: validate everything, write both files or neither.
pub(crate) async fn save(
    State(state): State<PageState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let csrf = pairs
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    let viewer = match check_post(&state, &headers, csrf) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    // The last value of each key wins (a checkbox follows its hidden False).
    let mut submitted = Values::new();
    for (k, v) in &pairs {
        if k != "csrf" {
            submitted.insert(k.clone(), v.clone());
        }
    }
    // The page's user may only point sauve where the operator allowed.
    let mut change = Change {
        confined: true,
        ..Change::default()
    };
    for (k, v) in &submitted {
        if k != ATTACHMENTS && key_info(k).is_some() {
            change.values.push((k.clone(), v.clone()));
        }
    }
    // In the order of the file, so that messages come in a stable order.
    change.values.sort_by_key(|(k, _)| {
        sauve_settings::key_paths()
            .position(|p| p == k)
            .unwrap_or(usize::MAX)
    });
    change.attachments = submitted
        .get(ATTACHMENTS)
        .map(|t| t.lines().map(str::to_owned).collect());
    let alerts = submitted.get(ALERTS_ON).map(|on| AlertsChange {
        on: on.clone(),
        stale_after: submitted
            .get(STALE_AFTER)
            .cloned()
            .filter(|s| !s.trim().is_empty()),
    });
    let app = state.inner.handle.app().to_path_buf();
    let outcome = tokio::task::spawn_blocking(move || save_both(&app, &change, alerts.as_ref()))
        .await
        .unwrap_or_else(|_| Err(Saved::Failed("the save did not finish".to_owned())));
    match outcome {
        Ok(saved) => {
            state.inner.handle.config().settings_saved();
            let mut message = if saved.is_empty() {
                "Nothing changed.".to_owned()
            } else {
                format!(
                    "✓ Saved {}. The scheduler applies the new settings now.",
                    saved.join(" and ")
                )
            };
            if let Ok(s) = state.inner.handle.config().settings().await {
                for w in &s.warnings {
                    message.push_str(&format!(" Warning: {w}."));
                }
            }
            show(
                &state,
                &viewer,
                None,
                Values::new(),
                Some(Notice::Done(message)),
            )
            .await
        }
        Err(Saved::Rejected(rejected)) => {
            let count = rejected.len();
            let errors: Values = rejected.into_iter().collect();
            let mut r = show(
                &state,
                &viewer,
                Some(submitted),
                errors,
                Some(Notice::Error(format!(
                    "✗ Not saved: {count} value{} refused (shown beside {}). The files are unchanged.",
                    if count == 1 { " was" } else { "s were" },
                    if count == 1 { "its field" } else { "their fields" },
                ))),
            )
            .await;
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            r
        }
        Err(Saved::Failed(m)) => {
            let mut r = show(
                &state,
                &viewer,
                Some(submitted),
                Values::new(),
                Some(Notice::Error(format!("✗ Not saved: {m}"))),
            )
            .await;
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            r
        }
    }
}

enum Saved {
    /// Key → message.
    Rejected(Vec<(String, String)>),
    Failed(String),
}

/// Checks both changes, then writes both: nothing is written if either is
/// refused. Returns the files written.
fn save_both(
    app: &std::path::Path,
    change: &Change,
    alerts: Option<&AlertsChange>,
) -> Result<Vec<String>, Saved> {
    let mut rejected = Vec::new();
    let mut failed = None;
    // The first save of an app that had no settings file makes it a sauve
    // app, which makes incremental sets (behaviour §21.1); an app of 4D's
    // own backup.4DSettings keeps its full sets.
    let first = matches!(
        sauve_settings::locate(app),
        sauve_settings::SettingsSource::Defaults
    );
    let xml = match prepare_settings_change(app, change) {
        Ok(c) => Some(c),
        Err(ChangeError::Rejected { rejected: r, .. }) => {
            rejected.extend(r.into_iter().map(|r| (r.key, r.message)));
            None
        }
        Err(ChangeError::Settings(e)) => {
            failed = Some(e.to_string());
            None
        }
    };
    // Alerts are written only when they differ from the file (no sauve.toml
    // is created for the default).
    let toml = match alerts {
        Some(a) => {
            let written = sauve_settings::alerts_as_written(app).unwrap_or_default();
            let same_on = written.0.as_deref().unwrap_or("give-up") == a.on.trim();
            let same_stale =
                written.1.as_deref().map(str::trim) == a.stale_after.as_deref().map(str::trim);
            if same_on && same_stale {
                None
            } else {
                match prepare_alerts_change(app, a, &sauve_settings::ProcessEnvironment) {
                    Ok(t) => Some(t),
                    Err(ChangeError::Rejected { rejected: r, .. }) => {
                        rejected.extend(r.into_iter().map(|r| (r.key, r.message)));
                        None
                    }
                    Err(ChangeError::Settings(e)) => {
                        failed = Some(e.to_string());
                        None
                    }
                }
            }
        }
        None => None,
    };
    // The first save's sauve.toml must be readable before anything is
    // written: a first save that wrote backup.4DSettings alone would no
    // longer be a first save when tried again.
    if first && let Err(e) = sauve_settings::prepare_new_app_incremental(app) {
        failed = Some(e.to_string());
    }
    if !rejected.is_empty() {
        return Err(Saved::Rejected(rejected));
    }
    if let Some(m) = failed {
        return Err(Saved::Failed(m));
    }
    let mut saved = Vec::new();
    let mut created = false;
    if let Some(x) = xml.filter(|x| x.written) {
        x.commit().map_err(|e| Saved::Failed(e.to_string()))?;
        saved.push(x.path.display().to_string());
        created = first;
    }
    if let Some(t) = toml.filter(|t| t.written) {
        t.commit().map_err(|e| Saved::Failed(e.to_string()))?;
        saved.push(t.path.display().to_string());
    }
    if created {
        let t = sauve_settings::prepare_new_app_incremental(app)
            .map_err(|e| Saved::Failed(e.to_string()))?;
        if t.written {
            t.commit().map_err(|e| Saved::Failed(e.to_string()))?;
            let path = t.path.display().to_string();
            if !saved.contains(&path) {
                saved.push(path);
            }
        }
    }
    Ok(saved)
}
