//! Every fact `smtool inspect` prints about the healthy fixtures equals what TensorFlow 2.21
//! reports (python/check_inspect.py, run with the reference Python TensorFlow).

mod common;

#[test]
fn inspect_agrees_with_tensorflow() {
    let Some(python) = common::reference_python() else {
        return;
    };
    let out = common::run_python(
        &python,
        "check_inspect.py",
        &["--smtool", env!("CARGO_BIN_EXE_smtool")],
    );
    let stdout = common::stdout(&out);
    assert!(
        out.status.success(),
        "smtool and TensorFlow disagree:\n{stdout}\n{}",
        common::stderr(&out)
    );
    assert!(stdout.contains(", 0 differ"), "{stdout}");
}
