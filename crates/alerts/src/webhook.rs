//! `[[alerts.webhook]]`: the alert as a JSON POST, signed when a secret is set.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Alert, Notifier, NotifyError};

/// The header carrying `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Sauve-Signature";

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `key`, as a receiver
/// recomputes it to check the alert comes from this sauve.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        // HMAC takes keys of any length: this arm is never taken.
        Err(_) => String::new(),
    }
}

/// Posts alerts to a URL.
pub struct WebhookNotifier {
    settings: sauve_settings::WebhookSettings,
    /// The client, or why none could be made (a system without CA
    /// certificates): each delivery then fails saying so.
    client: Result<reqwest::Client, String>,
}

impl WebhookNotifier {
    /// The notifier of `[[alerts.webhook]]` `settings`.
    pub fn new(settings: sauve_settings::WebhookSettings) -> WebhookNotifier {
        WebhookNotifier {
            settings,
            // Timeouts are the delivery policy's, around each attempt.
            client: reqwest::Client::builder()
                .user_agent(concat!("sauve/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| {
                    let mut why = e.to_string();
                    let mut source = std::error::Error::source(&e);
                    while let Some(s) = source {
                        why = format!("{why}: {s}");
                        source = s.source();
                    }
                    why
                }),
        }
    }

    /// The URL as it may be shown: without `user:password@` and without
    /// its query, which may carry a token.
    fn target(&self) -> String {
        sauve_settings::shown_url(&self.settings.url)
    }
}

#[async_trait::async_trait]
impl Notifier for WebhookNotifier {
    fn describe(&self) -> String {
        format!("webhook {}", self.target())
    }

    async fn send(&self, alert: &Alert) -> Result<(), NotifyError> {
        let body = alert.json();
        let client = self
            .client
            .as_ref()
            .map_err(|why| NotifyError::Unreachable {
                target: self.target(),
                reason: format!(
                    "no HTTP client could be made ({why}): webhooks trust the system's CA certificates (install them, e.g. Debian's ca-certificates, or point SSL_CERT_FILE at a bundle)"
                ),
            })?;
        let mut request = client
            .post(&self.settings.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.settings.secret {
            request = request.header(
                SIGNATURE_HEADER,
                signature(secret.expose().as_bytes(), body.as_bytes()),
            );
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| NotifyError::Unreachable {
                target: self.target(),
                // Without the URL, which reqwest repeats and may hold a token.
                reason: e.without_url().to_string(),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let start: String = text.chars().take(200).collect();
        Err(NotifyError::Refused {
            target: self.target(),
            answer: format!(
                "{status}{}",
                if start.is_empty() {
                    String::new()
                } else {
                    format!(": {start}")
                }
            ),
        })
    }
}
