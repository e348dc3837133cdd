#![no_main]
smtool_fuzz::target!(variables_index);
