//! The Journal page (behaviour §18): the Backup Journal, newest entry first,
//! errors marked, paged; each entry's full text folded under its summary.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use sauve_journal::Entry;
use sauve_status::Status;

use crate::PageState;
use crate::auth::Viewer;
use crate::format::status;
use crate::layout::Tab;
use crate::pages::history::Paging;
use crate::pages::{errors, render};

fn failed(e: &Entry) -> bool {
    !e.errors.is_empty()
        || e.status.is_some_and(|s| {
            !matches!(
                Status::from_code(s),
                Status::Ok | Status::AttachmentNotFound
            )
        })
}

fn entry(e: &Entry) -> Markup {
    let bad = failed(e);
    html! {
        details class="entry" {
            summary {
                span class={"entry-title" @if bad { " entry-error" }} {
                    @if bad { "✗ " }
                    (e.raw_title)
                }
                @if let Some(s) = e.starting.as_ref().or(e.ending.as_ref()) {
                    span class="muted small" { (s.raw) }
                }
                @if let Some(code) = e.status { (status(Status::from_code(code))) }
                @if let Some(t) = &e.trigger { span class="small muted" { (t) } }
            }
            @for err in &e.errors { p class="entry-error small" { "Error reported: " (err) } }
            pre class="small" { (e.render(true)) }
        }
    }
}

/// `GET /journal`.
pub(crate) async fn page(
    State(state): State<PageState>,
    viewer: Viewer,
    Query(paging): Query<Paging>,
) -> Response {
    let (page, per) = match paging.read() {
        Ok(p) => p,
        Err(m) => return errors::page(StatusCode::BAD_REQUEST, "Journal", &m, "/journal"),
    };
    let per = per.min(200);
    let h = &state.inner.handle;
    let body = match h.records().journal_entries((page - 1) * per, per).await {
        Ok((entries, more)) => html! {
            @if entries.is_empty() && page == 1 {
                p class="empty" { "The Backup Journal is empty: each backup, restore and log integration adds an entry. Go to " a href="/" { "Backup" } " to make the first." }
            } @else if entries.is_empty() {
                p class="empty" { "No older entries. " a href="/journal" { "Back to the newest" } }
            } @else {
                p class="muted small" { "Newest first · page " (page) " · click an entry for all its lines" }
                section class="card" aria-label="Journal entries" {
                    @for e in &entries { (entry(e)) }
                }
                nav class="pager" aria-label="Journal pages" {
                    @if page > 1 { a class="button" href={"/journal?page=" (page - 1) "&per=" (per)} rel="prev" { "← Newer" } }
                    span { "Page " (page) }
                    @if more { a class="button" href={"/journal?page=" (page + 1) "&per=" (per)} rel="next" { "Older →" } }
                }
            }
        },
        Err(e) => {
            html! { p class="notice error" { "The Backup Journal cannot be read: " (e.to_string()) } }
        }
    };
    render(&state, &viewer, "Backup Journal", Tab::Journal, None, body).await
}
