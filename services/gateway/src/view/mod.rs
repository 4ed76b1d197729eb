//! Answers the gateway composes from several services. Pure: the handlers
//! fetch, these modules decide what the caller sees (no I/O, no clients).

pub mod ticket;
