//! Files smtool opens itself, pointed at things that are not regular files or are huge: every
//! command ends at once with an error naming the file (and the limit), never blocking on a
//! FIFO or reading a device or a sparse giant without end.

mod common;

fn sparse(path: &std::path::Path, len: u64) {
    std::fs::File::create(path)
        .and_then(|f| f.set_len(len))
        .unwrap_or_else(|e| panic!("sparse file {}: {e}", path.display()));
}

#[test]
fn a_graph_file_over_two_gib_is_refused_before_it_is_read() {
    let dir = common::tempdir();
    let model = dir.path().join("huge");
    common::copy_dir(&common::fixture("half_plus_two/1"), &model);
    sparse(&model.join("saved_model.pb"), (2 << 30) + 1);
    let model = model.to_str().expect("path");
    let want = format!(
        "'{model}/saved_model.pb' is larger than the 2 GiB limit for a graph file (2147483649 bytes)"
    );
    let out = common::run_to_end(&["inspect", model]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&want), "{err}");
    // validate reports it as the model's finding.
    let out = common::run_to_end(&["validate", model]);
    let report = common::stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains(&format!("SM400 model-unreadable: {want}")),
        "{report}"
    );
}

#[test]
fn a_fifo_among_the_model_files_does_not_block_inspect_or_validate() {
    let dir = common::tempdir();
    let model = dir.path().join("fifo");
    common::copy_dir(&common::fixture("half_plus_two/1"), &model);
    let index = model.join("variables/variables.index");
    std::fs::remove_file(&index).expect("remove");
    common::mkfifo(&index);
    let model = model.to_str().expect("path");
    let out = common::run_to_end(&["validate", model]);
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    let report = common::stdout(&out);
    assert!(report.contains("variables.index' is missing"), "{report}");
    let out = common::run_to_end(&["inspect", model]);
    assert!(out.status.success(), "{}", common::stderr(&out));
}

#[test]
fn a_graph_file_that_is_a_fifo_is_named_as_one() {
    let dir = common::tempdir();
    let model = dir.path().join("fifo");
    common::copy_dir(&common::fixture("half_plus_two/1"), &model);
    let graph = model.join("saved_model.pb");
    std::fs::remove_file(&graph).expect("remove");
    common::mkfifo(&graph);
    let want = format!("'{}' is a FIFO, not a regular file", graph.display());
    for command in ["inspect", "validate", "diff"] {
        let model = model.to_str().expect("path");
        let mut args = vec![command, model];
        if command == "diff" {
            args.push("fixtures/half_plus_two/1");
        }
        let out = common::run_to_end(&args);
        let text = format!("{}{}", common::stdout(&out), common::stderr(&out));
        assert_ne!(out.status.code(), Some(0), "{command}: {text}");
        assert!(text.contains(&want), "{command}: {text}");
    }
}

#[test]
fn label_files_that_are_fifos_devices_or_huge_are_refused() {
    let dir = common::tempdir();
    let fifo = dir.path().join("labels.fifo");
    common::mkfifo(&fifo);
    let huge = dir.path().join("labels.txt");
    sparse(&huge, 65 << 20);
    let model = common::fixture("digits/model");
    let model = model.to_str().expect("path");
    let fifo = fifo.to_str().expect("path");
    let huge = huge.to_str().expect("path");
    let cases = [
        (fifo, format!("'{fifo}' is a FIFO, not a regular file")),
        (
            "/dev/zero",
            "'/dev/zero' is a character device, not a regular file".to_owned(),
        ),
        (
            huge,
            format!("'{huge}' is larger than the 64 MiB limit for a label file (68157440 bytes)"),
        ),
    ];
    for (labels, want) in cases {
        let out_dir = dir.path().join("out");
        let out_dir = out_dir.to_str().expect("path");
        let out =
            common::run_to_end(&["add-classify", model, "--out", out_dir, "--labels", labels]);
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{labels}: {err}");
        assert!(
            err.contains(&format!("labels file '{labels}': cannot read it: {want}")),
            "{labels}: {err}"
        );
        assert!(
            !std::path::Path::new(out_dir).exists(),
            "nothing is written"
        );
    }
}
