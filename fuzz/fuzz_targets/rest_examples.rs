#![no_main]
smtool_fuzz::target!(rest_examples);
