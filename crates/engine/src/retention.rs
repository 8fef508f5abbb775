//! Retention (behaviour §6.3): set N is `base[N].4BK` (every segment) and
//! `base[N-1].4BL`; only exact base-name matches count; the lowest numbers
//! go first. [`doomed`] is the rule, pure; [`apply`] deletes set by set and,
//! when a deletion fails, stops there and says what it had deleted, so the
//! journal and the history still learn every file that is gone.

use sauve_number::BackupNumber;
use std::path::{Path, PathBuf};

use sauve_archive::{ArchiveName, SetKind};

use crate::error::EngineError;

/// What retention did.
#[derive(Debug, Default, actix::MessageResponse)]
pub(crate) struct Retained {
    /// Sets (backup numbers) whose `.4BK` is gone, wholly or in part: their
    /// history entries go too, since they can no longer be restored.
    pub(crate) numbers: Vec<BackupNumber>,
    /// Every file deleted, in the order deleted.
    pub(crate) files: Vec<PathBuf>,
    /// The failure that stopped it, if one did.
    pub(crate) failure: Option<EngineError>,
    /// Sets kept beyond the count because a kept set builds on them
    /// (behaviour §21.2): (the set kept, the set that needs it).
    pub(crate) kept_for: Vec<(BackupNumber, BackupNumber)>,
}

/// The numbers of the sets to delete so that `keep` remain, oldest first.
pub(crate) fn doomed(numbers: &[BackupNumber], keep: usize) -> Vec<BackupNumber> {
    let mut sorted = numbers.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let excess = sorted.len().saturating_sub(keep);
    sorted.truncate(excess);
    sorted
}

/// What retention deletes among the sets of one base, in a folder or a
/// store alike (behaviour §6.3, §21.2): the oldest sets until `keep`
/// remain, less every set a staying set builds on, directly or through
/// others (whole chains only).
pub(crate) struct Sweep<K> {
    /// Each set to delete, oldest first, with its files (its `.4BK`
    /// segments and the `.4BL` that goes with it), in no order: the order
    /// of deletion is the destination's.
    pub(crate) sets: Vec<(BackupNumber, Vec<(ArchiveName, K)>)>,
    /// Sets kept beyond the count: (the set kept, the set that needs it).
    pub(crate) kept_for: Vec<(BackupNumber, BackupNumber)>,
}

/// The [`Sweep`] of the sets `named` lists (their names, and how the
/// destination reaches each file), keeping `keep`; `parent_of` says which
/// set a set builds on (none when it is full or cannot be read: a set that
/// cannot be read protects nothing, as it cannot be restored either).
pub(crate) fn sweep<K: Clone>(
    named: &[(ArchiveName, K)],
    keep: usize,
    parent_of: impl Fn(BackupNumber) -> Option<BackupNumber>,
) -> Sweep<K> {
    let numbers: Vec<BackupNumber> = named
        .iter()
        .filter(|(a, _)| a.kind == SetKind::Backup)
        .map(|(a, _)| a.number)
        .collect();
    let mut doomed = doomed(&numbers, keep);
    let kept_for = spare_chains(&numbers, &mut doomed, parent_of);
    let sets = doomed
        .into_iter()
        .map(|number| {
            let files = named
                .iter()
                .filter(|(a, _)| {
                    (a.kind == SetKind::Backup && a.number == number)
                        || (a.kind == SetKind::Log && Some(a.number) == number.log_set())
                })
                .cloned()
                .collect();
            (number, files)
        })
        .collect();
    Sweep { sets, kept_for }
}

/// Deletes the oldest sets of `base` in `destination` until `keep` remain.
pub(crate) fn apply(destination: &Path, base: &str, keep: usize) -> Retained {
    // Each file removed beneath the folder's handle.
    let folder = sauve_store::FolderStore::new(destination.to_path_buf());
    apply_with(destination, base, keep, |p| {
        folder.remove_file(Path::new(p.file_name().unwrap_or_default()))
    })
}

/// [`apply`] with the deletion injected: tests make one fail.
pub(crate) fn apply_with(
    destination: &Path,
    base: &str,
    keep: usize,
    mut remove: impl FnMut(&Path) -> std::io::Result<()>,
) -> Retained {
    let mut retained = Retained::default();
    let names = match sauve_store::FolderStore::new(destination.to_path_buf()).names() {
        Ok(names) => names,
        Err(source) => {
            retained.failure = Some(EngineError::Io {
                action: "list",
                path: destination.to_path_buf(),
                source,
            });
            return retained;
        }
    };
    let files: Vec<(ArchiveName, PathBuf)> = names
        .iter()
        .filter_map(|name| {
            let a = ArchiveName::parse(&name.to_string_lossy())?;
            (!a.part && a.base == base).then(|| (a, destination.join(name)))
        })
        .collect();
    let sweep = sweep(&files, keep, |n| parent_in(destination, base, n));
    retained.kept_for = sweep.kept_for;
    for (number, mut set) in sweep.sets {
        // The `.4BK` segments first, in order, then the `.4BL`'s.
        set.sort_by_key(|(a, _)| (a.kind != SetKind::Backup, a.segment));
        for (_, path) in set {
            if let Err(source) = remove(&path) {
                retained.failure = Some(EngineError::Io {
                    action: "delete",
                    path,
                    source,
                });
                return retained;
            }
            let is_backup =
                ArchiveName::parse(&path.file_name().unwrap_or_default().to_string_lossy())
                    .is_some_and(|a| a.kind == SetKind::Backup);
            if is_backup && !retained.numbers.contains(&number) {
                retained.numbers.push(number);
            }
            retained.files.push(path);
        }
    }
    retained
}

/// The set that set `number` of `base` in the folder `destination` builds
/// on, read from the head of its stream.
fn parent_in(destination: &Path, base: &str, number: BackupNumber) -> Option<BackupNumber> {
    let name = format!("{base}[{}]", number.text());
    sauve_archive::SetFiles::locate(&destination.join(name))
        .and_then(|set| sauve_archive::parent_of(&set))
        .ok()
        .flatten()
}

/// Takes out of `doomed` every set that a set staying builds on, directly
/// or through others (behaviour §21.2: whole chains only). Returns (kept,
/// needed by).
fn spare_chains(
    numbers: &[BackupNumber],
    doomed: &mut Vec<BackupNumber>,
    parent_of: impl Fn(BackupNumber) -> Option<BackupNumber>,
) -> Vec<(BackupNumber, BackupNumber)> {
    let mut kept_for = Vec::new();
    let mut staying: Vec<BackupNumber> = numbers
        .iter()
        .copied()
        .filter(|n| !doomed.contains(n))
        .collect();
    while let Some(n) = staying.pop() {
        if let Some(p) = parent_of(n)
            && let Some(at) = doomed.iter().position(|d| *d == p)
        {
            doomed.remove(at);
            kept_for.push((p, n));
            staying.push(p);
        }
    }
    kept_for.sort_unstable();
    kept_for
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_sets_go_until_keep_remain() {
        let table: &[(&[u32], usize, &[u32])] = &[
            (&[1, 2, 3, 4, 5], 3, &[1, 2]),
            (&[5, 3, 4], 3, &[]),
            (&[7, 2, 9, 2], 1, &[2, 7]),
            (&[1, 2], 0, &[1, 2]),
            (&[], 3, &[]),
        ];
        for (numbers, keep, want) in table {
            let numbers: Vec<BackupNumber> = numbers.iter().copied().map(Into::into).collect();
            let want: Vec<BackupNumber> = want.iter().copied().map(Into::into).collect();
            assert_eq!(doomed(&numbers, *keep), want, "{numbers:?} keep {keep}");
        }
    }

    #[test]
    fn a_sweep_spares_whole_chains_and_takes_each_set_with_its_log_backup() {
        let named: Vec<(ArchiveName, usize)> = [
            "App[0001].4BK",
            "App[0001].4BL",
            "App[0002].4BK",
            "App[0003-0001].4BK",
            "App[0003-0002].4BK",
            "App[0004].4BK",
            "App[0005].4BK",
            "App[0006].4BK",
        ]
        .iter()
        .enumerate()
        .map(|(i, n)| (ArchiveName::parse(n).unwrap(), i))
        .collect();
        // 6 builds on 5, 5 on 4: keeping 2 keeps 4 too.
        let parent_of = |n: BackupNumber| match n.get() {
            6 => Some(5.into()),
            5 => Some(4.into()),
            _ => None,
        };
        let sweep = sweep(&named, 2, parent_of);
        assert_eq!(sweep.kept_for, [(4.into(), 5.into())]);
        let sets: Vec<(u32, Vec<usize>)> = sweep
            .sets
            .iter()
            .map(|(n, files)| {
                let mut at: Vec<usize> = files.iter().map(|(_, i)| *i).collect();
                at.sort_unstable();
                (n.get(), at)
            })
            .collect();
        // Set 2 goes with the log backup 0001, set 1 with none here.
        assert_eq!(sets, [(1, vec![0]), (2, vec![1, 2]), (3, vec![3, 4])]);
    }

    fn touch(dir: &Path, names: &[&str]) {
        for n in names {
            std::fs::write(dir.join(n), b"x").unwrap();
        }
    }

    #[test]
    fn a_set_is_its_segments_and_the_log_backup_numbered_one_less() {
        let dir = tempfile::tempdir().unwrap();
        touch(
            dir.path(),
            &[
                "d[0001-0001].4BK",
                "d[0001-0002].4BK",
                "d[0000].4BL",
                "d[0002].4BK",
                "d[0001].4BL",
                "d[0003].4BK",
                "d[0002].4BL",
                "other[0001].4BK",
                "d[0004].4BK.part",
            ],
        );
        let r = apply(dir.path(), "d", 1);
        assert!(r.failure.is_none());
        assert_eq!(r.numbers, [1, 2]);
        let names: Vec<String> = r
            .files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "d[0001-0001].4BK",
                "d[0001-0002].4BK",
                "d[0000].4BL",
                "d[0002].4BK",
                "d[0001].4BL"
            ]
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "d[0002].4BL",
                "d[0003].4BK",
                "d[0004].4BK.part",
                "other[0001].4BK"
            ]
        );
    }

    #[test]
    fn a_deletion_that_fails_stops_retention_and_reports_what_went_before() {
        let dir = tempfile::tempdir().unwrap();
        touch(
            dir.path(),
            &[
                "d[0001].4BK",
                "d[0002].4BK",
                "d[0001].4BL",
                "d[0003].4BK",
                "d[0002].4BL",
                "d[0004].4BK",
            ],
        );
        let r = apply_with(dir.path(), "d", 1, |p| {
            if p.ends_with("d[0001].4BL") {
                Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied))
            } else {
                std::fs::remove_file(p)
            }
        });
        // Set 1 went, set 2's backup went, its log backup could not: set 2
        // is no longer restorable and leaves the history; set 3 is untouched.
        assert_eq!(r.numbers, [1, 2]);
        assert_eq!(
            r.files,
            [
                dir.path().join("d[0001].4BK"),
                dir.path().join("d[0002].4BK")
            ]
        );
        let failure = r.failure.unwrap().to_string();
        assert!(
            failure.contains("cannot delete") && failure.contains("d[0001].4BL"),
            "{failure}"
        );
        assert!(dir.path().join("d[0003].4BK").exists());
    }
}
