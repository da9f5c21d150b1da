//! What the CLI shows of the daemon's view: `status`'s table and `top`'s screen.
pub mod table;
pub mod top;
