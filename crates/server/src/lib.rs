//! The control API and the daemon (behaviour §4 and §9): what `sauve run`
//! runs, and the router host apps mount on their own server.
//!
//! The API listens on loopback unless told otherwise, answers only requests
//! with the bearer token (compared in constant time; 401 and nothing started
//! otherwise), and speaks JSON, errors included: `POST /v1/backup` (202 with
//! the number, 409 with 1402 while one runs), `POST /v1/stop`,
//! `GET /v1/status`, `GET /v1/events` (server-sent events), `GET /v1/history`,
//! and `GET /metrics` in the Prometheus text format (behaviour §17.3).
//!
//! The daemon runs the engine in server mode, the engine's scheduler loop
//! ([`sauve_engine::scheduler_loop`]: settings re-read at least every
//! minute and before each backup, the failure policy of `sauve-scheduler`,
//! missed slots caught up) and the API, and writes
//! `APP/Logs/sauve-server.json` (mode 0600) so that `sauve backup` can
//! forward to it, after taking `APP/Logs/sauve-run.lock` (one server per
//! app). It listens on loopback unless the operator says otherwise with a
//! TLS proxy in front (`https://` public URL) or `insecure_listen`, and
//! serves with [`serve`]: headers within [`HEADER_TIMEOUT`], idle
//! connections closed after [`IDLE_TIMEOUT`], the peer's address passed to
//! the handlers (the page's login limits count per address).
//!
//! Not here: backup logic (the engine) or schedule maths (the scheduler).

mod api;
mod daemon;
mod metrics;
mod serve;
mod state;

pub use api::{BODY_LIMIT, router};
pub use daemon::{
    DaemonError, ServeOptions, ServerFile, generate_token, run, run_lock_path, server_file_path,
    write_server_file,
};
pub use metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;
/// The scheduler loop lives in the engine now, where any host runs it;
/// named here too for hosts that took it from the server.
pub use sauve_engine::scheduler_loop;
pub use serve::{HEADER_TIMEOUT, IDLE_TIMEOUT, serve};
pub use state::ApiState;
