//! What is running now, for those who join late (the metrics, the page's
//! thermometer): followed from the engine's own events, so that it shows
//! exactly what every subscriber sees, and published on a watch channel.

use jiff::Timestamp;
use sauve_number::BackupNumber;
use tokio::sync::{broadcast, watch};

use crate::api::{BackupEvent, Phase, Trigger};

/// The backup running now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveRun {
    /// Its run id.
    pub run: u64,
    /// What started it.
    pub trigger: Trigger,
    /// Its number, once it has one.
    pub number: BackupNumber,
    /// Its phase.
    pub phase: Phase,
    /// The file being copied (archive path), if any.
    pub file: String,
    /// Bytes done.
    pub bytes_done: u64,
    /// Bytes to do.
    pub bytes_total: u64,
    /// When it got its number (the copy started).
    pub started: Option<Timestamp>,
}

/// Follows `events` into `live` until the engine's event channel closes.
pub(crate) async fn follow(
    mut events: broadcast::Receiver<BackupEvent>,
    live: watch::Sender<Option<LiveRun>>,
    clock: std::sync::Arc<dyn crate::api::Clock>,
) {
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            // Progress events may be dropped; the next one catches up.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        live.send_modify(|now| apply(now, &event, || clock.now()));
    }
}

/// One event applied to what runs now.
fn apply(now: &mut Option<LiveRun>, event: &BackupEvent, clock: impl FnOnce() -> Timestamp) {
    let fresh = |run: u64| LiveRun {
        run,
        trigger: Trigger::Api,
        number: BackupNumber::NONE,
        phase: Phase::Precheck,
        file: String::new(),
        bytes_done: 0,
        bytes_total: 0,
        started: None,
    };
    match event {
        BackupEvent::Phase { run, phase } => {
            let r = now.get_or_insert_with(|| fresh(*run));
            if r.run != *run {
                *r = fresh(*run);
            }
            r.phase = *phase;
        }
        BackupEvent::Started {
            run,
            trigger,
            number,
            total_bytes,
        } => {
            let r = now.get_or_insert_with(|| fresh(*run));
            r.run = *run;
            r.trigger = *trigger;
            r.number = *number;
            r.bytes_total = *total_bytes;
            r.bytes_done = 0;
            r.started = Some(clock());
        }
        BackupEvent::File {
            run,
            path,
            bytes_done,
            bytes_total,
            ..
        } => {
            if let Some(r) = now.as_mut().filter(|r| r.run == *run) {
                r.file.clone_from(path);
                r.bytes_done = *bytes_done;
                r.bytes_total = *bytes_total;
            }
        }
        BackupEvent::Finished { run, .. } => {
            if now.as_ref().is_some_and(|r| r.run == *run) {
                *now = None;
            }
        }
        BackupEvent::Warning { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_make_the_running_backup_and_its_end_clears_it() {
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut now = None;
        let events = [
            BackupEvent::Phase {
                run: 3,
                phase: Phase::Precheck,
            },
            BackupEvent::Started {
                run: 3,
                trigger: Trigger::Remote,
                number: 12.into(),
                total_bytes: 100,
            },
            BackupEvent::Phase {
                run: 3,
                phase: Phase::Data,
            },
            BackupEvent::File {
                run: 3,
                path: "Data/App.4DD".into(),
                file_done: 40,
                file_total: 90,
                bytes_done: 40,
                bytes_total: 100,
            },
        ];
        for e in &events {
            apply(&mut now, e, || t);
        }
        assert_eq!(
            now,
            Some(LiveRun {
                run: 3,
                trigger: Trigger::Remote,
                number: 12.into(),
                phase: Phase::Data,
                file: "Data/App.4DD".into(),
                bytes_done: 40,
                bytes_total: 100,
                started: Some(t),
            })
        );
        // Another request's refusal does not end it; its own end does.
        apply(
            &mut now,
            &BackupEvent::Finished {
                run: 4,
                status: 1402,
                status_text: String::new(),
                number: BackupNumber::NONE,
                archives: vec![],
            },
            || t,
        );
        assert!(now.is_some());
        apply(
            &mut now,
            &BackupEvent::Finished {
                run: 3,
                status: 0,
                status_text: String::new(),
                number: 12.into(),
                archives: vec![],
            },
            || t,
        );
        assert_eq!(now, None);
    }
}
