#![no_main]
smtool_fuzz::target!(saved_model_pb);
