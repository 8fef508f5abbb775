//! `[[alerts.email]]`: the alert as a message over SMTP, through lettre.

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sauve_settings::SmtpTls;

use crate::{Alert, Notifier, NotifyError};

/// Mails alerts.
pub struct EmailNotifier {
    settings: sauve_settings::EmailSettings,
}

impl EmailNotifier {
    /// The notifier of `[[alerts.email]]` `settings`.
    pub fn new(settings: sauve_settings::EmailSettings) -> EmailNotifier {
        EmailNotifier { settings }
    }

    fn target(&self) -> String {
        format!("{}:{}", self.settings.host, self.settings.port)
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, NotifyError> {
        let s = &self.settings;
        let config = |e: String| NotifyError::Config(format!("email via {}: {e}", self.target()));
        let mut params = TlsParameters::builder(s.host.clone());
        if let Some(ca) = &s.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| config(format!("cannot read {}: {e}", ca.display())))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| config(format!("{} is not a PEM certificate: {e}", ca.display())))?;
            params = params.add_root_certificate(cert);
        }
        let tls = match s.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(params.build().map_err(|e| config(e.to_string()))?),
            SmtpTls::Tls => Tls::Wrapper(params.build().map_err(|e| config(e.to_string()))?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
            .port(s.port)
            .tls(tls);
        if let (Some(user), Some(password)) = (&s.user, &s.password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(builder.build())
    }

    fn message(&self, alert: &Alert) -> Result<Message, NotifyError> {
        let s = &self.settings;
        let mailbox = |a: &str| {
            a.parse::<Mailbox>()
                .map_err(|e| NotifyError::Config(format!("email address \"{a}\": {e}")))
        };
        let mut m = Message::builder()
            .from(mailbox(&s.from)?)
            .subject(alert.subject());
        for to in &s.to {
            m = m.to(mailbox(to)?);
        }
        m.body(alert.text())
            .map_err(|e| NotifyError::Config(format!("cannot build the message: {e}")))
    }
}

#[async_trait::async_trait]
impl Notifier for EmailNotifier {
    fn describe(&self) -> String {
        format!("email to {}", self.settings.to.join(", "))
    }

    async fn send(&self, alert: &Alert) -> Result<(), NotifyError> {
        let message = self.message(alert)?;
        let transport = self.transport()?;
        match transport.send(message).await {
            Ok(r) if r.is_positive() => Ok(()),
            Ok(r) => Err(NotifyError::Refused {
                target: self.target(),
                answer: format!("{}", r.code()),
            }),
            Err(e) if e.is_permanent() || e.is_transient() => Err(NotifyError::Refused {
                target: self.target(),
                answer: e.to_string(),
            }),
            Err(e) => Err(NotifyError::Unreachable {
                target: self.target(),
                reason: e.to_string(),
            }),
        }
    }
}
