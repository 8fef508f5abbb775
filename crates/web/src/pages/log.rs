//! The Log page (behaviour §20): the app's current log as 4D's activity analysis
//! lists it, the list `sauve log show` prints: sequence, local time, kind,
//! label and size, newest last, filtered by time and kind, paged from the
//! newest.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use sauve_logfile::{LogContents, Record, RecordFilter, Tail};

use crate::PageState;
use crate::auth::Viewer;
use crate::layout::Tab;
use crate::pages::history::Paging;
use crate::pages::{errors, render};

/// The filters of `GET /log`, as typed.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Filters {
    since: Option<String>,
    until: Option<String>,
    kind: Option<String>,
}

impl Filters {
    /// The filter, or what was wrong and what is accepted.
    fn read(&self, zone: &jiff::tz::TimeZone) -> Result<RecordFilter, String> {
        let time = |v: &Option<String>, name: &str| match v.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(t) => sauve_logfile::parse_time(t, zone)
                .map(Some)
                .map_err(|e| format!("{name}: {e}")),
        };
        let kind = match self.kind.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(k) => Some(k.parse::<u16>().map_err(|_| {
                format!("kind=\"{k}\" is not accepted (accepted: a whole number from 0 to 65535)")
            })?),
        };
        let filter = RecordFilter {
            since: time(&self.since, "since")?,
            until: time(&self.until, "until")?,
            kind,
        };
        if let (Some(a), Some(b)) = (filter.since, filter.until)
            && a > b
        {
            return Err(
                "since is after until (accepted: a since at or before the until)".to_owned(),
            );
        }
        Ok(filter)
    }

    /// The filters as a query string, to keep them across pages.
    fn query(&self) -> String {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        [
            ("since", &self.since),
            ("until", &self.until),
            ("kind", &self.kind),
        ]
        .iter()
        .filter_map(|(k, v)| {
            v.as_deref()
                .filter(|v| !v.trim().is_empty())
                .map(|v| format!("&{k}={}", enc(v)))
        })
        .collect()
    }
}

fn row(r: &Record, aside: bool, zone: &jiff::tz::TimeZone) -> Markup {
    html! {
        tr class=[aside.then_some("set-aside")] {
            td class="num" {
                (r.seq)
                @if aside { " " span class="badge" title="Past the point of a point-in-time restore: kept in the log, never applied again" { "set aside" } }
            }
            td { @match r.timestamp() {
                Some(t) => time datetime=(t.to_string()) { (sauve_logfile::format_time(t, zone)) },
                None => span class="muted" { "—" },
            } }
            td class="num" { @match &r.tag { Some(t) => (t.kind), None => span class="muted" { "—" } } }
            td { @match &r.tag { Some(t) => (t.label), None => span class="muted" { "—" } } }
            td class="num" { (r.payload.len()) }
        }
    }
}

fn ending(tail: Tail) -> Markup {
    match tail {
        Tail::Clean => html! { "ends cleanly" },
        Tail::Torn { offset } => {
            html! { "ends with a record torn by a crash at byte " (offset) " (ignored)" }
        }
        Tail::Corrupt { offset } => {
            html! { span class="entry-error" { "is DAMAGED at byte " (offset) ": records after it cannot be trusted" } }
        }
    }
}

fn form(f: &Filters) -> Markup {
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    html! {
        form class="filters" method="get" action="/log" aria-label="Filter the operations" {
            label { "Since " input type="text" name="since" value=(v(&f.since)) placeholder="2026-12-01 14:00"; }
            label { "Until " input type="text" name="until" value=(v(&f.until)) placeholder="2026-12-01 14:30:00"; }
            label { "Kind " input type="number" name="kind" min="0" max="65535" value=(v(&f.kind)); }
            button type="submit" { "Show" }
            a class="button" href="/log" { "All" }
        }
        p class="muted small" { "Times in the server's time zone, or with an offset: 2026-12-01T14:04:30+01:00." }
    }
}

fn listing(
    log: &LogContents,
    set_aside: &[sauve_logfile::SetAside],
    filter: &RecordFilter,
    f: &Filters,
    page: usize,
    per: usize,
    zone: &jiff::tz::TimeZone,
) -> Markup {
    let shown: Vec<&Record> = log.records.iter().filter(|r| filter.matches(r)).collect();
    let total = shown.len();
    let pages = total.div_ceil(per).max(1);
    let page = page.min(pages);
    // Page 1 holds the newest; each page lists oldest to newest.
    let end = total - (page - 1) * per;
    let rows = &shown[end.saturating_sub(per)..end];
    let version = if log.header.version == 1 {
        "version 1 (its records carry no time)".to_owned()
    } else {
        format!("version {}", log.header.version)
    };
    let query = f.query();
    // Set aside now: on the timeline of the end, the one the data is on.
    let current = sauve_logfile::timeline(set_aside, sauve_logfile::Until::End);
    let aside = |r: &Record| current.iter().any(|s| s.holds(r));
    let aside_count = shown.iter().filter(|r| aside(r)).count();
    html! {
        p class="muted small" {
            @if filter.is_empty() { (total) " operations" } @else { (total) " of " (log.records.len()) " operations" }
            " · log " (version) " from sequence " (log.header.first_sequence) " · " (ending(log.tail))
        }
        @if aside_count > 0 {
            p class="notice" {
                (aside_count) @if aside_count == 1 { " of these operations is " } @else { " of these operations are " } strong { "set aside" } ": a point-in-time restore went back to before them. They stay in the log for the record and are never applied again."
            }
        }
        @if total == 0 {
            p class="empty" {
                @if log.records.is_empty() { "No operation since the last backup cut the log." }
                @else { "No operation matches these filters. " a href="/log" { "Show all" } }
            }
        } @else {
            div class="table-wrap" {
                table {
                    caption class="visually-hidden" { "Log operations, newest last" }
                    thead { tr {
                        th scope="col" class="num" { "Sequence" }
                        th scope="col" { "Time" }
                        th scope="col" class="num" { "Kind" }
                        th scope="col" { "Label" }
                        th scope="col" class="num" { "Size" }
                    } }
                    tbody { @for r in rows { (row(r, aside(r), zone)) } }
                }
            }
            @if pages > 1 {
                nav class="pager" aria-label="Log pages" {
                    @if page < pages { a class="button" href={"/log?page=" (page + 1) "&per=" (per) (query)} rel="prev" { "← Older" } }
                    span { "Page " (page) " of " (pages) }
                    @if page > 1 { a class="button" href={"/log?page=" (page - 1) "&per=" (per) (query)} rel="next" { "Newer →" } }
                }
            }
        }
    }
}

/// `GET /log`.
pub(crate) async fn page(
    State(state): State<PageState>,
    viewer: Viewer,
    Query(paging): Query<Paging>,
    Query(filters): Query<Filters>,
) -> Response {
    let h = &state.inner.handle;
    let zone = h.clock().zone();
    let (page, per) = match paging.read() {
        Ok(p) => p,
        Err(m) => return errors::page(StatusCode::BAD_REQUEST, "Log", &m, "/log"),
    };
    let filter = match filters.read(&zone) {
        Ok(f) => f,
        Err(m) => return errors::page(StatusCode::BAD_REQUEST, "Log", &m, "/log"),
    };
    let file = h.layout().log_file.clone();
    let shown = file.clone();
    let app = h.app().to_path_buf();
    let read = tokio::task::spawn_blocking(move || {
        let set_aside = sauve_engine::read_set_asides(&app);
        sauve_logfile::read_log(&file).map(|log| (log, set_aside))
    })
    .await;
    let body = match read {
        Ok(Ok((log, set_aside))) => html! {
            (form(&filters))
            @if let Err(e) = &set_aside {
                p class="notice error" { "The records set aside are not marked: " (e.to_string()) }
            }
            @let set_aside = set_aside.unwrap_or_default();
            (listing(&log, &set_aside, &filter, &filters, page, per, &zone))
        },
        Ok(Err(sauve_logfile::LogError::Io { source, .. }))
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            html! {
                p class="empty" { "This app keeps no log (" code { (shown.display().to_string()) } " is not there): sauve's log is written by the host app, see README's " em { "The log file" } "." }
            }
        }
        Ok(Err(e)) => {
            html! { p class="notice error" { "The log cannot be read: " (e.to_string()) } }
        }
        Err(e) => html! { p class="notice error" { "The log cannot be read: " (e.to_string()) } },
    };
    render(&state, &viewer, "Log", Tab::Log, None, body).await
}
