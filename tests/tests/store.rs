//! The store contract (behaviour §19), the same for a folder and for a real Garage
//! node: objects appear only when complete, nothing is ever overwritten, an
//! aborted or dropped upload leaves nothing, and errors name the bucket or
//! key with the status they map to.

// Test helpers: failing there fails the test that called them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use bytes::Bytes;
use sauve_status::Status;
use sauve_store::{FolderStore, S3Store, Store, StoreError, upload_bytes};
use sauve_tests::garage::Garage;
use sauve_tests::runtime;

fn pattern(len: usize, seed: u8) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<u8>>(),
    )
}

/// Every rule of the contract, on `store`.
async fn contract(store: Arc<dyn Store>) {
    let key = "Notes[0001].4BK";
    // A multipart upload is invisible until completed.
    let mut up = store.start_upload(key).await.unwrap();
    up.put_part(pattern(5 << 20, 1)).await.unwrap();
    up.put_part(pattern(1000, 2)).await.unwrap();
    assert!(
        store.head(key).await.unwrap().is_none(),
        "visible before completion"
    );
    assert!(store.list("Notes[").await.unwrap().is_empty());
    assert_eq!(up.complete().await.unwrap(), (5 << 20) + 1000);
    let info = store.head(key).await.unwrap().unwrap();
    assert_eq!(info.size, (5 << 20) + 1000);
    let whole = store.get(key).await.unwrap();
    assert_eq!(&whole[..5 << 20], &pattern(5 << 20, 1)[..]);
    assert_eq!(&whole[5 << 20..], &pattern(1000, 2)[..]);
    let range = store.get_range(key, 10..20).await.unwrap();
    assert_eq!(&range[..], &whole[10..20]);
    // A record read back is bounded: past its bound, 1411 naming the key,
    // never the whole object in memory.
    assert_eq!(
        store.get_bounded(key, (5 << 20) + 1000).await.unwrap(),
        whole
    );
    let e = store.get_bounded(key, 5 << 20).await.unwrap_err();
    assert!(
        matches!(&e, StoreError::Hostile { key: k, .. } if k == key),
        "{e}"
    );
    assert_eq!(e.status(), Status::ArchiveCorrupt);
    assert!(
        e.to_string().contains("past the 5242880 bytes")
            || e.to_string().contains("more than the 5242880 bytes"),
        "{e}"
    );

    // Never an overwrite: not by an upload, not by put_new, not even by an
    // upload started before the key was taken.
    let early = store.start_upload("Notes[0002].4BK").await.unwrap();
    let e = store.start_upload(key).await.err().unwrap();
    assert!(
        matches!(&e, StoreError::Exists { key: k, .. } if k == key),
        "{e}"
    );
    assert_eq!(e.status(), Status::DestinationInvalid);
    let e = store
        .put_new(key, Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Exists { .. }), "{e}");
    store
        .put_new("Notes[0002].4BK", Bytes::from_static(b"first"))
        .await
        .unwrap();
    let mut early = early;
    early.put_part(Bytes::from_static(b"second")).await.unwrap();
    let e = early.complete().await.unwrap_err();
    assert!(e.to_string().contains("Notes[0002].4BK"), "{e}");
    assert_eq!(&store.get("Notes[0002].4BK").await.unwrap()[..], b"first");

    // Aborted and dropped uploads leave nothing.
    let mut up = store.start_upload("Notes[0003].4BK").await.unwrap();
    up.put_part(pattern(6 << 20, 3)).await.unwrap();
    up.abort().await.unwrap();
    let mut up = store.start_upload("Notes[0004].4BK").await.unwrap();
    up.put_part(pattern(6 << 20, 4)).await.unwrap();
    drop(up);
    let keys: Vec<String> = store
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys, ["Notes[0001].4BK", "Notes[0002].4BK"]);

    // Records are replaced by their one writer; nested keys work.
    store
        .put_replace(".sauve/history/a.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    store
        .put_replace(".sauve/history/a.json", Bytes::from_static(b"{\"a\":[]}"))
        .await
        .unwrap();
    let listed = store.list(".sauve/history/").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        &store.get(".sauve/history/a.json").await.unwrap()[..],
        b"{\"a\":[]}"
    );

    // One call for a whole object, in parts.
    assert_eq!(
        upload_bytes(
            store.as_ref(),
            "Notes[0005].4BL",
            pattern(11 << 20, 5),
            5 << 20
        )
        .await
        .unwrap(),
        11 << 20
    );
    assert_eq!(
        store.get("Notes[0005].4BL").await.unwrap(),
        pattern(11 << 20, 5)
    );

    store.delete("Notes[0005].4BL").await.unwrap();
    store.delete("Notes[0005].4BL").await.unwrap();
    assert!(store.head("Notes[0005].4BL").await.unwrap().is_none());
    let e = store.get("Notes[0009].4BK").await.unwrap_err();
    assert_eq!(e.status(), Status::ArchiveMissing, "{e}");
}

#[test]
fn a_folder_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(FolderStore::new(dir.path().join("offsite")));
    runtime().block_on(contract(store));
    // No temporary file is left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("offsite"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".upload"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_garage_bucket_keeps_the_contract() {
    let garage = Garage::start(1);
    let rt = runtime();
    let store: Arc<dyn Store> = Arc::new(
        S3Store::open(
            garage.bucket.clone(),
            "apps/notes/".into(),
            &garage.options(),
        )
        .unwrap(),
    );
    rt.block_on(contract(store));
    // The prefix is the store's: another prefix sees nothing.
    let other = S3Store::open(
        garage.bucket.clone(),
        "apps/other/".into(),
        &garage.options(),
    )
    .unwrap();
    assert!(rt.block_on(other.list("")).unwrap().is_empty());
}

#[test]
fn wrong_credentials_a_missing_bucket_and_a_dead_store_are_named() {
    let mut garage = Garage::start(1);
    let rt = runtime();
    let wrong = sauve_store::S3Options {
        secret_access_key: Some("0".repeat(64)),
        ..garage.options()
    };
    let store = S3Store::open(garage.bucket.clone(), String::new(), &wrong).unwrap();
    let e = rt
        .block_on(store.put_new("Notes[0001].4BK", Bytes::from_static(b"x")))
        .unwrap_err();
    assert_eq!(e.status(), Status::DestinationInvalid, "{e}");
    assert!(e.to_string().contains("sauve-test"), "{e}");

    let store = S3Store::open("no-such-bucket".into(), String::new(), &garage.options()).unwrap();
    let e = rt.block_on(store.list("")).unwrap_err();
    assert!(
        matches!(e, StoreError::NoBucket { .. } | StoreError::Denied { .. }),
        "{e}"
    );
    assert_eq!(e.status(), Status::DestinationInvalid, "{e}");
    assert!(e.to_string().contains("no-such-bucket"), "{e}");

    garage.stop_all();
    let store = S3Store::open(garage.bucket.clone(), String::new(), &garage.options()).unwrap();
    let e = rt.block_on(store.list("")).unwrap_err();
    assert_eq!(e.status(), Status::BackupError, "{e}");
    assert!(e.is_transient());
    assert!(e.to_string().contains("s3://sauve-test/"), "{e}");
}
