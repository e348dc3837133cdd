//! One module per subcommand. Each takes a validated options struct (never clap types) and
//! returns a report that `render` prints.

pub mod add_classify;
pub mod diff;
pub mod inspect;
#[cfg(feature = "storage")]
mod remote;
#[cfg(feature = "serve")]
pub mod run;
pub mod validate;
#[cfg(feature = "serve")]
pub mod warmup;
