pub mod disk;
pub mod receiver;
pub mod smtp;
