pub mod s3dir;
pub mod sinks;
pub mod trail;
