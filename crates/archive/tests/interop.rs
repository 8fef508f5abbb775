//! Standard tools read sauve archives: `cat <segments> | zstd -d | tar -x`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Stdio};

use common::{Fixture, snapshot};
use sauve_settings::Compression;

fn tool(name: &str) {
    let ok = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{name} is needed by this test (`cargo xtask test` installs it)"
    );
}

#[test]
fn gnu_tar_and_zstd_extract_a_segmented_archive_to_the_same_bytes() {
    tool("tar");
    tool("zstd");
    for compression in [Compression::None, Compression::Fast, Compression::Compact] {
        let mut fx = Fixture::new();
        let docs = fx.root.path().join("docs");
        std::fs::create_dir_all(docs.join("empty")).unwrap();
        std::fs::create_dir_all(docs.join("deep/er/and/deeper")).unwrap();
        let long = "l".repeat(140);
        std::fs::write(docs.join("deep/er/and/deeper").join(&long), b"long name").unwrap();
        std::fs::write(docs.join("unicodé 漢字.txt"), "héllo".repeat(1000)).unwrap();
        std::fs::write(docs.join("empty.bin"), b"").unwrap();
        // Incompressible, so that every level needs several segments.
        let mut big = vec![0u8; 400_000];
        fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15).fill(&mut big);
        std::fs::write(docs.join("big.bin"), &big).unwrap();
        std::os::unix::fs::symlink("unicodé 漢字.txt", docs.join("link")).unwrap();
        std::os::unix::fs::symlink("x".repeat(130), docs.join("long-link")).unwrap();
        fx.settings.general.includes_files = vec![docs.display().to_string()];
        let files = fx.backup(1, compression, 64 * 1024);
        assert!(files.len() > 1, "segmented");

        let out = fx.root.path().join("tar-out");
        std::fs::create_dir_all(&out).unwrap();
        let cat = quoted(&files);
        let decompress = if compression == Compression::None {
            ""
        } else {
            "| zstd -d -q"
        };
        let script = format!("cat {cat} {decompress} | tar -x -C '{}'", out.display());
        let status = Command::new("sh").arg("-c").arg(&script).status().unwrap();
        assert!(status.success(), "{script}");

        let extracted = out
            .join("Attachments")
            .join(docs.strip_prefix("/").unwrap());
        assert_eq!(snapshot(&extracted), snapshot(&docs), "{compression:?}");
        assert_eq!(
            std::fs::read(out.join("Data/App.4DD")).unwrap(),
            std::fs::read(fx.app().join("Data/App.4DD")).unwrap()
        );
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("sauve-manifest.json")).unwrap())
                .unwrap();
        assert_eq!(manifest["format"], "sauve-archive");
    }
}

/// Fast and Compact sets are runs of independent frames, several per set
/// and crossing segment ends: `zstd -d | tar -x` and sauve's restore (which
/// decompresses them on every core) give the same tree.
#[test]
fn zstd_and_sauve_restore_a_set_of_many_frames_to_the_same_tree() {
    tool("tar");
    tool("zstd");
    let fx = Fixture::new();
    // 24 MiB that compress about 3x: two Compact frames (16 MiB) and six
    // Fast ones (4 MiB).
    let mut rng = fastrand::Rng::with_seed(0x5EED);
    let data: Vec<u8> = (0..24usize << 20)
        .map(|i| {
            if i % 3 == 0 {
                rng.u8(..)
            } else {
                b"sauve"[i % 5]
            }
        })
        .collect();
    std::fs::write(fx.app().join("Data/App.4DD"), &data).unwrap();
    for (number, compression) in [(1, Compression::Fast), (2, Compression::Compact)] {
        let files = fx.backup(number, compression, 5 << 20);
        assert!(files.len() > 1, "segmented");
        let frames = count_frames(&files);
        assert!(frames >= 2, "{compression:?}: {frames} frames");

        let by_zstd = fx.root.path().join(format!("zstd-{number}"));
        std::fs::create_dir_all(&by_zstd).unwrap();
        let cat = quoted(&files);
        let script = format!("cat {cat} | zstd -d -q | tar -x -C '{}'", by_zstd.display());
        let status = Command::new("sh").arg("-c").arg(&script).status().unwrap();
        assert!(status.success(), "{script}");
        std::fs::remove_file(by_zstd.join("sauve-manifest.json")).unwrap();

        let by_sauve = fx.root.path().join(format!("sauve-{number}"));
        sauve_archive::restore(
            &files[0],
            &sauve_archive::RestoreOptions {
                to: Some(by_sauve.clone()),
                force: false,
            },
            &mut sauve_archive::NoProgress,
        )
        .unwrap();
        let (mut a, mut b) = (snapshot(&by_sauve), snapshot(&by_zstd));
        // `Data/` is not an entry of the set (its files are): both make it
        // when they extract, each at its own time.
        for tree in [&mut a, &mut b] {
            tree.get_mut("Data").unwrap().3 = 0;
        }
        assert!(a == b, "{compression:?}: the two extractions differ");
        assert!(std::fs::read(by_sauve.join("Data/App.4DD")).unwrap() == data);
    }
}

/// The frames of a set, as `zstd -l` counts them.
fn count_frames(files: &[std::path::PathBuf]) -> usize {
    let mut all = Vec::new();
    for f in files {
        all.extend(std::fs::read(f).unwrap());
    }
    let mut rest = &all[..];
    let mut n = 0;
    while !rest.is_empty() {
        let len = zstd::zstd_safe::find_frame_compressed_size(rest).unwrap();
        rest = &rest[len..];
        n += 1;
    }
    n
}

/// The files, quoted for `sh`, separated by spaces.
fn quoted(files: &[std::path::PathBuf]) -> String {
    files
        .iter()
        .map(|f| format!("'{}'", f.display()))
        .collect::<Vec<_>>()
        .join(" ")
}
