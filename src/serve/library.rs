//! Finding libtensorflow for `serve`: an explicit directory, `TENSORFLOW_DIR`, an installed
//! Python `tensorflow` / `tensorflow-cpu` package (found without importing it), smtool's cache,
//! or else the pinned official `tensorflow-cpu` wheel fetched with `pip download` (so the user's
//! pip configuration applies), checked against its sha256 and unpacked into the cache.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// The TensorFlow release smtool fetches when none is installed.
pub const TENSORFLOW_VERSION: &str = "2.21.0";

/// The wheel fetched: its shared libraries do not depend on the Python version, so one pinned
/// wheel (CPython 3.11 tags) serves every user on x86_64 Linux, whatever Python runs pip.
const WHEEL_FILE: &str = "tensorflow_cpu-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl";
const WHEEL_SHA256: &str = "2b847d217b02ee7731ed91431daf3250daa0196c3c94614d23be27232e6e5b6c";
const PIP_TARGET: &[&str] = &[
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
    "--platform",
    "manylinux_2_27_x86_64",
];

/// The C API library inside a Python package (the wheel ships no `libtensorflow.so`).
const WHEEL_LIBRARY: &str = "libtensorflow_cc.so.2";
const FRAMEWORK_LIBRARY: &str = "libtensorflow_framework.so.2";
/// Names a directory may hold the C API under, in order of preference.
const LIBRARY_NAMES: &[&str] = &["libtensorflow.so", "libtensorflow.so.2", WHEEL_LIBRARY];

/// Where to look, as decided by the caller (the CLI fills it from flags and environment).
#[derive(Debug, Clone, Default)]
pub struct LibraryOptions {
    /// `--tensorflow-dir`.
    pub tensorflow_dir: Option<PathBuf>,
    /// `TENSORFLOW_DIR`.
    pub env_dir: Option<PathBuf>,
    /// Python interpreters to ask for an installed `tensorflow` package, in order.
    pub pythons: Vec<PathBuf>,
    /// smtool's cache directory (`$XDG_CACHE_HOME/smtool` or `~/.cache/smtool`).
    pub cache_dir: Option<PathBuf>,
    /// Fetch the pinned wheel when nothing else has TensorFlow.
    pub fetch: bool,
}

impl LibraryOptions {
    /// Options from the environment: `TENSORFLOW_DIR`, the active virtualenv's python and
    /// `python3` on PATH, the XDG cache directory.
    pub fn from_env(tensorflow_dir: Option<PathBuf>, fetch: bool) -> Self {
        let mut pythons = Vec::new();
        if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
            pythons.push(PathBuf::from(venv).join("bin/python"));
        }
        pythons.push(PathBuf::from("python3"));
        LibraryOptions {
            tensorflow_dir,
            env_dir: std::env::var_os("TENSORFLOW_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            pythons,
            cache_dir: default_cache_dir(),
            fetch,
        }
    }
}

/// `$XDG_CACHE_HOME/smtool` or `$HOME/.cache/smtool`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("smtool"))
}

/// Where the library was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    Python(PathBuf),
    Cache,
    Fetched,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag => write!(f, "--tensorflow-dir"),
            Source::Env => write!(f, "TENSORFLOW_DIR"),
            Source::Python(p) => write!(f, "the tensorflow package of {}", p.display()),
            Source::Cache => write!(f, "smtool's cache"),
            Source::Fetched => write!(
                f,
                "the tensorflow-cpu {TENSORFLOW_VERSION} wheel just fetched"
            ),
        }
    }
}

/// A libtensorflow file to load and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub library: PathBuf,
    pub source: Source,
}

/// The C API library in `dir`, if any (with `libtensorflow_framework.so.2` beside it when the
/// library is the wheel's `libtensorflow_cc.so.2`, which needs it).
pub fn library_in(dir: &Path) -> Option<PathBuf> {
    LIBRARY_NAMES.iter().map(|n| dir.join(n)).find(|p| {
        p.is_file() && (!p.ends_with(WHEEL_LIBRARY) || dir.join(FRAMEWORK_LIBRARY).is_file())
    })
}

/// The cache directory of the pinned TensorFlow version.
fn versioned_cache(cache: &Path) -> PathBuf {
    cache.join(format!("libtensorflow-{TENSORFLOW_VERSION}"))
}

/// Asks `python` where its `tensorflow` package is without importing it (`find_spec` of a
/// top-level package does not run the package).
pub fn python_package_dir(python: &Path) -> Option<PathBuf> {
    let out = Command::new(python)
        .args([
            "-c",
            "import importlib.util as u\ns = u.find_spec('tensorflow')\n\
             print(s.submodule_search_locations[0] if s and s.submodule_search_locations else '')",
        ])
        .env_remove("PYTHONSTARTUP")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let dir = text.trim();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// Finds libtensorflow in the documented order, fetching it as a last resort when allowed.
/// `say` receives progress messages meant for the user.
pub fn locate(options: &LibraryOptions, say: &mut dyn FnMut(&str)) -> Result<Located> {
    if let Some(dir) = &options.tensorflow_dir {
        return library_in(dir)
            .map(|library| Located {
                library,
                source: Source::Flag,
            })
            .with_context(|| {
                format!(
                    "--tensorflow-dir '{}' has no libtensorflow.so (or a Python wheel's \
                     {WHEEL_LIBRARY} with {FRAMEWORK_LIBRARY} beside it)",
                    dir.display()
                )
            });
    }
    if let Some(dir) = &options.env_dir {
        return library_in(dir)
            .map(|library| Located {
                library,
                source: Source::Env,
            })
            .with_context(|| {
                format!(
                    "TENSORFLOW_DIR '{}' has no libtensorflow.so (or a Python wheel's \
                     {WHEEL_LIBRARY} with {FRAMEWORK_LIBRARY} beside it); fix or unset it",
                    dir.display()
                )
            });
    }
    for python in &options.pythons {
        if let Some(library) = python_package_dir(python).and_then(|d| library_in(&d)) {
            return Ok(Located {
                library,
                source: Source::Python(python.clone()),
            });
        }
    }
    let cache = options.cache_dir.as_deref();
    if let Some(library) = cache.and_then(|c| library_in(&versioned_cache(c))) {
        return Ok(Located {
            library,
            source: Source::Cache,
        });
    }
    if !options.fetch {
        bail!(
            "no TensorFlow found: pass --tensorflow-dir DIR (a directory with libtensorflow.so), \
             set TENSORFLOW_DIR, install the Python package (pip install tensorflow-cpu=={TENSORFLOW_VERSION}), \
             or drop --no-fetch to let smtool download it"
        );
    }
    let Some(cache) = cache else {
        bail!("no TensorFlow found and no cache directory to fetch it into: set HOME or XDG_CACHE_HOME, or pass --tensorflow-dir DIR");
    };
    let dir = fetch(cache, options.pythons.iter().map(PathBuf::as_path), say)?;
    let library = library_in(&dir)
        .with_context(|| format!("the fetched wheel left no library in '{}'", dir.display()))?;
    Ok(Located {
        library,
        source: Source::Fetched,
    })
}

/// Downloads the pinned wheel with pip, checks its sha256 and unpacks the two libraries into
/// the versioned cache directory (atomically: a half-finished fetch leaves nothing behind).
/// Returns that directory.
pub fn fetch<'a>(
    cache: &Path,
    pythons: impl Iterator<Item = &'a Path>,
    say: &mut dyn FnMut(&str),
) -> Result<PathBuf> {
    if !(cfg!(target_os = "linux") && cfg!(target_arch = "x86_64")) {
        bail!(
            "no TensorFlow found, and smtool can only fetch it on x86_64 Linux: install \
             tensorflow {TENSORFLOW_VERSION} and pass --tensorflow-dir DIR (the directory with its \
             libtensorflow shared library)"
        );
    }
    let target = versioned_cache(cache);
    std::fs::create_dir_all(cache)
        .with_context(|| format!("creating the cache directory '{}'", cache.display()))?;
    let work = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(cache)
        .with_context(|| format!("creating a temporary directory in '{}'", cache.display()))?;
    say(&format!(
        "TensorFlow not found; fetching tensorflow-cpu=={TENSORFLOW_VERSION} (about 275 MB) with \
         pip into {} (once; avoid with --no-fetch or --tensorflow-dir DIR)",
        target.display()
    ));
    let mut last_error = String::from("no python3 with pip found");
    let mut downloaded = false;
    for python in pythons {
        let out = Command::new(python)
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
            .args(PIP_TARGET)
            .arg(format!("tensorflow-cpu=={TENSORFLOW_VERSION}"))
            .arg("--dest")
            .arg(work.path())
            .stdin(std::process::Stdio::null())
            .output();
        match out {
            Ok(out) if out.status.success() => {
                downloaded = true;
                break;
            }
            Ok(out) => {
                last_error = format!(
                    "{} -m pip download failed: {}",
                    python.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )
            }
            Err(e) => last_error = format!("cannot run {}: {e}", python.display()),
        }
    }
    if !downloaded {
        bail!(
            "fetching tensorflow-cpu=={TENSORFLOW_VERSION} failed ({last_error}); install it \
             (pip install tensorflow-cpu=={TENSORFLOW_VERSION}) or pass --tensorflow-dir DIR"
        );
    }
    let wheel = work.path().join(WHEEL_FILE);
    let digest = sha256_file(&wheel)?;
    if digest != WHEEL_SHA256 {
        bail!(
            "'{}' has sha256 {digest}, expected {WHEEL_SHA256}: refusing to use it (check your \
             pip index), or pass --tensorflow-dir DIR",
            wheel.display()
        );
    }
    say("checked the wheel's sha256; unpacking libtensorflow");
    let staging = work.path().join("lib");
    std::fs::create_dir_all(&staging)?;
    extract(&wheel, &staging)?;
    // The name the `tensorflow` crates look for, beside the framework library it needs.
    std::os::unix::fs::symlink(WHEEL_LIBRARY, staging.join("libtensorflow.so"))
        .context("linking libtensorflow.so")?;
    match std::fs::rename(&staging, &target) {
        Ok(()) => {}
        // Another smtool finished the same fetch first: use its copy.
        Err(_) if library_in(&target).is_some() => {}
        Err(e) => {
            return Err(e)
                .with_context(|| format!("moving libtensorflow into '{}'", target.display()))
        }
    }
    Ok(target)
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening '{}'", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading '{}'", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn extract(wheel: &Path, into: &Path) -> Result<()> {
    let file =
        std::fs::File::open(wheel).with_context(|| format!("opening '{}'", wheel.display()))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .with_context(|| format!("reading the wheel '{}'", wheel.display()))?;
    for name in [WHEEL_LIBRARY, FRAMEWORK_LIBRARY] {
        let member = format!("tensorflow/{name}");
        let mut entry = archive
            .by_name(&member)
            .with_context(|| format!("the wheel has no '{member}'"))?;
        let dest = into.join(name);
        let mut out = std::fs::File::create(&dest)
            .with_context(|| format!("creating '{}'", dest.display()))?;
        std::io::copy(&mut entry, &mut out).with_context(|| format!("unpacking '{member}'"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_in_wants_the_framework_beside_the_wheel_library() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(library_in(dir.path()), None);
        std::fs::write(dir.path().join(WHEEL_LIBRARY), b"").unwrap();
        assert_eq!(library_in(dir.path()), None);
        std::fs::write(dir.path().join(FRAMEWORK_LIBRARY), b"").unwrap();
        assert_eq!(library_in(dir.path()), Some(dir.path().join(WHEEL_LIBRARY)));
        std::fs::write(dir.path().join("libtensorflow.so"), b"").unwrap();
        assert_eq!(
            library_in(dir.path()),
            Some(dir.path().join("libtensorflow.so"))
        );
    }

    #[test]
    fn explicit_dir_without_library_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let options = LibraryOptions {
            tensorflow_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        let err = locate(&options, &mut |_| {}).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("--tensorflow-dir"), "{text}");
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
    }

    /// A stand-in for `python3 -m pip download` that writes `wheel` (or fails) into --dest.
    fn fake_python(dir: &Path, wheel: Option<&str>) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let script = dir.join("python3");
        let body = match wheel {
            Some(content) => format!(
                "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = --dest ] && dest=$2; shift; done\n\
                 printf '{content}' > \"$dest/{WHEEL_FILE}\"\n"
            ),
            None => {
                "#!/bin/sh\necho 'ERROR: No matching distribution found' >&2\nexit 1\n".to_owned()
            }
        };
        std::fs::write(&script, body).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    fn leftovers(cache: &Path) -> Vec<String> {
        std::fs::read_dir(cache)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn fetch_refuses_a_wheel_with_the_wrong_sha256_and_leaves_nothing() {
        let bin = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let python = fake_python(bin.path(), Some("not a wheel"));
        let err = fetch(cache.path(), [python.as_path()].into_iter(), &mut |_| {}).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("sha256") && text.contains(WHEEL_SHA256),
            "{text}"
        );
        assert!(text.contains("--tensorflow-dir"), "{text}");
        assert_eq!(leftovers(cache.path()), Vec::<String>::new());
    }

    #[test]
    fn fetch_reports_pip_failures() {
        let bin = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let python = fake_python(bin.path(), None);
        let mut said = Vec::new();
        let err = fetch(cache.path(), [python.as_path()].into_iter(), &mut |m| {
            said.push(m.to_owned())
        })
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("No matching distribution found"), "{text}");
        assert!(
            text.contains("pip install tensorflow-cpu==2.21.0"),
            "{text}"
        );
        assert!(said[0].contains("--no-fetch"), "{said:?}");
        assert_eq!(leftovers(cache.path()), Vec::<String>::new());
    }

    /// Downloads the real wheel (275 MB): only with SMTOOL_TEST_FETCH=1.
    #[test]
    fn fetch_unpacks_the_pinned_wheel_and_the_next_start_uses_the_cache() {
        if std::env::var("SMTOOL_TEST_FETCH").as_deref() != Ok("1") {
            eprintln!("skipping: set SMTOOL_TEST_FETCH=1 to download tensorflow-cpu");
            return;
        }
        let cache = tempfile::tempdir().unwrap();
        let dir = fetch(
            cache.path(),
            [Path::new("python3")].into_iter(),
            &mut |_| {},
        )
        .unwrap();
        assert!(dir.join("libtensorflow.so").is_file());
        assert!(dir.join(FRAMEWORK_LIBRARY).is_file());
        let options = LibraryOptions {
            cache_dir: Some(cache.path().to_path_buf()),
            fetch: false,
            ..Default::default()
        };
        assert_eq!(locate(&options, &mut |_| {}).unwrap().source, Source::Cache);
    }

    #[test]
    fn cache_is_used_before_fetching_and_no_fetch_says_what_to_do() {
        let cache = tempfile::tempdir().unwrap();
        let options = LibraryOptions {
            cache_dir: Some(cache.path().to_path_buf()),
            fetch: false,
            ..Default::default()
        };
        let err = format!("{:#}", locate(&options, &mut |_| {}).unwrap_err());
        assert!(
            err.contains("--tensorflow-dir") && err.contains("--no-fetch"),
            "{err}"
        );
        let dir = versioned_cache(cache.path());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("libtensorflow.so"), b"").unwrap();
        let found = locate(&options, &mut |_| {}).unwrap();
        assert_eq!(found.source, Source::Cache);
        assert_eq!(found.library, dir.join("libtensorflow.so"));
    }
}
