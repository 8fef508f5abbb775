//! The facade host apps use: [`Engine::start`] gives a [`BackupHandle`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use actix::{Actor, Addr};
use sauve_locking::LockManager;
use sauve_settings::AppLayout;
use tokio::sync::broadcast;

use crate::actors::coordinator::messages::{IsRunning, StartBackup, StopBackup};
use crate::actors::coordinator::{Coordinator, Workers};
use crate::api::{BackupEvent, BackupReport, EngineError, EngineOptions, Trigger};
use crate::state::{EngineState, LastBackup};

/// Starts engines.
#[derive(Debug)]
pub struct Engine;

struct Inner {
    coordinator: Addr<Coordinator>,
    system: actix::System,
    locks: LockManager,
    events: broadcast::Sender<BackupEvent>,
    app: PathBuf,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.system.stop();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// The engine of one app, for host apps, the CLI and the server. Cheap to
/// clone, `Send` and `Sync`; its async methods work from any tokio runtime.
/// The engine stops when the last clone is dropped or [`BackupHandle::shutdown`]
/// is called.
#[derive(Clone)]
pub struct BackupHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BackupHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupHandle")
            .field("app", &self.inner.app)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts the engine of the app `layout` describes. The actors run on an
    /// actix system of their own thread, so this works from inside a tokio
    /// multi-thread runtime as well as outside any runtime.
    pub fn start(layout: AppLayout, options: EngineOptions) -> Result<BackupHandle, EngineError> {
        let locks = LockManager::new();
        let (events, _) = broadcast::channel(256);
        let (tx, rx) = std::sync::mpsc::channel();
        let app = layout.app.clone();
        let (thread_locks, thread_events) = (locks.clone(), events.clone());
        let thread = std::thread::Builder::new()
            .name("sauve-engine".to_owned())
            .spawn(move || {
                let runner = actix::System::new();
                runner.block_on(async move {
                    let workers = Workers::start(thread_locks);
                    let coordinator = Coordinator {
                        layout,
                        options,
                        workers,
                        events: thread_events,
                        running: None,
                        runs: 0,
                        last: None,
                    }
                    .start();
                    let _ = tx.send((coordinator, actix::System::current()));
                });
                let _ = runner.run();
            })
            .map_err(|e| EngineError::Start(e.to_string()))?;
        let (coordinator, system) = rx
            .recv()
            .map_err(|e| EngineError::Start(format!("the engine thread ended: {e}")))?;
        Ok(BackupHandle {
            inner: Arc::new(Inner {
                coordinator,
                system,
                locks,
                events,
                app,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }
}

impl BackupHandle {
    /// Runs a backup now and waits for its report. While one runs, another
    /// request gets a report with status 1402 and records nothing; a caller
    /// holding a write guard gets 1404.
    pub async fn backup(&self, trigger: Trigger) -> Result<BackupReport, EngineError> {
        if let Some(refusal) = self.refuse_writer(trigger) {
            return Ok(refusal);
        }
        self.send(StartBackup {
            trigger,
            scheduled: None,
        })
        .await
    }

    /// 1404 for a caller that holds a write guard: its backup would wait for
    /// the guard it holds.
    fn refuse_writer(&self, trigger: Trigger) -> Option<BackupReport> {
        self.inner.locks.current_task_holds_write_guard().then(|| {
            crate::run::refused(
                trigger,
                jiff::Timestamp::now(),
                sauve_status::Status::CallerHoldsWriteGuard,
                "the caller holds a write guard; release it before asking for a backup",
            )
        })
    }

    /// Runs the backup of a scheduled slot (its time goes to the journal and history).
    pub async fn backup_scheduled(
        &self,
        slot: jiff::Timestamp,
    ) -> Result<BackupReport, EngineError> {
        if let Some(refusal) = self.refuse_writer(Trigger::Scheduled) {
            return Ok(refusal);
        }
        self.send(StartBackup {
            trigger: crate::api::Trigger::Scheduled,
            scheduled: Some(slot),
        })
        .await
    }

    /// The Stop button: the running copy ends within about a second and the
    /// run reports 1406. Returns whether a backup was running.
    pub async fn stop(&self) -> Result<bool, EngineError> {
        self.send(StopBackup).await
    }

    /// Whether a backup is running.
    pub async fn is_running(&self) -> Result<bool, EngineError> {
        self.send(IsRunning).await
    }

    async fn send<M>(&self, msg: M) -> Result<M::Result, EngineError>
    where
        M: actix::Message + Send + 'static,
        M::Result: Send,
        Coordinator: actix::Handler<M>,
    {
        self.inner
            .coordinator
            .send(msg)
            .await
            .map_err(|e| EngineError::Gone(e.to_string()))
    }

    /// Events of every run from now on: start, phases, progress (at most 10
    /// file events a second), warnings, the end. A slow subscriber misses
    /// progress events rather than slowing the backup.
    pub fn subscribe(&self) -> broadcast::Receiver<BackupEvent> {
        self.inner.events.subscribe()
    }

    /// The lock manager: host apps take read and write guards here around
    /// their own access, and the engine takes its backup locks from it.
    pub fn locks(&self) -> &LockManager {
        &self.inner.locks
    }

    /// The app folder.
    pub fn app(&self) -> &Path {
        &self.inner.app
    }

    /// The last backup information (SPEC section 15), read off the state file.
    pub async fn last_backup(&self) -> Option<LastBackup> {
        let app = self.inner.app.clone();
        tokio::task::spawn_blocking(move || EngineState::load(&app).last_backup)
            .await
            .ok()
            .flatten()
    }

    /// Stops the engine. A running backup is stopped first (1406) and
    /// recorded; then the actors end.
    pub async fn shutdown(self) {
        if self.stop().await.unwrap_or(false) {
            // Wait for the stopped run to record itself.
            let mut events = self.subscribe();
            while self.is_running().await.unwrap_or(false) {
                let _ =
                    tokio::time::timeout(std::time::Duration::from_millis(50), events.recv()).await;
            }
        }
        drop(self);
    }
}
