//! The examples in README.md and docs/ run as written: every ```console block is a transcript
//! whose commands are run and whose output must match what the block shows.
//!
//! A block's lines starting with `$ ` are commands (a line ending in `\` continues on the next,
//! a here-document runs to its delimiter), run by bash from a sandbox that holds a copy of
//! `fixtures/`, with the `smtool` under test first on PATH; the lines up to the next command are
//! its output (stdout and stderr together), compared with snapbox (`[..]` matches within a line,
//! `...` alone on a line matches any lines). The blocks of one file run in order in one sandbox,
//! as a reader follows them. The exit code must be 2 when the output shows `smtool: error:`, 1
//! when it shows a `FAIL` line, an `::error` annotation or a `breaking` change of `smtool diff`,
//! else 0.
//!
//! Servers: a command ending in `&` runs in the background, and its output is the lines it prints
//! first (the runner waits for them); `kill %N` stops the Nth, and its output is what that job
//! printed on its way out. The examples use TF Serving's ports 8501 (REST) and 8500 (gRPC); the
//! runner gives each server free ports instead, rewriting them in the commands and back in the
//! output, since tests share the machine. Blocks that run `smtool serve` or `smtool run`, talk
//! to a server or call `.venv/bin/python` need TensorFlow and follow the rule
//! of the other TensorFlow tests (skipped without it, a failure with SMTOOL_REQUIRE_TF=1); the
//! sandbox's `.venv` is then the reference Python's.
//!
//! Blocks of other kinds (`text`, `sh`, `python`, ...) are not run; a transcript that cannot run
//! as written belongs in a `text` block, and a test checks that no other kind holds one.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

/// How long a background command may take to print its first lines before the test gives up
/// (a guard against a hang, not a measurement).
const BACKGROUND_OUTPUT_GUARD: Duration = Duration::from_secs(300);

/// One `$ ` command of a console block and the output shown after it.
#[derive(Debug)]
struct Step {
    /// Line of the `$ ` in its file (1-based).
    line: usize,
    command: String,
    expected: String,
}

#[derive(Debug)]
struct Block {
    line: usize,
    steps: Vec<Step>,
}

impl Block {
    /// True when the block starts a server or talks to one, which needs TensorFlow.
    fn needs_tensorflow(&self) -> bool {
        self.steps.iter().any(|s| {
            s.command.contains("smtool serve")
                || s.command.contains("curl ")
                || s.command.contains(".venv/bin/python")
                || s.command.contains("smtool run ")
                || s.command.starts_with("kill %")
        })
    }
}

/// The ```console blocks of a Markdown text.
fn console_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let fence = line.trim_start();
        if fence != "```console" {
            continue;
        }
        let indent = line.len() - fence.len();
        let mut block = Block {
            line: i + 1,
            steps: Vec::new(),
        };
        let mut heredoc: Option<String> = None;
        let mut continued = false;
        for (j, raw) in lines.by_ref() {
            let line = raw.get(indent..).unwrap_or(raw.trim_start());
            if heredoc.is_none() && !continued && line.trim_end() == "```" {
                break;
            }
            if let Some(step) = block
                .steps
                .last_mut()
                .filter(|_| heredoc.is_some() || continued)
            {
                step.command.push('\n');
                step.command.push_str(line);
                if heredoc.as_deref() == Some(line.trim_end()) {
                    heredoc = None;
                }
                continued = heredoc.is_none() && line.ends_with('\\');
            } else if let Some(command) = line.strip_prefix("$ ") {
                block.steps.push(Step {
                    line: j + 1,
                    command: command.to_owned(),
                    expected: String::new(),
                });
                heredoc = heredoc_delimiter(command);
                continued = heredoc.is_none() && command.ends_with('\\');
            } else if let Some(step) = block.steps.last_mut() {
                step.expected.push_str(line);
                step.expected.push('\n');
            } else {
                panic!("line {}: output before the first `$ ` command", j + 1);
            }
        }
        blocks.push(block);
    }
    blocks
}

/// The delimiter of a here-document started on this line (`<<'EOF'`, `<<"EOF"` or `<<EOF`).
fn heredoc_delimiter(line: &str) -> Option<String> {
    let rest = &line[line.find("<<")? + 2..];
    let rest = rest.strip_prefix('-').unwrap_or(rest).trim_start();
    let word: String = rest
        .trim_start_matches(['\'', '"'])
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some(word)
}

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
}

struct Background {
    child: Child,
    lines: Receiver<String>,
}

/// Runs the console blocks of one file, in order, in a fresh sandbox.
struct Runner {
    file: String,
    sandbox: tempfile::TempDir,
    path_env: std::ffi::OsString,
    venv: Option<PathBuf>,
    rest: u16,
    grpc: u16,
    /// Background jobs by job number - 1; `None` once stopped.
    background: Vec<Option<Background>>,
}

impl Drop for Runner {
    fn drop(&mut self) {
        for bg in self.background.iter_mut().flatten() {
            let _ = bg.child.kill();
            let _ = bg.child.wait();
        }
    }
}

impl Runner {
    fn new(file: &str) -> Runner {
        let sandbox = tempfile::Builder::new()
            .prefix("docs-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap_or_else(|e| panic!("cannot create a sandbox: {e}"));
        common::copy_dir(&common::fixture(""), &sandbox.path().join("fixtures"));
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_smtool"))
            .parent()
            .expect("the binary's directory")
            .to_path_buf();
        let mut paths = vec![bin_dir];
        paths.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        Runner {
            file: file.to_owned(),
            sandbox,
            path_env: std::env::join_paths(paths).expect("PATH"),
            venv: None,
            rest: free_port(),
            grpc: free_port(),
            background: Vec::new(),
        }
    }

    fn bash(&self, command: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(format!("exec 2>&1\n{command}"))
            .current_dir(self.sandbox.path())
            .env("PATH", &self.path_env)
            .env_remove("TENSORFLOW_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        match &self.venv {
            Some(venv) => cmd.env("VIRTUAL_ENV", venv),
            None => cmd.env_remove("VIRTUAL_ENV"),
        };
        cmd
    }

    /// The command with the documented ports replaced by this file's free ones.
    fn with_ports(&self, command: &str) -> String {
        let mut command = command
            .replace("8501", &self.rest.to_string())
            .replace("8500", &self.grpc.to_string());
        if command.contains("smtool serve") {
            let mut flags = String::new();
            if !command.contains("--rest-api-port") && !command.contains("--rest_api_port") {
                flags.push_str(&format!(" --rest-api-port {}", self.rest));
            }
            if !command.contains("--port") && !command.contains("--grpc-port") {
                flags.push_str(&format!(" --port {}", self.grpc));
            }
            command = command.replacen("smtool serve", &format!("smtool serve{flags}"), 1);
        }
        command
    }

    /// The output with this file's ports shown as the documented ones.
    fn documented_ports(&self, output: &str) -> String {
        output
            .replace(&format!(":{}", self.rest), ":8501")
            .replace(&format!(":{}", self.grpc), ":8500")
    }

    fn run(&mut self, blocks: &[Block]) {
        for block in blocks {
            if block.needs_tensorflow() {
                let Some(python) = common::reference_python() else {
                    eprintln!(
                        "skipping the block at {}:{}: no TensorFlow",
                        self.file, block.line
                    );
                    continue;
                };
                let venv = common::venv_of(&python);
                // Examples call the `.venv` that scripts/test.sh sets up.
                let link = self.sandbox.path().join(".venv");
                if !link.exists() {
                    std::os::unix::fs::symlink(&venv, &link)
                        .unwrap_or_else(|e| panic!("cannot link .venv in the sandbox: {e}"));
                }
                self.venv = Some(venv);
            }
            for step in &block.steps {
                self.step(step);
            }
        }
    }

    fn step(&mut self, step: &Step) {
        let command = step.command.trim_end();
        let (output, code) = if let Some(n) = command.strip_prefix("kill %") {
            let n: usize = n.trim().parse().expect("kill %N");
            let mut bg = n
                .checked_sub(1)
                .and_then(|i| self.background.get_mut(i))
                .and_then(Option::take)
                .unwrap_or_else(|| panic!("{}:{}: no job %{n}", self.file, step.line));
            // SIGTERM, as `kill` sends: the server finishes its requests and exits.
            let pid = libc::pid_t::try_from(bg.child.id()).expect("pid");
            // SAFETY: kill(2) on a child process this test started and has not reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let _ = bg.child.wait();
            // What it printed on its way out.
            let output: String = bg.lines.iter().map(|line| line + "\n").collect();
            (output, 0)
        } else if let Some(command) = command.strip_suffix('&') {
            let expected_lines = trimmed(&step.expected).lines().count();
            if command.contains("smtool serve") {
                // Ports free now, rather than when the file started.
                (self.rest, self.grpc) = (free_port(), free_port());
            }
            let mut child = self
                // `exec`, so that the server is the process `kill %N` stops.
                .bash(&format!("exec {}", self.with_ports(command)))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start bash: {e}"));
            let stdout = child.stdout.take().expect("stdout");
            let (tx, lines) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            let mut output = String::new();
            for _ in 0..expected_lines {
                match lines.recv_timeout(BACKGROUND_OUTPUT_GUARD) {
                    Ok(line) => {
                        output.push_str(&line);
                        output.push('\n');
                    }
                    Err(_) => panic!(
                        "{}:{}: `{command}` printed only:\n{output}",
                        self.file, step.line
                    ),
                }
            }
            // Like bash, a new job takes the number after the highest one still running.
            while matches!(self.background.last(), Some(None)) {
                self.background.pop();
            }
            self.background.push(Some(Background { child, lines }));
            (output, 0)
        } else {
            let out = self
                .bash(&self.with_ports(command))
                .output()
                .unwrap_or_else(|e| panic!("cannot start bash: {e}"));
            (
                String::from_utf8_lossy(&out.stdout).into_owned(),
                out.status.code().unwrap_or(-1),
            )
        };
        // Blank lines between a command's output and the next command only separate them, and a
        // body printed without a final newline (curl) reads the same.
        let output = trimmed(&self.documented_ports(&output));
        let expected = trimmed(&step.expected);
        let expected_code = if step.expected.contains("smtool: error:") {
            2
        } else if step.expected.lines().any(|l| {
            l.starts_with("FAIL ") || l.starts_with("::error") || l.starts_with("  breaking ")
        }) {
            1
        } else {
            0
        };
        if let Err(diff) = snapbox::Assert::new().try_eq(
            Some(&"actual output"),
            output.clone().into(),
            expected.into(),
        ) {
            panic!(
                "{}:{}: the output of `{}` differs from the documented one:\n{diff}",
                self.file, step.line, step.command
            );
        }
        assert_eq!(
            code, expected_code,
            "{}:{}: `{}` exited with {code}, the documentation implies {expected_code}; output:\n{output}",
            self.file, step.line, step.command
        );
        // Anything a server printed since is not part of any documented output.
        for bg in self.background.iter().flatten() {
            while bg.lines.try_recv().is_ok() {}
        }
    }
}

/// `text` without trailing blank lines, ending in one newline unless empty.
fn trimmed(text: &str) -> String {
    let text = text.trim_end();
    if text.is_empty() {
        String::new()
    } else {
        format!("{text}\n")
    }
}

fn run_file(rel: &str) {
    let text = std::fs::read_to_string(common::root().join(rel))
        .unwrap_or_else(|e| panic!("cannot read {rel}: {e}"));
    let blocks = console_blocks(&text);
    Runner::new(rel).run(&blocks);
}

#[test]
fn readme_examples_run_as_written() {
    run_file("README.md");
}

#[test]
fn docs_examples_run_as_written() {
    for entry in std::fs::read_dir(common::root().join("docs")).expect("docs/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            let name = path.file_name().expect("name").to_string_lossy();
            run_file(&format!("docs/{name}"));
        }
    }
}

#[test]
fn console_blocks_are_parsed_into_commands_and_outputs() {
    let text = "intro\n```console\n$ one \\\n    --flag\nout 1\n$ cat <<'EOF'\nx\nEOF\nx\n```\n\
                ```text\n$ not run\n```\n  ```console\n  $ two &\n  started\n  ```\n";
    let blocks = console_blocks(text);
    assert_eq!(blocks.len(), 2);
    let steps: Vec<_> = blocks
        .iter()
        .flat_map(|b| &b.steps)
        .map(|s| (s.line, s.command.as_str(), s.expected.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            (3, "one \\\n    --flag", "out 1\n"),
            (6, "cat <<'EOF'\nx\nEOF", "x\n"),
            (15, "two &", "started\n"),
        ]
    );
    assert!(!blocks[0].needs_tensorflow());
}

/// `scripts/demo.sh` runs the README's set-up transcript: its commands are the first console
/// block's, in order, so what the demo prints is what the README shows (and the block's run above
/// checks the outputs).
#[test]
fn demo_runs_the_readme_set_up_transcript() {
    let demo = std::fs::read_to_string(common::root().join("scripts/demo.sh")).expect("demo.sh");
    let start = demo
        .find("<<'TRANSCRIPT'\n")
        .expect("demo.sh lists its commands in a TRANSCRIPT here-document")
        + "<<'TRANSCRIPT'\n".len();
    let end = start
        + demo[start..]
            .find("\nTRANSCRIPT\n")
            .expect("end of TRANSCRIPT");
    let demo_commands: Vec<&str> = demo[start..end].lines().collect();
    let readme = std::fs::read_to_string(common::root().join("README.md")).expect("README.md");
    let blocks = console_blocks(&readme);
    let readme_commands: Vec<&str> = blocks[0].steps.iter().map(|s| s.command.as_str()).collect();
    assert_eq!(demo_commands, readme_commands);
}

/// A transcript (lines starting with `$ `) is either a tested `console` block or says it is not
/// run by being a `text` block; an unlabelled or `sh` block with a transcript is an oversight.
#[test]
fn every_transcript_is_a_console_or_text_block() {
    let mut files = vec![common::root().join("README.md")];
    for entry in std::fs::read_dir(common::root().join("docs")).expect("docs/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let mut untested = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        let mut fence: Option<&str> = None;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if let Some(info) = line.strip_prefix("```") {
                fence = if fence.is_some() {
                    None
                } else {
                    Some(info.trim())
                };
            } else if let Some(info) = fence {
                if line.starts_with("$ ") && info != "console" && info != "text" {
                    untested.push(format!(
                        "{}:{}: {line}",
                        file.strip_prefix(common::root()).unwrap_or(&file).display(),
                        i + 1
                    ));
                }
            }
        }
    }
    assert!(
        untested.is_empty(),
        "transcripts outside console (tested) or text (not run) blocks:\n{}",
        untested.join("\n")
    );
}
