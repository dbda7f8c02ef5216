//! The service: `run` (collect, analyse, deliver), its configuration, the
//! passes over the configured sources, the file-by-file pipeline shared with
//! `replay`, and the HTTP API with its live page.

pub mod api;
pub mod check;
pub mod health;
pub mod live;
pub mod lock;
pub mod logtest_sessions;
pub mod pipeline;
pub mod queue_cmd;
pub mod run;
pub mod settings;
pub mod sources;
