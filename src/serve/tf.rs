//! The TensorFlow C API, loaded at run time: the only module with `unsafe` code. It holds the
//! binding (the C types and the functions smtool calls, declared by hand) and its safe wrapper:
//! [`TensorFlow`] (the loaded library), [`Session`] (a SavedModel loaded into a session, run
//! with [`Tensor`]s) and the process-wide session registry used at shutdown. A [`Session`] is
//! `Send + Sync`: TensorFlow allows concurrent `Run` calls on one session.
//!
//! Why a hand-declared binding of about thirty symbols rather than the `tensorflow` crate
//! family (`tensorflow`, `tensorflow-sys`):
//! - **Binary `DT_STRING`.** Classify and Regress feed serialized `tf.Example`s, and models
//!   return arbitrary bytes: strings must be fed and read as `TF_TString` bytes, never as
//!   UTF-8 text; here they are byte vectors end to end, and a string tensor's buffer is freed
//!   by TensorFlow's own deallocator when its last reference goes (a queue may keep it).
//! - **Path-based loading.** smtool finds `libtensorflow_cc.so.2` in the PyPI wheel the user
//!   already has (see `serve::library`) and opens that file with `libloading` when `serve`
//!   starts; `tensorflow-sys` links a libtensorflow at build time (or downloads one), so every
//!   smtool build, and every command, would need TensorFlow.
//! - **Load-time symbol errors.** Every symbol is resolved when the library is opened: a
//!   library that lacks one is refused at start-up with its name, not at the first request.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::error::{Code, ServeError};
use super::limits::{Budget, Limits, MAX_RANK};
use super::tensor::{dtype, Tensor, Values};
use crate::proto_ext::split_tensor_name;

/// Opaque C types, only ever behind pointers.
macro_rules! opaque {
    ($($name:ident),*) => {
        $(
            #[repr(C)]
            struct $name([u8; 0]);
        )*
    };
}
opaque!(
    TfStatus,
    TfGraph,
    TfSession,
    TfSessionOptions,
    TfTensor,
    TfOperation,
    TfImportGraphDefOptions
);

#[repr(C)]
struct TfBuffer {
    data: *const c_void,
    length: usize,
    data_deallocator: Option<unsafe extern "C" fn(*mut c_void, usize)>,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct TfOutput {
    oper: *mut TfOperation,
    index: c_int,
}

/// `TF_TString`: 24 bytes, 8-aligned; only touched through the `TF_String*` functions.
#[repr(C)]
struct TfTString([u64; 3]);

macro_rules! api {
    ($($name:ident: fn($($arg:ty),*) $(-> $ret:ty)?;)*) => {
        #[allow(non_snake_case)]
        struct Api {
            $($name: unsafe extern "C" fn($($arg),*) $(-> $ret)?,)*
        }
        impl Api {
            /// # Safety
            /// `lib` must be a libtensorflow whose symbols have these C signatures.
            unsafe fn load(lib: &libloading::Library) -> Result<Api, String> {
                Ok(Api {
                    $($name: *lib
                        .get::<unsafe extern "C" fn($($arg),*) $(-> $ret)?>(
                            concat!(stringify!($name), "\0").as_bytes(),
                        )
                        .map_err(|e| format!("missing symbol {}: {e}", stringify!($name)))?,)*
                })
            }
        }
    };
}

api! {
    TF_Version: fn() -> *const c_char;
    TF_NewStatus: fn() -> *mut TfStatus;
    TF_DeleteStatus: fn(*mut TfStatus);
    TF_GetCode: fn(*const TfStatus) -> c_int;
    TF_Message: fn(*const TfStatus) -> *const c_char;
    TF_NewGraph: fn() -> *mut TfGraph;
    TF_DeleteGraph: fn(*mut TfGraph);
    TF_GraphOperationByName: fn(*mut TfGraph, *const c_char) -> *mut TfOperation;
    TF_OperationNumOutputs: fn(*mut TfOperation) -> c_int;
    TF_NewSessionOptions: fn() -> *mut TfSessionOptions;
    TF_DeleteSessionOptions: fn(*mut TfSessionOptions);
    TF_SetConfig: fn(*mut TfSessionOptions, *const c_void, usize, *mut TfStatus);
    TF_NewBuffer: fn() -> *mut TfBuffer;
    TF_DeleteBuffer: fn(*mut TfBuffer);
    TF_LoadSessionFromSavedModel: fn(
        *const TfSessionOptions,
        *const TfBuffer,
        *const c_char,
        *const *const c_char,
        c_int,
        *mut TfGraph,
        *mut TfBuffer,
        *mut TfStatus
    ) -> *mut TfSession;
    TF_NewImportGraphDefOptions: fn() -> *mut TfImportGraphDefOptions;
    TF_DeleteImportGraphDefOptions: fn(*mut TfImportGraphDefOptions);
    TF_GraphImportGraphDef: fn(
        *mut TfGraph,
        *const TfBuffer,
        *const TfImportGraphDefOptions,
        *mut TfStatus
    );
    TF_NewSession: fn(*mut TfGraph, *const TfSessionOptions, *mut TfStatus) -> *mut TfSession;
    TF_CloseSession: fn(*mut TfSession, *mut TfStatus);
    TF_DeleteSession: fn(*mut TfSession, *mut TfStatus);
    TF_SessionRun: fn(
        *mut TfSession,
        *const TfBuffer,
        *const TfOutput,
        *const *mut TfTensor,
        c_int,
        *const TfOutput,
        *mut *mut TfTensor,
        c_int,
        *const *const TfOperation,
        c_int,
        *mut TfBuffer,
        *mut TfStatus
    );
    TF_AllocateTensor: fn(c_int, *const i64, c_int, usize) -> *mut TfTensor;
    TF_NewTensor: fn(
        c_int,
        *const i64,
        c_int,
        *mut c_void,
        usize,
        Option<unsafe extern "C" fn(*mut c_void, usize, *mut c_void)>,
        *mut c_void
    ) -> *mut TfTensor;
    TF_DeleteTensor: fn(*mut TfTensor);
    TF_TensorType: fn(*const TfTensor) -> c_int;
    TF_NumDims: fn(*const TfTensor) -> c_int;
    TF_Dim: fn(*const TfTensor, c_int) -> i64;
    TF_TensorByteSize: fn(*const TfTensor) -> usize;
    TF_TensorData: fn(*const TfTensor) -> *mut c_void;
    TF_StringInit: fn(*mut TfTString);
    TF_StringCopy: fn(*mut TfTString, *const c_char, usize);
    TF_StringGetDataPointer: fn(*const TfTString) -> *const c_char;
    TF_StringGetSize: fn(*const TfTString) -> usize;
    TF_StringDealloc: fn(*mut TfTString);
}

/// A loaded libtensorflow. Only one can be loaded per process; it stays loaded until exit.
pub struct TensorFlow {
    api: Api,
    path: PathBuf,
    // Keeps the library mapped; never unloaded (TensorFlow does not support unloading).
    _lib: libloading::Library,
}

static LOADED: OnceLock<TensorFlow> = OnceLock::new();
static LOAD_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What went wrong opening a libtensorflow.
#[derive(Debug, thiserror::Error)]
#[error("cannot load TensorFlow from '{}': {message}", path.display())]
pub struct LoadError {
    pub path: PathBuf,
    pub message: String,
    /// What TensorFlow printed on stderr while loading.
    pub stderr: String,
}

impl TensorFlow {
    /// Opens the libtensorflow at `path` (a file exporting the C API, such as `libtensorflow.so`
    /// or the Python wheel's `libtensorflow_cc.so.2`). A process loads TensorFlow once: later
    /// calls return the library already loaded, whatever their path.
    ///
    /// TensorFlow's own start-up messages on stderr are captured and returned as the second
    /// value (and in [`LoadError::stderr`] on failure), so callers decide whether to show them.
    pub fn load(path: &Path) -> Result<(&'static TensorFlow, String), LoadError> {
        if let Some(tf) = LOADED.get() {
            return Ok((tf, String::new()));
        }
        let _guard = LOAD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tf) = LOADED.get() {
            return Ok((tf, String::new()));
        }
        let (result, stderr) = capture_stderr(|| {
            // SAFETY: loading a shared library runs its initialisers; libtensorflow's are
            // designed to run at load time. The symbols are checked against the C API below.
            let lib = unsafe { libloading::Library::new(path) }.map_err(|e| e.to_string())?;
            // SAFETY: the signatures in `api!` are TensorFlow's C API (tensorflow/c/c_api.h).
            let api = unsafe { Api::load(&lib) }?;
            Ok::<_, String>(TensorFlow {
                api,
                path: path.to_path_buf(),
                _lib: lib,
            })
        });
        match result {
            Ok(tf) => Ok((LOADED.get_or_init(|| tf), stderr)),
            Err(message) => Err(LoadError {
                path: path.to_path_buf(),
                message,
                stderr,
            }),
        }
    }

    /// The library loaded in this process, if any.
    pub fn loaded() -> Option<&'static TensorFlow> {
        LOADED.get()
    }

    /// `TF_Version()`, e.g. `2.21.0`.
    pub fn version(&self) -> String {
        // SAFETY: TF_Version returns a static NUL-terminated string.
        unsafe { CStr::from_ptr((self.api.TF_Version)()) }
            .to_string_lossy()
            .into_owned()
    }

    /// The file this library was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Runs `f` with file descriptor 2 redirected into a temporary file; returns what was written.
/// If redirecting is impossible, `f` runs with stderr untouched. Fd 2 is restored even when `f`
/// panics.
fn capture_stderr<R>(f: impl FnOnce() -> R) -> (R, String) {
    use std::io::{Read, Seek};
    use std::os::fd::AsRawFd;
    let Ok(mut file) = tempfile::tempfile() else {
        return (f(), String::new());
    };
    let Some(redirect) = Redirect::stderr_to(file.as_raw_fd()) else {
        return (f(), String::new());
    };
    let result = f();
    drop(redirect);
    let mut text = String::new();
    if file.rewind().is_ok() {
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_ok() {
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    (result, text)
}

/// Fd 2 pointed elsewhere; the original is put back on drop (also while unwinding a panic).
struct Redirect {
    saved: c_int,
}

impl Redirect {
    fn stderr_to(fd: c_int) -> Option<Redirect> {
        // SAFETY: dup/dup2/close on descriptors this function owns or that are valid for the
        // call; the saved copy of fd 2 is owned by the guard and closed once.
        unsafe {
            let saved = libc::dup(2);
            if saved < 0 {
                return None;
            }
            if libc::dup2(fd, 2) < 0 {
                libc::close(saved);
                return None;
            }
            Some(Redirect { saved })
        }
    }
}

impl Drop for Redirect {
    fn drop(&mut self) {
        // SAFETY: `saved` is the guard's own duplicate of the original fd 2.
        unsafe {
            libc::dup2(self.saved, 2);
            libc::close(self.saved);
        }
    }
}

/// Owns a `TF_Status`.
struct StatusBox<'a> {
    api: &'a Api,
    ptr: *mut TfStatus,
}

impl<'a> StatusBox<'a> {
    fn new(api: &'a Api) -> Self {
        // SAFETY: TF_NewStatus has no preconditions.
        StatusBox {
            api,
            ptr: unsafe { (api.TF_NewStatus)() },
        }
    }

    fn check(&self) -> Result<(), ServeError> {
        // SAFETY: `ptr` is a live TF_Status; the message is valid until the next use of it.
        unsafe {
            let code = (self.api.TF_GetCode)(self.ptr);
            if code == 0 {
                return Ok(());
            }
            let message = CStr::from_ptr((self.api.TF_Message)(self.ptr))
                .to_string_lossy()
                .into_owned();
            Err(ServeError::from_code(code, message))
        }
    }
}

impl Drop for StatusBox<'_> {
    fn drop(&mut self) {
        // SAFETY: created by TF_NewStatus, deleted once.
        unsafe { (self.api.TF_DeleteStatus)(self.ptr) }
    }
}

/// Copies a plain-old-data slice into a freshly allocated TF_Tensor.
///
/// # Safety
/// `T` must be the C layout of `dtype`'s elements.
unsafe fn pod_tensor<T: Copy>(api: &Api, dtype: i32, dims: &[i64], data: &[T]) -> *mut TfTensor {
    let bytes = std::mem::size_of_val(data);
    let t = (api.TF_AllocateTensor)(dtype, dims.as_ptr(), dims.len() as c_int, bytes);
    if !t.is_null() && bytes > 0 {
        std::ptr::copy_nonoverlapping(
            data.as_ptr() as *const u8,
            (api.TF_TensorData)(t) as *mut u8,
            bytes,
        );
    }
    t
}

/// Refuses a tensor of `bytes` bytes too small for `n` elements of `size` bytes.
fn holds(n: usize, size: usize, bytes: usize) -> Result<(), ServeError> {
    if n.checked_mul(size).is_none_or(|need| bytes < need) {
        Err(ServeError::new(
            Code::Internal,
            "TensorFlow returned a tensor smaller than its shape",
        ))
    } else {
        Ok(())
    }
}

/// Reads `n` elements of `T` from a TF_Tensor's buffer, once it is known to hold them.
///
/// # Safety
/// `t` must be a live tensor of elements of type `T`.
unsafe fn pod_values<T: Copy>(
    api: &Api,
    t: *const TfTensor,
    n: usize,
) -> Result<Vec<T>, ServeError> {
    holds(n, std::mem::size_of::<T>(), (api.TF_TensorByteSize)(t))?;
    let mut out = Vec::<T>::with_capacity(n);
    if n > 0 {
        std::ptr::copy_nonoverlapping(
            (api.TF_TensorData)(t) as *const u8,
            out.as_mut_ptr() as *mut u8,
            n * std::mem::size_of::<T>(),
        );
        out.set_len(n);
    }
    Ok(out)
}

/// One reference to a TF_Tensor. TensorFlow may keep its buffer alive longer (a queue or an
/// output that aliases a fed tensor holds it): the buffer, and the strings in it, are freed by
/// its deallocator when the last reference goes, whoever holds it.
struct OwnedTensor<'a> {
    api: &'a Api,
    ptr: *mut TfTensor,
}

impl<'a> OwnedTensor<'a> {
    fn from_tensor(api: &'static Api, tensor: &Tensor) -> Result<Self, ServeError> {
        let dims = &tensor.dims;
        // TensorFlow trusts dims to describe the buffer: never hand it a mismatch, nor a rank
        // it aborts on.
        let elements = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(usize::try_from(d).ok()?));
        if elements != Some(tensor.values.len()) || dims.len() > MAX_RANK {
            return Err(ServeError::new(
                Code::InvalidArgument,
                format!(
                    "tensor of shape {dims:?} cannot hold {} values",
                    tensor.values.len()
                ),
            ));
        }
        // SAFETY: each arm copies a slice of the matching C element type.
        let ptr = unsafe {
            match &tensor.values {
                Values::Float(v) => pod_tensor(api, dtype::FLOAT, dims, v),
                Values::Double(v) => pod_tensor(api, dtype::DOUBLE, dims, v),
                Values::Int32(v) => pod_tensor(api, dtype::INT32, dims, v),
                Values::UInt8(v) => pod_tensor(api, dtype::UINT8, dims, v),
                Values::Int16(v) => pod_tensor(api, dtype::INT16, dims, v),
                Values::Int8(v) => pod_tensor(api, dtype::INT8, dims, v),
                Values::Int64(v) => pod_tensor(api, dtype::INT64, dims, v),
                Values::Bool(v) => {
                    let bytes: Vec<u8> = v.iter().map(|&b| u8::from(b)).collect();
                    pod_tensor(api, dtype::BOOL, dims, &bytes)
                }
                Values::UInt16(v) => pod_tensor(api, dtype::UINT16, dims, v),
                Values::Half(v) => pod_tensor(api, dtype::HALF, dims, v),
                Values::UInt32(v) => pod_tensor(api, dtype::UINT32, dims, v),
                Values::UInt64(v) => pod_tensor(api, dtype::UINT64, dims, v),
                Values::String(v) => string_tensor(api, dims, v)?,
            }
        };
        if ptr.is_null() {
            return Err(ServeError::new(
                Code::Internal,
                "TensorFlow could not allocate an input tensor",
            ));
        }
        Ok(OwnedTensor { api, ptr })
    }

    /// Wraps a tensor TensorFlow returned.
    fn adopt(api: &'a Api, ptr: *mut TfTensor) -> Self {
        OwnedTensor { api, ptr }
    }

    /// Copies the tensor out, once `budget` has room for it (else RESOURCE_EXHAUSTED, and
    /// nothing is copied).
    fn to_tensor(&self, name: &str, budget: &mut Budget) -> Result<Tensor, ServeError> {
        let api = self.api;
        let t = self.ptr;
        // SAFETY: `t` is a live tensor; element counts come from its own dims and byte size.
        unsafe {
            let rank = (api.TF_NumDims)(t);
            let dims: Vec<i64> = (0..rank).map(|i| (api.TF_Dim)(t, i)).collect();
            let dtype = (api.TF_TensorType)(t);
            let bytes = (api.TF_TensorByteSize)(t);
            let strings = if dtype == dtype::STRING {
                let count = bytes / std::mem::size_of::<TfTString>();
                let base = (api.TF_TensorData)(t) as *const TfTString;
                (0..count)
                    .map(|i| (api.TF_StringGetSize)(base.add(i)) as u64)
                    .fold(0u64, u64::saturating_add)
            } else {
                0
            };
            let n = budget.output(name, &dims, strings)?;
            let values = match dtype {
                dtype::FLOAT => Values::Float(pod_values(api, t, n)?),
                dtype::DOUBLE => Values::Double(pod_values(api, t, n)?),
                dtype::INT32 => Values::Int32(pod_values(api, t, n)?),
                dtype::UINT8 => Values::UInt8(pod_values(api, t, n)?),
                dtype::INT16 => Values::Int16(pod_values(api, t, n)?),
                dtype::INT8 => Values::Int8(pod_values(api, t, n)?),
                dtype::INT64 => Values::Int64(pod_values(api, t, n)?),
                dtype::BOOL => {
                    let raw: Vec<u8> = pod_values(api, t, n)?;
                    Values::Bool(raw.into_iter().map(|b| b != 0).collect())
                }
                dtype::UINT16 => Values::UInt16(pod_values(api, t, n)?),
                dtype::HALF => Values::Half(pod_values(api, t, n)?),
                dtype::UINT32 => Values::UInt32(pod_values(api, t, n)?),
                dtype::UINT64 => Values::UInt64(pod_values(api, t, n)?),
                dtype::STRING => {
                    holds(n, std::mem::size_of::<TfTString>(), bytes)?;
                    let base = (api.TF_TensorData)(t) as *const TfTString;
                    let mut out = Vec::with_capacity(n);
                    for i in 0..n {
                        let s = base.add(i);
                        let len = (api.TF_StringGetSize)(s);
                        let data = (api.TF_StringGetDataPointer)(s) as *const u8;
                        out.push(if len == 0 {
                            Vec::new()
                        } else {
                            std::slice::from_raw_parts(data, len).to_vec()
                        });
                    }
                    Values::String(out)
                }
                other => {
                    return Err(ServeError::new(
                        Code::InvalidArgument,
                        format!(
                            "output tensors of type {} are not supported",
                            crate::proto_ext::dtype_name(other)
                        ),
                    ))
                }
            };
            Ok(Tensor { dims, values })
        }
    }
}

impl Drop for OwnedTensor<'_> {
    fn drop(&mut self) {
        // SAFETY: the tensor is a live reference, released once.
        unsafe { (self.api.TF_DeleteTensor)(self.ptr) }
    }
}

/// The alignment TensorFlow wants of tensor buffers (`EIGEN_MAX_ALIGN_BYTES`).
const TENSOR_ALIGN: usize = 64;

fn string_buffer_layout(len: usize) -> Option<std::alloc::Layout> {
    std::alloc::Layout::from_size_align(len.max(1), TENSOR_ALIGN).ok()
}

/// A DT_STRING tensor whose buffer belongs to the tensor: `TF_NewTensor` with a deallocator
/// that frees each `TF_TString` and then the buffer, called by TensorFlow when the last
/// reference to the buffer goes. (`TF_AllocateTensor`'s buffer does not free the strings, and
/// freeing them when our reference goes would leave a queue or an aliasing output pointing
/// at freed memory.)
///
/// # Safety
/// `api` must be TensorFlow's C API.
unsafe fn string_tensor(
    api: &'static Api,
    dims: &[i64],
    values: &[Vec<u8>],
) -> Result<*mut TfTensor, ServeError> {
    let too_large = || ServeError::new(Code::InvalidArgument, "string tensor is too large");
    let len = values
        .len()
        .checked_mul(std::mem::size_of::<TfTString>())
        .ok_or_else(too_large)?;
    let layout = string_buffer_layout(len).ok_or_else(too_large)?;
    let base = std::alloc::alloc(layout) as *mut TfTString;
    if base.is_null() {
        return Err(ServeError::new(
            Code::Internal,
            "cannot allocate memory for an input tensor",
        ));
    }
    for (i, s) in values.iter().enumerate() {
        let slot = base.add(i);
        (api.TF_StringInit)(slot);
        (api.TF_StringCopy)(slot, s.as_ptr() as *const c_char, s.len());
    }
    // From here TensorFlow owns the buffer: on failure TF_NewTensor has already called the
    // deallocator.
    Ok((api.TF_NewTensor)(
        dtype::STRING,
        dims.as_ptr(),
        dims.len() as c_int,
        base as *mut c_void,
        len,
        Some(free_string_buffer),
        api as *const Api as *mut c_void,
    ))
}

/// The deallocator of [`string_tensor`]'s buffers; `arg` is the `'static` [`Api`].
unsafe extern "C" fn free_string_buffer(data: *mut c_void, len: usize, arg: *mut c_void) {
    let api = &*(arg as *const Api);
    let base = data as *mut TfTString;
    for i in 0..len / std::mem::size_of::<TfTString>() {
        (api.TF_StringDealloc)(base.add(i));
    }
    if let Some(layout) = string_buffer_layout(len) {
        std::alloc::dealloc(data as *mut u8, layout);
    }
}

/// The sessions alive in this process (their `TF_Session` addresses), for
/// [`close_all_sessions`]. A session leaves it before it is deleted.
static OPEN_SESSIONS: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

fn open_sessions() -> std::sync::MutexGuard<'static, Vec<usize>> {
    OPEN_SESSIONS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Closes every session of the process (`TF_CloseSession`): their runs in progress are
/// cancelled where TensorFlow can cancel them (between ops), and later runs fail at once.
/// For a shutdown whose requests in flight outlived their deadline.
pub fn close_all_sessions() {
    let Some(tf) = LOADED.get() else { return };
    let open = open_sessions();
    let status = StatusBox::new(&tf.api);
    for &session in open.iter() {
        // SAFETY: sessions in the list are live (Drop removes them, under this lock, before
        // deleting them); closing is thread-safe and may be repeated.
        unsafe { (tf.api.TF_CloseSession)(session as *mut TfSession, status.ptr) };
    }
}

/// Ends the process as `signal`'s default action does (for a SIGINT or SIGTERM that comes
/// before the server is up: nothing to finish, and TensorFlow may be half loaded).
pub fn die_by_signal(signal: i32) -> ! {
    // SAFETY: resetting a signal to its default action and raising it; `_exit` if the
    // default action somehow does not end the process.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
        libc::_exit(128 + signal)
    }
}

/// Ends the process now, without running exit handlers or destructors: for a shutdown whose
/// requests are stuck inside TensorFlow, whose threads must not see its statics destroyed.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` has no preconditions.
    unsafe { libc::_exit(code) }
}

/// A SavedModel loaded into a TensorFlow session.
pub struct Session {
    tf: &'static TensorFlow,
    session: *mut TfSession,
    graph: *mut TfGraph,
}

// SAFETY: TF_Session and TF_Graph are thread-safe for concurrent TF_SessionRun and
// TF_GraphOperationByName (TensorFlow guards the graph with a mutex); the pointers are only
// freed in Drop, which needs exclusive ownership.
unsafe impl Send for Session {}
unsafe impl Sync for Session {}

thread_local! {
    /// The time limit of the session runs made on this thread, from the request being
    /// handled (see [`with_run_timeout`]).
    static RUN_TIMEOUT_MS: std::cell::Cell<Option<i64>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with every session run it makes on this thread limited to `ms` milliseconds
/// (TensorFlow's `RunOptions.timeout_in_ms`; a run past it fails with DEADLINE_EXCEEDED), as
/// TF Serving limits a REST request's runs by `--rest_api_timeout_in_ms`. The limit travels
/// with the thread so the request layers between the transport and the session need not carry
/// it; `ms <= 0` sets none.
pub fn with_run_timeout<R>(ms: i64, f: impl FnOnce() -> R) -> R {
    /// Puts the previous limit back, also when `f` panics.
    struct Restore(Option<i64>);
    impl Drop for Restore {
        fn drop(&mut self) {
            RUN_TIMEOUT_MS.with(|t| t.set(self.0));
        }
    }
    let _restore = Restore(RUN_TIMEOUT_MS.with(|t| t.replace((ms > 0).then_some(ms))));
    f()
}

impl Session {
    /// Loads the meta graph with exactly `tags` from the SavedModel at `dir`, restoring its
    /// variables and running its init op. Returns the session and the serialized
    /// `MetaGraphDef` TensorFlow loaded. `config` is a serialized `ConfigProto` (empty for
    /// TensorFlow's defaults).
    pub fn load(
        tf: &'static TensorFlow,
        dir: &Path,
        tags: &[&str],
        config: &[u8],
    ) -> Result<(Session, Vec<u8>), ServeError> {
        let api = &tf.api;
        let dir_c = CString::new(dir.as_os_str().as_encoded_bytes())
            .map_err(|_| ServeError::new(Code::InvalidArgument, "path contains a NUL byte"))?;
        let tags_c: Vec<CString> = tags
            .iter()
            .map(|t| CString::new(*t))
            .collect::<Result<_, _>>()
            .map_err(|_| ServeError::new(Code::InvalidArgument, "tag contains a NUL byte"))?;
        let tag_ptrs: Vec<*const c_char> = tags_c.iter().map(|t| t.as_ptr()).collect();
        let status = StatusBox::new(api);
        // SAFETY: all pointers are live for the call; the graph, options and buffer are freed
        // below (the graph by Session's Drop or here on failure).
        unsafe {
            let options = (api.TF_NewSessionOptions)();
            if !config.is_empty() {
                (api.TF_SetConfig)(
                    options,
                    config.as_ptr() as *const c_void,
                    config.len(),
                    status.ptr,
                );
                if let Err(e) = status.check() {
                    (api.TF_DeleteSessionOptions)(options);
                    return Err(e);
                }
            }
            let graph = (api.TF_NewGraph)();
            let meta = (api.TF_NewBuffer)();
            let session = (api.TF_LoadSessionFromSavedModel)(
                options,
                std::ptr::null(),
                dir_c.as_ptr(),
                tag_ptrs.as_ptr(),
                tag_ptrs.len() as c_int,
                graph,
                meta,
                status.ptr,
            );
            (api.TF_DeleteSessionOptions)(options);
            let meta_bytes = if (*meta).data.is_null() || (*meta).length == 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts((*meta).data as *const u8, (*meta).length).to_vec()
            };
            (api.TF_DeleteBuffer)(meta);
            Ok((Session::created(tf, session, graph, &status)?, meta_bytes))
        }
    }

    /// Takes the session TensorFlow just created on `graph`, or on failure (`status`, the
    /// creation's) frees what there is of it and the graph.
    ///
    /// # Safety
    /// `graph` is a live graph; `session` is null or a live session on it, not yet owned.
    unsafe fn created(
        tf: &'static TensorFlow,
        session: *mut TfSession,
        graph: *mut TfGraph,
        status: &StatusBox<'_>,
    ) -> Result<Session, ServeError> {
        let api = &tf.api;
        if let Err(e) = status.check() {
            if !session.is_null() {
                (api.TF_DeleteSession)(session, status.ptr);
            }
            (api.TF_DeleteGraph)(graph);
            return Err(e);
        }
        open_sessions().push(session as usize);
        Ok(Session { tf, session, graph })
    }

    /// A session on a serialized `GraphDef` (no variables: a graph of ops only, such as
    /// smtool's own image decoding), with TensorFlow's default options.
    pub fn from_graph_def(
        tf: &'static TensorFlow,
        graph_def: &[u8],
    ) -> Result<Session, ServeError> {
        let api = &tf.api;
        let status = StatusBox::new(api);
        let buffer = TfBuffer {
            data: graph_def.as_ptr() as *const c_void,
            length: graph_def.len(),
            data_deallocator: None,
        };
        // SAFETY: the buffer borrows `graph_def`, alive for the call, and has no deallocator;
        // the graph is freed by Session's Drop or here on failure; options are freed once.
        unsafe {
            let graph = (api.TF_NewGraph)();
            let import = (api.TF_NewImportGraphDefOptions)();
            (api.TF_GraphImportGraphDef)(graph, &buffer, import, status.ptr);
            (api.TF_DeleteImportGraphDefOptions)(import);
            if let Err(e) = status.check() {
                (api.TF_DeleteGraph)(graph);
                return Err(e);
            }
            let options = (api.TF_NewSessionOptions)();
            let session = (api.TF_NewSession)(graph, options, status.ptr);
            (api.TF_DeleteSessionOptions)(options);
            Session::created(tf, session, graph, &status)
        }
    }

    fn output(&self, name: &str) -> Result<TfOutput, ServeError> {
        let api = &self.tf.api;
        let (node, index) = split_tensor_name(name);
        let node_c = CString::new(node).map_err(|_| {
            ServeError::new(Code::InvalidArgument, "tensor name contains a NUL byte")
        })?;
        // SAFETY: the graph lives as long as self.
        let oper = unsafe { (api.TF_GraphOperationByName)(self.graph, node_c.as_ptr()) };
        let outputs = if oper.is_null() {
            0
        } else {
            // SAFETY: `oper` belongs to the live graph.
            unsafe { (api.TF_OperationNumOutputs)(oper) }
        };
        if oper.is_null() || index as i64 >= outputs as i64 {
            return Err(ServeError::new(
                Code::NotFound,
                format!("Tensor {name}, specified in either feed_devices or fetch_devices was not in the Graph"),
            ));
        }
        Ok(TfOutput {
            oper,
            index: index as c_int,
        })
    }

    /// Runs the graph: feeds tensors by tensor name (`x:0`), returns the fetched tensors in
    /// the order of `fetches`.
    /// Outputs beyond `limits` (all together) are refused with RESOURCE_EXHAUSTED before they
    /// are copied.
    pub fn run(
        &self,
        feeds: &[(&str, &Tensor)],
        fetches: &[&str],
        limits: Limits,
    ) -> Result<Vec<Tensor>, ServeError> {
        let api: &'static Api = &self.tf.api;
        let mut inputs = Vec::with_capacity(feeds.len());
        let mut input_tensors = Vec::with_capacity(feeds.len());
        for (name, tensor) in feeds {
            inputs.push(self.output(name)?);
            input_tensors.push(OwnedTensor::from_tensor(api, tensor)?);
        }
        let outputs: Vec<TfOutput> = fetches
            .iter()
            .map(|name| self.output(name))
            .collect::<Result<_, _>>()?;
        let input_ptrs: Vec<*mut TfTensor> = input_tensors.iter().map(|t| t.ptr).collect();
        let mut output_ptrs: Vec<*mut TfTensor> = vec![std::ptr::null_mut(); outputs.len()];
        let status = StatusBox::new(api);
        let run_options = RUN_TIMEOUT_MS.with(std::cell::Cell::get).map(|ms| {
            prost::Message::encode_to_vec(&crate::proto::tensorflow::RunOptions {
                timeout_in_ms: ms,
                ..Default::default()
            })
        });
        let run_options_buffer = run_options.as_ref().map(|bytes| TfBuffer {
            data: bytes.as_ptr() as *const c_void,
            length: bytes.len(),
            data_deallocator: None,
        });
        // SAFETY: arrays have the lengths passed; outputs are written by TensorFlow and owned
        // (then deleted) by OwnedTensor below; the run options buffer borrows `run_options`,
        // alive for the call, and has no deallocator.
        unsafe {
            (api.TF_SessionRun)(
                self.session,
                run_options_buffer
                    .as_ref()
                    .map_or(std::ptr::null(), |b| b as *const TfBuffer),
                inputs.as_ptr(),
                input_ptrs.as_ptr(),
                inputs.len() as c_int,
                outputs.as_ptr(),
                output_ptrs.as_mut_ptr(),
                outputs.len() as c_int,
                std::ptr::null(),
                0,
                std::ptr::null_mut(),
                status.ptr,
            );
        }
        let owned: Vec<OwnedTensor> = output_ptrs
            .into_iter()
            .filter(|p| !p.is_null())
            .map(|p| OwnedTensor::adopt(api, p))
            .collect();
        status.check()?;
        if owned.len() != fetches.len() {
            return Err(ServeError::new(
                Code::Internal,
                "TensorFlow returned fewer outputs than requested",
            ));
        }
        let mut budget = limits.budget();
        let result = owned
            .iter()
            .zip(fetches)
            .map(|(t, name)| t.to_tensor(name, &mut budget))
            .collect();
        result
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let api = &self.tf.api;
        let status = StatusBox::new(api);
        open_sessions().retain(|&s| s != self.session as usize);
        // SAFETY: exclusive ownership, and out of OPEN_SESSIONS; close, delete, then free the
        // graph, each once.
        unsafe {
            (api.TF_CloseSession)(self.session, status.ptr);
            (api.TF_DeleteSession)(self.session, status.ptr);
            (api.TF_DeleteGraph)(self.graph);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tstring_layout_matches_the_c_api() {
        assert_eq!(std::mem::size_of::<TfTString>(), 24);
        assert_eq!(std::mem::align_of::<TfTString>(), 8);
    }

    /// Fd 2 itself (not the test harness's captured `eprint!`).
    fn fd2() -> std::fs::File {
        use std::os::fd::AsFd;
        let fd = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .expect("dup fd 2");
        std::fs::File::from(fd)
    }

    /// The file fd 2 points at, as (device, inode).
    fn stderr_identity() -> (u64, u64) {
        use std::os::unix::fs::MetadataExt;
        let meta = fd2().metadata().expect("fstat fd 2");
        (meta.dev(), meta.ino())
    }

    #[test]
    fn stderr_is_restored_when_the_captured_code_panics() {
        let before = stderr_identity();
        let (inside, text) = capture_stderr(|| {
            std::io::Write::write_all(&mut fd2(), b"captured").expect("write fd 2");
            stderr_identity()
        });
        assert_ne!(inside, before, "fd 2 was redirected");
        assert_eq!(text, "captured");
        let caught =
            std::panic::catch_unwind(|| capture_stderr(|| -> () { panic!("inside the capture") }));
        assert!(caught.is_err());
        assert_eq!(stderr_identity(), before, "fd 2 restored after the panic");
    }

    /// `unsafe` lives in this module only: no other source file may lift the crate's
    /// `deny(unsafe_code)` or contain an `unsafe` block.
    #[test]
    fn unsafe_code_is_confined_to_this_module() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("lib.rs");
        assert!(lib.contains("#![deny(unsafe_code)]"));
        let mut offenders = Vec::new();
        for entry in walkdir::WalkDir::new(root.join("src")) {
            let entry = entry.expect("walk src");
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("serve/tf.rs") {
                continue;
            }
            let text = std::fs::read_to_string(path).expect("read source");
            let allows = text.matches("allow(unsafe_code)").count();
            let expected = usize::from(path.ends_with("serve/mod.rs"));
            let blocks = text.matches("unsafe {").count() + text.matches("unsafe fn").count();
            if allows != expected || blocks > 0 {
                offenders.push(path.display().to_string());
            }
        }
        assert!(
            offenders.is_empty(),
            "unsafe code outside serve/tf.rs: {offenders:?}"
        );
        let serve = std::fs::read_to_string(root.join("src/serve/mod.rs")).expect("mod.rs");
        assert!(serve.contains("#[allow(unsafe_code)]\npub mod tf;"));
    }
}
