//! The earmark command end to end, as one test binary (one link, not one per
//! file): real recordings, real codecs, a real ledger.

mod common;

mod adversary;
mod bad_input;
mod bench;
mod channels;
mod collusion;
mod faults;
mod formats;
mod home;
mod informed;
mod integrity;
mod scripting;
mod service;
mod streaming;
mod text;
mod users;
mod walkthrough;
