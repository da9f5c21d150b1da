//! One module per subcommand.
pub mod check_config;
pub mod incidents;
pub mod probe;
pub mod record;
pub mod replay;
pub mod run;
pub mod status;
pub mod top;
