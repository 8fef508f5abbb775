//! The control API (behaviour §4): bearer-token HTTP on loopback.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sauve_engine::{Admission, Trigger};
use sauve_status::Status;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use crate::metrics;
use crate::state::ApiState;

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// The API as an axum router, `GET /metrics` included; host apps mount it
/// on their own server.
pub fn router(state: ApiState) -> Router {
    let metrics = Router::new()
        .route("/metrics", get(metrics::metrics))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            authorize_metrics,
        ))
        .with_state(state.clone());
    api(state).merge(metrics)
}

fn api(state: ApiState) -> Router {
    Router::new()
        .route("/v1/backup", post(backup))
        .route("/v1/stop", post(stop))
        .route("/v1/rehearse", post(rehearse))
        .route("/v1/sample", post(sample))
        .route("/v1/status", get(status))
        .route("/v1/events", get(events))
        .route("/v1/history", get(history))
        .method_not_allowed_fallback(|| async {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed (accepted: POST /v1/backup, POST /v1/stop, POST /v1/rehearse, POST /v1/sample, GET /v1/status, GET /v1/events, GET /v1/history)")
        })
        .fallback(|| async {
            error(StatusCode::NOT_FOUND, "no such endpoint (accepted: /v1/backup, /v1/stop, /v1/rehearse, /v1/sample, /v1/status, /v1/events, /v1/history)")
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state)
}

/// The bearer token of a request, `""` without one.
fn bearer(request: &Request) -> &str {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}

fn same(given: &str, token: &str) -> bool {
    given.as_bytes().ct_eq(token.as_bytes()).into()
}

/// `GET /metrics` takes the server's token, or `metrics.token` of
/// sauve.toml when one is set (behaviour §17.3), so that a scraper never holds
/// the token that starts backups.
async fn authorize_metrics(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    let given = bearer(&request).to_owned();
    let metrics_token = state
        .handle
        .config()
        .own_settings()
        .await
        .ok()
        .and_then(|(s, _)| s.metrics.token.clone());
    let ok = same(&given, &state.token) || metrics_token.is_some_and(|t| same(&given, t.expose()));
    if !ok {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (accepted: the server's token, or metrics.token_env / metrics.token_file of sauve.toml)",
        );
    }
    next.run(request).await
}

/// 401 unless `Authorization: Bearer <token>`, compared in constant time.
async fn authorize(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let ok = same(bearer(&request), &state.token);
    if !ok {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (accepted: Authorization: Bearer <token from APP/Logs/sauve-server.json>)",
        );
    }
    next.run(request).await
}

/// `POST /v1/backup`: 202 with the number once the run has one; 409 with
/// the status for a refusal (1402 while one runs, 1417 during an
/// integration); 422 with the status for a run that ended before it had a
/// number (invalid settings, a hook's refusal, a failed pre-check). An
/// optional JSON body is accepted (and must be JSON).
async fn backup(State(state): State<ApiState>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            return error(
                rejection.status(),
                &format!(
                    "bad request body: {} (accepted: no body, or a JSON object of at most {BODY_LIMIT} bytes)",
                    rejection.body_text()
                ),
            );
        }
    };
    if !body.is_empty()
        && let Err(e) = serde_json::from_slice::<serde_json::Map<String, Value>>(&body)
    {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("bad JSON: {e} (accepted: no body, or a JSON object)"),
        );
    }
    // Waits on the run itself: the answer comes once it has its number, or
    // at once when it is refused or ends before (behaviour §4, §5 step 1).
    let mut running = state.handle.begin(Trigger::Remote);
    match running.admitted().await {
        Ok(Admission::Started { run, number }) => (
            StatusCode::ACCEPTED,
            Json(json!({"number": number, "run": run})),
        )
            .into_response(),
        Ok(Admission::Ended(report)) => {
            let code = match report.status {
                Status::AlreadyRunning
                | Status::IntegrationRunning
                | Status::CallerHoldsWriteGuard => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            (
                code,
                Json(json!({
                    "error": report.errors.first().cloned().unwrap_or_else(|| report.status.text().to_owned()),
                    "status": report.status.code(),
                    "status_text": report.status.text(),
                    "number": report.number,
                    "run": report.run,
                })),
            )
                .into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// An optional JSON body: none gives the defaults; one that does not read
/// is a 400 saying what is `accepted`.
fn optional_json<T: serde::de::DeserializeOwned + Default>(
    body: Result<Bytes, BytesRejection>,
    accepted: &str,
) -> Result<T, Box<Response>> {
    let body = body.map_err(|r| Box::new(error(r.status(), &r.body_text())))?;
    if body.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(&body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            &format!("bad JSON: {e} ({accepted})"),
        ))
    })
}

/// What `POST /v1/rehearse` may ask (behaviour §22).
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RehearseBody {
    /// The set of this number.
    set: Option<u32>,
    /// A set at random among those the source keeps.
    #[serde(default)]
    random: bool,
    /// An `s3://` URL or a folder.
    from: Option<String>,
    /// Integrate up to this time (RFC 3339).
    until: Option<jiff::Timestamp>,
    /// Every core at normal priority (by default one core, nice 19).
    #[serde(default)]
    full_speed: bool,
}

/// `POST /v1/rehearse`: runs a restore rehearsal on this server and answers
/// once it has ended: 200 with its record (its `status` says whether it
/// proved the set), 409 when refused because something runs, 422 when its
/// options cannot be met (a set the source does not hold, a folder inside
/// the app). An optional JSON body chooses the set and the source.
async fn rehearse(State(state): State<ApiState>, body: Result<Bytes, BytesRejection>) -> Response {
    const ACCEPTED: &str = "accepted: no body, or an object with set (1 to 9999), random (true), from (s3://bucket/prefix/ or a folder), until (an RFC 3339 time), full_speed (true)";
    let asked: RehearseBody = match optional_json(body, ACCEPTED) {
        Ok(asked) => asked,
        Err(refused) => return *refused,
    };
    let pick = match (asked.set, asked.random) {
        (Some(_), true) => {
            return error(
                StatusCode::BAD_REQUEST,
                "set and random both choose the set (accepted: one of them)",
            );
        }
        (Some(n), false) if (1..=9999).contains(&n) => {
            sauve_engine::Pick::Number(sauve_archive::BackupNumber::new(n))
        }
        (Some(n), false) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("set {n} is no set number (accepted: 1 to 9999)"),
            );
        }
        (None, true) => sauve_engine::Pick::Random,
        (None, false) => sauve_engine::Pick::Newest,
    };
    // Only a source the app's sauve.toml names: a token holder does not
    // point the server at any folder or bucket it can reach.
    if let Some(from) = &asked.from {
        let named: Vec<String> = match state.handle.config().own_settings().await {
            Ok((own, _)) => own
                .offsite
                .iter()
                .map(|o| o.url.clone())
                .chain(own.rehearsal.from.clone())
                .collect(),
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        };
        let same = |u: &String| u.trim_end_matches('/') == from.trim_end_matches('/');
        if !named.iter().any(same) {
            let shown: Vec<String> = named.iter().map(|u| sauve_settings::shown_url(u)).collect();
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "from {:?} is not a source of this app (accepted: no from, for the destination; or one of: {})",
                    sauve_settings::shown_url(from),
                    if shown.is_empty() {
                        "none: sauve.toml names no [[offsite]] and no [rehearsal] from".to_owned()
                    } else {
                        shown.join(", ")
                    }
                ),
            );
        }
    }
    let options = sauve_engine::RehearsalOptions {
        pick,
        from: asked.from,
        until: asked
            .until
            .map_or(sauve_engine::Until::End, sauve_engine::Until::Time),
        trigger: Trigger::Remote,
        low_priority: !asked.full_speed,
        ..sauve_engine::RehearsalOptions::default()
    };
    match state.handle.rehearsals().rehearse(options).await {
        Ok(done) => Json(done.to_json()).into_response(),
        Err(e) => {
            let code = match e.is_refusal() {
                true => StatusCode::CONFLICT,
                false => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let s = e.status();
            (
                code,
                Json(json!({"error": e.to_string(), "status": s.code(), "status_text": s.text()})),
            )
                .into_response()
        }
    }
}

/// What `POST /v1/sample` may ask (behaviour §23).
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SampleBody {
    /// The share of each kept set's pieces, 1 to 100.
    percent: Option<u32>,
    /// The most it reads, MiB.
    max_mib: Option<u32>,
}

/// `POST /v1/sample`: reads a sample of the stored bytes of the kept sets
/// on this server (behaviour §23) and answers once read: 200 with what it
/// read and found (`damaged` lists damage), 409 while another runs, 422
/// when it could not read at all. Without a body, `[verify]` of sauve.toml
/// says how much.
async fn sample(State(state): State<ApiState>, body: Result<Bytes, BytesRejection>) -> Response {
    const ACCEPTED: &str =
        "accepted: no body, or an object with percent (1 to 100) and max_mib (1 to 1048576)";
    let asked: SampleBody = match optional_json(body, ACCEPTED) {
        Ok(asked) => asked,
        Err(refused) => return *refused,
    };
    if let Some(p) = asked.percent.filter(|p| !(1..=100).contains(p)) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("percent {p} is out of range ({ACCEPTED})"),
        );
    }
    if let Some(m) = asked.max_mib.filter(|m| !(1..=1 << 20).contains(m)) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("max_mib {m} is out of range ({ACCEPTED})"),
        );
    }
    let options = match (asked.percent, asked.max_mib) {
        (None, None) => None,
        (percent, max_mib) => {
            let verify = match state.handle.config().own_settings().await {
                Ok((own, _)) => own.verify,
                Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
            };
            Some(sauve_engine::SampleOptions {
                percent: percent.unwrap_or(verify.sample_percent.max(1)),
                max_mib: max_mib.unwrap_or(verify.sample_max_mib),
            })
        }
    };
    match state
        .handle
        .rehearsals()
        .sample(options, Trigger::Remote)
        .await
    {
        Ok(report) => Json(report).into_response(),
        Err(e) => {
            let s = e.status();
            let code = match e.is_refusal() {
                true => StatusCode::CONFLICT,
                false => StatusCode::UNPROCESSABLE_ENTITY,
            };
            (
                code,
                Json(json!({"error": e.to_string(), "status": s.code(), "status_text": s.text()})),
            )
                .into_response()
        }
    }
}

async fn stop(State(state): State<ApiState>) -> Response {
    match state.handle.stop().await {
        Ok(stopped) => Json(json!({ "stopped": stopped })).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

async fn status(State(state): State<ApiState>) -> Response {
    let app = state.handle.app().to_path_buf();
    let view = *state.scheduler.borrow();
    match tokio::task::spawn_blocking(move || sauve_engine::status_json(&app, view)).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn history(State(state): State<ApiState>) -> Response {
    let app = state.handle.app().to_path_buf();
    let read = tokio::task::spawn_blocking(move || -> Result<Value, String> {
        let settings = sauve_engine::AppSettings::load(&app).map_err(|e| e.to_string())?;
        let written = &settings.settings.general.destination_folder;
        let dest = sauve_settings::resolve_destination_to_read(&app, written)
            .map_err(|e| format!("destination \"{written}\": {e}"))?
            .records()
            .to_path_buf();
        match sauve_history::read_json_text(&dest).map_err(|e| e.to_string())? {
            Some(text) => serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{} is not valid JSON: {e}",
                    dest.join(sauve_history::FILE_NAME).display()
                )
            }),
            None => Ok(json!({})),
        }
    })
    .await;
    match read {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, &e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `GET /v1/events`: server-sent events, the objects of `sauve backup --json`.
async fn events(State(state): State<ApiState>) -> Response {
    let stream = BroadcastStream::new(state.handle.subscribe()).filter_map(|e| {
        let e = e.ok()?;
        let data = serde_json::to_string(&e).ok()?;
        Some(Ok::<Event, std::convert::Infallible>(
            Event::default().data(data),
        ))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
