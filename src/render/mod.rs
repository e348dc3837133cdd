//! Printing reports: tables for people (`table`), JSON for machines (`json`).

pub mod json;
pub mod table;
