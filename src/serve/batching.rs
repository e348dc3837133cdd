//! Server-side batching (`--enable_batching`): concurrent requests to the same signature of
//! the same version are merged along dimension 0 into one session run, whose outputs are split
//! back per request, as TensorFlow Serving's batching session does. Only signatures whose
//! inputs all have a free leading dimension are batched.
//!
//! Requests are grouped by the tensors they feed and fetch, not by shape, as in TF Serving.
//! When the fed tensors of one batch differ in a dimension other than 0, TF Serving's
//! `pad_variable_length_inputs` decides: when set, each request's tensor is padded at the end
//! of every such dimension to the batch's largest size, with that tensor's first element.
//! Outputs are split along dimension 0 only, so a padded request gets its outputs at the
//! padded size.
//!
//! A request never fails because of the others in its batch (TF Serving fails them all): a
//! closed batch is split into groups that can be merged (same dtype and rank for every fed
//! tensor, and the same dimensions beyond 0 unless padding is on), each run on its own, so a
//! request of another shape or dtype runs, and succeeds or fails, alone. Padding has a budget
//! for the whole merged batch ([`MAX_BATCH_BYTES`] of padded tensors, rows added up to an
//! allowed batch size included): a request that would push its group over it starts another
//! group, and one that is over it by itself gets RESOURCE_EXHAUSTED.
//!
//! Scheduling follows TF Serving's basic batch scheduler: a batch is closed when it is full
//! (`max_batch_size`) or `batch_timeout_micros` after its first request; `num_batch_threads`
//! threads run closed batches; at most `max_enqueued_batches` batches wait per signature, and
//! a request that finds the queue full gets RESOURCE_EXHAUSTED.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use super::config::BatchingParameters;
use super::error::{Code, ServeError};
use super::limits::Limits;
use super::metrics::Metrics;
use super::servable::Servable;
use super::tensor::{self, extend, pad_tensor, slice, Tensor, Values};
use crate::proto_ext::dtype_name;

/// What requests must share to be merged: the version, the signature, and the names of the
/// fed and fetched tensors (TF Serving's `TensorSignature`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    servable: usize,
    signature: String,
    feeds: Vec<String>,
    fetches: Vec<String>,
}

/// One request waiting for its batch.
pub struct Task {
    key: Key,
    servable: Arc<Servable>,
    feeds: Vec<Tensor>,
    rows: usize,
    enqueued: Instant,
    reply: Option<mpsc::Sender<Result<Vec<Tensor>, ServeError>>>,
}

struct Open {
    tasks: Vec<Task>,
    rows: usize,
    since: Instant,
}

struct Batch {
    key: Key,
    tasks: Vec<Task>,
}

#[derive(Default)]
struct State {
    open: HashMap<Key, Open>,
    ready: VecDeque<Batch>,
    /// Closed batches not yet started, per key.
    queued: HashMap<Key, usize>,
    stop: bool,
}

struct Shared {
    params: BatchingParameters,
    metrics: Arc<Metrics>,
    /// One request's output budget; a batch gets it once per request (and padded row).
    limits: Limits,
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The batch scheduler of a server and its threads.
pub struct Batcher {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("params", &self.shared.params)
            .finish_non_exhaustive()
    }
}

/// The rows of a request on `signature` whose fed tensors have the leading dimensions
/// `leading`, when the batcher takes it: the signature is batchable and every tensor has the
/// same leading dimension, at least 1.
fn batch_rows(
    servable: &Servable,
    signature: &str,
    mut leading: impl Iterator<Item = Option<i64>>,
) -> Option<usize> {
    if !batchable(servable, signature) {
        return None;
    }
    let rows = leading.next()??;
    if rows < 1 || !leading.all(|d| d == Some(rows)) {
        return None;
    }
    usize::try_from(rows).ok()
}

/// Whether every input of the signature has a known rank of at least 1 and a free (-1)
/// leading dimension.
pub fn batchable(servable: &Servable, signature: &str) -> bool {
    let Some(sig) = servable.meta_graph.signature_def.get(signature) else {
        return false;
    };
    !sig.inputs.is_empty()
        && sig.inputs.values().all(|info| {
            info.tensor_shape
                .as_ref()
                .is_some_and(|s| !s.unknown_rank && s.dim.first().is_some_and(|d| d.size == -1))
        })
}

impl Batcher {
    /// Starts `num_batch_threads` threads.
    pub fn start(params: BatchingParameters, metrics: Arc<Metrics>, limits: Limits) -> Self {
        let shared = Arc::new(Shared {
            params,
            metrics,
            limits,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let threads = (0..shared.params.num_batch_threads)
            .map(|i| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("smtool-batch-{i}"))
                    .spawn(move || worker(&shared))
            })
            .filter_map(Result::ok)
            .collect();
        Batcher { shared, threads }
    }

    /// Refuses a request whose task would be larger than `max_batch_size`, from the leading
    /// dimension of each tensor it feeds (`None` for a scalar or unknown shape) and before any
    /// of them is converted: a request the batcher cannot take costs no more than its shapes.
    pub fn check_task_size(
        &self,
        servable: &Servable,
        signature: &str,
        leading: &[Option<i64>],
    ) -> Result<(), ServeError> {
        match batch_rows(servable, signature, leading.iter().copied()) {
            Some(rows) => self.within_max(rows, leading.len()),
            None => Ok(()),
        }
    }

    /// TF Serving's error for a task over `max_batch_size`; its input sizes (one per fed
    /// tensor) are recorded either way when it is refused.
    fn within_max(&self, rows: usize, feeds: usize) -> Result<(), ServeError> {
        let max = self.shared.params.max_batch_size;
        if rows <= max {
            return Ok(());
        }
        for _ in 0..feeds {
            self.shared.metrics.batch_input(rows);
        }
        Err(ServeError::invalid(format!(
            "Task size {rows} is larger than maximum input batch size {max}"
        )))
    }

    /// The request as a batching task, or `None` when it is not batched (the signature or the
    /// fed tensors have no common free leading dimension).
    pub fn task(
        &self,
        servable: &Arc<Servable>,
        signature: &str,
        feeds: &[(&str, &Tensor)],
        fetches: &[&str],
    ) -> Result<Option<Task>, ServeError> {
        let leading = feeds.iter().map(|(_, t)| t.dims.first().copied());
        let Some(rows) = batch_rows(servable, signature, leading) else {
            return Ok(None);
        };
        self.within_max(rows, feeds.len())?;
        for _ in feeds {
            self.shared.metrics.batch_input(rows);
        }
        let key = Key {
            servable: Arc::as_ptr(servable) as usize,
            signature: signature.to_owned(),
            feeds: feeds.iter().map(|(n, _)| (*n).to_owned()).collect(),
            fetches: fetches.iter().map(|f| (*f).to_owned()).collect(),
        };
        Ok(Some(Task {
            key,
            servable: servable.clone(),
            feeds: feeds.iter().map(|(_, t)| (*t).clone()).collect(),
            rows,
            enqueued: Instant::now(),
            reply: None,
        }))
    }

    /// Queues the task and waits for its share of the batch's outputs.
    pub fn run(&self, mut task: Task) -> Result<Vec<Tensor>, ServeError> {
        let (tx, rx) = mpsc::channel();
        task.reply = Some(tx);
        self.submit(task)?;
        rx.recv().unwrap_or_else(|_| {
            Err(ServeError::new(
                Code::Internal,
                "the batching thread stopped before answering",
            ))
        })
    }

    fn submit(&self, task: Task) -> Result<(), ServeError> {
        let params = &self.shared.params;
        let mut st = self.shared.lock();
        let queued = st.queued.get(&task.key).copied().unwrap_or(0);
        let fits = st
            .open
            .get(&task.key)
            .map(|o| o.rows + task.rows <= params.max_batch_size);
        let full = || {
            ServeError::new(
                Code::ResourceExhausted,
                "The batch scheduling queue to which this task was submitted is full",
            )
        };
        match fits {
            Some(true) => {}
            Some(false) => {
                // Close the open batch and start another.
                if queued + 2 > params.max_enqueued_batches {
                    return Err(full());
                }
                if let Some(open) = st.open.remove(&task.key) {
                    close(&mut st, task.key.clone(), open);
                }
            }
            None => {
                if queued + 1 > params.max_enqueued_batches {
                    return Err(full());
                }
            }
        }
        let key = task.key.clone();
        let open = st.open.entry(key.clone()).or_insert_with(|| Open {
            tasks: Vec::new(),
            rows: 0,
            since: Instant::now(),
        });
        open.rows += task.rows;
        open.tasks.push(task);
        if open.rows >= params.max_batch_size {
            if let Some(open) = st.open.remove(&key) {
                close(&mut st, key, open);
            }
        }
        drop(st);
        self.shared.wake.notify_one();
        Ok(())
    }
}

fn close(st: &mut State, key: Key, open: Open) {
    *st.queued.entry(key.clone()).or_insert(0) += 1;
    st.ready.push_back(Batch {
        key,
        tasks: open.tasks,
    });
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The next batch to run: a closed one, else an open one whose timeout passed; waits for
/// either. `None` once stopped and drained.
fn next_batch(shared: &Shared) -> Option<Batch> {
    let timeout = shared.params.batch_timeout;
    let mut st = shared.lock();
    loop {
        if let Some(batch) = st.ready.pop_front() {
            if let Some(n) = st.queued.get_mut(&batch.key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    st.queued.remove(&batch.key);
                }
            }
            return Some(batch);
        }
        let now = Instant::now();
        let due = st
            .open
            .iter()
            .filter(|(_, o)| st.stop || o.since + timeout <= now)
            .min_by_key(|(_, o)| o.since)
            .map(|(k, _)| k.clone());
        if let Some(key) = due {
            let open = st.open.remove(&key)?;
            return Some(Batch {
                key,
                tasks: open.tasks,
            });
        }
        if st.stop {
            return None;
        }
        let next = st.open.values().map(|o| o.since + timeout).min();
        st = match next {
            Some(at) => {
                shared
                    .wake
                    .wait_timeout(st, at.saturating_duration_since(now))
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
            None => shared.wake.wait(st).unwrap_or_else(|p| p.into_inner()),
        };
    }
}

fn worker(shared: &Shared) {
    while let Some(batch) = next_batch(shared) {
        // A bug in one batch must not take a batch thread away for good: its tasks see their
        // reply channels close and fail, and the thread goes on with the next batch.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| process(shared, batch)));
    }
}

/// The tensors the tasks of a batch feed as `name`, made ready to concatenate: padded to the
/// batch's largest shape when `pad` is set, else checked to agree beyond dimension 0.
fn aligned_feeds<'a>(
    parts: &[&'a Tensor],
    name: &str,
    pad: bool,
) -> Result<Vec<std::borrow::Cow<'a, Tensor>>, ServeError> {
    use std::borrow::Cow;
    let Some(first) = parts.first() else {
        return Ok(Vec::new());
    };
    let rank = first.dims.len();
    let same_rank = parts.iter().all(|t| t.dims.len() == rank);
    if !pad {
        let differ = parts
            .iter()
            .any(|t| !same_rank || t.dims.get(1..) != first.dims.get(1..));
        if differ {
            return Err(ServeError::new(
                Code::FailedPrecondition,
                format!(
                    "Tensors with name '{name}' from different tasks have different shapes and padding is turned off. Set pad_variable_length_inputs to true, or ensure that all tensors with the same name have equal dimensions starting with the first dim."
                ),
            ));
        }
        return Ok(parts.iter().map(|t| Cow::Borrowed(*t)).collect());
    }
    if !same_rank {
        return Err(ServeError::new(
            Code::FailedPrecondition,
            format!(
                "Tensors with name '{name}' from different tasks have different ranks, so they cannot be padded to one shape"
            ),
        ));
    }
    let mut max = vec![0usize; rank];
    for t in parts {
        for (m, &d) in max.iter_mut().zip(&t.dims) {
            *m = (*m).max(d.max(0) as usize);
        }
    }
    parts
        .iter()
        .map(|t| pad_tensor(t, &max).map(Cow::Owned))
        .collect()
}

/// Concatenates the tensors the tasks of a batch feed as `name` along dimension 0 (padding
/// them to one shape when `pad` is set) and pads the result to `target` rows by repeating the
/// first row of the last task's tensor, as TF Serving does.
fn merged_feed(
    parts: &[&Tensor],
    name: &str,
    pad: bool,
    rows: usize,
    target: usize,
) -> Result<Tensor, ServeError> {
    let parts = aligned_feeds(parts, name, pad)?;
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return Err(ServeError::new(Code::Internal, "a batch without requests"));
    };
    let mut values = slice(&first.values, 0, 0);
    for part in &parts {
        if !extend(&mut values, &part.values) {
            return Err(ServeError::new(
                Code::Internal,
                format!(
                    "Tensor concat operation failed: the tensors named '{name}' have different dtypes ({} and {})",
                    dtype_name(first.dtype()),
                    dtype_name(part.dtype())
                ),
            ));
        }
    }
    let row_len = last.dims[1..].iter().product::<i64>().max(0) as usize;
    let pad_row = slice(&last.values, 0, row_len.min(last.values.len()));
    for _ in rows..target {
        extend(&mut values, &pad_row);
    }
    let mut dims = last.dims.clone();
    dims[0] = target as i64;
    Tensor::new(dims, values).ok_or_else(|| {
        ServeError::new(
            Code::Internal,
            format!("the batched tensor '{name}' does not match its shape"),
        )
    })
}

fn reply(task: &Task, result: Result<Vec<Tensor>, ServeError>) {
    if let Some(tx) = &task.reply {
        let _ = tx.send(result);
    }
}

/// What the padded, merged tensors of a batch may hold, all fed tensors together: 1 GiB.
pub const MAX_BATCH_BYTES: usize = 1 << 30;

/// Bytes of one element of a fed tensor in the merged batch (a `TF_TString` for strings,
/// whose contents are counted apart).
fn element_bytes(values: &Values) -> usize {
    match values {
        Values::Float(_) | Values::Int32(_) | Values::UInt32(_) => 4,
        Values::Double(_) | Values::Int64(_) | Values::UInt64(_) => 8,
        Values::UInt8(_) | Values::Int8(_) | Values::Bool(_) => 1,
        Values::Int16(_) | Values::UInt16(_) | Values::Half(_) => 2,
        Values::String(_) => 24,
    }
}

/// One fed tensor of a group of tasks that can be merged: what every task's tensor must
/// share, and what the merged tensor will cost.
#[derive(Debug, Clone)]
struct FeedPlan {
    dtype: i32,
    /// The largest size of each dimension beyond 0.
    dims: Vec<usize>,
    /// A task's tensor has no elements: nothing to pad it with, so no dimension may grow.
    fixed: bool,
    element: usize,
    /// Elements the tasks' tensors hold before padding.
    elements: usize,
    /// Strings: the longest first string of a task (what its padded positions repeat).
    fill: usize,
    /// Strings: the bytes of the last task's first row (what rows added up to an allowed
    /// batch size repeat).
    last_row: usize,
}

impl FeedPlan {
    fn of(t: &Tensor) -> Option<FeedPlan> {
        let dims = t
            .dims
            .get(1..)?
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect::<Option<Vec<_>>>()?;
        let (fill, last_row) = match &t.values {
            Values::String(v) => {
                let row = dims.iter().product::<usize>().min(v.len());
                (
                    v.first().map_or(0, Vec::len),
                    v[..row].iter().map(Vec::len).sum(),
                )
            }
            _ => (0, 0),
        };
        Some(FeedPlan {
            dtype: t.dtype(),
            dims,
            fixed: t.values.is_empty(),
            element: element_bytes(&t.values),
            elements: t.values.len(),
            fill,
            last_row,
        })
    }

    /// The plan with `t` merged in, or `None` when it cannot be.
    fn with(&self, t: &Tensor, pad: bool) -> Option<FeedPlan> {
        let other = FeedPlan::of(t)?;
        if other.dtype != self.dtype || other.dims.len() != self.dims.len() {
            return None;
        }
        if (!pad || self.fixed || other.fixed) && other.dims != self.dims {
            return None;
        }
        Some(FeedPlan {
            dtype: self.dtype,
            dims: self
                .dims
                .iter()
                .zip(&other.dims)
                .map(|(&a, &b)| a.max(b))
                .collect(),
            fixed: self.fixed || other.fixed,
            element: self.element,
            elements: self.elements.checked_add(other.elements)?,
            fill: self.fill.max(other.fill),
            last_row: other.last_row,
        })
    }

    /// Bytes of the merged tensor of `rows` rows padded to `target`; `None` on overflow.
    fn bytes(&self, rows: usize, target: usize) -> Option<usize> {
        let row = self
            .dims
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))?;
        let slots = target.checked_mul(row)?;
        let mut bytes = slots.checked_mul(self.element)?;
        if self.dtype == tensor::dtype::STRING {
            let padded = rows.checked_mul(row)?.saturating_sub(self.elements);
            bytes = bytes.checked_add(padded.checked_mul(self.fill)?)?;
            let added_rows = target.saturating_sub(rows);
            bytes = bytes.checked_add(added_rows.checked_mul(self.last_row)?)?;
        }
        Some(bytes)
    }
}

/// The batch size a group of `rows` rows runs at: the next allowed batch size, if any.
fn target_size(allowed: &[usize], rows: usize) -> usize {
    allowed.iter().copied().find(|&s| s >= rows).unwrap_or(rows)
}

fn within_budget(feeds: &[FeedPlan], rows: usize, target: usize, budget: usize) -> bool {
    feeds
        .iter()
        .try_fold(0usize, |total, f| total.checked_add(f.bytes(rows, target)?))
        .is_some_and(|total| total <= budget)
}

/// Tasks that run in one session run.
#[derive(Debug)]
struct Group {
    tasks: Vec<usize>,
    feeds: Vec<FeedPlan>,
    rows: usize,
}

/// Splits a closed batch into groups that can be merged within `budget`, in arrival order;
/// the tasks that cannot run at all get their error.
fn plan(
    tasks: &[(&[Tensor], usize)],
    pad: bool,
    allowed: &[usize],
    budget: usize,
) -> (Vec<Group>, Vec<(usize, ServeError)>) {
    let mut groups: Vec<Group> = Vec::new();
    let mut refused = Vec::new();
    'tasks: for (i, &(task_feeds, task_rows)) in tasks.iter().enumerate() {
        for group in groups.iter_mut() {
            let merged: Option<Vec<FeedPlan>> = group
                .feeds
                .iter()
                .zip(task_feeds)
                .map(|(plan, t)| plan.with(t, pad))
                .collect();
            let Some(merged) = merged else { continue };
            let rows = group.rows + task_rows;
            if within_budget(&merged, rows, target_size(allowed, rows), budget) {
                group.tasks.push(i);
                group.feeds = merged;
                group.rows = rows;
                continue 'tasks;
            }
        }
        let Some(feeds) = task_feeds
            .iter()
            .map(FeedPlan::of)
            .collect::<Option<Vec<_>>>()
        else {
            refused.push((
                i,
                ServeError::invalid("a batched tensor has a negative dimension"),
            ));
            continue;
        };
        if !within_budget(&feeds, task_rows, target_size(allowed, task_rows), budget) {
            refused.push((
                i,
                ServeError::new(
                    Code::ResourceExhausted,
                    format!(
                        "The request's tensors, padded to the batch size, need more than {MAX_BATCH_BYTES} bytes; send fewer or smaller rows"
                    ),
                ),
            ));
            continue;
        }
        groups.push(Group {
            tasks: vec![i],
            feeds,
            rows: task_rows,
        });
    }
    (groups, refused)
}

fn process(shared: &Shared, batch: Batch) {
    let Batch { key, tasks, .. } = batch;
    let dequeued = Instant::now();
    for t in &tasks {
        shared
            .metrics
            .batch_queued(dequeued.saturating_duration_since(t.enqueued));
    }
    let pad = shared.params.pad_variable_length_inputs;
    let shapes: Vec<(&[Tensor], usize)> =
        tasks.iter().map(|t| (t.feeds.as_slice(), t.rows)).collect();
    let (groups, refused) = plan(
        &shapes,
        pad,
        &shared.params.allowed_batch_sizes,
        MAX_BATCH_BYTES,
    );
    for (i, e) in refused {
        reply(&tasks[i], Err(e));
    }
    for group in groups {
        let members: Vec<&Task> = group.tasks.iter().map(|&i| &tasks[i]).collect();
        run_group(shared, &key, &members, group.rows, pad);
    }
}

/// Merges the tasks of one group into one session run and answers each with its rows.
fn run_group(shared: &Shared, key: &Key, tasks: &[&Task], rows: usize, pad: bool) {
    let Some(servable) = tasks.first().map(|t| t.servable.clone()) else {
        return;
    };
    let target = target_size(&shared.params.allowed_batch_sizes, rows);
    shared
        .metrics
        .batch(&servable.name, &key.signature, rows, target, tasks.len());
    let fail = |e: ServeError| tasks.iter().for_each(|t| reply(t, Err(e.clone())));
    let feeds: Result<Vec<Tensor>, ServeError> = key
        .feeds
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let parts: Vec<&Tensor> = tasks.iter().map(|t| &t.feeds[i]).collect();
            merged_feed(&parts, name, pad, rows, target)
        })
        .collect();
    let feeds = match feeds {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let feed_refs: Vec<(&str, &Tensor)> = key
        .feeds
        .iter()
        .zip(&feeds)
        .map(|(n, t)| (n.as_str(), t))
        .collect();
    let fetches: Vec<&str> = key.fetches.iter().map(String::as_str).collect();
    let started = Instant::now();
    let padding = target.div_ceil(rows.max(1));
    let limits = shared.limits.times(tasks.len().saturating_mul(padding));
    let result = servable.session.run(&feed_refs, &fetches, limits);
    shared
        .metrics
        .session_run(&servable.name, &key.signature, started.elapsed());
    shared.metrics.batch_run();
    let outputs = match result {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    if outputs
        .iter()
        .any(|o| o.dims.first() != Some(&(target as i64)))
    {
        return fail(ServeError::new(
            Code::FailedPrecondition,
            "Batched output tensor's 0th dimension does not equal the sum of the 0th dimension sizes of the input tensors",
        ));
    }
    let mut offset = 0;
    for task in tasks {
        let part = outputs
            .iter()
            .map(|o| {
                let row_len = o.dims[1..].iter().product::<i64>().max(0) as usize;
                let mut dims = o.dims.clone();
                dims[0] = task.rows as i64;
                Tensor {
                    dims,
                    values: slice(&o.values, offset * row_len, (offset + task.rows) * row_len),
                }
            })
            .collect();
        offset += task.rows;
        reply(task, Ok(part));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::tensor::tests::floats;

    #[test]
    fn batches_of_different_shapes_are_padded_or_fail() {
        let a = floats(&[1, 2], &[1.0, 2.0]);
        let b = floats(&[2, 3], &[3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        let merged = merged_feed(&[&a, &b], "x:0", true, 3, 3).unwrap();
        assert_eq!(
            merged,
            floats(&[3, 3], &[1.0, 2.0, 1.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
        );
        // Padded to an allowed batch size with the first row of the last request.
        let merged = merged_feed(&[&a, &b], "x:0", true, 3, 4).unwrap();
        assert_eq!(merged.dims, vec![4, 3]);
        assert_eq!(
            slice(&merged.values, 9, 12),
            Values::Float(vec![3.0, 4.0, 5.0])
        );
        let e = merged_feed(&[&a, &b], "x:0", false, 3, 3).unwrap_err();
        e.assert_is(Code::FailedPrecondition, |m| {
            m.starts_with(
                "Tensors with name 'x:0' from different tasks have different shapes and padding is turned off."
            )
        });
        let c = floats(&[1, 2], &[9.0, 9.0]);
        assert_eq!(
            merged_feed(&[&a, &c], "x:0", false, 2, 2).unwrap(),
            floats(&[2, 2], &[1.0, 2.0, 9.0, 9.0])
        );
    }

    #[test]
    fn unmergeable_requests_form_their_own_groups() {
        let a = floats(&[1, 2], &[1.0, 2.0]);
        let b = floats(&[2, 3], &[3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        let c = floats(&[1, 2], &[9.0, 9.0]);
        let d = Tensor::new(vec![1, 2], Values::Double(vec![1.0, 2.0])).unwrap();
        let tasks: Vec<(&[Tensor], usize)> = vec![
            (std::slice::from_ref(&a), 1),
            (std::slice::from_ref(&b), 2),
            (std::slice::from_ref(&c), 1),
            (std::slice::from_ref(&d), 1),
        ];
        let (groups, refused) = plan(&tasks, false, &[], MAX_BATCH_BYTES);
        assert!(refused.is_empty());
        let members: Vec<Vec<usize>> = groups.iter().map(|g| g.tasks.clone()).collect();
        assert_eq!(members, vec![vec![0, 2], vec![1], vec![3]]);
        // With padding, shapes merge; dtypes still do not.
        let (groups, _) = plan(&tasks, true, &[], MAX_BATCH_BYTES);
        let members: Vec<Vec<usize>> = groups.iter().map(|g| g.tasks.clone()).collect();
        assert_eq!(members, vec![vec![0, 1, 2], vec![3]]);
    }

    #[test]
    fn the_padding_budget_covers_the_whole_merged_batch() {
        // Each request alone is small; padded to the widest row, all of them together are
        // not: 16 rows of 1024 floats is 64 KiB, over a 40 KiB budget.
        let wide = floats(&[1, 1024], &vec![1.0; 1024]);
        let narrow = floats(&[1, 1], &[1.0]);
        let mut tasks: Vec<(&[Tensor], usize)> = vec![(std::slice::from_ref(&wide), 1)];
        for _ in 0..15 {
            tasks.push((std::slice::from_ref(&narrow), 1));
        }
        let budget = 40 << 10;
        let (groups, refused) = plan(&tasks, true, &[], budget);
        assert!(refused.is_empty());
        assert!(groups.len() > 1, "{groups:?}");
        for g in &groups {
            let bytes: usize = g
                .feeds
                .iter()
                .map(|f| f.bytes(g.rows, g.rows).unwrap())
                .sum();
            assert!(bytes <= budget, "{bytes} bytes in {g:?}");
        }
        assert_eq!(groups.iter().map(|g| g.tasks.len()).sum::<usize>(), 16);
        // Rows added up to an allowed batch size count too; a request over the budget by
        // itself is refused alone.
        let (groups, refused) = plan(&tasks[..1], true, &[64], budget);
        assert!(groups.is_empty());
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].1.code, Code::ResourceExhausted);
    }
}
