pub mod receiver;
pub mod smtp;
