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
    assert!(ok, "{name} is needed by this test (.ci/run installs it)");
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
        let cat = files
            .iter()
            .map(|f| format!("'{}'", f.display()))
            .collect::<Vec<_>>()
            .join(" ");
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
