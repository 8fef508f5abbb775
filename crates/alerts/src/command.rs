//! `[[alerts.command]]`: a shell command with `SAUVE_*` variables.
//!
//! The command gets the alert's `SAUVE_*` variables and, of sauve's own
//! environment, only [`PASSED`]: never the store's, the webhooks' or the
//! metrics' secrets that sauve itself was started with.

use crate::{Alert, Notifier, NotifyError};

/// The variables of sauve's environment a command gets, when set.
pub const PASSED: [&str; 7] = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ"];

/// Runs a command for each alert.
pub struct CommandNotifier {
    settings: sauve_settings::CommandSettings,
}

impl CommandNotifier {
    /// The notifier of `[[alerts.command]]` `settings`.
    pub fn new(settings: sauve_settings::CommandSettings) -> CommandNotifier {
        CommandNotifier { settings }
    }
}

#[async_trait::async_trait]
impl Notifier for CommandNotifier {
    fn describe(&self) -> String {
        format!("command {}", self.settings.run)
    }

    async fn send(&self, alert: &Alert) -> Result<(), NotifyError> {
        let mut c = tokio::process::Command::new("sh");
        c.arg("-c")
            .arg(&self.settings.run)
            .env_clear()
            .envs(
                PASSED
                    .iter()
                    .filter_map(|k| Some((k, std::env::var_os(k)?))),
            )
            .envs(alert.env())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            // A timed-out attempt drops the child: it must not linger.
            .kill_on_drop(true);
        let out = c
            .output()
            .await
            .map_err(|e| NotifyError::Command(format!("cannot run sh -c: {e}")))?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said: String = stderr.trim().chars().take(200).collect();
        let how = match out.status.code() {
            Some(code) => format!("exited with {code}"),
            None => "was killed by a signal".to_owned(),
        };
        Err(NotifyError::Command(if said.is_empty() {
            format!("the command {how}")
        } else {
            format!("the command {how}: {said}")
        }))
    }
}
