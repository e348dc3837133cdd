//! The in-process limit for `smtool serve`: the same requests the HTTP benchmark sends, run
//! without HTTP. Three layers: the bare session run (TensorFlow only), the transport-free core
//! on typed requests, and the core plus TF Serving's JSON codec. Prints per-call medians.
//!
//! Run with `cargo bench --bench serve_inprocess` (finds TensorFlow as `smtool serve` does);
//! `BENCH_INTRA_OP` / `BENCH_INTER_OP` set the session thread pools as `smtool serve`'s
//! `--tensorflow_intra_op_parallelism` / `--tensorflow_inter_op_parallelism` do.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use smtool::proto::tensorflow as tfp;
use smtool::proto::tensorflow::serving as sv;
use smtool::serve::codec;
use smtool::serve::config::model_from_path;
use smtool::serve::core::Core;
use smtool::serve::library::{self, LibraryOptions};
use smtool::serve::limits::Limits;
use smtool::serve::metrics::Metrics;
use smtool::serve::models::{ManagerOptions, ModelManager};
use smtool::serve::runner::{Call, RunOptions, Runner};
use smtool::serve::servable::LoadOptions;
use smtool::serve::tensor::{Tensor, Values};
use smtool::serve::tf::TensorFlow;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn digit_pixels(path: &Path) -> Vec<f32> {
    let file = std::fs::File::open(path).expect("digit image");
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .expect("png");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("png frame");
    buf[..info.buffer_size()]
        .iter()
        .map(|&p| p as f32 / 255.0)
        .collect()
}

/// CPU time of the whole process (every thread, TensorFlow's pools included).
fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Median and p99 of `f` over `iters` calls after a warm-up, and the process CPU time per call.
fn measure(name: &str, iters: usize, mut f: impl FnMut()) {
    for _ in 0..iters / 10 + 5 {
        f();
    }
    let cpu = process_cpu();
    let mut times: Vec<Duration> = (0..iters)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    let cpu = (process_cpu() - cpu) / iters as u32;
    times.sort();
    let median = times[times.len() / 2];
    let p99 = times[times.len() * 99 / 100];
    println!(
        "| {name} | {:.3} | {:.3} | {:.3} |",
        median.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e3
    );
}

fn main() {
    if std::env::var_os("TF_CPP_MIN_LOG_LEVEL").is_none() {
        // Before TensorFlow loads; the bench is single-threaded here.
        std::env::set_var("TF_CPP_MIN_LOG_LEVEL", "3");
    }
    let mut options = LibraryOptions::from_env(None, false);
    if let Some(p) = std::env::var_os("SMTOOL_TEST_PYTHON") {
        options.pythons.insert(0, PathBuf::from(p));
    }
    let found = library::locate(&options, &mut |m| eprintln!("{m}")).expect("libtensorflow");
    let (tf, _) = TensorFlow::load(&found.library).expect("load libtensorflow");
    eprintln!(
        "TensorFlow {} from {}",
        tf.version(),
        found.library.display()
    );
    let iters: usize = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);

    let models = vec![
        model_from_path("digits", &root().join("fixtures/digits/model")).expect("digits"),
        model_from_path("iris", &root().join("fixtures/iris_tf1")).expect("iris"),
    ];
    // The session thread pools `smtool serve` would use with the same flags
    // (--tensorflow_intra_op_parallelism / --tensorflow_inter_op_parallelism).
    let threads = |k: &str| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let threads = smtool::serve::config::SessionThreads {
        intra_op: threads("BENCH_INTRA_OP"),
        inter_op: threads("BENCH_INTER_OP"),
        session: 0,
    };
    eprintln!(
        "session threads: intra-op {}, inter-op {}",
        threads.intra_op, threads.inter_op
    );
    // The server's parts without a transport: the runner requests run on, and the models
    // (loaded at once, as serve does at start-up) the core finds their servables among.
    let metrics = Arc::new(Metrics::new());
    let runner = Arc::new(Runner::new(metrics.clone(), RunOptions::default()));
    let options = ManagerOptions {
        load: LoadOptions {
            session_config: threads.config(),
            ..Default::default()
        },
        ..Default::default()
    };
    let manager = Arc::new(ModelManager::new(tf, models, metrics, options));
    manager.poll_now();
    let core = Core::new(manager.clone(), runner, None);
    let digits = manager
        .servable("digits", &smtool::serve::models::VersionRequest::Latest)
        .expect("digits loaded");
    let iris = manager
        .servable("iris", &smtool::serve::models::VersionRequest::Latest)
        .expect("iris loaded");

    let pixels = digit_pixels(&root().join("fixtures/digits/images/00_five.png"));
    let image = Tensor::new(vec![1, 28, 28, 1], Values::Float(pixels.clone())).expect("image");
    let sig = &digits.meta_graph.signature_def["serving_default"];
    let input = smtool::proto_ext::tensor_name(&sig.inputs["x"]).expect("x name");
    let output = smtool::proto_ext::tensor_name(&sig.outputs["output_0"]).expect("output name");

    let features = [5.1f32, 3.5, 1.4, 0.2];
    let example = tfp::Example {
        features: Some(tfp::Features {
            feature: [(
                "x".to_owned(),
                tfp::Feature {
                    kind: Some(tfp::feature::Kind::FloatList(tfp::FloatList {
                        value: features.to_vec(),
                    })),
                },
            )]
            .into(),
        }),
    };
    let csig = &iris.meta_graph.signature_def["serving_default"];
    let cin = smtool::proto_ext::tensor_name(&csig.inputs["inputs"]).expect("inputs");
    let cfetch: Vec<&str> = ["classes", "scores"]
        .iter()
        .map(|k| smtool::proto_ext::tensor_name(&csig.outputs[*k]).expect("output"))
        .collect();
    let examples =
        Tensor::new(vec![1], Values::String(vec![example.encode_to_vec()])).expect("examples");

    let spec = |name: &str| sv::ModelSpec {
        name: name.to_owned(),
        ..Default::default()
    };
    let predict_request = sv::PredictRequest {
        model_spec: Some(spec("digits")),
        inputs: [(
            "x".to_owned(),
            smtool::serve::tensor::tensor_to_proto(&image),
        )]
        .into(),
        ..Default::default()
    };
    let classify_request = sv::ClassificationRequest {
        model_spec: Some(spec("iris")),
        input: Some(sv::Input {
            kind: Some(sv::input::Kind::ExampleList(sv::ExampleList {
                examples: vec![example.clone()],
            })),
        }),
    };
    let rows: Vec<serde_json::Value> = pixels
        .chunks(28)
        .map(|r| r.iter().map(|&p| serde_json::json!([p])).collect())
        .collect();
    let predict_json = serde_json::json!({"instances": [rows]}).to_string();
    let classify_json = serde_json::json!({"examples": [{"x": features}]}).to_string();

    println!("| in-process call (batch of 1 unless said) | median ms | p99 ms | CPU ms per call |");
    println!("|---|---|---|---|");
    measure("digits predict: session run", iters, || {
        digits
            .session
            .run(&[(input, &image)], &[output], Limits::default())
            .expect("run");
    });
    let batch: Vec<f32> = pixels
        .iter()
        .copied()
        .cycle()
        .take(64 * pixels.len())
        .collect();
    let batch = Tensor::new(vec![64, 28, 28, 1], Values::Float(batch)).expect("batch");
    measure(
        "digits predict: session run, batch of 64",
        iters / 10,
        || {
            digits
                .session
                .run(&[(input, &batch)], &[output], Limits::default())
                .expect("run");
        },
    );
    measure("digits predict: core (typed request)", iters, || {
        core.predict(Call::REST, &predict_request).expect("predict");
    });
    measure("digits predict: JSON parse only", iters, || {
        codec::parse_body(predict_json.as_bytes()).expect("json");
    });
    measure("digits predict: JSON to PredictRequest", iters, || {
        let doc = codec::parse_body(predict_json.as_bytes()).expect("json");
        codec::predict_request(&doc, spec("digits"), |s| core.signature_inputs(s))
            .expect("request");
    });
    measure(
        "digits predict: JSON to PredictRequest (fast reader)",
        iters,
        || {
            codec::predict_request_fast(predict_json.as_bytes(), &spec("digits"), |s| {
                core.signature_inputs(s)
            })
            .expect("fast reader");
        },
    );
    measure("digits predict: core + JSON codec", iters, || {
        // As the REST handler does: the fast reader, else the general one.
        let (req, format) =
            codec::predict_request_fast(predict_json.as_bytes(), &spec("digits"), |s| {
                core.signature_inputs(s)
            })
            .unwrap_or_else(|| {
                let doc = codec::parse_body(predict_json.as_bytes()).expect("json");
                codec::predict_request(&doc, spec("digits"), |s| core.signature_inputs(s))
                    .expect("request")
            });
        let resp = core.predict(Call::REST, &req).expect("predict");
        codec::predict_response(&resp.outputs, format).expect("response");
    });
    measure("iris classify: session run", iters, || {
        iris.session
            .run(&[(cin, &examples)], &cfetch, Limits::default())
            .expect("run");
    });
    measure("iris classify: core (typed request)", iters, || {
        core.classify(Call::REST, &classify_request)
            .expect("classify");
    });
    measure("iris classify: core + JSON codec", iters, || {
        let doc = codec::parse_body(classify_json.as_bytes()).expect("json");
        let (signature_name, input) = codec::examples_input(&doc).expect("examples");
        let req = sv::ClassificationRequest {
            model_spec: Some(sv::ModelSpec {
                signature_name,
                ..spec("iris")
            }),
            input: Some(input),
        };
        let resp = core.classify(Call::REST, &req).expect("classify");
        codec::classification_response(&resp.result.unwrap_or_default()).expect("response");
    });
}
