//! The state keeper: the only writer, in this process, of
//! `APP/Logs/sauve-state.json` (behaviour §15): the last backup, what the
//! scheduler remembers, the alerts, what point-in-time restores set aside.
//! Backup runs, the scheduler, the alerter, restores and the open check all
//! ask it; other processes are kept in order by the advisory lock around
//! each change (`crate::records`).
//!
//! Being one actor on one thread is what makes it the only writer here:
//! changes from every part of the process are applied one after the other.
//! It keeps the state as last read or written; every change starts from the
//! file, under its lock, so another process's update is never undone. The
//! journal entries that wait in an alert's record are handed to whoever
//! writes the journal, never written here.

pub(crate) mod messages;

use std::path::PathBuf;

use actix::{Actor, Handler, SyncContext};

use crate::actors::journal::messages::AppendJournal;
use crate::error::EngineError;
use crate::records;
use crate::state::EngineState;
use messages::*;

/// See the module documentation.
pub(crate) struct StateKeeper {
    app: PathBuf,
    state: EngineState,
}

impl StateKeeper {
    pub(crate) fn new(app: PathBuf) -> StateKeeper {
        let state = EngineState::load(&app);
        StateKeeper { app, state }
    }

    fn update(&mut self, change: impl FnOnce(&mut EngineState)) -> Result<(), EngineError> {
        self.state = records::update_state(&self.app, change)?;
        Ok(())
    }
}

impl Actor for StateKeeper {
    type Context = SyncContext<Self>;
}

impl StateKeeper {
    /// Keeps `lines` in alert `id` and gives its waiting journal entry
    /// with them, for the journal.
    fn resolve(
        &mut self,
        id: u64,
        lines: Vec<String>,
    ) -> Result<Option<AppendJournal>, EngineError> {
        let mut pending = None;
        let kept = lines.clone();
        self.update(|s| {
            if let Some(a) = s.alerts.iter_mut().find(|a| a.alert.id == id) {
                pending = a.pending_journal.take();
                a.deliveries = kept;
            }
        })?;
        Ok(pending.map(|p| {
            // The entry was rendered by sauve: it reads back as it was.
            let mut entry = sauve_journal::parse_journal(&p.text)
                .pop()
                .unwrap_or_else(|| sauve_journal::Entry::new(sauve_journal::Title::Alert));
            entry.alerts = lines;
            AppendJournal {
                entry,
                whole: p.verbose,
            }
        }))
    }
}

impl Handler<RecordLastBackup> for StateKeeper {
    type Result = Result<(), EngineError>;
    fn handle(&mut self, msg: RecordLastBackup, _: &mut SyncContext<Self>) -> Self::Result {
        self.update(|s| {
            if msg.last.status.is_success() {
                s.last_success = Some(msg.last.ended);
                // A success clears the alert that said there was none.
                for a in s
                    .alerts
                    .iter_mut()
                    .filter(|a| a.is_open() && a.alert.kind == sauve_alerts::AlertKind::Stale)
                {
                    a.acknowledged = Some(msg.last.ended);
                }
            }
            s.last_backup = Some(msg.last);
            if msg.ratio.is_some() {
                s.last_ratio = msg.ratio;
            }
            if msg.data.is_some() {
                s.last_data = msg.data;
            }
        })
    }
}

impl Handler<RecordSample> for StateKeeper {
    type Result = Result<SampleRecorded, EngineError>;
    fn handle(&mut self, msg: RecordSample, _: &mut SyncContext<Self>) -> Self::Result {
        let mut recorded = SampleRecorded {
            new: Vec::new(),
            marked: Vec::new(),
        };
        self.update(|s| {
            let sample = s.sample.get_or_insert_with(Default::default);
            // Another destination: what was known of the last one's sets
            // says nothing of these.
            if sample
                .last
                .as_ref()
                .is_some_and(|l| l.source != msg.record.source)
            {
                sample.damaged.clear();
                sample.cursors.clear();
            }
            let before = sample.damaged_numbers();
            sample.damaged.retain(|d| {
                msg.listed.contains(&d.number) && !msg.sound_again.iter().any(|a| a.same_place(d))
            });
            for d in msg.damaged {
                let per_file = sample
                    .damaged
                    .iter()
                    .filter(|k| k.number == d.number && k.file == d.file && k.piece.is_some())
                    .count();
                // A file missing or cut is always kept, past the cap of
                // its damaged pieces.
                if !sample.damaged.iter().any(|k| k.same_place(&d))
                    && (d.piece.is_none() || per_file < crate::sample::MAX_DAMAGED_PIECES)
                {
                    if !before.contains(&d.number) {
                        recorded.new.push(d.clone());
                    }
                    sample.damaged.push(d);
                }
            }
            // A cursor goes forward only: of two samples at once, the one
            // that read further stands.
            sample.cursors.retain(|set, _| {
                set.strip_suffix(']')
                    .and_then(|t| t.rsplit_once('['))
                    .and_then(|(_, n)| n.parse::<u32>().ok())
                    .is_some_and(|n| msg.listed.contains(&sauve_number::BackupNumber::new(n)))
            });
            for (set, cursor) in msg.cursors {
                let kept = sample.cursors.get(&set);
                if kept.is_none_or(|k| k.seed != cursor.seed || k.next <= cursor.next) {
                    sample.cursors.insert(set, cursor);
                }
            }
            sample.last = Some(msg.record);
            recorded.marked = sample.damaged.clone();
            let still = sample.damaged_numbers();
            let at = sample.last.as_ref().map(|l| l.at);
            for a in s.alerts.iter_mut().filter(|a| {
                a.is_open()
                    && a.alert.kind == sauve_alerts::AlertKind::SetDamaged
                    && !still.contains(&a.alert.number)
            }) {
                a.acknowledged = at;
            }
        })?;
        Ok(recorded)
    }
}

impl Handler<RecordRehearsal> for StateKeeper {
    type Result = Result<(), EngineError>;
    fn handle(&mut self, msg: RecordRehearsal, _: &mut SyncContext<Self>) -> Self::Result {
        use sauve_alerts::AlertKind;
        let record = msg.record;
        self.update(|s| {
            if record.status == sauve_status::Status::Ok {
                // The newest point stays, whatever older set a random
                // rehearsal proved since.
                let newest = s.proven.as_ref().is_none_or(|p| p.point < record.point);
                // What the success answers: the failure of the same set,
                // and, when it proved the newest point, every failure and
                // the staleness of the proof.
                for a in s.alerts.iter_mut().filter(|a| {
                    a.is_open()
                        && match a.alert.kind {
                            AlertKind::RehearsalFailed => {
                                newest
                                    || (a.alert.number == record.number
                                        && a.alert
                                            .errors
                                            .iter()
                                            .any(|e| e.contains(&record.source)))
                            }
                            AlertKind::ProofStale => newest,
                            _ => false,
                        }
                }) {
                    a.acknowledged = Some(record.ended);
                }
                if newest {
                    s.proven = Some(record.clone());
                }
            }
            s.last_rehearsal = Some(record);
        })
    }
}

impl Handler<ReadState> for StateKeeper {
    type Result = StateRead;
    fn handle(&mut self, _: ReadState, _: &mut SyncContext<Self>) -> StateRead {
        // Another process (a second `sauve backup`) may have written since.
        self.state = EngineState::load(&self.app);
        StateRead(self.state.clone())
    }
}

impl Handler<SetAsideChange> for StateKeeper {
    type Result = Result<(), EngineError>;
    fn handle(&mut self, msg: SetAsideChange, _: &mut SyncContext<Self>) -> Self::Result {
        self.update(|s| match msg {
            SetAsideChange::Add(record) => {
                // Every restore stays: one a later restore went back before
                // is still on the timeline of the points between the two
                // (`sauve_logfile::timeline`). The same restore redone
                // replaces its record.
                s.set_aside.retain(|r| r.at != record.at);
                s.set_aside.push(record);
            }
            SetAsideChange::Confirm { at, after } => {
                if let Some(r) = s.set_aside.iter_mut().find(|r| r.at == at) {
                    r.after = Some(after);
                }
            }
        })
    }
}

impl Handler<SaveSchedulerState> for StateKeeper {
    type Result = Result<(), EngineError>;
    fn handle(&mut self, msg: SaveSchedulerState, _: &mut SyncContext<Self>) -> Self::Result {
        self.update(|s| s.scheduler = Some(msg.state))
    }
}

impl Handler<RecordAlert> for StateKeeper {
    type Result = Result<sauve_alerts::Alert, EngineError>;
    fn handle(&mut self, msg: RecordAlert, _: &mut SyncContext<Self>) -> Self::Result {
        let mut alert = msg.alert;
        self.update(|s| {
            let id = s
                .next_alert
                .max(s.alerts.iter().map(|a| a.alert.id).max().unwrap_or(0))
                + 1;
            s.next_alert = id;
            alert.id = id;
            s.alerts.push(crate::state::AlertRecord {
                alert: alert.clone(),
                acknowledged: None,
                deliveries: Vec::new(),
                pending_journal: msg.pending,
            });
            keep_recent(&mut s.alerts);
        })?;
        Ok(alert)
    }
}

/// Every open alert stays; of the acknowledged ones, the latest.
fn keep_recent(alerts: &mut Vec<crate::state::AlertRecord>) {
    let acknowledged = alerts.iter().filter(|a| !a.is_open()).count();
    let mut drop = acknowledged.saturating_sub(crate::state::KEPT_ACKNOWLEDGED);
    alerts.retain(|a| {
        if drop > 0 && !a.is_open() && a.pending_journal.is_none() {
            drop -= 1;
            false
        } else {
            true
        }
    });
}

impl Handler<ResolveAlert> for StateKeeper {
    type Result = Result<Option<AppendJournal>, EngineError>;
    fn handle(&mut self, msg: ResolveAlert, _: &mut SyncContext<Self>) -> Self::Result {
        self.resolve(msg.id, msg.lines)
    }
}

impl Handler<AcknowledgeAlerts> for StateKeeper {
    type Result = Result<usize, EngineError>;
    fn handle(&mut self, msg: AcknowledgeAlerts, _: &mut SyncContext<Self>) -> Self::Result {
        let mut count = 0;
        self.update(|s| {
            for a in s
                .alerts
                .iter_mut()
                .filter(|a| a.is_open() && msg.id.is_none_or(|id| a.alert.id == id))
            {
                a.acknowledged = Some(msg.now);
                count += 1;
            }
        })?;
        Ok(count)
    }
}

impl Handler<WatchStaleness> for StateKeeper {
    type Result = Result<StateRead, EngineError>;
    fn handle(&mut self, msg: WatchStaleness, _: &mut SyncContext<Self>) -> Self::Result {
        let state = EngineState::load(&self.app);
        let backups = state.last_success.is_none() && state.watching_since.is_none();
        let proof = state.proven.is_none() && state.proof_watching_since.is_none();
        if backups || proof {
            self.update(|s| {
                if backups {
                    s.watching_since = Some(msg.now);
                }
                if proof {
                    s.proof_watching_since = Some(msg.now);
                }
            })?;
        } else {
            self.state = state;
        }
        Ok(StateRead(self.state.clone()))
    }
}

impl Handler<ResolveInterrupted> for StateKeeper {
    type Result = Vec<AppendJournal>;
    fn handle(&mut self, _: ResolveInterrupted, _: &mut SyncContext<Self>) -> Self::Result {
        let waiting: Vec<u64> = self
            .state
            .alerts
            .iter()
            .filter(|a| a.pending_journal.is_some())
            .map(|a| a.alert.id)
            .collect();
        let mut entries = Vec::new();
        for id in waiting {
            let line =
                "delivery interrupted: sauve stopped before it ended; the alert stays in the list"
                    .to_owned();
            match self.resolve(id, vec![line]) {
                Ok(entry) => entries.extend(entry),
                Err(e) => tracing::warn!("the journal entry of alert {id} was not written: {e}"),
            }
        }
        entries
    }
}
