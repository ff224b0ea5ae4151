//! What the sandbox's integration tests share: a sandbox behind a given wall.

use codemode_sandbox::{Isolation, Limits, Sandbox, SandboxConfig, SearchSpec, WorkerCommand};

/// The worker program built with this crate (`src/bin/worker.rs`).
pub fn worker() -> WorkerCommand {
    WorkerCommand { program: env!("CARGO_BIN_EXE_codemode-sandbox-worker").into(), args: vec![] }
}

/// A started sandbox with `workers` search and execute workers.
pub async fn sandbox(isolation: Isolation, limits: Limits, specs: Vec<SearchSpec>, workers: usize) -> Sandbox {
    let config =
        SandboxConfig { isolation, limits, search_workers: workers, execute_workers: workers, worker: Some(worker()) };
    Sandbox::start(config, specs).await.unwrap()
}
