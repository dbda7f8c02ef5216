//! Alert mail: composing one mail for one or several alerts, and sending
//! it over SMTP (plain, STARTTLS or TLS, with optional login).

use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue, MIME_VERSION_1_0};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::alert::Alert;
use crate::settings::{EmailSettings, SmtpSecurity};
use crate::webhook::Failure;

/// Longest event text put into a mail, per alert.
const EVENT_TEXT_MAX: usize = 8 * 1024;

/// Subject and body of a mail carrying `alerts` (at least one).
pub fn compose(alerts: &[&Alert], ids_name: Option<&str>) -> (String, String) {
    let tag = match ids_name {
        Some(n) => format!("[trailwatch {n}]"),
        None => "[trailwatch]".to_string(),
    };
    let top = alerts.iter().map(|a| a.level()).max().unwrap_or(0);
    let subject = match alerts {
        [one] => format!("{tag} Level {} alert: {}", one.level(), one.description()),
        many => format!("{tag} {} alerts, highest level {top}", many.len()),
    };
    let mut body = String::new();
    if alerts.len() > 1 {
        body.push_str(&format!(
            "{} alerts arrived together (highest level {top}).\r\n\r\n",
            alerts.len()
        ));
    }
    for (n, a) in alerts.iter().enumerate() {
        if alerts.len() > 1 {
            body.push_str(&format!("--- Alert {} of {} ---\r\n", n + 1, alerts.len()));
        }
        for (k, v) in a.facts() {
            body.push_str(&format!("{k}: {v}\r\n"));
        }
        let event = match a.full_log() {
            Some(s) => s.to_string(),
            None => a.data_pretty(),
        };
        let mut event: String = event.replace('\n', "\r\n");
        if event.len() > EVENT_TEXT_MAX {
            let mut cut = EVENT_TEXT_MAX;
            while !event.is_char_boundary(cut) {
                cut -= 1;
            }
            event.truncate(cut);
            event.push_str(" [...]");
        }
        body.push_str("\r\nEvent:\r\n");
        body.push_str(&event);
        body.push_str("\r\n\r\n");
    }
    body.push_str("--\r\nSent by trailwatch.\r\n");
    (subject, body)
}

/// An SMTP client for the configured server.
pub struct Mailer {
    from: Mailbox,
    reply_to: Option<Mailbox>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

/// Whether `s` is a mail address lettre will send to (`a@b.c` or
/// `Name <a@b.c>`); the message says what is wrong.
pub fn check_address(s: &str) -> Result<(), String> {
    s.parse::<Mailbox>()
        .map(|_| ())
        .map_err(|_| format!("'{s}' is not an email address; expected e.g. ops@example.com"))
}

fn mailbox(what: &str, s: &str) -> Result<Mailbox, String> {
    s.parse::<Mailbox>()
        .map_err(|e| format!("{what} '{s}' is not an email address: {e}"))
}

impl Mailer {
    pub fn new(s: &EmailSettings) -> Result<Mailer, String> {
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.smtp_server)
            .port(s.smtp_port)
            .timeout(Some(Duration::from_secs(30)));
        let tls = || {
            let mut b = TlsParameters::builder(s.smtp_server.clone());
            if let Some(pem) = &s.ca_pem {
                let cert = Certificate::from_pem(pem)
                    .map_err(|e| format!("<smtp_ca_file>: not a PEM certificate: {e}"))?;
                b = b.add_root_certificate(cert);
            }
            b.build()
                .map_err(|e| format!("TLS for {}: {e}", s.smtp_server))
        };
        b = match s.security {
            SmtpSecurity::None => b.tls(Tls::None),
            SmtpSecurity::StartTls => b.tls(Tls::Required(tls()?)),
            SmtpSecurity::Tls => b.tls(Tls::Wrapper(tls()?)),
        };
        if let Some(user) = &s.username {
            b = b.credentials(Credentials::new(
                user.clone(),
                s.password.clone().unwrap_or_default(),
            ));
        }
        Ok(Mailer {
            from: mailbox("<email_from>", &s.from)?,
            reply_to: s
                .reply_to
                .as_deref()
                .map(|r| mailbox("<email_reply_to>", r))
                .transpose()?,
            transport: b.build(),
        })
    }

    /// `check-config --probe`: connects, says EHLO, starts TLS and logs in
    /// as configured, then QUIT; no mail is sent.
    pub async fn probe(&self) -> Result<(), String> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err("the server did not answer NOOP".into()),
            Err(e) => Err(crate::webhook::error_text(&e)),
        }
    }

    /// Sends one mail to `to`. `message_id` (`<key@trailwatch>`) names it
    /// the same on every attempt, so a repeat after a crash can be told.
    pub async fn send(
        &self,
        to: &[String],
        subject: &str,
        body: &str,
        message_id: &str,
    ) -> Result<(), Failure> {
        let mut m = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(message_id.to_string()))
            .date_now()
            .header(MIME_VERSION_1_0)
            .header(ContentType::TEXT_PLAIN)
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_string(),
            ));
        if let Some(r) = &self.reply_to {
            m = m.reply_to(r.clone());
        }
        for t in to {
            m = m.to(mailbox("recipient", t).map_err(Failure::Refused)?);
        }
        let msg = m
            .body(body.to_string())
            .map_err(|e| Failure::Refused(format!("composing the mail: {e}")))?;
        match self.transport.send(msg).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(Failure::Refused(format!(
                "SMTP: {}",
                crate::webhook::escape_controls(&e.to_string())
            ))),
            Err(e) => Err(Failure::Retry(format!(
                "SMTP: {}",
                crate::webhook::escape_controls(&e.to_string())
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_alert_and_a_group_read_well() {
        let a = Alert::parse(br#"{"timestamp":"2024-11-05T08:30:06.000+0000","rule":{"level":10,"description":"Possible break-in","id":"80255"},"location":"Wazuh-AWS","data":{"aws":{"sourceIPAddress":"198.51.100.7","eventName":"ConsoleLogin"}}}"#).unwrap();
        let (s, b) = compose(&[&a], None);
        assert_eq!(s, "[trailwatch] Level 10 alert: Possible break-in");
        assert!(b.contains("Rule: 80255 (level 10)\r\n"));
        assert!(b.contains("Source IP: 198.51.100.7\r\n"));
        assert!(b.contains("\"eventName\": \"ConsoleLogin\""));
        let (s, b) = compose(&[&a, &a], Some("prod"));
        assert_eq!(s, "[trailwatch prod] 2 alerts, highest level 10");
        assert!(b.contains("--- Alert 2 of 2 ---"));
    }
}
