//! The daemon: its loop (`memwatch run`) and its observability runtime.
pub mod observe;
