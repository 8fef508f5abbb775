//! `sauve demo`: a sample app (the 4D layout of
//! `tests/fixtures/make-sample-app`, smaller, generated here) backed up,
//! shown, restored and verified through the other commands.

use std::io::Write;
use std::path::{Path, PathBuf};

use sauve_engine::EngineOptions;

use crate::report::{Failure, Io};
use crate::{archive, backup, journal};

const WORDS: &[&str] = &[
    "invoice",
    "customer",
    "order",
    "amount",
    "paid",
    "pending",
    "shipped",
    "warehouse",
    "label",
    "report",
    "template",
    "address",
    "city",
    "country",
    "total",
    "tax",
    "discount",
    "product",
];

/// `sauve demo`: creates a sample app in `dir` (default `./sauve-demo`),
/// backs it up, shows its status and journal, restores and verifies the set.
pub(crate) fn run(dir: Option<PathBuf>, io: &mut Io<'_>) -> Result<(), Failure> {
    let root = std::path::absolute(dir.unwrap_or_else(|| PathBuf::from("sauve-demo")))
        .map_err(|e| Failure::usage(e.to_string()))?;
    if std::fs::read_dir(&root).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Failure::usage(format!(
            "\"{}\" is not empty (accepted: a new or empty folder)",
            root.display()
        )));
    }
    let app = root.join("DemoApp");
    make_app(&root, &app)
        .map_err(|e| Failure::failed(format!("cannot create the demo app: {e}")))?;
    io.out(&format!("Created a sample app in {}\n\n", app.display()));
    let layout = backup::layout(&app)?;
    let report = backup::run_once(&layout, EngineOptions::default(), false, io)?;
    io.out(&backup::summary(&layout, &report));
    io.out("\n$ sauve status\n");
    backup::status(&app, false, io)?;
    io.out("\n$ sauve journal --tail 1\n");
    journal::show(&app, Some(1), false, io)?;
    let Some(set) = report.archives.first() else {
        return Err(Failure::failed(format!(
            "the demo backup ended with {}",
            report.status
        )));
    };
    let restored = root.join("Restored");
    io.out(&format!(
        "$ sauve restore '{}' --to '{}'\n",
        set.display(),
        restored.display()
    ));
    archive::restore(set, Some(restored.clone()), false, Some(&app), None, io)?;
    io.out(&format!("\n$ sauve verify '{}'\n", set.display()));
    archive::verify(set, None, None, io)?;
    let same = std::fs::read(app.join("Data/DemoApp.4DD")).ok()
        == std::fs::read(restored.join("Data/DemoApp.4DD")).ok();
    io.out(&format!(
        "\nThe restored data file {} the original.\n",
        if same { "matches" } else { "DIFFERS FROM" }
    ));
    if !same {
        return Err(Failure::failed("the restored data file differs"));
    }
    Ok(())
}

/// A generator with a fixed seed, so the demo is the same every time.
struct Rng(fastrand::Rng);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.u64(..)
    }
    fn word(&mut self) -> &'static str {
        WORDS[self.0.usize(..WORDS.len())]
    }
    fn fill(&mut self, bytes: &mut [u8]) {
        self.0.fill(bytes);
    }
}

/// Creates `app` (Project, Data, Settings) and `root/Attachments`.
pub(crate) fn make_app(root: &Path, app: &Path) -> std::io::Result<()> {
    let mut rng = Rng(fastrand::Rng::with_seed(0x5A0E_DE30));
    std::fs::create_dir_all(app.join("Project/Sources/Methods"))?;
    std::fs::create_dir_all(app.join("Data/Settings"))?;
    std::fs::create_dir_all(app.join("Settings"))?;
    std::fs::create_dir_all(root.join("Attachments/Documents"))?;
    std::fs::write(
        app.join("Project/DemoApp.4DProject"),
        "{\"$comment\": \"sauve demo\", \"version\": \"1\"}\n",
    )?;
    for i in 0..60 {
        let mut text = String::new();
        for _ in 0..20 {
            text.push_str(&format!(
                "  // {} {} {}\n",
                rng.word(),
                rng.word(),
                rng.word()
            ));
        }
        std::fs::write(
            app.join(format!("Project/Sources/Methods/method_{i:03}.4dm")),
            text,
        )?;
    }
    // A data file of DB-like pages: 8 MiB that compress about 2x.
    let mut data = std::io::BufWriter::new(std::fs::File::create(app.join("Data/DemoApp.4DD"))?);
    for page in 0..2048u64 {
        let mut p = page.to_le_bytes().to_vec();
        while p.len() < 3000 {
            p.extend_from_slice(&rng.next().to_le_bytes());
            p.extend_from_slice(rng.word().as_bytes());
            p.push(0);
        }
        p.resize(4096, 0);
        data.write_all(&p)?;
    }
    data.flush()?;
    for i in 0..8 {
        let mut bytes = vec![0u8; 256 * 1024];
        rng.fill(&mut bytes);
        std::fs::write(
            root.join(format!("Attachments/Documents/doc_{i}.bin")),
            bytes,
        )?;
    }
    let mut settings = sauve_settings::Settings::default();
    settings.general.include_structure_file = true;
    settings.general.destination_folder = "../Backups/".to_owned();
    settings.general.includes_files = vec!["../Attachments/".to_owned()];
    sauve_settings::create_file(
        &app.join("Settings/backup.4DSettings"),
        &sauve_settings::SettingsDoc::new(settings),
    )
    .map_err(std::io::Error::other)
}
