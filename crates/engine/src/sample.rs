//! Samples of the stored bytes between rehearsals (behaviour §23): each
//! backup, and `sauve verify --sample`, reads a share of the pieces of the
//! sets the destination keeps and compares each with the sum recorded
//! when it was stored ([`sauve_archive::Pieces`], in the history). Nothing
//! is decompressed or decrypted: an encrypted set is checked without its
//! identity, in a bucket with ranged reads.
//!
//! Invariants:
//! - a set's pieces are read in an order of its own (a seed the state
//!   keeps), and none twice before all of them were: over a set's life in
//!   the destination, all of it is read once its share adds up;
//! - a sample reads at most its byte cap (at least one piece);
//! - damage is a piece that does not hold its sum, or a file missing or of
//!   another size, of a set the destination still holds; a store out of
//!   reach is an error of the sample, never damage;
//! - the history is a file others can write: a record of pieces of the
//!   wrong shape, or naming a file of another set, is left unread
//!   (reported), and names reach the files only through the store, which
//!   never leaves its folder or prefix.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use sauve_archive::{ArchiveName, Pieces, SetKind};
use sauve_history::HistoryEntry;
use sauve_number::BackupNumber;
use serde::Serialize;

use crate::error::EngineError;
use crate::io::StoreIo;
use crate::state::{Damage, SampleCursor, SampleRecord, SampleState};

/// How much a sample reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleOptions {
    /// The share of each kept set's pieces, 1 to 100 percent (0 reads
    /// one piece of each set).
    pub percent: u32,
    /// The most bytes read in all, MiB (at least one piece is read).
    pub max_mib: u32,
}

impl From<sauve_settings::VerifySettings> for SampleOptions {
    fn from(v: sauve_settings::VerifySettings) -> SampleOptions {
        SampleOptions {
            percent: v.sample_percent,
            max_mib: v.sample_max_mib,
        }
    }
}

/// What one sample read and found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SampleReport {
    /// Where it read.
    pub source: String,
    /// Each kept set with a record of its pieces, and what was read of it.
    pub sets: Vec<SampledSet>,
    /// The pieces read in all.
    pub pieces: u64,
    /// The bytes read in all.
    pub bytes: u64,
    /// Damage found (known damage read again and still there included).
    pub damaged: Vec<Damage>,
    /// Known damage read again and found sound.
    pub sound_again: Vec<Damage>,
    /// Kept sets that could not be sampled, and why (written before
    /// pieces were recorded, or a record of the wrong shape).
    pub unrecorded: Vec<String>,
    /// Why it ended before its share: a Stop, or a backup that came due
    /// (not the cap, which is its normal end).
    pub ended_early: Option<String>,
    /// Pieces the store could not give (not damage): each ended its
    /// set's share for this sample.
    pub unreadable: Vec<String>,
    /// Every damage the state keeps after this sample (this sample's, and
    /// known damage not read again now): the sets an automatic restore
    /// does not pick.
    pub marked: Vec<Damage>,
    /// What could not be recorded (the state, an alert).
    pub warnings: Vec<String>,
}

impl SampleReport {
    /// The record the state keeps.
    pub(crate) fn record(&self, at: jiff::Timestamp) -> SampleRecord {
        SampleRecord {
            at,
            source: self.source.clone(),
            sets: self.sets.len() as u64,
            pieces: self.pieces,
            bytes: self.bytes,
            damaged: self.damaged.len() as u64,
            ended_early: self.ended_early.clone(),
        }
    }

    /// One line for the Backup Journal and the command line.
    pub fn summary(&self) -> String {
        let sets = self.sets.iter().filter(|s| s.pieces > 0).count();
        let mut line = format!(
            "sample: {} piece{} ({}) read from {sets} of {} kept set{} in {}",
            self.pieces,
            if self.pieces == 1 { "" } else { "s" },
            crate::overview::human_bytes(self.bytes),
            self.sets.len(),
            if self.sets.len() == 1 { "" } else { "s" },
            self.source
        );
        line.push_str(&match self.damaged.len() {
            0 => ": sound".to_owned(),
            n => format!(": {n} damaged"),
        });
        let earlier = self
            .marked
            .iter()
            .filter(|m| !self.damaged.iter().any(|d| d.same_place(m)))
            .count();
        if earlier > 0 {
            line.push_str(&format!(
                " ({earlier} damaged piece{} or file{} known from earlier samples, not read again now)",
                if earlier == 1 { "" } else { "s" },
                if earlier == 1 { "" } else { "s" }
            ));
        }
        if let Some(why) = &self.ended_early {
            line.push_str(&format!(" (ended early: {why})"));
        }
        line
    }
}

/// One kept set in a sample.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SampledSet {
    /// `App[0012]`.
    pub set: String,
    /// Its number.
    pub number: BackupNumber,
    /// Pieces read of it in this sample.
    pub pieces: u64,
    /// Bytes read of it in this sample.
    pub bytes: u64,
    /// Pieces read of it since its reading order began.
    pub covered: u64,
    /// Its pieces in all.
    pub total: u64,
}

/// Where the sets are read: the destination's folder or bucket.
pub(crate) struct Stored {
    store: Arc<dyn sauve_store::Store>,
    io: StoreIo,
    shown: String,
}

/// How a destination is named in a sample's record: the folder, or the
/// URL without credentials.
pub(crate) fn source_of(place: &sauve_settings::Destination) -> String {
    match place {
        sauve_settings::Destination::Folder(dir) => dir.display().to_string(),
        sauve_settings::Destination::Store { url, .. } => sauve_settings::shown_url(url),
    }
}

impl Stored {
    /// The destination `place` of `app`, read through its store.
    pub(crate) fn open(
        app: &Path,
        place: &sauve_settings::Destination,
        io: &StoreIo,
    ) -> Result<Stored, EngineError> {
        let store = match place {
            sauve_settings::Destination::Folder(dir) => {
                let location = sauve_store::Location::Folder(dir.clone());
                sauve_store::open(&location, &sauve_store::S3Options::default())?
            }
            sauve_settings::Destination::Store { url, .. } => {
                crate::stores::open_store(Some(app), url)?
            }
        };
        Ok(Stored {
            store,
            io: io.clone(),
            shown: source_of(place),
        })
    }

    /// The stored files of `base`, by name, with their sizes.
    fn list(&self, base: &str) -> Result<BTreeMap<String, u64>, EngineError> {
        let (store, prefix) = (Arc::clone(&self.store), format!("{base}["));
        let listed = self.io.run(async move { store.list(&prefix).await })?;
        Ok(listed.into_iter().map(|o| (o.key, o.size)).collect())
    }

    fn read(&self, name: &str, range: std::ops::Range<u64>) -> Result<bytes::Bytes, EngineError> {
        let (store, key) = (Arc::clone(&self.store), name.to_owned());
        Ok(self
            .io
            .run(async move { store.get_range(&key, range).await })?)
    }
}

/// A kept set and the record of its files.
struct Kept {
    set: String,
    number: BackupNumber,
    files: Vec<Pieces>,
}

impl Kept {
    fn total(&self) -> u64 {
        self.files.iter().map(Pieces::count).sum()
    }

    /// Piece `at` of the set, its files end to end: (file, piece in it).
    fn locate(&self, mut at: u64) -> Option<(&Pieces, u64)> {
        for f in &self.files {
            if at < f.count() {
                return Some((f, at));
            }
            at -= f.count();
        }
        None
    }
}

/// The sets of `entries` with a usable record of their pieces, and why
/// the others cannot be sampled. A record is usable when each file's
/// shape holds and names a file of that set of `base`.
fn kept_sets(entries: &[HistoryEntry], base: &str) -> (Vec<Kept>, Vec<String>) {
    let (mut kept, mut unrecorded) = (Vec::new(), Vec::new());
    let mut seen = BTreeSet::new();
    for e in entries
        .iter()
        .filter(|e| e.is_numbered_backup() && e.status.is_none_or(|s| s == 0 || s == -43))
    {
        let set = format!("{base}[{}]", e.backup_number.text());
        if !seen.insert(e.backup_number) {
            continue;
        }
        let Some(files) = &e.stored else {
            unrecorded.push(format!("{set}: written before its pieces were recorded"));
            continue;
        };
        let wrong = files.iter().find_map(|f| {
            f.check_shape().err().or_else(|| {
                let (plain, _) = sauve_archive::strip_age(&f.name);
                let ours = ArchiveName::parse(plain).is_some_and(|n| {
                    let number = match n.kind {
                        SetKind::Backup => Some(e.backup_number),
                        SetKind::Log => e.backup_number.log_set(),
                    };
                    n.base == base && Some(n.number) == number && !n.part
                });
                (!ours).then(|| {
                    format!(
                        "{} is not a file of {set} (accepted: {set}.4BK, its segments, its log backup, each with .age when encrypted)",
                        f.name
                    )
                })
            })
        });
        match wrong {
            Some(why) => unrecorded.push(format!("{set}: its record is not usable ({why})")),
            None if files.is_empty() => {
                unrecorded.push(format!("{set}: its record names no file"));
            }
            None => kept.push(Kept {
                set,
                number: e.backup_number,
                files: files.clone(),
            }),
        }
    }
    (kept, unrecorded)
}

/// The `share` pieces to read next from `cursor` (at most all `total`),
/// each with the cursor once it is read: the rest of the cursor's order,
/// then, when that is short, a new order (a new seed) from its start,
/// leaving out the pieces already planned, so that no piece is read twice
/// in one sample.
fn planned(cursor: SampleCursor, total: u64, share: u64) -> Vec<(u64, SampleCursor)> {
    let share = share.min(total);
    let mut plan: Vec<(u64, SampleCursor)> = order(cursor.seed, total)
        .into_iter()
        .enumerate()
        .skip(cursor.next as usize)
        .take(share as usize)
        .map(|(i, at)| {
            let after = SampleCursor {
                seed: cursor.seed,
                next: i as u64 + 1,
            };
            (at, after)
        })
        .collect();
    if (plan.len() as u64) < share {
        let seed = fastrand::u64(..);
        let taken: BTreeSet<u64> = plan.iter().map(|(at, _)| *at).collect();
        let more = share - plan.len() as u64;
        let fresh = order(seed, total)
            .into_iter()
            .enumerate()
            .filter(|(_, at)| !taken.contains(at))
            .take(more as usize)
            .map(|(i, at)| {
                let after = SampleCursor {
                    seed,
                    next: i as u64 + 1,
                };
                (at, after)
            })
            .collect::<Vec<_>>();
        plan.extend(fresh);
    }
    plan
}

/// The order set `total` pieces are read in, from its seed.
fn order(seed: u64, total: u64) -> Vec<u64> {
    let mut all: Vec<u64> = (0..total).collect();
    fastrand::Rng::with_seed(seed).shuffle(&mut all);
    all
}

/// The most damaged pieces recorded per file: past them, the file is
/// damaged enough for a person to look, and the state stays small.
pub(crate) const MAX_DAMAGED_PIECES: usize = 16;

/// What a sample left: its report, the cursors of the sets it kept, and
/// the sets the history lists (whose damage the state may keep).
pub(crate) struct Sampled {
    pub(crate) report: SampleReport,
    pub(crate) cursors: BTreeMap<String, SampleCursor>,
    pub(crate) listed: Vec<BackupNumber>,
    /// The sets the state said damaged when the sample began.
    pub(crate) known: Vec<BackupNumber>,
}

/// Reads a sample of the sets `entries` (the destination's history of the
/// app) list of `base` from `stored`, as `state` left the earlier ones;
/// `stopped` is asked between two pieces.
pub(crate) fn sample(
    stored: &Stored,
    (base, entries): (&str, &[HistoryEntry]),
    state: &SampleState,
    options: SampleOptions,
    (now, stopped): (jiff::Timestamp, &dyn Fn() -> bool),
) -> Result<Sampled, EngineError> {
    let (kept, unrecorded) = kept_sets(entries, base);
    let listed = stored.list(base)?;
    let mut report = SampleReport {
        source: stored.shown.clone(),
        unrecorded,
        ..SampleReport::default()
    };
    let damage = |k: &Kept, file: &str, piece: Option<u64>, why: String| Damage {
        set: k.set.clone(),
        number: k.number,
        file: file.to_owned(),
        piece,
        why,
        found: now,
    };
    // Files missing or of another size (a whole set missing included: the
    // history lists only the sets retention kept): no piece of them is read.
    let mut whole_file_damage = BTreeSet::new();
    for k in &kept {
        for f in &k.files {
            let why = match listed.get(&f.name) {
                None => Some("missing".to_owned()),
                Some(&size) if size != f.size => {
                    Some(format!("{size} bytes stored where {} were written", f.size))
                }
                Some(_) => None,
            };
            match why {
                Some(why) => {
                    whole_file_damage.insert((k.number, f.name.clone()));
                    report.damaged.push(damage(k, &f.name, None, why));
                }
                // Known as missing or cut, and whole again.
                None => report.sound_again.extend(
                    state
                        .damaged
                        .iter()
                        .filter(|d| d.number == k.number && d.file == f.name && d.piece.is_none())
                        .cloned(),
                ),
            }
        }
    }
    let max = u64::from(options.max_mib) << 20;
    let mut budget = Budget {
        left: max,
        read_any: false,
    };
    let mut reader = Reader {
        stored,
        report: &mut report,
        budget: &mut budget,
        stopped,
    };
    // Known damage first, within half the budget: per file, pieces in a
    // random order until one is still damaged (it stays, as do the ones
    // not read now); those read sound are forgotten.
    let reread = reread_known(&mut reader, (&kept, &whole_file_damage), state, max / 2);
    // Then each set's share, the sets in an order of this sample.
    let mut cursors = BTreeMap::new();
    let mut sets: Vec<&Kept> = kept.iter().collect();
    fastrand::shuffle(&mut sets);
    for k in sets {
        // A piece read again above counts as read; one of a file missing
        // or cut ends the set's share, its cursor left before it.
        let skip = |f: &Pieces, piece: u64| {
            if whole_file_damage.contains(&(k.number, f.name.clone())) {
                Some(false)
            } else {
                reread
                    .contains(&(k.number, f.name.clone(), piece))
                    .then_some(true)
            }
        };
        let found = |f: &Pieces, piece: u64, why: String| damage(k, &f.name, Some(piece), why);
        let cursor = reader.share(k, (state, options.percent), &skip, &found);
        cursors.insert(k.set.clone(), cursor);
    }
    report.sets.sort_by_key(|s| s.number);
    Ok(Sampled {
        report,
        cursors,
        listed: entries
            .iter()
            .filter(|e| e.is_numbered_backup())
            .map(|e| e.backup_number)
            .collect(),
        known: state.damaged_numbers(),
    })
}

/// Reads known damage again (see [`sample`]); the places read.
fn reread_known(
    reader: &mut Reader<'_>,
    (kept, whole_file_damage): (&[Kept], &BTreeSet<(BackupNumber, String)>),
    state: &SampleState,
    budget: u64,
) -> BTreeSet<(BackupNumber, String, u64)> {
    let mut by_file: BTreeMap<(BackupNumber, &str), Vec<&Damage>> = BTreeMap::new();
    for d in state.damaged.iter().filter(|d| d.piece.is_some()) {
        by_file
            .entry((d.number, d.file.as_str()))
            .or_default()
            .push(d);
    }
    let mut reread = BTreeSet::new();
    let mut spent = 0;
    // Files in an order of this sample, so that all are read again in
    // turn when half the budget cannot hold one piece of each.
    let mut files: Vec<_> = by_file.into_iter().collect();
    fastrand::shuffle(&mut files);
    for ((number, file), mut known) in files {
        let Some(f) = kept
            .iter()
            .find(|k| k.number == number)
            .and_then(|k| k.files.iter().find(|f| f.name == file))
        else {
            continue;
        };
        if whole_file_damage.contains(&(number, file.to_owned())) {
            continue;
        }
        fastrand::shuffle(&mut known);
        for d in known {
            let Some(piece) = d.piece else { continue };
            let len = f.range(piece).end - f.range(piece).start;
            if spent + len > budget && spent > 0 {
                return reread;
            }
            reread.insert((number, f.name.clone(), piece));
            // Every read counts, sound or not.
            spent += len;
            match reader.check(f, piece) {
                Read::Sound => reader.report.sound_again.push(d.clone()),
                Read::Damaged(_) => {
                    reader.report.damaged.push(d.clone());
                    break;
                }
                Read::Unreadable(why) => {
                    reader.report.unreadable.push(why);
                    break;
                }
                Read::End => return reread,
            }
        }
    }
    reread
}
/// What a sample needs, owned, to run on a blocking thread.
pub(crate) struct SampleJob {
    pub(crate) app: std::path::PathBuf,
    /// The destination the app's settings name.
    pub(crate) place: sauve_settings::Destination,
    /// The app's key in the history, and its sets' base name.
    pub(crate) key: String,
    pub(crate) base: String,
    pub(crate) io: StoreIo,
    pub(crate) options: SampleOptions,
    pub(crate) now: jiff::Timestamp,
}

impl SampleJob {
    /// The app's entries of the destination's history as it is now (none
    /// before a first backup); one that does not read is an error, never
    /// a destination with no set.
    fn entries(&self) -> Result<Vec<HistoryEntry>, EngineError> {
        let records = self.place.records();
        let Some(text) = sauve_history::read_json_text(records)? else {
            return Ok(Vec::new());
        };
        let history = sauve_history::History::parse(&text).ok_or_else(|| {
            sauve_history::HistoryError::Invalid {
                path: records.join(sauve_history::FILE_NAME),
            }
        })?;
        Ok(history.entries(&self.key).unwrap_or_default())
    }

    /// Reads the sample (blocking): the history and the state as they are
    /// now, read only; the records are the keepers' to write.
    fn read(&self, stopped: &dyn Fn() -> bool) -> Result<Sampled, EngineError> {
        // A folder that is not there (a disk not mounted) is not a
        // destination without sets.
        if let sauve_settings::Destination::Folder(dir) = &self.place
            && !dir.is_dir()
        {
            return Err(EngineError::io("read", dir)(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the destination folder is not there",
            )));
        }
        let stored = Stored::open(&self.app, &self.place, &self.io)?;
        let entries = self.entries()?;
        let state = crate::state::EngineState::load(&self.app)
            .sample
            .unwrap_or_default();
        let mut sampled = sample(
            &stored,
            (&self.base, &entries),
            &state,
            self.options,
            (self.now, stopped),
        )?;
        // A set retention removed while it was read (a backup's, beside a
        // sample asked by hand) left the history meanwhile: it is gone,
        // not damaged.
        let now_listed: BTreeSet<BackupNumber> = self
            .entries()?
            .iter()
            .filter(|e| e.is_numbered_backup())
            .map(|e| e.backup_number)
            .collect();
        sampled
            .report
            .damaged
            .retain(|d| now_listed.contains(&d.number));
        sampled.listed.retain(|n| now_listed.contains(n));
        sampled.cursors.retain(|set, _| {
            sampled
                .report
                .sets
                .iter()
                .any(|s| &s.set == set && now_listed.contains(&s.number))
        });
        Ok(sampled)
    }
}

/// Runs `job` and records it: the state keeper keeps what it read, and
/// each set newly found damaged raises an alert (`trigger` says what
/// started the sample). Returns the report and what could not be recorded.
pub(crate) async fn sample_and_record(
    actors: &crate::actors::Actors,
    job: SampleJob,
    stopped: impl Fn() -> bool + Send + 'static,
    (trigger, zone): (&str, &jiff::tz::TimeZone),
) -> Result<(SampleReport, Vec<String>), EngineError> {
    use crate::actors::ask;
    let now = job.now;
    let sampled = actors.io.blocking(move || job.read(&stopped)).await??;
    let mut warnings = Vec::new();
    let mut report = sampled.report;
    let msg = crate::actors::state::messages::RecordSample {
        record: report.record(now),
        cursors: sampled.cursors,
        listed: sampled.listed,
        damaged: report.damaged.clone(),
        sound_again: report.sound_again.clone(),
    };
    let new = match ask(&actors.state, "state", msg).await.and_then(|r| r) {
        Ok(recorded) => {
            report.marked = recorded.marked;
            recorded.new
        }
        Err(e) => {
            warnings.push(format!("the sample was not recorded in the state: {e}"));
            // Alerted once the state keeps it; meanwhile only the sets
            // it did not know damaged.
            report.marked = report.damaged.clone();
            report
                .damaged
                .iter()
                .filter(|d| !sampled.known.contains(&d.number))
                .cloned()
                .collect()
        }
    };
    for (draft, journal) in alerts(&new, trigger, (now, zone)) {
        let raise = crate::actors::alerts::messages::RaiseAlert {
            draft,
            journal,
            whole: true,
        };
        if let Err(e) = ask(&actors.alerter, "alerter", raise).await.and_then(|r| r) {
            warnings.push(format!("the alert was not raised: {e}"));
        }
    }
    Ok((report, warnings))
}

/// One alert per set in `new`, naming its damaged files and pieces.
fn alerts(
    new: &[Damage],
    trigger: &str,
    (now, zone): (jiff::Timestamp, &jiff::tz::TimeZone),
) -> Vec<(
    crate::actors::alerts::messages::AlertDraft,
    sauve_journal::Entry,
)> {
    let mut by_set: BTreeMap<BackupNumber, Vec<&Damage>> = BTreeMap::new();
    for d in new {
        by_set.entry(d.number).or_default().push(d);
    }
    by_set
        .into_iter()
        .map(|(number, found)| {
            let mut errors: Vec<String> = found.iter().take(10).map(|d| d.to_string()).collect();
            if found.len() > 10 {
                errors.push(format!("and {} more", found.len() - 10));
            }
            let draft = crate::actors::alerts::messages::AlertDraft {
                kind: sauve_alerts::AlertKind::SetDamaged,
                status: sauve_status::Status::ArchiveCorrupt,
                trigger: trigger.to_owned(),
                number,
                scheduled: None,
                started: Some(now),
                ended: Some(now),
                errors: errors.clone(),
                failures: 0,
            };
            let mut journal = sauve_journal::Entry::new(sauve_journal::Title::Alert);
            journal.reason = Some(format!(
                "{}; an automatic restore no longer picks it",
                errors.join("; ")
            ));
            journal.starting = Some(sauve_journal::Stamp::at(zone.to_datetime(now)));
            (draft, journal)
        })
        .collect()
}

/// The bytes a sample may still read.
struct Budget {
    left: u64,
    read_any: bool,
}

/// Reads pieces for one sample, within its budget.
struct Reader<'a> {
    stored: &'a Stored,
    report: &'a mut SampleReport,
    budget: &'a mut Budget,
    stopped: &'a dyn Fn() -> bool,
}

/// What reading one piece found.
enum Read {
    /// It holds its sum.
    Sound,
    /// It does not, and why.
    Damaged(String),
    /// The store could not give it (not damage), and why: the set's
    /// share ends here, the sample goes on with the next set.
    Unreadable(String),
    /// The sample must end here: stopped (`ended_early` says so), or out
    /// of budget (its normal end).
    End,
}

impl Reader<'_> {
    /// Reads piece `piece` of `f` and compares it with its sum.
    fn check(&mut self, f: &Pieces, piece: u64) -> Read {
        if (self.stopped)() {
            self.report.ended_early = Some("stopped".to_owned());
            return Read::End;
        }
        let range = f.range(piece);
        let len = range.end - range.start;
        if self.budget.read_any && len > self.budget.left {
            return Read::End;
        }
        let bytes = match self.stored.read(&f.name, range) {
            Ok(b) => b,
            Err(EngineError::Store(sauve_store::StoreError::NotFound { .. })) => {
                return Read::Damaged("missing".to_owned());
            }
            Err(e) => return Read::Unreadable(format!("{} could not be read ({e})", f.name)),
        };
        self.budget.left = self.budget.left.saturating_sub(len);
        self.budget.read_any = true;
        self.report.pieces += 1;
        self.report.bytes += len;
        match f.holds(piece, &bytes) {
            true => Read::Sound,
            false if bytes.len() as u64 != len => Read::Damaged(format!(
                "{} bytes read where {len} were stored",
                bytes.len()
            )),
            false => Read::Damaged("does not hold the bytes stored there".to_owned()),
        }
    }

    /// Reads set `k`'s share (`percent` of its pieces, at least one) from
    /// where its cursor in `state` stands; `skip` says of a piece whether
    /// it is not to be read (`Some(true)`: read already in this sample,
    /// counted; `Some(false)`: the share ends before it); `found` makes
    /// the damage of a piece. The set's cursor after.
    fn share(
        &mut self,
        k: &Kept,
        (state, percent): (&SampleState, u32),
        skip: &dyn Fn(&Pieces, u64) -> Option<bool>,
        found: &dyn Fn(&Pieces, u64, String) -> Damage,
    ) -> SampleCursor {
        let total = k.total();
        let mut cursor = state
            .cursors
            .get(&k.set)
            .copied()
            .filter(|c| c.next < total)
            .unwrap_or_else(|| SampleCursor {
                seed: fastrand::u64(..),
                next: 0,
            });
        let share = (total * u64::from(percent)).div_ceil(100).max(1);
        let (pieces, bytes) = (self.report.pieces, self.report.bytes);
        let mut damaged_here: BTreeMap<&str, usize> = BTreeMap::new();
        for (at, after) in planned(cursor, total, share) {
            if self.report.ended_early.is_some() {
                break;
            }
            let Some((f, piece)) = k.locate(at) else {
                break;
            };
            match skip(f, piece) {
                Some(false) => break,
                Some(true) => {}
                None => match self.check(f, piece) {
                    Read::Sound => {}
                    Read::Damaged(why) => {
                        let n = damaged_here.entry(&f.name).or_default();
                        *n += 1;
                        if *n <= MAX_DAMAGED_PIECES {
                            self.report.damaged.push(found(f, piece, why));
                        }
                    }
                    Read::Unreadable(why) => {
                        self.report.unreadable.push(why);
                        break;
                    }
                    Read::End => break,
                },
            }
            cursor = after;
        }
        self.report.sets.push(SampledSet {
            set: k.set.clone(),
            number: k.number,
            pieces: self.report.pieces - pieces,
            bytes: self.report.bytes - bytes,
            covered: cursor.next,
            total,
        });
        cursor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(number: u32, names: &[&str]) -> HistoryEntry {
        let mut e: HistoryEntry = serde_json::from_value(serde_json::json!({
            "backupPath": format!("/bk/App[{number:04}].4BK"),
            "structurePath": "/app/Project/App.4DProject",
            "dataPath": "/app/Data/App.4DD",
            "logPath": "",
            "startingDate": "2026-01-01T00:00:00.000Z",
            "endingDate": "2026-01-01T00:00:01.000Z",
            "scheduledDate": "2026-01-01T00:00:00.000Z",
            "backupNumber": number,
            "duration": 1000,
            "attachments": [],
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        e.stored = Some(
            names
                .iter()
                .map(|n| {
                    let mut h = sauve_archive::PieceHasher::default();
                    h.update(b"bytes");
                    h.finish((*n).to_owned())
                })
                .collect(),
        );
        e
    }

    #[test]
    fn a_set_s_record_names_only_its_own_files() {
        let good = entry(
            12,
            &[
                "App[0012-0001].4BK",
                "App[0012-0002].4BK",
                "App[0011].4BL",
                "App[0012].4BK.age",
            ],
        );
        let (kept, unrecorded) = kept_sets(&[good], "App");
        assert_eq!(kept.len(), 1, "{unrecorded:?}");
        assert_eq!(kept[0].total(), 4);
        for wrong in [
            "App[0012].4BL",
            "App[0013].4BK",
            "Other[0012].4BK",
            "App[0012].4BK.part",
            "../App[0012].4BK",
        ] {
            let (kept, unrecorded) = kept_sets(&[entry(12, &[wrong])], "App");
            assert!(kept.is_empty(), "{wrong}");
            assert!(
                unrecorded[0].contains("not a file of App[0012]")
                    || unrecorded[0].contains("not a plain file name"),
                "{wrong}: {unrecorded:?}"
            );
        }
        let mut old = entry(3, &[]);
        old.stored = None;
        let (_, unrecorded) = kept_sets(&[old], "App");
        assert!(unrecorded[0].contains("written before its pieces were recorded"));
    }

    #[test]
    fn a_plan_reads_no_piece_twice_and_goes_on_in_a_new_order_past_the_end() {
        let total = 10;
        for next in 0..=total {
            for share in [1, 3, 10, 25] {
                let cursor = SampleCursor { seed: 7, next };
                let plan = planned(cursor, total, share);
                assert_eq!(plan.len() as u64, share.min(total));
                let pieces: BTreeSet<u64> = plan.iter().map(|(at, _)| *at).collect();
                assert_eq!(pieces.len(), plan.len(), "no piece twice");
                // The rest of the order first, in its order.
                let rest: Vec<u64> = order(7, total).into_iter().skip(next as usize).collect();
                let head: Vec<u64> = plan.iter().take(rest.len()).map(|(at, _)| *at).collect();
                assert_eq!(head, rest[..head.len()]);
                for (i, (_, after)) in plan.iter().enumerate() {
                    if (i as u64) < total - next {
                        assert_eq!(
                            *after,
                            SampleCursor {
                                seed: 7,
                                next: next + i as u64 + 1
                            }
                        );
                    } else {
                        assert_ne!(after.seed, 7, "a new order");
                    }
                }
            }
        }
    }

    #[test]
    fn a_set_s_order_holds_every_piece_once() {
        for total in [0, 1, 2, 7, 100] {
            let mut o = order(42, total);
            assert_eq!(o, order(42, total), "the same seed, the same order");
            o.sort_unstable();
            assert_eq!(o, (0..total).collect::<Vec<_>>());
        }
    }
}
