//! The lock state machine, without any waiting: who holds what, who waits in
//! which order, and who can go on now. Pure, so that every rule is testable
//! without a runtime.

use std::collections::VecDeque;

use crate::{Kind, Mode};

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    Read(Kind),
    Write(Kind),
    /// A backup lock on these kinds (data, structure) in this mode.
    Backup {
        kinds: [bool; 2],
        mode: Mode,
    },
}

impl Want {
    fn touches(self, kind: Kind) -> bool {
        match self {
            Want::Read(k) | Want::Write(k) => k == kind,
            Want::Backup { kinds, .. } => kinds[kind.index()],
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct PerKind {
    readers: usize,
    writers: usize,
    /// The mode of the backup holding this kind.
    backup: Option<Mode>,
}

/// Holders and waiters.
#[derive(Debug, Default)]
pub(crate) struct State {
    kinds: [PerKind; 2],
    /// Waiting requests, in arrival order: (ticket, want).
    queue: VecDeque<(u64, Want)>,
    next_ticket: u64,
}

impl State {
    /// Whether `want` could be granted with nothing waiting before it.
    fn compatible(&self, want: Want) -> bool {
        match want {
            Want::Read(k) => self.kinds[k.index()].backup != Some(Mode::SingleUser),
            Want::Write(k) => self.kinds[k.index()].backup.is_none(),
            Want::Backup { kinds, mode } => Kind::ALL.iter().all(|k| {
                let s = &self.kinds[k.index()];
                !kinds[k.index()]
                    || (s.backup.is_none()
                        && s.writers == 0
                        && (mode == Mode::Server || s.readers == 0))
            }),
        }
    }

    /// Whether a waiting request blocks `want`: an earlier waiter on the same
    /// kind that `want` must not overtake. Server-mode readers overtake
    /// everything (readers are never blocked in server mode); writers and
    /// single-user readers queue behind any earlier waiter on their kind.
    fn blocked_by_queue(&self, want: Want, before: Option<usize>) -> bool {
        let waiting = self.queue.iter().take(before.unwrap_or(self.queue.len()));
        match want {
            Want::Read(k) => waiting.into_iter().any(|(_, w)| {
                matches!(w, Want::Backup { kinds, mode: Mode::SingleUser } if kinds[k.index()])
            }),
            Want::Write(k) => waiting.into_iter().any(|(_, w)| w.touches(k) && !matches!(w, Want::Read(_))),
            Want::Backup { .. } => waiting
                .into_iter()
                .any(|(_, w)| Kind::ALL.iter().any(|k| want.touches(*k) && w.touches(*k) && !matches!(w, Want::Read(_)))),
        }
    }

    fn grant(&mut self, want: Want) {
        match want {
            Want::Read(k) => self.kinds[k.index()].readers += 1,
            Want::Write(k) => self.kinds[k.index()].writers += 1,
            Want::Backup { kinds, mode } => {
                for k in Kind::ALL {
                    if kinds[k.index()] {
                        self.kinds[k.index()].backup = Some(mode);
                    }
                }
            }
        }
    }

    /// A request arrives: granted at once (`Ok`), or queued with its ticket.
    pub(crate) fn request(&mut self, want: Want) -> Result<(), u64> {
        if self.compatible(want) && !self.blocked_by_queue(want, None) {
            self.grant(want);
            return Ok(());
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.queue.push_back((ticket, want));
        Err(ticket)
    }

    /// A non-blocking attempt: granted only if it would be at once.
    pub(crate) fn try_request(&mut self, want: Want) -> bool {
        if self.compatible(want) && !self.blocked_by_queue(want, None) {
            self.grant(want);
            true
        } else {
            false
        }
    }

    /// A holder lets go.
    pub(crate) fn release(&mut self, want: Want) {
        match want {
            Want::Read(k) => self.kinds[k.index()].readers -= 1,
            Want::Write(k) => self.kinds[k.index()].writers -= 1,
            Want::Backup { kinds, .. } => {
                for k in Kind::ALL {
                    if kinds[k.index()] {
                        self.kinds[k.index()].backup = None;
                    }
                }
            }
        }
    }

    /// A waiter gives up (cancelled, timed out, or its future dropped).
    /// Returns whether it was still waiting.
    pub(crate) fn withdraw(&mut self, ticket: u64) -> bool {
        let before = self.queue.len();
        self.queue.retain(|(t, _)| *t != ticket);
        self.queue.len() != before
    }

    /// Grants every waiter that can go on now, in arrival order; returns
    /// their tickets in that order.
    pub(crate) fn wake(&mut self) -> Vec<(u64, Want)> {
        let mut granted = Vec::new();
        let mut i = 0;
        while i < self.queue.len() {
            let (ticket, want) = self.queue[i];
            if self.compatible(want) && !self.blocked_by_queue(want, Some(i)) {
                self.queue.remove(i);
                self.grant(want);
                granted.push((ticket, want));
            } else {
                i += 1;
            }
        }
        granted
    }

    /// Active readers and writers of a kind, and the mode of a backup holding it.
    pub(crate) fn holders(&self, kind: Kind) -> (usize, usize, Option<Mode>) {
        let s = &self.kinds[kind.index()];
        (s.readers, s.writers, s.backup)
    }

    /// Requests waiting.
    pub(crate) fn waiting(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: Kind = Kind::Data;
    const BOTH: [bool; 2] = [true, true];
    const DATA_ONLY: [bool; 2] = [true, false];

    #[test]
    fn a_waiting_backup_holds_back_new_writers_but_not_server_readers() {
        let mut s = State::default();
        assert!(s.request(Want::Write(DATA)).is_ok());
        let backup = Want::Backup {
            kinds: DATA_ONLY,
            mode: Mode::Server,
        };
        assert!(
            s.request(backup).is_err(),
            "waits for the writer in progress"
        );
        assert!(
            s.request(Want::Write(DATA)).is_err(),
            "a new writer queues behind it"
        );
        assert!(s.request(Want::Read(DATA)).is_ok(), "server readers go on");
        assert!(
            s.request(Want::Write(Kind::Structure)).is_ok(),
            "other kinds are free"
        );
        s.release(Want::Write(DATA));
        let woken = s.wake();
        assert_eq!(woken.len(), 1);
        assert_eq!(woken[0].1, backup);
        s.release(backup);
        assert_eq!(s.wake().len(), 1, "the queued writer goes on");
    }

    #[test]
    fn single_user_backups_freeze_readers_too() {
        let mut s = State::default();
        let backup = Want::Backup {
            kinds: BOTH,
            mode: Mode::SingleUser,
        };
        assert!(s.request(Want::Read(DATA)).is_ok());
        assert!(s.request(backup).is_err(), "waits for the reader");
        assert!(
            s.request(Want::Read(DATA)).is_err(),
            "new readers queue behind it"
        );
        s.release(Want::Read(DATA));
        assert_eq!(s.wake().len(), 1);
        assert_eq!(s.holders(DATA), (0, 0, Some(Mode::SingleUser)));
        s.release(backup);
        assert_eq!(s.wake().len(), 1);
    }

    #[test]
    fn a_withdrawn_backup_lets_the_writers_behind_it_go() {
        let mut s = State::default();
        assert!(s.request(Want::Write(DATA)).is_ok());
        let Err(ticket) = s.request(Want::Backup {
            kinds: DATA_ONLY,
            mode: Mode::Server,
        }) else {
            panic!("granted");
        };
        assert!(s.request(Want::Write(DATA)).is_err());
        assert!(s.withdraw(ticket));
        assert_eq!(s.wake().len(), 1);
        assert_eq!(s.holders(DATA), (0, 2, None));
    }
}
