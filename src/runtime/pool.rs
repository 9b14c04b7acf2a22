//! A pool of sessions for one model.

use std::sync::{Condvar, Mutex, PoisonError};

use ort::session::Session;

use crate::error::{Error, ErrorKind, Result};
use crate::models::ModelSpec;
use crate::runtime::Runtime;

/// Up to `sessions_per_model` sessions of one verified model.
///
/// `ort`'s `Session::run` takes `&mut self`, so a session serves one inference at a time. The
/// pool hands each caller a session of its own: the lock is held only to take a session out
/// and put it back, never while a model runs. Sessions beyond the first are created on demand
/// from the verified model bytes kept in memory.
pub struct SessionPool {
    spec: ModelSpec,
    model: Vec<u8>,
    runtime: Runtime,
    state: Mutex<PoolState>,
    returned: Condvar,
}

struct PoolState {
    idle: Vec<Session>,
    created: usize,
}

impl std::fmt::Debug for SessionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionPool")
            .field("model", &self.spec.id())
            .finish_non_exhaustive()
    }
}

impl SessionPool {
    /// Verifies the model file's sha256, creates one session and checks its inputs and outputs
    /// against the manifest. Everything that can be wrong with a model shows here, at start.
    pub fn new(
        runtime: &Runtime,
        spec: &ModelSpec,
        model_dir: &std::path::Path,
    ) -> Result<SessionPool> {
        let model = spec.read_verified(model_dir)?;
        let first = create_session(runtime, spec, &model)?;
        check_contract(spec, &first)?;
        Ok(SessionPool {
            spec: spec.clone(),
            model,
            runtime: runtime.clone(),
            state: Mutex::new(PoolState {
                idle: vec![first],
                created: 1,
            }),
            returned: Condvar::new(),
        })
    }

    /// The manifest entry of the pooled model.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Runs `f` with a session of its own, waiting for one if all are busy.
    pub fn with_session<R>(&self, f: impl FnOnce(&mut Session) -> Result<R>) -> Result<R> {
        let mut session = self.checkout()?;
        let result = f(&mut session);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.idle.push(session);
        drop(state);
        self.returned.notify_one();
        result
    }

    /// Runs a model with one input tensor and returns its first output, flattened. `what`
    /// names the task in errors ("face embedding", "liveness").
    pub fn run_first_output<D: ndarray::Dimension + 'static>(
        &self,
        input: &ndarray::Array<f32, D>,
        what: &str,
    ) -> Result<Vec<f32>> {
        let fail = |e: ort::Error| Error::new(ErrorKind::Inference, format!("{what} failed: {e}"));
        self.with_session(|session| {
            let tensor = ort::value::TensorRef::from_array_view(input).map_err(fail)?;
            let outputs = session.run(ort::inputs![tensor]).map_err(fail)?;
            let (_, data) = outputs[0].try_extract_tensor::<f32>().map_err(fail)?;
            Ok(data.to_vec())
        })
    }

    fn checkout(&self) -> Result<Session> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(session) = state.idle.pop() {
                return Ok(session);
            }
            if state.created < self.runtime.sessions_per_model() {
                state.created += 1;
                drop(state);
                // Built outside the lock: creating a session takes tens of milliseconds.
                return create_session(&self.runtime, &self.spec, &self.model).inspect_err(|_| {
                    let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                    state.created -= 1;
                });
            }
            state = self
                .returned
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

fn create_session(runtime: &Runtime, spec: &ModelSpec, model: &[u8]) -> Result<Session> {
    let fail = |e: String| {
        Error::new(
            ErrorKind::Inference,
            format!("cannot create a session for model {:?}: {e}", spec.name),
        )
    };
    Session::builder(runtime.env())
        .map_err(|e| fail(e.to_string()))?
        .with_intra_threads(runtime.intra_threads())
        .map_err(|e| fail(e.to_string()))?
        .with_inter_threads(1)
        .map_err(|e| fail(e.to_string()))?
        // Spinning threads burn the cores that the other sessions need (measured: 62 ms with
        // spinning against 39 ms without for a photo's detect + embed + liveness on 2 cores).
        .with_intra_op_spinning(false)
        .map_err(|e| fail(e.to_string()))?
        .with_inter_op_spinning(false)
        .map_err(|e| fail(e.to_string()))?
        .commit_from_memory(model)
        .map_err(|e| {
            Error::new(
                ErrorKind::ModelContract,
                format!(
                    "model {:?} is not a model ONNX Runtime can load: {e}",
                    spec.name
                ),
            )
        })
}

/// Checks the session's declared inputs and outputs against the manifest: names in order, and
/// each fixed dimension. A dimension the manifest marks `-1` must be dynamic in the model too.
fn check_contract(spec: &ModelSpec, session: &Session) -> Result<()> {
    let sides = [
        ("input", &spec.inputs, session.inputs()),
        ("output", &spec.outputs, session.outputs()),
    ];
    for (side, expected, actual) in sides {
        if expected.len() != actual.len() {
            return Err(contract_error(
                spec,
                format!(
                    "the manifest declares {} {side}s, the model has {}",
                    expected.len(),
                    actual.len()
                ),
            ));
        }
        for (want, have) in expected.iter().zip(actual) {
            if want.name != have.name() {
                return Err(contract_error(
                    spec,
                    format!(
                        "{side} {:?} is called {:?} in the model",
                        want.name,
                        have.name()
                    ),
                ));
            }
            let shape: Vec<i64> = match have.dtype().tensor_shape() {
                Some(shape) => shape.to_vec(),
                None => {
                    return Err(contract_error(
                        spec,
                        format!("{side} {:?} is not a tensor", want.name),
                    ));
                }
            };
            if shape != want.shape {
                return Err(contract_error(
                    spec,
                    format!(
                        "{side} {:?} has shape {shape:?} in the model, the manifest says {:?}",
                        want.name, want.shape
                    ),
                ));
            }
            if have.dtype().tensor_type() != Some(ort::value::TensorElementType::Float32) {
                return Err(contract_error(
                    spec,
                    format!("{side} {:?} is not a float32 tensor", want.name),
                ));
            }
        }
    }
    Ok(())
}

fn contract_error(spec: &ModelSpec, what: String) -> Error {
    Error::new(
        ErrorKind::ModelContract,
        format!("model {:?} does not match its manifest: {what}", spec.name),
    )
}
