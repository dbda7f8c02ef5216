//! The service: `run` (collect, analyse, deliver), its configuration, the
//! passes over the configured sources, the file-by-file pipeline shared with
//! `replay`, and the HTTP API.

pub mod api;
pub mod check;
pub mod lock;
pub mod pipeline;
pub mod run;
pub mod settings;
pub mod sources;
