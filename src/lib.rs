//! smtool: inspect, validate, edit and serve TensorFlow SavedModels.
//!
//! Map of the modules (`docs/architecture.md` draws how data flows through each command):
//! - [`cli`]: clap arguments and their `--help` text, turned into validated options.
//! - [`commands`]: one module per subcommand, each turning options into a report.
//! - [`render`]: reports as tables for people, JSON, GitHub annotations or JUnit XML.
//! - [`proto`]: prost types generated from TensorFlow 2.21 / TF Serving 2.21 schemas;
//!   [`proto_ext`] holds helpers on them (names, shapes, dtypes, text format, descriptors).
//! - [`files`]: reading the files smtool opens itself: regular files only, size-capped.
//! - [`savedmodel`]: what a path is (model, graph file, model base path) and which version to
//!   read; the graph file, variables index (`bundle`), warmup file (`tfrecord`), assets,
//!   fingerprint and init op; writing an edited model atomically (`write`).
//! - [`signature`]: TensorFlow's and TensorFlow Serving's signature rules.
//! - [`graph`]: editing a graph and its function library (node builders checked against
//!   TensorFlow's op registry, the classify head, cloning a subgraph, finding a Softmax) and
//!   [`graph::GraphIndex`], its nodes and functions by name.
//! - [`ops`]: the ops a graph uses, including its function library.
//! - [`validate`]: the rules `smtool validate` checks, one module per rule family, and the
//!   walk that finds models under a directory tree.
//! - [`storage`]: object-storage URLs (`s3://`, `gs://`); with the `storage` feature (on by
//!   default), models there seen as local directories, and versions published to them.
//! - `serve` (the `serve` feature, on by default): TensorFlow Serving's REST and gRPC APIs on
//!   the TensorFlow C API (loaded at run time); also what `warmup` and `run` use.
//! - `npy` (the `serve` feature): NumPy `.npy` / `.npz` arrays read (without pickle) and
//!   written, for `smtool run`.
//! - `fuzzing` (hidden): the decoders of untrusted bytes as fuzz targets.
//!
//! Without the `serve` feature the crate needs none of the server's dependencies (no tokio,
//! hyper or tonic) and builds on any platform std supports.
//!
//! `unsafe` code is denied everywhere but in `serve::tf`, the one module that talks to C.
#![deny(unsafe_code)]

pub mod cli;
pub mod commands;
pub mod files;
#[doc(hidden)]
pub mod fuzzing;
pub mod graph;
#[cfg(feature = "serve")]
pub mod npy;
pub mod ops;
pub mod proto;
pub mod proto_ext;
pub mod render;
pub mod savedmodel;
#[cfg(feature = "serve")]
pub mod serve;
pub mod signature;
pub mod storage;
pub mod validate;
