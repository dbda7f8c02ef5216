pub mod s3dir;
pub mod trail;
