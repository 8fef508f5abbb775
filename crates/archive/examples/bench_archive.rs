//! The archive benchmark's worker, run by `cargo xtask bench archive` in a
//! release build: one operation per process, so that peak memory is its own.
//!
//! `bench_archive write APP DEST LEVEL` backs up APP (data, structure and the
//! attachment folder `../Attachments/`) into DEST at LEVEL (None, Fast,
//! Compact); `bench_archive restore ARCHIVE DEST` restores;
//! `bench_archive verify ARCHIVE` verifies. Each prints one JSON line:
//! seconds, input bytes, output bytes, peak resident memory (KiB).

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use sauve_archive::{ArchiveWriter, ManifestHeader, NoProgress, RestoreOptions, SetKind, SetSpec};
use sauve_settings::{AppLayout, Compression, Settings, Token};

fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn size_of(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("write") => {
            let app = Path::new(&args[1]);
            let dest = PathBuf::from(&args[2]);
            let level = Compression::from_token(&args[3]).expect("level: None, Fast or Compact");
            let layout = AppLayout::discover(app).unwrap();
            let mut settings = Settings::default();
            settings.general.include_structure_file = true;
            settings.general.includes_files = vec![
                format!("./Data/{}.4DIndx", layout.base_name()),
                "../Attachments/".to_owned(),
            ];
            let started = Instant::now();
            let content = sauve_archive::resolve_content(&layout, &settings, &dest).unwrap();
            let spec = SetSpec {
                destination: dest,
                base: layout.base_name(),
                number: 1.into(),
                kind: SetKind::Backup,
                compression: level,
                segment_size: 0,
                threads: 0,
            };
            let header = ManifestHeader {
                data_path: layout.data_file.display().to_string(),
                trigger: "api".to_owned(),
                ..ManifestHeader::new(
                    SetKind::Backup,
                    1,
                    &layout.base_name(),
                    jiff::Timestamp::now(),
                )
            };
            let mut w = ArchiveWriter::create(spec, header).unwrap();
            for e in &content.entries {
                w.append(e, &mut NoProgress).unwrap();
            }
            let files = w.finish(jiff::Timestamp::now()).unwrap().commit().unwrap();
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "{{\"seconds\":{seconds},\"input\":{},\"output\":{},\"peak_kib\":{},\"archive\":\"{}\"}}",
                content.total_bytes(),
                size_of(&files),
                peak_kib(),
                files[0].display()
            );
        }
        Some("restore") => {
            let archive = Path::new(&args[1]);
            let to = PathBuf::from(&args[2]);
            let started = Instant::now();
            let report = sauve_archive::restore(
                archive,
                &RestoreOptions {
                    to: Some(to),
                    force: false,
                },
                &mut NoProgress,
            )
            .unwrap();
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "{{\"seconds\":{seconds},\"input\":{},\"output\":{},\"peak_kib\":{}}}",
                report.bytes,
                report.bytes,
                peak_kib()
            );
        }
        Some("list") => {
            let archive = Path::new(&args[1]);
            let (_, manifest) = sauve_archive::list(archive).unwrap();
            println!("{} entries", manifest.entries.len());
        }
        Some("verify") => {
            let archive = Path::new(&args[1]);
            let started = Instant::now();
            let report = sauve_archive::verify(archive, &mut NoProgress).unwrap();
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "{{\"seconds\":{seconds},\"input\":{},\"output\":0,\"peak_kib\":{}}}",
                report.bytes,
                peak_kib()
            );
        }
        _ => {
            eprintln!(
                "usage: bench_archive write APP DEST LEVEL | restore ARCHIVE DEST | verify ARCHIVE | list ARCHIVE"
            );
            std::process::exit(2);
        }
    }
}
