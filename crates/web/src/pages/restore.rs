//! The Restore page (behaviour §18, §13.1): choose a set and a destination on the
//! server (by default the folder next to the archive), confirm, then watch
//! the restore and read its result: files, bytes and the logs that could
//! be integrated next. Refused while a backup runs and into the folder of
//! the app this server runs, which the engine decides, and into another
//! app that a `sauve run`, a backup or a restore holds
//! ([`sauve_engine::hold_restore_target`], whose locks the restore holds).

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::Timestamp;
use maud::{Markup, html};
use sauve_archive::RestoreOptions;
use sauve_engine::Trigger;
use sauve_history::HistoryEntry;
use serde::Deserialize;

use crate::PageState;
use crate::auth::{Viewer, check_post};
use crate::format::{self, bytes, duration};
use crate::layout::{Notice, Tab};
use crate::pages::{errors, render};

/// Restores started from the page, newest kept.
#[derive(Default)]
pub(crate) struct Jobs {
    next: u64,
    jobs: BTreeMap<u64, Job>,
}

/// How many finished restores the page remembers.
const KEPT: usize = 20;

#[derive(Clone)]
struct Job {
    number: sauve_number::BackupNumber,
    archive: PathBuf,
    destination: PathBuf,
    started: Timestamp,
    done: Arc<AtomicU64>,
    total: Option<u64>,
    outcome: Option<Outcome>,
}

#[derive(Clone)]
enum Outcome {
    Restored {
        ended: Timestamp,
        destination: PathBuf,
        files: usize,
        bytes: u64,
        logs: Vec<PathBuf>,
        after_sequence: u64,
        warnings: Vec<String>,
    },
    Failed {
        status: i32,
        text: &'static str,
        message: String,
    },
}

impl Jobs {
    fn add(&mut self, job: Job) -> u64 {
        self.next += 1;
        self.jobs.insert(self.next, job);
        while self.jobs.len() > KEPT {
            let Some(oldest) = self.jobs.keys().next().copied() else {
                break;
            };
            self.jobs.remove(&oldest);
        }
        self.next
    }
}

fn jobs(state: &PageState) -> std::sync::MutexGuard<'_, Jobs> {
    state
        .inner
        .restores
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `?number=`.
#[derive(Deserialize, Default)]
pub(crate) struct Chosen {
    number: Option<String>,
}

/// The form.
#[derive(Deserialize, Default)]
pub(crate) struct RestoreForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    destination: String,
    #[serde(default)]
    force: Option<String>,
    #[serde(default)]
    confirm: Option<String>,
}

fn restorable(entries: &[HistoryEntry]) -> Vec<&HistoryEntry> {
    entries
        .iter()
        .rev()
        .filter(|e| e.is_numbered_backup() && !e.backup_path.is_empty())
        .collect()
}

fn default_destination(archive: &str) -> Option<PathBuf> {
    let set =
        sauve_archive::ArchiveName::parse(&FsPath::new(archive).file_name()?.to_string_lossy())?;
    Some(FsPath::new(archive).parent()?.join(format!(
        "{}[{}]",
        set.base,
        format::number(set.number)
    )))
}

fn form(
    entries: &[&HistoryEntry],
    chosen: Option<sauve_number::BackupNumber>,
    csrf: &str,
    destination: &str,
    force: bool,
    zone: &jiff::tz::TimeZone,
) -> Markup {
    html! {
        @if entries.is_empty() {
            p class="empty" { "No backup to restore yet — go to " a href="/" { "Backup" } " and make one." }
        } @else {
            form method="post" action="/restore" class="settings card" {
                input type="hidden" name="csrf" value=(csrf);
                div class="field" {
                    label for="number" { "Backup set" }
                    div {
                        select id="number" name="number" {
                            @for e in entries {
                                @let label = format!(
                                    "{} · {} · {}",
                                    format::number(e.backup_number),
                                    e.starting_date.parse::<Timestamp>().map_or_else(|_| e.starting_date.clone(), |t| format::local_text(t, zone, "%Y-%m-%d %H:%M")),
                                    e.status.map_or_else(|| "status unknown".to_owned(), |s| sauve_status::Status::from_code(s).to_string()),
                                );
                                option value=(e.backup_number) selected[Some(e.backup_number) == chosen] { (label) }
                            }
                        }
                    }
                }
                div class="field" {
                    label for="destination" { "Destination folder" span class="key" { "on the server" } }
                    div {
                        input type="text" id="destination" name="destination" value=(destination) placeholder="next to the archive" autocomplete="off" spellcheck="false";
                        div class="hint" { "An absolute path, or empty for the folder next to the archive named after the set (" code { "data[0042]/" } "). Never the folder of the app this server runs." }
                    }
                }
                div class="field" {
                    span {}
                    label { input type="checkbox" name="force" value="on" checked[force]; " Replace same-name files if the folder is not empty" }
                }
                div class="actions" { button type="submit" class="primary" { "Continue…" } }
            }
        }
    }
}

/// `GET /restore`.
pub(crate) async fn page(
    State(state): State<PageState>,
    viewer: Viewer,
    Query(chosen): Query<Chosen>,
) -> Response {
    let h = &state.inner.handle;
    let zone = h.clock().zone();
    let chosen = chosen.number.and_then(|n| n.parse().ok());
    let recent: Vec<(u64, Job)> = jobs(&state)
        .jobs
        .iter()
        .rev()
        .map(|(id, j)| (*id, j.clone()))
        .collect();
    let body = match h.records().history().await {
        Ok(entries) => {
            let list = restorable(&entries);
            html! {
                p class="muted" { "A restore writes a set's files into a folder on the server and checks every checksum before anything is moved into place. The running app is never touched." }
                (form(&list, chosen, &viewer.csrf, "", false, &zone))
                @if !recent.is_empty() {
                    section class="card" {
                        h2 { "Recent restores" }
                        ul {
                            @for (id, j) in &recent {
                                li {
                                    a href={"/restore/" (id)} { "Backup " (format::number(j.number)) " → " (j.destination.display()) }
                                    " " span class="small muted" { @match &j.outcome { None => "running", Some(Outcome::Restored { .. }) => "✓ done", Some(Outcome::Failed { .. }) => "✗ failed" } }
                                }
                            }
                        }
                    }
                }
            }
        }
        Err(e) => {
            html! { p class="notice error" { "The history cannot be read: " (e.to_string()) } }
        }
    };
    render(&state, &viewer, "Restore", Tab::Restore, None, body).await
}

/// What the form asks, checked: the set's archive, the destination, force.
fn read_form(
    f: &RestoreForm,
    entries: &[HistoryEntry],
    (app, allowed): (&std::path::Path, &sauve_settings::Allowed),
) -> Result<(HistoryEntry, PathBuf, bool), String> {
    let number: sauve_number::BackupNumber = f.number.trim().parse().map_err(|_| {
        format!(
            "Backup set \"{}\" is not a number (accepted: a set of the list)",
            f.number
        )
    })?;
    let entry = restorable(entries)
        .into_iter()
        .find(|e| e.backup_number == number)
        .cloned()
        .ok_or_else(|| {
            format!(
                "No backup numbered {} is in this app's history (accepted: a set of the list)",
                format::number(number)
            )
        })?;
    let written = f.destination.trim();
    let destination = if written.is_empty() {
        default_destination(&entry.backup_path).ok_or_else(|| {
            format!(
                "The archive \"{}\" has no sauve name; give a destination",
                entry.backup_path
            )
        })?
    } else {
        let p = PathBuf::from(written);
        if written.contains('\0') || !p.is_absolute() {
            return Err(format!(
                "Destination \"{written}\" is not accepted (accepted: an absolute folder path on the server such as /srv/restores/app, or empty for the folder next to the archive)"
            ));
        }
        p
    };
    // Never into the app this server serves (it is in use), and only where
    // the operator allowed (SECURITY.md, "The page").
    if sauve_settings::is_inside_app(app, &destination) {
        return Err(format!(
            "Destination \"{}\" is the app this server serves, or inside it; a restore never writes into an app in use (accepted: a folder outside {})",
            destination.display(),
            app.display()
        ));
    }
    if !allowed.permits_path(&destination) {
        return Err(format!(
            "Destination {}",
            allowed.refusal(&format!("\"{}\"", destination.display()))
        ));
    }
    Ok((entry, destination, f.force.is_some()))
}

/// Where the page may restore to: what `[security]` allows, and the
/// destination in force. An unreadable `[security]` allows nothing but
/// the destination.
fn allowed_targets(app: &std::path::Path) -> sauve_settings::Allowed {
    let current = sauve_settings::load_effective(app).ok().and_then(|e| {
        sauve_settings::resolve_destination_to_read(
            app,
            &e.doc.settings().general.destination_folder,
        )
        .ok()
    });
    let security = sauve_settings::load_security(app).unwrap_or(sauve_settings::SecuritySettings {
        allowed_paths: Some(Vec::new()),
    });
    sauve_settings::Allowed::of(app, &security, current.as_ref())
}

/// A restore the form asks for, checked, with the destination held.
struct Checked {
    entry: HistoryEntry,
    destination: PathBuf,
    force: bool,
    /// The locks of an app at the destination, held until the restore ends.
    held: Vec<std::fs::File>,
}

/// `POST /restore`: a confirmation first, then the restore in the
/// background and its page.
pub(crate) async fn start(
    State(state): State<PageState>,
    headers: HeaderMap,
    Form(f): Form<RestoreForm>,
) -> Response {
    let viewer = match check_post(&state, &headers, Some(&f.csrf)) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let zone = state.inner.handle.clock().zone();
    let entries = match crate::pages::history_or_page(&state, "Restore", "/restore").await {
        Ok(e) => e,
        Err(page) => return page,
    };
    let checked = match check(&state, &f, &entries).await {
        Ok(c) => c,
        Err(message) => return refused(&state, &viewer, &f, &entries, &zone, message).await,
    };
    if f.confirm.as_deref() != Some("yes") {
        return confirmation(&state, &viewer, &f, checked).await;
    }
    let id = spawn_job(&state, checked);
    Redirect::to(&format!("/restore/{id}")).into_response()
}

/// The form read (`read_form`) against the history and where the page may
/// restore to, then the destination held.
async fn check(
    state: &PageState,
    f: &RestoreForm,
    entries: &[HistoryEntry],
) -> Result<Checked, String> {
    let app = state.inner.handle.app().to_path_buf();
    let allowed = match tokio::task::spawn_blocking({
        let app = app.clone();
        move || allowed_targets(&app)
    })
    .await
    {
        Ok(a) => a,
        Err(_) => allowed_targets(&app),
    };
    let (entry, destination, force) = read_form(f, entries, (&app, &allowed))?;
    // Never into another app that a `sauve run`, a backup or a
    // restore holds (1402), whatever force says; the locks are held
    // until the restore ends (dropped at once when only confirming).
    let target = destination.clone();
    let held =
        tokio::task::spawn_blocking(move || sauve_engine::hold_restore_target(&target, Some(&app)))
            .await
            .unwrap_or_else(|e| Err(sauve_engine::EngineError::Internal(e.to_string())))
            .map_err(|e| format!("Destination refused (status {}): {e}", e.status().code()))?;
    Ok(Checked {
        entry,
        destination,
        force,
        held,
    })
}

/// The form again as it was sent, with why it was refused (422).
async fn refused(
    state: &PageState,
    viewer: &Viewer,
    f: &RestoreForm,
    entries: &[HistoryEntry],
    zone: &jiff::tz::TimeZone,
    message: String,
) -> Response {
    let list = restorable(entries);
    let chosen = f.number.trim().parse().ok();
    let body = form(
        &list,
        chosen,
        &viewer.csrf,
        &f.destination,
        f.force.is_some(),
        zone,
    );
    let mut r = render(
        state,
        viewer,
        "Restore",
        Tab::Restore,
        Some(Notice::Error(message)),
        body,
    )
    .await;
    *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    r
}

/// The confirmation of a checked restore, which sends the form again
/// with `confirm=yes`; nothing stays held meanwhile.
async fn confirmation(
    state: &PageState,
    viewer: &Viewer,
    f: &RestoreForm,
    checked: Checked,
) -> Response {
    let Checked {
        entry,
        destination,
        force,
        held,
    } = checked;
    drop(held);
    let body = html! {
        section class="card" {
            h2 { "Restore backup " (format::number(entry.backup_number)) "?" }
            dl class="facts" {
                dt { "Archive" } dd class="mono" { (entry.backup_path) }
                dt { "Into" } dd class="mono" { (destination.display()) }
                dt { "If the folder is not empty" } dd { @if force { "same-name files are replaced, others kept" } @else { "the restore is refused" } }
            }
            form method="post" action="/restore" class="actions" {
                input type="hidden" name="csrf" value=(viewer.csrf);
                input type="hidden" name="number" value=(entry.backup_number);
                input type="hidden" name="destination" value=(f.destination);
                @if force { input type="hidden" name="force" value="on"; }
                input type="hidden" name="confirm" value="yes";
                button type="submit" class="primary" { "Restore" }
                a class="button" href={"/restore?number=" (entry.backup_number)} { "Change" }
            }
        }
    };
    render(
        state,
        viewer,
        "Confirm the restore",
        Tab::Restore,
        None,
        body,
    )
    .await
}

/// Starts the restore in the background as a job of the page, which
/// records its outcome when it ends; the job's id.
fn spawn_job(state: &PageState, checked: Checked) -> u64 {
    let Checked {
        entry,
        destination,
        force,
        held,
    } = checked;
    let h = state.inner.handle.clone();
    let done = Arc::new(AtomicU64::new(0));
    let archive = PathBuf::from(&entry.backup_path);
    let job = Job {
        number: entry.backup_number,
        archive: archive.clone(),
        destination: destination.clone(),
        started: h.clock().now(),
        done: done.clone(),
        total: entry.files.as_ref().map(|f| f.iter().map(|f| f.size).sum()),
        outcome: None,
    };
    let id = jobs(state).add(job);
    let options = RestoreOptions {
        to: Some(destination),
        force,
    };
    let worker = state.clone();
    tokio::spawn(async move {
        let result = h
            .restore_watched(&archive, options, Trigger::Manual, done)
            .await;
        drop(held);
        let outcome = outcome(result, h.clock().now());
        if let Some(j) = jobs(&worker).jobs.get_mut(&id) {
            j.outcome = Some(outcome);
        }
    });
    id
}

/// What a restore that ended at `ended` shows.
fn outcome(
    result: Result<sauve_engine::Restored, sauve_engine::EngineError>,
    ended: Timestamp,
) -> Outcome {
    match result {
        Ok(r) => {
            let report = r.report;
            let current = FsPath::new(&report.manifest.header.data_path).with_extension("journal");
            Outcome::Restored {
                ended,
                logs: sauve_engine::integrable_logs(&report, Some(&current)),
                after_sequence: report.manifest.header.last_log_sequence.unwrap_or(0),
                destination: report.destination,
                files: report.files,
                bytes: report.bytes,
                warnings: r.warnings,
            }
        }
        Err(e) => Outcome::Failed {
            status: e.status().code(),
            text: e.status().text(),
            message: e.to_string(),
        },
    }
}

/// `GET /restore/{job}`: progress while it runs (the page reloads itself
/// each second), then the result.
pub(crate) async fn job(
    State(state): State<PageState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let job = id
        .parse::<u64>()
        .ok()
        .and_then(|id| jobs(&state).jobs.get(&id).cloned());
    let Some(j) = job else {
        return errors::page(
            StatusCode::NOT_FOUND,
            "No such restore",
            "This restore is not known here (the server keeps the last 20 since it started).",
            "/restore",
        );
    };
    let zone = state.inner.handle.clock().zone();
    let done = j.done.load(Ordering::Relaxed);
    let body = html! {
        section class="card" id="restore-job" data-state=(match &j.outcome { None => "running", Some(Outcome::Restored { .. }) => "done", Some(Outcome::Failed { .. }) => "failed" }) {
            dl class="facts" {
                dt { "Archive" } dd class="mono" { (j.archive.display()) }
                dt { "Into" } dd class="mono" { (j.destination.display()) }
                dt { "Started" } dd { (format::time(j.started, &zone)) }
            }
            @match &j.outcome {
                None => {
                    meta http-equiv="refresh" content="1";
                    @let percent = j.total.filter(|t| *t > 0).map(|t| (done as f64 * 100.0 / t as f64).min(100.0));
                    label for="restore-progress" { "Restoring…" }
                    @if let Some(p) = percent {
                        progress id="restore-progress" max="100" value=(format!("{p:.0}")) { (format!("{p:.0} %")) }
                    } @else {
                        progress id="restore-progress" {}
                    }
                    p class="small" { (bytes(done)) @if let Some(t) = j.total { " of " (bytes(t)) } " written, checked before anything is moved into place." }
                }
                Some(Outcome::Restored { ended, destination, files, bytes: b, logs, after_sequence, warnings }) => {
                    p class="notice done" role="status" {
                        "✓ Restored " (format::count(*files, "file", "files")) " (" (bytes(*b)) ") into " code { (destination.display()) }
                        " in " (duration(std::time::Duration::try_from(ended.duration_since(j.started)).unwrap_or_default())) "."
                    }
                    @for w in warnings { p class="notice error small" { "Warning: " (w) } }
                    h2 { "Logs to integrate" }
                    @if logs.is_empty() {
                        p class="muted" { "None: no log follows this backup." }
                    } @else {
                        p class="small" { "A host with an apply function integrates these, in order, after sequence " (after_sequence) ":" }
                        ol { @for l in logs { li class="mono small" { (l.display()) } } }
                    }
                }
                Some(Outcome::Failed { status, text, message }) => {
                    p class="notice error" role="alert" {
                        "✗ Not restored: " strong { (status) " " (text) } " — " (message)
                    }
                    p class="small muted" { "Nothing was moved into the destination." }
                }
            }
        }
        p { a href="/restore" { "← Restore" } }
    };
    let title = format!("Restore of backup {}", format::number(j.number));
    render(&state, &viewer, &title, Tab::Restore, None, body).await
}
