//! What a set holds (behaviour §6.2): a backup (`.4BK`) or a log backup
//! (`.4BL`). A module of its own, depending on nothing, so that the errors
//! and the file names, which both speak of it, import it from below.

/// What a set holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SetKind {
    /// `.4BK`: a backup.
    Backup,
    /// `.4BL`: a log backup.
    Log,
}

impl SetKind {
    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            SetKind::Backup => "4BK",
            SetKind::Log => "4BL",
        }
    }
}
