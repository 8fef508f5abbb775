//! The History page (behaviour §18): `backupHistory.json` as a table, newest
//! first, failures marked, paged; a set's page with its files,
//! attachments and a Verify button.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use maud::{Markup, html};
use sauve_history::{HistoryEntry, Operation};
use sauve_status::Status;
use serde::Deserialize;

use crate::PageState;
use crate::auth::{Viewer, check_post};
use crate::format::{self, bytes, duration, status};
use crate::layout::{Notice, Tab};
use crate::pages::backup::CsrfForm;
use crate::pages::errors::{self, wants_json};
use crate::pages::render;

/// Entries on a page unless `per` says otherwise.
pub(crate) const PER_PAGE: usize = 100;
/// The most `per` may ask for.
pub(crate) const MAX_PER_PAGE: usize = 1000;

/// `?page=&per=`.
#[derive(Deserialize, Default)]
pub(crate) struct Paging {
    pub(crate) page: Option<String>,
    pub(crate) per: Option<String>,
}

impl Paging {
    /// The page (from 1) and its size, or what was wrong.
    pub(crate) fn read(&self) -> Result<(usize, usize), String> {
        let num = |v: &Option<String>, name: &str, max: usize, default: usize| match v {
            None => Ok(default),
            Some(t) if t.trim().is_empty() => Ok(default),
            Some(t) => t
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    format!(
                        "{name}=\"{t}\" is not accepted (accepted: a whole number from 1 to {max})"
                    )
                }),
        };
        Ok((
            num(&self.page, "page", usize::MAX, 1)?,
            num(&self.per, "per", MAX_PER_PAGE, PER_PAGE)?,
        ))
    }
}

fn started(e: &HistoryEntry) -> Option<Timestamp> {
    e.starting_date.parse().ok()
}

fn entry_status(e: &HistoryEntry) -> Option<Status> {
    e.status.filter(|s| *s != -1).map(Status::from_code)
}

fn set_size(e: &HistoryEntry) -> Option<u64> {
    e.files.as_ref().map(|f| f.iter().map(|f| f.size).sum())
}

fn operation(e: &HistoryEntry) -> &'static str {
    match e.operation() {
        Operation::Backup => "Backup",
        Operation::Restore => "Restore",
        Operation::Integration => "Log integration",
        Operation::Rehearsal => "Restore rehearsal",
    }
}

/// The history table of `entries` (oldest first, as the file keeps them),
/// newest first, page `page` of `per` rows.
pub(crate) fn table(
    entries: &[HistoryEntry],
    page: usize,
    per: usize,
    zone: &jiff::tz::TimeZone,
) -> Markup {
    let total = entries.len();
    let pages = total.div_ceil(per).max(1);
    let page = page.min(pages);
    let rows = entries.iter().rev().skip((page - 1) * per).take(per);
    html! {
        @if total == 0 {
            p class="empty" { "No backup yet — go to " a href="/" { "Backup" } " and click " strong { "Backup" } "." }
        } @else {
            p class="muted small" { (total) " entries · page " (page) " of " (pages) }
            div class="table-wrap" {
                table {
                    caption class="visually-hidden" { "Backup history, newest first" }
                    thead { tr {
                        th scope="col" { "Number" }
                        th scope="col" { "Start" }
                        th scope="col" class="num" { "Duration" }
                        th scope="col" { "Status" }
                        th scope="col" class="wide" { "Started by" }
                        th scope="col" class="num wide" { "Size" }
                        th scope="col" class="wide" { "Archive" }
                    } }
                    tbody {
                        @for e in rows { (row(e, zone)) }
                    }
                }
            }
            @if pages > 1 {
                nav class="pager" aria-label="History pages" {
                    @if page > 1 { a class="button" href={"/history?page=" (page - 1) "&per=" (per)} rel="prev" { "← Newer" } }
                    span { "Page " (page) " of " (pages) }
                    @if page < pages { a class="button" href={"/history?page=" (page + 1) "&per=" (per)} rel="next" { "Older →" } }
                }
            }
        }
    }
}

fn row(e: &HistoryEntry, zone: &jiff::tz::TimeZone) -> Markup {
    let st = entry_status(e);
    let failed = st.is_some_and(|s| !matches!(s, Status::Ok | Status::AttachmentNotFound));
    html! {
        tr class=[failed.then_some("failed-row")] {
            td {
                @if e.is_numbered_backup() {
                    a href={"/history/" (e.backup_number)} { (format::number(e.backup_number)) }
                } @else {
                    span class="muted" { (operation(e)) }
                }
            }
            td { @match started(e) { Some(t) => (format::time(t, zone)), None => (e.starting_date) } }
            td class="num" { (duration(std::time::Duration::from_millis(e.duration))) }
            td { @match st { Some(s) => (status(s)), None => span class="muted" { "unknown" } } }
            td class="wide" { (e.trigger.as_deref().unwrap_or("—")) }
            td class="num wide" { @match set_size(e) { Some(s) => (bytes(s)), None => "—" } }
            td class="wide mono small" { (format::file_name(&e.backup_path)) }
        }
    }
}

/// The history table of `entries` as the page renders it, for
/// `cargo xtask bench page`.
pub fn render_history_for_bench(entries: &[HistoryEntry], per: usize) -> String {
    table(entries, 1, per, &jiff::tz::TimeZone::UTC).into_string()
}

/// `GET /history`.
pub(crate) async fn page(
    State(state): State<PageState>,
    viewer: Viewer,
    Query(paging): Query<Paging>,
) -> Response {
    let (page, per) = match paging.read() {
        Ok(p) => p,
        Err(m) => return errors::page(StatusCode::BAD_REQUEST, "History", &m, "/history"),
    };
    let h = &state.inner.handle;
    let zone = h.clock().zone();
    let body = match h.records().history().await {
        Ok(entries) => table(&entries, page, per, &zone),
        Err(e) => {
            html! { p class="notice error" { "The history cannot be read: " (e.to_string()) } }
        }
    };
    render(&state, &viewer, "History", Tab::History, None, body).await
}

async fn set_page(
    state: &PageState,
    viewer: &Viewer,
    number: sauve_number::BackupNumber,
    notice: Option<Notice>,
) -> Response {
    let h = &state.inner.handle;
    let zone = h.clock().zone();
    let entries = match crate::pages::history_or_page(state, "History", "/history").await {
        Ok(e) => e,
        Err(page) => return page,
    };
    let Some(e) = entries
        .iter()
        .rev()
        .find(|e| e.is_numbered_backup() && e.backup_number == number)
    else {
        return errors::page(
            StatusCode::NOT_FOUND,
            "No such backup",
            &format!(
                "No backup numbered {} is in this app's history.",
                format::number(number)
            ),
            "/history",
        );
    };
    let title = format!("Backup {}", format::number(number));
    let body = html! {
        div class="grid" {
            section class="card" {
                h2 { "Run" }
                dl class="facts" {
                    dt { "Status" } dd { @match entry_status(e) { Some(s) => (status(s)), None => "unknown" } }
                    dt { "Start" } dd { @match started(e) { Some(t) => (format::time(t, &zone)), None => (e.starting_date) } }
                    dt { "Duration" } dd { (duration(std::time::Duration::from_millis(e.duration))) }
                    dt { "Started by" } dd { (e.trigger.as_deref().unwrap_or("—")) }
                    @if let Some(l) = &e.lock_windows {
                        dt { "Data lock" } dd { (l.data.map_or_else(|| "—".to_owned(), |ms| duration(std::time::Duration::from_millis(ms)))) }
                        dt { "Structure lock" } dd { (l.structure.map_or_else(|| "—".to_owned(), |ms| duration(std::time::Duration::from_millis(ms)))) }
                    }
                    dt { "Archive" } dd class="mono" { (e.backup_path) }
                    @if let Some(segs) = &e.segments { @if segs.len() > 1 {
                        dt { "Segments" } dd { (segs.len()) }
                    } }
                    @if !e.log_path.is_empty() { dt { "Log backup" } dd class="mono" { (e.log_path) } }
                    dt { "Data file" } dd class="mono" { (e.data_path) }
                }
            }
            section class="card" {
                h2 { "Check and restore" }
                p class="small muted" { "Verify reads every segment and checks each file's size and checksum. It writes nothing and runs beside backups." }
                form method="post" action={"/history/" (number) "/verify"} data-async="verify" class="actions" {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    button type="submit" class="primary" { "Verify" }
                    a class="button" href={"/restore?number=" (number)} { "Restore…" }
                }
            }
        }
        @if !e.attachments.is_empty() {
            section class="card" {
                h2 { "Attachments" }
                ul class="contents" {
                    @for a in &e.attachments {
                        li {
                            @if a.found { span class="found" { "✓ found" } } @else { span class="missing" { "✗ NOT FOUND" } }
                            " " span class="mono small" { (a.attachment_path) }
                        }
                    }
                }
            }
        }
        section class="card" {
            h2 { "Files" }
            @match &e.files {
                Some(files) if !files.is_empty() => {
                    div class="table-wrap" {
                        table {
                            thead { tr { th scope="col" { "Path in the archive" } th scope="col" class="num" { "Size" } th scope="col" class="wide" { "blake3" } } }
                            tbody {
                                @for f in files {
                                    tr { td class="mono small" { (f.path) } td class="num" { (bytes(f.size)) } td class="wide mono small" { (f.blake3.get(..16).unwrap_or(&f.blake3)) "…" } }
                                }
                            }
                        }
                    }
                    p class="small muted" { (format::count(files.len(), "file", "files")) ", " (bytes(files.iter().map(|f| f.size).sum())) }
                }
                _ => p class="muted" { "The history does not list this set's files (written by 4D, or before sauve recorded them); Verify reads them from the archive." },
            }
        }
    };
    render(state, viewer, &title, Tab::History, notice, body).await
}

/// `GET /history/{number}`.
pub(crate) async fn set(
    State(state): State<PageState>,
    viewer: Viewer,
    Path(number): Path<String>,
) -> Response {
    match number.parse::<sauve_number::BackupNumber>() {
        Ok(n) => set_page(&state, &viewer, n, None).await,
        Err(_) => errors::page(
            StatusCode::NOT_FOUND,
            "No such backup",
            &format!("\"{number}\" is not a backup number (accepted: a number the history lists)."),
            "/history",
        ),
    }
}

/// `POST /history/{number}/verify`: the result, for the script or as the
/// set's page with a notice.
pub(crate) async fn verify(
    State(state): State<PageState>,
    Path(number): Path<String>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let viewer = match check_post(&state, &headers, Some(&form.csrf)) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let Ok(n) = number.parse::<sauve_number::BackupNumber>() else {
        return errors::json(
            StatusCode::NOT_FOUND,
            "not a backup number (accepted: a number the history lists)",
        );
    };
    let (code, notice) = match state.inner.handle.records().verify_backup(n).await {
        Ok(r) => (
            StatusCode::OK,
            Notice::Done(format!(
                "✓ {} verified: 0 {} — {}, {} checked in {}.",
                r.set.display_name(),
                Status::Ok.text(),
                format::count(r.manifest.entries.len(), "entry", "entries"),
                bytes(r.bytes),
                format::count(r.set.files.len(), "segment", "segments")
            )),
        ),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Notice::Error(format!(
                "✗ Backup {} does not verify: {} {} — {e}",
                format::number(n),
                e.status().code(),
                e.status().text()
            )),
        ),
    };
    if wants_json(&headers) {
        let message = match &notice {
            Notice::Done(m) | Notice::Error(m) => m.clone(),
        };
        return (code, axum::Json(serde_json::json!({ "message": message }))).into_response();
    }
    set_page(&state, &viewer, n, Some(notice)).await
}
