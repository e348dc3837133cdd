#![no_main]
smtool_fuzz::target!(grpc_predict);
