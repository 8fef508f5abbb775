//! [`Offsite`]: the copies to the `[[offsite]]` destinations.

use crate::actors::ask;
use crate::actors::offsite::messages::DrainCopies;
use crate::error::EngineError;
use crate::state::OffsiteStatus;
use crate::views::Parts;

/// The copies of each committed set to every `[[offsite]]` destination of
/// `sauve.toml` (behaviour §19), which run in the background after a
/// backup's report. From [`crate::BackupHandle::offsite`].
#[derive(Clone, Copy, Debug)]
pub struct Offsite<'a> {
    parts: Parts<'a>,
}

impl<'a> Offsite<'a> {
    pub(crate) fn new(parts: Parts<'a>) -> Offsite<'a> {
        Offsite { parts }
    }

    /// Where the copies to each `[[offsite]]` destination stand (behaviour §19).
    /// Nothing while sauve.toml is not valid.
    pub async fn status(self) -> Result<Vec<OffsiteStatus>, EngineError> {
        let app = self.parts.layout.app.as_path().to_path_buf();
        let own = ask(
            &self.parts.actors.resolver,
            "resolver",
            crate::actors::resolver::messages::ReadOwnSettings,
        )
        .await?;
        let Ok(own) = own.valid() else {
            return Ok(Vec::new());
        };
        self.parts
            .actors
            .io
            .blocking(move || {
                crate::overview::destination_usage(&app)
                    .map(|d| crate::state::offsite_status(&app, &own, &d.records))
            })
            .await?
    }

    /// Waits until the off-site copies under way (if any) have ended,
    /// copied or failed; a retry scheduled for later is not waited for.
    pub async fn settled(self) -> Result<(), EngineError> {
        ask(&self.parts.actors.offsite, "off-site copier", DrainCopies).await
    }
}
