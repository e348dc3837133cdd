#![no_main]
smtool_fuzz::target!(tfrecord);
