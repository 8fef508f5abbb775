//! The Backup page, the MSC's three areas (behaviour §18): the destination with
//! its space, the last backup information, the contents of the backup; the
//! schedule; the Backup button; and, while a backup runs whoever started
//! it, the thermometer with Stop, moved live by the engine's events. Once
//! the run ends the script leaves its card at its end, with its final
//! state only: no Stop, no time left, and the number of its set or none.

use std::time::Duration;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use maud::{Markup, html};
use sauve_engine::{
    Admission, ContentPart, ContentSummary, DestinationState, DestinationUsage, LastBackup,
    LiveRun, Trigger,
};
use sauve_settings::Frequency;
use serde::Deserialize;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use crate::PageState;
use crate::auth::{Viewer, check_post};
use crate::format::{self, bytes, duration, status, time};
use crate::layout::Tab;
use crate::pages::{answer, render};

/// A form that carries only its CSRF token.
#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub(crate) csrf: String,
}

/// `GET /`.
pub(crate) async fn page(State(state): State<PageState>, viewer: Viewer) -> Response {
    let h = &state.inner.handle;
    let zone = h.clock().zone();
    let live = h.live().borrow().clone();
    let last = h.records().last_backup().await;
    let destination = h.config().destination().await;
    let offsite = h.offsite().status().await.unwrap_or_default();
    let content = h.config().content().await;
    let settings = h.config().settings().await;
    let view = *state.inner.scheduler.borrow();
    let now = h.clock().now();
    let kept = h.records().state().await.unwrap_or_default();
    let body = html! {
        (thermometer(live.as_ref(), &viewer.csrf, now))
        div class="grid" {
            section class="card" aria-labelledby="dest-title" {
                h2 id="dest-title" { "Backup file destination" }
                @match &destination {
                    Ok(d) => (destination_card(d)),
                    Err(e) => p class="notice error" { (e.to_string()) },
                }
                @if !offsite.is_empty() {
                    (offsite_list(&offsite))
                }
            }
            section class="card" aria-labelledby="last-title" {
                h2 id="last-title" { "Last backup information" }
                div id="last-backup" { (last_backup(last.as_ref(), &zone)) }
            }
            section class="card" aria-labelledby="content-title" {
                h2 id="content-title" { "Contents of the backup file" }
                @match &content {
                    Ok(c) => (contents(c)),
                    Err(e) => p class="notice error" { "The settings cannot be read: " (e.to_string()) },
                }
            }
            section class="card" aria-labelledby="schedule-title" {
                h2 id="schedule-title" { "Schedule" }
                dl class="facts" {
                    dt { "Next scheduled backup" }
                    dd {
                        @match (view.next, &settings) {
                            (_, Ok(s)) if s.settings.scheduler.frequency == Frequency::Never => {
                                "None: Frequency is Never. " a href="/settings#scheduler" { "Set a schedule" }
                            }
                            (Some(next), _) => (time(next, &zone)),
                            (None, _) if view.disabled => "None while the scheduler is off",
                            (None, _) if view.checked.is_none() => "Not known: no scheduler runs in this server",
                            (None, _) => "None",
                        }
                    }
                    dt { "Scheduler" }
                    dd {
                        @if view.disabled {
                            strong class="missing" { "✗ Off after 1401" }
                            div class="small" {
                                "Scheduled backups gave up after repeated failures"
                                @if let Some(l) = &last { " (last: " (l.status.code()) " " (l.status.text()) ")" }
                                ". A successful backup started here, or a restart of the server, turns them on again."
                            }
                        } @else if view.checked.is_some() {
                            span class="found" { "✓ On" }
                            @if let Some(c) = view.checked {
                                span class="small muted" { " · settings read " (time(c, &zone)) }
                            }
                        } @else {
                            "Not running in this server"
                        }
                    }
                    @if let Err(e) = &settings {
                        dt { "Settings" }
                        dd class="missing" { "✗ Invalid (1419): " (e.to_string()) }
                    }
                }
            }
        }
        section class="card" aria-labelledby="proof-title" {
            h2 id="proof-title" { "Proven recovery" }
            (proof(&kept, sauve_engine::data_size(h.app()), (now, &zone)))
            form method="post" action="/rehearse" data-async="rehearse" class="actions" {
                input type="hidden" name="csrf" value=(viewer.csrf);
                button type="submit" id="rehearse-button" disabled[live.is_some()] { "Rehearse a restore now" }
            }
        }
        section class="card" aria-labelledby="start-title" {
            h2 id="start-title" { "Back up now" }
            p class="muted small" {
                "Copies the structure, the data file, the log and the attachments into a new numbered set. "
                "Writers wait while the data is copied; readers are never blocked."
            }
            form method="post" action="/backup" data-async="backup" class="actions" {
                input type="hidden" name="csrf" value=(viewer.csrf);
                button type="submit" class="primary" id="backup-button" disabled[live.is_some()] { "Backup" }
            }
        }
    };
    render(&state, &viewer, "Backup", Tab::Backup, None, body).await
}

/// The thermometer: hidden when nothing runs, filled from the run in
/// progress when the page is made, moved by the script afterwards.
fn thermometer(live: Option<&LiveRun>, csrf: &str, now: jiff::Timestamp) -> Markup {
    let (done, total) = live.map_or((0, 0), |r| (r.bytes_done, r.bytes_total));
    let percent = if total > 0 {
        (done as f64 * 100.0 / total as f64).min(100.0)
    } else {
        0.0
    };
    let elapsed = live
        .and_then(|r| r.started)
        .and_then(|s| Duration::try_from(now.duration_since(s)).ok())
        .filter(|e| e.as_secs_f64() > 0.5);
    let rate = elapsed
        .map(|e| done as f64 / e.as_secs_f64())
        .filter(|r| *r > 0.0);
    html! {
        section class="card thermometer" id="run" aria-labelledby="run-title" aria-live="polite" hidden[live.is_none()] data-trigger=(live.map_or("", |r| r.trigger.as_str())) {
            h2 id="run-title" {
                @match live {
                    Some(r) if r.number > 0.into() => { "Backup " (format::number(r.number)) " is running (" (r.trigger.as_str()) ")" },
                    Some(r) => { "A backup is starting (" (r.trigger.as_str()) ")" },
                    None => { "Backup" },
                }
            }
            p { "Phase: " strong id="run-phase" { (live.map_or("", |r| phase(r.phase))) } }
            label for="run-progress" class="small muted" { "Progress of the backup" }
            progress id="run-progress" max="100" value=(format!("{percent:.0}")) { (format!("{percent:.0} %")) }
            div class="numbers" {
                span id="run-percent" { (format!("{percent:.0} %")) }
                span id="run-bytes" { (bytes(done)) " of " (bytes(total)) }
                span id="run-rate" { @if let Some(r) = rate { (bytes(r as u64)) "/s" } }
                span id="run-eta" {
                    @if let Some(r) = rate {
                        "about " (duration(Duration::from_secs_f64((total.saturating_sub(done)) as f64 / r))) " left"
                    }
                }
            }
            div class="file mono" id="run-file" { (live.map_or("", |r| r.file.as_str())) }
            noscript { p class="small" { a href="/" { "Reload" } " to see the progress." } }
            // Only while a run is under way: an ended run's card (the
            // script keeps it, at its end) shows its final state only.
            form method="post" action="/stop" data-async="stop" class="actions" id="stop-form" hidden[live.is_none()] {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" class="danger" id="stop-button" disabled[live.is_none()] { "■ Stop" }
                span class="small muted" { "Stopping ends the backup with 1406; earlier sets are untouched." }
            }
        }
    }
}

fn phase(p: sauve_engine::Phase) -> &'static str {
    use sauve_engine::Phase as P;
    match p {
        P::Precheck => "checking",
        P::WaitingLock => "waiting for writes to end",
        P::Data => "copying the data",
        P::Structure => "copying the structure",
        P::Attachments => "copying the attachments",
        P::Verify => "verifying",
        P::Commit => "committing",
        P::Retention => "deleting old sets",
    }
}

fn destination_card(d: &DestinationUsage) -> Markup {
    html! {
        dl class="facts" {
            dt { @if d.state == DestinationState::Store { "Bucket" } @else { "Folder" } }
            dd {
                span class="mono" { (d.path.display()) }
                @match d.state {
                    DestinationState::Folder => {},
                    DestinationState::Missing => { " " span class="muted small" { "(created by the first backup)" } },
                    DestinationState::NotAFolder => { div class="missing small" { "✗ Not a folder: backups fail with 1407 until it is one. " a href="/settings#configuration" { "Change the destination" } } },
                    DestinationState::Store => { " " span class="muted small" { "(an object store: sets are streamed there, nothing is kept on this disk)" } },
                }
            }
            @if d.state == DestinationState::Store {
            } @else if let (Some(free), Some(total)) = (d.free_bytes, d.total_bytes) {
                dt { "Disk" }
                dd {
                    label for="disk-meter" class="small muted" { "Used space on the disk" }
                    meter id="disk-meter" min="0" max=(total) value=(total.saturating_sub(free)) low=(total / 100 * 80) high=(total / 100 * 90) optimum="0" {
                        (bytes(total.saturating_sub(free))) " used of " (bytes(total))
                    }
                    div class="small" { (bytes(free)) " free of " (bytes(total)) }
                }
            } @else {
                dt { "Disk" }
                dd class="muted" { "Free space unknown" }
            }
            @if d.state != DestinationState::Store {
                dt { "This app's sets" }
                dd { (bytes(d.used_by_app)) }
            }
        }
    }
}

/// The off-site copies, one line per `[[offsite]]` destination (behaviour §19).
fn offsite_list(list: &[sauve_engine::OffsiteStatus]) -> Markup {
    html! {
        h3 class="small" { "Off-site copies" }
        ul class="offsite" {
            @for o in list {
                li {
                    span class="mono" { (o.url) } ": "
                    (o.copied) " copied"
                    @if o.pending > 0 { ", " (o.pending) " pending" }
                    @if o.failed > 0 { ", " span class="missing" { (o.failed) " failed" } }
                    @if let Some(keep) = o.keep { span class="muted small" { " (keeps " (keep) ")" } }
                    @if let Some(f) = &o.last_failure {
                        div class="missing small" {
                            "✗ Set " (format::number(f.number)) ", attempt " (f.attempts) ": "
                            (f.reason.as_deref().unwrap_or("failed"))
                            " — retried with backoff, and at the next backup."
                        }
                    }
                }
            }
        }
    }
}

/// Proof of recoverability (behaviour §22): the last proven restore, the
/// recovery point and time, and a rehearsal that proved nothing since.
fn proof(
    kept: &sauve_engine::EngineState,
    data_now: Option<u64>,
    (now, zone): (jiff::Timestamp, &jiff::tz::TimeZone),
) -> Markup {
    let last = kept.last_rehearsal.as_ref();
    let state = sauve_engine::ProofState::of(last);
    html! {
        @match &kept.proven {
            Some(p) => {
                p id="proof-summary" {
                    "Last proven restore: set " (format::number(p.number)) " from "
                    span class="mono" { (p.source) } ", " (sauve_engine::ago(p.ended, now))
                    ", restored in " (sauve_engine::took(p.restore_ms + p.integrate_ms))
                    @if let Some(rate) = p.rate_mib_s { " (read at most " (rate) " MiB/s)" }
                    "."
                }
                dl class="facts" {
                    dt { "Recovery point" }
                    dd { @match p.point { Some(t) => { (time(t, zone)) span class="small muted" { " · " (sauve_engine::ago(t, now)) } }, None => "—" } }
                    dt { "Recovery time" }
                    dd {
                        @if let Some(ms) = sauve_engine::recovery_ms(kept, data_now) {
                            "about " (sauve_engine::took(ms))
                            span class="small muted" { " at today's data size" }
                        }
                    }
                }
            }
            None => p class="empty" id="proof-summary" {
                "No restore proven yet: a rehearsal restores a set into a sandbox, integrates its logs and runs the check."
            }
        }
        @if let Some(l) = last.filter(|_| state != sauve_engine::ProofState::Proven) {
            @let class = if state == sauve_engine::ProofState::Failed { "notice error" } else { "notice" };
            p class=(class) id="proof-last" {
                @match state {
                    sauve_engine::ProofState::Failed => "✗ The last rehearsal failed",
                    sauve_engine::ProofState::Stopped => "The last rehearsal was stopped",
                    _ => "Not provable on this host",
                }
                " (set " (format::number(l.number)) ", " (sauve_engine::ago(l.ended, now)) "): "
                (l.error.as_deref().unwrap_or(""))
            }
        }
        @if let Some(sample) = &kept.sample {
            @if let Some(l) = &sample.last {
                p class="small muted" id="proof-sample" {
                    "Last sample of the stored bytes: " (l.pieces) " pieces (" (bytes(l.bytes)) ") of "
                    (l.sets) " kept sets, " (sauve_engine::ago(l.at, now))
                    @if sample.damaged.is_empty() { ": sound." } @else { "." }
                }
            }
            @for d in &sample.damaged {
                p class="notice error" { "✗ " (d.to_string()) ". An automatic restore never picks it." }
            }
        }
    }
}

/// `POST /rehearse`: starts a restore rehearsal (behaviour §22) in the
/// background; its end is recorded (journal, history, this page).
pub(crate) async fn rehearse(
    State(state): State<PageState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(r) = check_post(&state, &headers, Some(&form.csrf)) {
        return r.into_response();
    }
    let options = sauve_engine::RehearsalOptions {
        trigger: Trigger::Manual,
        ..sauve_engine::RehearsalOptions::default()
    };
    match state.inner.handle.rehearsals().begin(options).await {
        Ok(running) => {
            tokio::spawn(async move {
                match running.report().await {
                    Ok(done) => {
                        tracing::info!("rehearsal of {}: {}", done.record.set, done.record.status)
                    }
                    Err(e) => tracing::warn!("the rehearsal did not end: {e}"),
                }
            });
            answer(
                &headers,
                StatusCode::ACCEPTED,
                "Rehearsal started: its result appears here and in the Journal once it ends.",
                "/",
            )
        }
        Err(e) => answer(
            &headers,
            StatusCode::CONFLICT,
            &format!(
                "Not started: {} {} ({e}).",
                e.status().code(),
                e.status().text()
            ),
            "/",
        ),
    }
}

/// The "Last backup information" area (also `GET /parts/last`).
pub(crate) fn last_backup(last: Option<&LastBackup>, zone: &jiff::tz::TimeZone) -> Markup {
    let Some(l) = last else {
        return html! { p class="empty" { "No backup yet — click " strong { "Backup" } " below to make the first one." } };
    };
    html! {
        dl class="facts" {
            dt { "Status" } dd { (status(l.status)) }
            dt { "Date" } dd { (time(l.started, zone)) }
            dt { "Duration" } dd { (duration(l.duration())) }
            dt { "Number" } dd {
                @if l.number > 0.into() {
                    a href={"/history/" (l.number)} { (format::number(l.number)) }
                } @else { span class="muted" { "none (no archive)" } }
            }
            dt { "Started by" } dd { (l.trigger.as_str()) }
            dt { "Data lock" } dd { (l.data_lock.map_or_else(|| "—".to_owned(), duration)) }
            dt { "Structure lock" } dd { (l.structure_lock.map_or_else(|| "—".to_owned(), duration)) }
            dt { "Archive" } dd class="mono" {
                @match &l.archive { Some(a) => (a.display()), None => span class="muted" { "none" } }
            }
            @if let Some(log) = &l.log_archive {
                dt { "Log backup" } dd class="mono" { (log.display()) }
            }
        }
    }
}

fn contents(c: &ContentSummary) -> Markup {
    let label = |p: ContentPart| match p {
        ContentPart::Structure => "Structure",
        ContentPart::DataFile => "Data file",
        ContentPart::Log => "Log file",
        ContentPart::Attachment => "Attachment",
    };
    html! {
        @if c.items.is_empty() {
            p class="empty" { "Nothing is included: the settings leave out the structure, the data and every attachment. " a href="/settings#configuration" { "Choose what to back up" } }
        } @else {
            ul class="contents" {
                @for i in &c.items {
                    li {
                        span class="what" { (label(i.part)) }
                        " "
                        @if i.found {
                            span class="found" { "✓ found" }
                        } @else if i.part == ContentPart::Log && i.note.as_deref().is_some_and(|n| !n.contains("1403")) {
                            span class="muted" { "— none" }
                        } @else {
                            span class="missing" { "✗ NOT FOUND" }
                        }
                        @if let Some(size) = i.size { " " span class="small muted" { (bytes(size)) } }
                        div class="mono small" { (i.written) }
                        @if let Some(n) = &i.note { div class="small muted" { (n) } }
                    }
                }
            }
            @if c.is_partial() {
                p class="small" { "◐ A backup now would be " strong { "partial (-43)" } ": a missing attachment is left out and the rest is saved." }
            }
        }
    }
}

/// `POST /backup`: starts a backup (trigger `manual`: a person asked).
pub(crate) async fn start(
    State(state): State<PageState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(r) = check_post(&state, &headers, Some(&form.csrf)) {
        return r.into_response();
    }
    let mut running = state.inner.handle.begin(Trigger::Manual);
    match running.admitted().await {
        Ok(Admission::Started { number, .. }) => answer(
            &headers,
            StatusCode::ACCEPTED,
            &format!("Backup {} started.", format::number(number)),
            "/",
        ),
        Ok(Admission::Ended(report)) => {
            let why = report
                .errors
                .first()
                .cloned()
                .unwrap_or_else(|| report.status.text().to_owned());
            answer(
                &headers,
                StatusCode::CONFLICT,
                &format!(
                    "Not started: {} {} ({why}).",
                    report.status.code(),
                    report.status.text()
                ),
                "/",
            )
        }
        Err(e) => answer(
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            &e.to_string(),
            "/",
        ),
    }
}

/// `POST /stop`: Stop (1406).
pub(crate) async fn stop(
    State(state): State<PageState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(r) = check_post(&state, &headers, Some(&form.csrf)) {
        return r.into_response();
    }
    match state.inner.handle.stop().await {
        Ok(true) => answer(
            &headers,
            StatusCode::OK,
            "Stopping: the backup ends with 1406 Stopped by the user.",
            "/",
        ),
        Ok(false) => answer(&headers, StatusCode::CONFLICT, "No backup is running.", "/"),
        Err(e) => answer(
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            &e.to_string(),
            "/",
        ),
    }
}

/// `GET /events`: the engine's events for the page's script (the objects
/// of `sauve backup --json`).
pub(crate) async fn events(State(state): State<PageState>, _viewer: Viewer) -> Response {
    let stream = BroadcastStream::new(state.inner.handle.subscribe()).filter_map(|e| {
        let data = serde_json::to_string(&e.ok()?).ok()?;
        Some(Ok::<Event, std::convert::Infallible>(
            Event::default().data(data),
        ))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// `GET /parts/last`: the last backup information, for the script after a
/// run ends.
pub(crate) async fn last_part(State(state): State<PageState>, _viewer: Viewer) -> Response {
    let h = &state.inner.handle;
    let last = h.records().last_backup().await;
    Html(last_backup(last.as_ref(), &h.clock().zone()).into_string()).into_response()
}
