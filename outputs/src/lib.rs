//! Where alerts go once the engine has written them: the `alerts.json`
//! file (fsync'd, rotated daily as Wazuh keeps `logs/alerts/YYYY/Mon/`),
//! email and webhooks.
//!
//! Email and webhook deliveries never happen on the engine's path: the
//! engine's side ([`route::Router`]) turns an alert into queue items, the
//! items are committed to an on-disk queue ([`queue::Outbox`]) together
//! with the record that the source file was handled, and background senders
//! ([`send`]) drain the queue with retries. An item leaves the queue only
//! once the SMTP server or the webhook accepted it.

pub mod alert;
pub mod email;
pub mod file;
pub mod queue;
pub mod route;
pub mod send;
pub mod settings;
pub mod webhook;
