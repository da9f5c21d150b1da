//! One module per subcommand.
pub mod observe;
pub mod probe;
pub mod run;
pub mod status;
pub mod top;
