pub mod trail;
