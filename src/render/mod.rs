//! Printing reports: tables for people (`table`), JSON for machines (`json`); what add-classify
//! wrote (`add_classify`); validate findings as
//! text (`validate_text`), GitHub Actions annotations (`github`) and JUnit XML (`junit`); diff
//! reports in those formats (`diff`); `smtool run`'s outputs (`run`).

pub mod add_classify;
pub mod diff;
pub mod github;
pub mod json;
pub mod junit;
#[cfg(feature = "serve")]
pub mod run;
pub mod table;
pub mod validate_text;

/// `1 model`, `2 models`: a count with the word that fits it.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
