//! smtool: inspect, validate, edit and serve TensorFlow SavedModels.
//!
//! Map of the modules:
//! - [`proto`]: prost types generated from TensorFlow 2.21 / TF Serving 2.21 schemas;
//!   [`proto_ext`] holds helpers on them.
//! - [`files`]: reading the files smtool opens itself: regular files only, size-capped.
//! - [`savedmodel`]: finding and reading a SavedModel directory (graph file, variables index,
//!   assets, fingerprint, init op), and writing an edited one atomically.
//! - [`signature`]: TensorFlow's and TensorFlow Serving's signature rules.
//! - [`graph`]: editing a graph and its function library (node builders checked against
//!   TensorFlow's op signatures, cloning a subgraph, finding a Softmax).
//! - [`ops`]: the ops a graph uses, including its function library.
//! - `npy` (the `serve` feature): NumPy `.npy` / `.npz` arrays read (without pickle) and
//!   written, for `smtool run`.
//! - [`validate`]: the rules `smtool validate` checks, one module per rule family, and the
//!   walk that finds models under a directory tree.
//! - [`commands`]: one module per subcommand, each turning options into a report.
//! - [`render`]: reports as tables for people or JSON for machines.
//! - `serve` (the `serve` feature, on by default): TensorFlow Serving's REST and gRPC APIs on
//!   the TensorFlow C API (loaded at run time).
//! - [`storage`]: object-storage URLs (`s3://`, `gs://`); with the `storage` feature (on by
//!   default), models there seen as local directories, and versions published to them.
//! - `fuzzing` (hidden): the decoders of untrusted bytes as fuzz targets.
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
