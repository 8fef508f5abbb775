//! Store access shared by a bucket destination and the off-site copies
//! (behaviour §19): opening a store from a URL and sauve.toml, uploading a
//! file, the per-app history objects and the store's merged
//! `backupHistory.json`, the guard against two apps sharing a prefix, and
//! retention in a store.

use sauve_number::BackupNumber;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use sauve_archive::{ArchiveName, SetKind};
use sauve_history::{History, OffsiteState};
use sauve_settings::{OffsiteSettings, StoreConnection};
use sauve_store::{Location, S3Options, Store, StoreError};

/// Where the app's own history lives on a store: one object per app,
/// written only by that app (behaviour §19).
pub(crate) fn history_object(key: &str) -> String {
    let digest = blake3::hash(key.as_bytes()).to_hex();
    format!(".sauve/history/{}.json", &digest[..32])
}

/// The S3 options of an off-site destination: its keys over `[destination]`,
/// over the AWS environment variables.
pub(crate) fn s3_options(own: &StoreConnection, base: &StoreConnection) -> S3Options {
    let c = own.over(base);
    let mut o = S3Options::new();
    o.endpoint = c.endpoint;
    o.region = c.region;
    o.path_style = c.path_style;
    o.access_key_id = c.access_key_id;
    o.secret_access_key = c.secret_access_key.map(|s| s.expose().to_owned());
    if let Some(mib) = c.part_size_mib {
        o.part_size = mib as usize * (1 << 20);
    }
    if let Some(n) = c.parts_in_flight {
        o.parts_in_flight = n as usize;
    }
    o.with_aws_environment(|name| std::env::var(name).ok())
}

/// Opens the store an `[[offsite]]` entry names; a folder is relative to the app.
pub(crate) fn open_offsite(
    app: &Path,
    target: &OffsiteSettings,
    base: &StoreConnection,
) -> Result<(Arc<dyn Store>, usize), StoreError> {
    let (location, options) = offsite_place(app, target, base)?;
    Ok((sauve_store::open(&location, &options)?, options.part_size))
}

/// Where an `[[offsite]]` entry's store is, and how it is reached.
pub(crate) fn offsite_place(
    app: &Path,
    target: &OffsiteSettings,
    base: &StoreConnection,
) -> Result<(Location, S3Options), StoreError> {
    let options = s3_options(&target.connection, base);
    let location = match Location::parse(&target.url)? {
        Location::Folder(dir) if dir.is_relative() => Location::Folder(app.join(dir)),
        other => other,
    };
    Ok((location, options))
}

/// Whether two places name the same sets: the same folder once resolved
/// (`../Backups/` from the app and `/srv/Backups` alike, links followed),
/// or the same bucket and prefix reached at the same address. Blocking.
pub(crate) fn same_place(a: (&Location, &S3Options), b: (&Location, &S3Options)) -> bool {
    match (a.0, b.0) {
        (Location::Folder(x), Location::Folder(y)) => {
            match (std::fs::canonicalize(x), std::fs::canonicalize(y)) {
                (Ok(x), Ok(y)) => x == y,
                // One not made yet: not the other, which holds sets.
                _ => false,
            }
        }
        (
            Location::Bucket {
                bucket: b1,
                prefix: p1,
            },
            Location::Bucket {
                bucket: b2,
                prefix: p2,
            },
        ) => b1 == b2 && p1 == p2 && a.1.bucket_url(b1) == b.1.bucket_url(b2),
        _ => false,
    }
}

/// Opens the store an `s3://bucket/prefix/` URL (or a folder) names, for
/// `sauve list|verify|restore`: reached through `[destination]` of the
/// app's sauve.toml when `app` is given, and the AWS environment variables.
pub fn open_store(app: Option<&Path>, url: &str) -> Result<Arc<dyn Store>, crate::EngineError> {
    let (own, base) = match app {
        Some(app) => {
            let toml = sauve_settings::load_sauve_toml(app)?;
            // The `[[offsite]]` entry naming this store, if any, with its own keys.
            let own = entry_holding(&toml.offsite, url)
                .map(|o| o.connection.clone())
                .unwrap_or_default();
            (own, toml.destination)
        }
        None => (StoreConnection::default(), StoreConnection::default()),
    };
    let options = s3_options(&own, &base);
    Ok(sauve_store::open(&Location::parse(url)?, &options)?)
}

/// The `[[offsite]]` entry whose store holds `url`: `s3://b/demo` holds
/// `s3://b/demo/…`, not `s3://b/demo2/…`.
fn entry_holding<'a>(entries: &'a [OffsiteSettings], url: &str) -> Option<&'a OffsiteSettings> {
    let asked = url.trim_end_matches('/');
    entries.iter().find(|o| {
        let entry = o.url.trim_end_matches('/');
        asked == entry || asked.starts_with(&format!("{entry}/"))
    })
}

/// Refuses a prefix where another app's history holds sets of the same base
/// name: their keys would collide, and retention would delete the other
/// app's sets. Each app needs a prefix of its own then (1407).
pub(crate) async fn shared_base_guard(
    store: &dyn Store,
    key: &str,
    base: &str,
) -> Result<(), StoreError> {
    let own = history_object(key);
    let prefix = format!("{base}[");
    for o in store.list(".sauve/history/").await? {
        if o.key == own || !o.key.ends_with(".json") {
            continue;
        }
        let Some(text) = history_text(store, &o.key).await? else {
            continue;
        };
        let Some(h) = History::parse(&String::from_utf8_lossy(&text)) else {
            continue;
        };
        let clash = h.keys().filter(|k| *k != key).any(|k| {
            h.entries(k).unwrap_or_default().iter().any(|e| {
                Path::new(&e.backup_path)
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
            })
        });
        if clash {
            return Err(StoreError::Invalid {
                what: format!("{}{}", store.describe(), o.key),
                reason: format!(
                    "another app ({}) keeps sets named {prefix}…] in this prefix; copies here would collide with them",
                    h.keys().next().unwrap_or_default()
                ),
                accepted: "a prefix of its own for each app whose data files share a name",
            });
        }
    }
    Ok(())
}

/// Writes the app's own history object, then rebuilds `backupHistory.json`
/// of the store from every app's object (behaviour §19): each app writes only its
/// own object, so a lost race on the shared file is repaired by the next
/// write and no entry is ever lost. For an off-site copy (`label`), only
/// the sets copied there are listed; for a primary store (`None`), the
/// sets it holds.
pub(crate) async fn publish_history(
    store: &dyn Store,
    destination: &Path,
    key: &str,
    label: Option<&str>,
) -> Result<(), StoreError> {
    let local = sauve_history::read_json_text(destination)
        .ok()
        .flatten()
        .and_then(|t| History::parse(&t))
        .unwrap_or_default();
    // The store's history lists the sets the store holds: those copied there
    // and not pruned since; runs without a set, restores and integrations stay.
    let held: std::collections::BTreeSet<String> = store
        .list("")
        .await?
        .into_iter()
        .map(|o| sauve_archive::strip_age(&o.key).0.to_owned())
        .collect();
    let mut own = History::default();
    for e in local.entries(key).unwrap_or_default() {
        let copied = label.is_none_or(|label| {
            e.offsite
                .as_ref()
                .and_then(|m| m.get(label))
                .is_some_and(|c| c.state == OffsiteState::Copied)
        });
        let present = e.segments.iter().flatten().all(|p| {
            Path::new(p)
                .file_name()
                .is_some_and(|n| held.contains(n.to_string_lossy().as_ref()))
        });
        if !e.is_numbered_backup() || (copied && present) {
            let _ = own.add(key, e);
        }
    }
    let encode = |h: &History| {
        h.to_json()
            .map(Bytes::from)
            .map_err(|e| StoreError::Failed {
                store: store.describe(),
                action: "cannot encode",
                key: sauve_history::FILE_NAME.to_owned(),
                message: e.to_string(),
            })
    };
    store
        .put_replace(&history_object(key), encode(&own)?)
        .await?;
    // Rebuild, write, then read every app's object again: an app that wrote
    // its own meanwhile may have lost the shared file to this write; seeing
    // its entries now, write again. The last writer always ends with all.
    let mut merged = merged_history(store).await?;
    for _ in 0..5 {
        store
            .put_replace(sauve_history::FILE_NAME, encode(&merged)?)
            .await?;
        let again = merged_history(store).await?;
        if again == merged {
            break;
        }
        merged = again;
    }
    Ok(())
}

/// A history object's text, read up to the bound of a history; one past it
/// (which sauve never writes: another writer of the bucket) is left out
/// with a warning, so that it cannot stop every app's copies.
async fn history_text(store: &dyn Store, key: &str) -> Result<Option<bytes::Bytes>, StoreError> {
    match store.get_bounded(key, sauve_history::MAX_BYTES).await {
        Ok(text) => Ok(Some(text)),
        Err(e @ StoreError::Hostile { .. }) => {
            tracing::warn!("{e}; left out");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Every app's history object of the store, merged.
async fn merged_history(store: &dyn Store) -> Result<History, StoreError> {
    let mut merged = History::default();
    for o in store.list(".sauve/history/").await? {
        if !o.key.ends_with(".json") {
            continue;
        }
        let Some(text) = history_text(store, &o.key).await? else {
            continue;
        };
        match History::parse(&String::from_utf8_lossy(&text)) {
            Some(h) => merged.merge(h),
            None => tracing::warn!("{}{} is not a history; left out", store.describe(), o.key),
        }
    }
    Ok(merged)
}

/// Keeps the newest `keep` backup sets of `base` in `store`, and every set
/// one of them builds on (behaviour §21.2): older sets go whole (every
/// segment, and their log backup), the manifest-bearing object first so
/// that a half-deleted set reads as missing, not as sound. Each deleted key
/// is told to `deleted` with its set's number; returns the sets kept beyond
/// the count, each with the set that needs it. `own` is the set the run
/// just wrote and the set it builds on, which no history records yet.
pub(crate) async fn prune(
    store: &dyn Store,
    (base, keep): (&str, usize),
    own: Option<(BackupNumber, Option<BackupNumber>)>,
    mut deleted: impl FnMut(&str, BackupNumber),
) -> Result<Vec<(BackupNumber, BackupNumber)>, StoreError> {
    let listed = store.list(&format!("{base}[")).await?;
    let named: Vec<(ArchiveName, String)> = listed
        .iter()
        .filter_map(|o| {
            ArchiveName::parse(sauve_archive::strip_age(&o.key).0).map(|a| (a, o.key.clone()))
        })
        .filter(|(a, _)| a.base == base && !a.part)
        .collect();
    let parents = parents_in(store, &listed, base, own).await?;
    let sweep = crate::retention::sweep(&named, keep, |n| parents.get(&n).copied());
    for (number, mut keys) in sweep.sets {
        // Backup before log, last segment first.
        keys.sort_by_key(|(a, _)| (a.kind != SetKind::Backup, std::cmp::Reverse(a.segment)));
        for (_, key) in keys {
            store.delete(&key).await?;
            deleted(&key, number);
        }
        tracing::info!(
            "retention removed {base}[{number:04}] from {}",
            store.describe()
        );
    }
    Ok(sweep.kept_for)
}

/// The set each backup set of `base` among `listed` builds on (behaviour
/// §21.2), so that retention in a store keeps whole chains: read from the
/// head of its first object. One whose head sauve cannot read while it
/// backs up (encrypted: the identity is not here) is taken from its entry
/// in the store's published history (the run's own set, which no history
/// records yet, from `own`): full when the entry names no parent; and when
/// it has no entry (one the history's limit dropped), as building on the
/// next older encrypted set there, so that nothing a kept set may need is
/// deleted. A
/// set whose head is damaged protects nothing, as in a folder. A store that
/// fails to answer fails retention, which then deletes nothing: a passing
/// error must not make a kept set's parent look unneeded.
async fn parents_in(
    store: &dyn Store,
    listed: &[sauve_store::ObjectInfo],
    base: &str,
    own: Option<(BackupNumber, Option<BackupNumber>)>,
) -> Result<std::collections::BTreeMap<BackupNumber, BackupNumber>, StoreError> {
    /// The head of any set sauve writes: its pax global header, in the
    /// first zstd block of its first frame.
    const HEAD: u64 = 256 << 10;
    let mut parents = std::collections::BTreeMap::new();
    let mut sealed = Vec::new();
    for o in listed {
        let (key, encrypted) = sauve_archive::strip_age(&o.key);
        let Some(a) = ArchiveName::parse(key) else {
            continue;
        };
        if a.base != base
            || a.part
            || a.kind != SetKind::Backup
            || a.segment.is_some_and(|s| s != 1)
        {
            continue;
        }
        if encrypted {
            sealed.push(a.number);
            continue;
        }
        // Empty, or gone since the listing: no set to protect.
        if o.size == 0 {
            continue;
        }
        let head = match store.get_range(&o.key, 0..o.size.min(HEAD)).await {
            Ok(head) => head,
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        let label = format!("{}{}", store.describe(), o.key);
        if let Ok(Some(parent)) = sauve_archive::parent_in_head(SetKind::Backup, &label, &head) {
            parents.insert(a.number, parent);
        }
    }
    if !sealed.is_empty() {
        let history = merged_history(store).await?;
        let mut recorded: std::collections::BTreeMap<_, _> = own.into_iter().collect();
        for key in history.keys() {
            for e in history.entries(key).unwrap_or_default() {
                let named = e
                    .backup_path
                    .rsplit('/')
                    .next()
                    .and_then(|name| ArchiveName::parse(sauve_archive::strip_age(name).0));
                if named.is_some_and(|n| n.base == base && n.number == e.backup_number) {
                    recorded.insert(e.backup_number, e.parent);
                }
            }
        }
        sealed.sort_unstable();
        sealed.dedup();
        for (i, &number) in sealed.iter().enumerate() {
            let parent = match recorded.get(&number) {
                Some(parent) => *parent,
                None => i.checked_sub(1).map(|older| sealed[older]),
            };
            if let Some(parent) = parent {
                parents.insert(number, parent);
            }
        }
    }
    Ok(parents)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encrypted sets left in `dir`, by name.
    fn sealed_left(dir: &std::path::Path) -> Vec<String> {
        let mut left: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".age"))
            .collect();
        left.sort();
        left
    }

    #[test]
    fn retention_in_a_store_keeps_the_chains_of_sets_it_cannot_read_by_their_history() {
        let t = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Encrypted sets (their heads unreadable here): 2 builds on 1, 3
        // and 4 are full, 5 builds on 4; the history published in the
        // store says so.
        for n in 1..=5 {
            std::fs::write(t.path().join(format!("App[000{n}].4BK.age")), b"sealed").unwrap();
        }
        let entry = |n: u32, parent: Option<u32>| {
            let mut e = serde_json::json!({
                "backupPath": format!("s3://b/p/App[000{n}].4BK.age"),
                "structurePath": "/app/Project/App.4DProject",
                "dataPath": "/app/Data/App.4DD",
                "logPath": "",
                "startingDate": "2026-12-06T10:00:00Z",
                "endingDate": "2026-12-06T10:00:01Z",
                "scheduledDate": "",
                "status": 0,
                "backupNumber": n,
                "duration": 1,
                "attachments": []
            });
            if let Some(p) = parent {
                e["parent"] = serde_json::json!(p);
            }
            e
        };
        let history = serde_json::json!({
            "/app/Project/App.4DProject": [
                entry(1, None), entry(2, Some(1)), entry(3, None), entry(4, None), entry(5, Some(4))
            ]
        });
        std::fs::create_dir_all(t.path().join(".sauve/history")).unwrap();
        std::fs::write(
            t.path().join(".sauve/history/app.json"),
            serde_json::to_vec(&history).unwrap(),
        )
        .unwrap();
        let store = sauve_store::FolderStore::new(t.path().to_path_buf());
        // Keeping 1: 5 stays, and 4, which it builds on; 1 to 3 go.
        let kept = runtime
            .block_on(prune(&store, ("App", 1), None, |_, _| {}))
            .unwrap();
        assert_eq!(kept, [(BackupNumber::new(4), BackupNumber::new(5))]);
        let left = sealed_left(t.path());
        assert_eq!(left, ["App[0004].4BK.age", "App[0005].4BK.age"]);
        // Keeping 2 of sets 1 and 2 alone: 2 builds on 1, both stay.
        for n in 1..=2 {
            std::fs::write(t.path().join(format!("App[000{n}].4BK.age")), b"sealed").unwrap();
        }
        std::fs::remove_file(t.path().join("App[0004].4BK.age")).unwrap();
        std::fs::remove_file(t.path().join("App[0005].4BK.age")).unwrap();
        let kept = runtime
            .block_on(prune(&store, ("App", 1), None, |_, _| {}))
            .unwrap();
        assert_eq!(kept, [(BackupNumber::new(1), BackupNumber::new(2))]);

        // Sets the history does not record (the run's own, published after
        // retention; entries past the history's limit) are taken to build
        // on the next older one: nothing a kept set may need goes.
        let history = serde_json::json!({
            "/app/Project/App.4DProject": [entry(1, None), entry(2, Some(1)), entry(3, None)]
        });
        std::fs::write(
            t.path().join(".sauve/history/app.json"),
            serde_json::to_vec(&history).unwrap(),
        )
        .unwrap();
        for n in 1..=5 {
            std::fs::write(t.path().join(format!("App[000{n}].4BK.age")), b"sealed").unwrap();
        }
        let kept = runtime
            .block_on(prune(&store, ("App", 1), None, |_, _| {}))
            .unwrap();
        assert_eq!(
            kept,
            [
                (BackupNumber::new(3), BackupNumber::new(4)),
                (BackupNumber::new(4), BackupNumber::new(5))
            ]
        );
        let left = sealed_left(t.path());
        assert_eq!(
            left,
            [
                "App[0003].4BK.age",
                "App[0004].4BK.age",
                "App[0005].4BK.age"
            ]
        );
    }

    #[test]
    fn a_url_takes_the_keys_of_the_offsite_entry_holding_it_only() {
        let entry = |url: &str| OffsiteSettings {
            url: url.to_owned(),
            keep: None,
            retry_after: std::time::Duration::from_secs(60),
            encrypt_to: Vec::new(),
            connection: StoreConnection::default(),
        };
        let entries = [entry("s3://b/demo/"), entry("s3://b/demo2")];
        let holding = |url| entry_holding(&entries, url).map(|e| e.url.as_str());
        assert_eq!(holding("s3://b/demo/App[0001]"), Some("s3://b/demo/"));
        assert_eq!(holding("s3://b/demo"), Some("s3://b/demo/"));
        assert_eq!(holding("s3://b/demo2/App[0001]"), Some("s3://b/demo2"));
        assert_eq!(holding("s3://b/demo3/App[0001]"), None);
    }

    #[test]
    fn the_same_sets_are_one_place_however_they_are_written() {
        let t = tempfile::tempdir().unwrap();
        let (app, backups) = (t.path().join("App"), t.path().join("Backups"));
        std::fs::create_dir_all(&app).unwrap();
        std::fs::create_dir_all(&backups).unwrap();
        let o = S3Options::new();
        let folder = |p: std::path::PathBuf| Location::Folder(p);
        // `../Backups/` from the app is the destination `Backups` beside it.
        assert!(same_place(
            (&folder(app.join("../Backups/")), &o),
            (&folder(backups.clone()), &o)
        ));
        assert!(!same_place(
            (&folder(app.join("../Elsewhere/")), &o),
            (&folder(backups), &o)
        ));
        // A bucket prefix is the same place only at the same address.
        let bucket = |prefix: &str| Location::Bucket {
            bucket: "backups".into(),
            prefix: prefix.into(),
        };
        let at = |endpoint: &str| S3Options {
            endpoint: Some(endpoint.into()),
            ..S3Options::new()
        };
        let garage = at("http://127.0.0.1:3900");
        assert!(same_place(
            (&bucket("app/"), &garage),
            (&bucket("app/"), &garage)
        ));
        assert!(!same_place(
            (&bucket("app/"), &garage),
            (&bucket("other/"), &garage)
        ));
        assert!(!same_place(
            (&bucket("app/"), &garage),
            (&bucket("app/"), &at("https://s3.example"))
        ));
    }
}
