//! [`Sandbox`]: the one entry point for both tools, over either wall.

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use codemode_spec::Graph;

use crate::clock::Clock;
use crate::engine::Completion;
use crate::inproc::{InProcBridge, ThreadPool};
use crate::spec_view::{NamedSpec, SpecBytes};
use crate::wire::WireOutcome;
use crate::{runner, ErrorKind, ExecuteEnv, Host, Limits, Outcome, ScriptError, SyncHost};

/// Where the JavaScript runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// Pre-started worker processes, locked down with seccomp-bpf and
    /// rlimits, killed at the deadline (Linux).
    Process,
    /// Host threads: no process wall. For platforms without seccomp.
    InProcess,
}

impl Isolation {
    /// The strongest wall this platform has.
    pub fn default_for_platform() -> Isolation {
        if cfg!(target_os = "linux") {
            Isolation::Process
        } else {
            Isolation::InProcess
        }
    }
}

impl std::fmt::Display for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Isolation::Process => "process",
            Isolation::InProcess => "in-process",
        })
    }
}

impl std::str::FromStr for Isolation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "process" => Ok(Isolation::Process),
            "in-process" => Ok(Isolation::InProcess),
            other => Err(format!("unknown isolation `{other}`: use `process` or `in-process`")),
        }
    }
}

/// How to start a sandbox worker process: a program whose `main` calls
/// [`crate::worker::main`] (the `codemode` binary runs itself with a hidden
/// argument).
#[derive(Clone, Debug)]
pub struct WorkerCommand {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

/// Everything [`Sandbox::start`] needs besides the specs.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Which wall.
    pub isolation: Isolation,
    /// Per-call limits.
    pub limits: Limits,
    /// `search` calls that run at once.
    pub search_workers: usize,
    /// `execute` calls that run at once.
    pub execute_workers: usize,
    /// The worker program (required for [`Isolation::Process`]).
    pub worker: Option<WorkerCommand>,
}

/// A spec offered to `search` code under a name.
#[derive(Clone, Debug)]
pub struct SearchSpec {
    /// Key in the `specs` (or `schemas`) global.
    pub name: String,
    /// The resolved spec.
    pub graph: Arc<Graph>,
    /// Which global it is read from.
    pub global: SpecGlobal,
}

/// The global a spec is read from in `search`: an OpenAPI spec from
/// `specs` (and `spec`), a GraphQL schema's view from `schemas` (and
/// `schema`). Both are packed graphs read the same way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SpecGlobal {
    /// `specs.<name>`; `spec` when it is the only one.
    #[default]
    Specs,
    /// `schemas.<name>`; `schema` when it is the only one.
    Schemas,
}

/// Options of one `search` call beyond its code.
#[derive(Clone, Default)]
pub struct SearchCall {
    /// Backs the `codemode` global (`tools()`, `types()`); none: no such global.
    pub host: Option<Arc<dyn SyncHost>>,
    /// Specs this call may see (by name); none: all of them.
    pub visible: Option<Vec<String>>,
}

enum Wall {
    InProcess {
        search: ThreadPool,
        execute: ThreadPool,
    },
    #[cfg(target_os = "linux")]
    Process {
        search: crate::pool::ProcessPool,
        execute: crate::pool::ProcessPool,
    },
}

/// Runs `search` and `execute` code. Share it behind an `Arc`.
pub struct Sandbox {
    wall: Wall,
    specs: Vec<NamedSpec>,
    limits: Limits,
    isolation: Isolation,
    /// Bytes of all packed specs together.
    pub spec_bytes: usize,
}

impl Sandbox {
    /// Packs the specs and starts the workers (pre-started and ready when
    /// this returns).
    pub async fn start(config: SandboxConfig, specs: Vec<SearchSpec>) -> Result<Sandbox, String> {
        let packed: Vec<NamedSpec> = tokio::task::spawn_blocking(move || {
            specs
                .iter()
                .map(|s| NamedSpec {
                    name: s.name.clone(),
                    global: s.global,
                    bytes: SpecBytes::Shared(codemode_spec::packed::pack(&s.graph).into()),
                })
                .collect()
        })
        .await
        .map_err(|e| format!("packing the specs failed: {e}"))?;
        let spec_bytes = packed.iter().map(|s| s.bytes.bytes().len()).sum();
        let stack = config.limits.stack_bytes;
        let wall = match config.isolation {
            Isolation::InProcess => Wall::InProcess {
                search: ThreadPool::start("codemode-search", config.search_workers, stack)?,
                execute: ThreadPool::start("codemode-execute", config.execute_workers, stack)?,
            },
            #[cfg(target_os = "linux")]
            Isolation::Process => {
                let command = config.worker.clone().ok_or("process isolation needs a worker program")?;
                let wall = async {
                    let shared = Arc::new(crate::pool::SharedSpecs::new(&packed)?);
                    let search = crate::pool::ProcessPool::start(
                        "search",
                        config.search_workers,
                        command.clone(),
                        shared.clone(),
                    )
                    .await?;
                    let execute =
                        crate::pool::ProcessPool::start("execute", config.execute_workers, command, shared).await?;
                    Ok::<_, String>(Wall::Process { search, execute })
                };
                wall.await.map_err(|e| {
                    format!(
                        "the process wall could not start: {e} (a worker's own message, if any, is in the log above). Where seccomp or memfds are not available, set [sandbox] isolation = \"in-process\" (or --isolation in-process), which has no process wall"
                    )
                })?
            }
            #[cfg(not(target_os = "linux"))]
            Isolation::Process => {
                return Err("process isolation needs Linux (seccomp); use isolation = \"in-process\"".into())
            }
        };
        Ok(Sandbox { wall, specs: packed, limits: config.limits, isolation: config.isolation, spec_bytes })
    }

    /// The wall in use.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// Per-call limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Resident memory of each idle worker process, in bytes (empty in-process).
    pub fn worker_rss(&self) -> Vec<u64> {
        match &self.wall {
            Wall::InProcess { .. } => vec![],
            #[cfg(target_os = "linux")]
            Wall::Process { search, execute } => search.idle_rss().into_iter().chain(execute.idle_rss()).collect(),
        }
    }

    /// Asks a worker to try what its lockdown forbids (open a file, a
    /// socket, exec, fork, kill, ptrace, regain root) and returns what
    /// happened to each: `"denied"` everywhere is the wall holding. `None`
    /// in-process.
    pub async fn lockdown_report(&self) -> Option<Result<serde_json::Value, String>> {
        match &self.wall {
            Wall::InProcess { .. } => None,
            #[cfg(target_os = "linux")]
            Wall::Process { search, .. } => {
                let outcome =
                    search.run(crate::wire::ToWorker::SelfTest, &self.limits, None, None, &Clock::new()).await;
                Some(outcome.and_then(|o| match o.result {
                    Ok(crate::wire::RawValue::Json(j)) => serde_json::from_str(&j).map_err(|e| e.to_string()),
                    other => Err(format!("unexpected self-test answer: {other:?}")),
                }))
            }
        }
    }

    /// Runs one `search` call. Dropping the future cancels it.
    pub async fn search(&self, code: String, call: SearchCall) -> Outcome {
        let started = Instant::now();
        let visible: Vec<usize> = (0..self.specs.len())
            .filter(|&i| call.visible.as_ref().is_none_or(|v| v.contains(&self.specs[i].name)))
            .collect();
        let single = self.specs.len() == 1 && visible.len() == 1;
        let limits = self.limits.clone();
        let outcome = match &self.wall {
            Wall::InProcess { search, .. } => {
                let specs: Vec<NamedSpec> = visible.iter().map(|&i| self.specs[i].clone()).collect();
                let handle = tokio::runtime::Handle::current();
                let catalog = call.host.clone();
                search
                    .run(move |cancel| {
                        let has_catalog = catalog.is_some();
                        let bridge = Rc::new(InProcBridge::new(handle, None, catalog, None));
                        let job = runner::SearchJob {
                            code: &code,
                            limits: &limits,
                            visible: specs,
                            single,
                            catalog: has_catalog,
                        };
                        runner::search(job, bridge, cancel)
                    })
                    .await
            }
            #[cfg(target_os = "linux")]
            Wall::Process { search, .. } => {
                let msg = crate::wire::ToWorker::Search {
                    code,
                    limits: limits.clone(),
                    visible,
                    single,
                    catalog: call.host.is_some(),
                };
                search.run(msg, &limits, None, call.host.clone(), &Clock::new()).await
            }
        };
        finish(outcome, started)
    }

    /// Runs one `execute` call. Dropping the future cancels it.
    ///
    /// The same as [`Sandbox::execute_with_clock`] with a clock nobody holds.
    pub async fn execute(&self, code: String, env: Arc<ExecuteEnv>, host: Arc<dyn Host>) -> Outcome {
        self.execute_with_clock(code, env, host, Clock::new()).await
    }

    /// Runs one `execute` call whose time limit stops counting while `clock`
    /// is held and the code waits idle for host calls (for example while
    /// `host` asks a human to approve one). Dropping the future cancels it.
    ///
    /// While `clock` is held, JavaScript that runs still spends the limit and
    /// is stopped at the (extended) deadline: a pause gives the code no free
    /// CPU time. The wait itself is not bounded by the sandbox while held;
    /// whoever holds the clock bounds it (drop the [`crate::Pause`]).
    pub async fn execute_with_clock(
        &self,
        code: String,
        env: Arc<ExecuteEnv>,
        host: Arc<dyn Host>,
        clock: Clock,
    ) -> Outcome {
        let started = Instant::now();
        let limits = self.limits.clone();
        let outcome = match &self.wall {
            Wall::InProcess { execute, .. } => {
                let handle = tokio::runtime::Handle::current();
                execute
                    .run(move |cancel| {
                        let bridge = Rc::new(InProcBridge::new(handle, Some(host), None, Some(clock)));
                        runner::execute(&code, &limits, &env, bridge, cancel)
                    })
                    .await
            }
            #[cfg(target_os = "linux")]
            Wall::Process { execute, .. } => {
                let msg = crate::wire::ToWorker::Execute { code, limits: limits.clone(), env: (*env).clone() };
                execute.run(msg, &limits, Some(host), None, &clock).await
            }
        };
        finish(outcome, started)
    }
}

fn finish(outcome: Result<WireOutcome, String>, started: Instant) -> Outcome {
    match outcome {
        Ok(o) => Outcome {
            result: o.result.and_then(crate::parse_result),
            console: o.console,
            console_dropped: o.console_dropped,
            host_calls: o.host_calls,
            elapsed: started.elapsed(),
        },
        Err(e) => Outcome {
            result: Err(ScriptError::new(ErrorKind::Internal, "InternalError", &e)),
            console: vec![],
            console_dropped: 0,
            host_calls: 0,
            elapsed: started.elapsed(),
        },
    }
}

/// Performs one host call for the code: the arguments are JSON text from the
/// sandbox (hostile), parsed here.
pub(crate) async fn host_call(host: &dyn Host, id: u64, client: &str, method: &str, args: &str) -> Completion {
    let args: serde_json::Value = match serde_json::from_str(args) {
        Ok(v) => v,
        Err(e) => {
            let err = serde_json::json!({"name": "TypeError", "message": format!("the arguments of {client}.{method}() are not JSON: {e}")});
            return Completion { id, ok: false, json: err.to_string() };
        }
    };
    let (ok, value) = match host.call(client, method, args).await {
        Ok(v) => (true, v),
        Err(e) => (false, e),
    };
    Completion { id, ok, json: serde_json::to_string(&value).unwrap_or_else(|_| "null".into()) }
}

/// Performs one synchronous host call (`codemode.tools()`).
pub(crate) fn sync_call(catalog: &dyn SyncHost, method: &str, args: &str) -> Result<String, String> {
    let args: serde_json::Value = serde_json::from_str(args).unwrap_or(serde_json::Value::Array(vec![]));
    match catalog.call(method, args) {
        Ok(v) => Ok(v.to_string()),
        Err(e) => Err(e.to_string()),
    }
}
