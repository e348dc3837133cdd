//! Printing reports: tables for people (`table`), JSON for machines (`json`); validate findings as
//! text (`validate_text`), GitHub Actions annotations (`github`) and JUnit XML (`junit`).

pub mod github;
pub mod json;
pub mod junit;
pub mod table;
pub mod validate_text;
