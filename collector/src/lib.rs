//! The collector: reads AWS logs the way Wazuh's AWS module (`aws-s3`
//! wodle) does and produces, for every record, the exact message that
//! module sends to analysisd.  It knows nothing of rules.

pub mod awserr;
pub mod bucket;
pub mod cloudwatch;
pub mod config;
pub mod discard;
pub mod ec2;
pub mod envelope;
pub mod formats;
pub mod inspector;
pub mod layout;
pub mod local;
pub mod pyjson;
pub mod s3;
pub mod sqs;
pub mod state;
pub mod store;

pub use discard::Discard;
pub use envelope::{messages, Origin};
pub use formats::{parse_object, parse_subscriber_object, BucketType, FileError, ParseContext};
