//! Everything a running codemode holds: the loaded APIs, the `search` worker
//! pool and the `execute` host — independent of the MCP transport.

use std::sync::Arc;
use std::time::{Duration, Instant};

use codemode_sandbox::{Client, ExecuteEnv, Host, HostFuture, Limits, Outcome, SearchPool, SearchSpec};
use codemode_spec::Spec;
use codemode_upstream::{Auth, Secret, Upstream, UpstreamConfig};
use serde_json::json;

use crate::config::{ApiConfig, AuthConfig, Config, ConfigProblem};

/// One API, loaded and ready.
pub struct LoadedApi {
    /// Global name.
    pub name: String,
    /// The resolved spec.
    pub spec: Arc<Spec>,
    /// The HTTP side.
    pub upstream: Upstream,
}

/// A problem found while loading: config, environment or spec.
#[derive(Clone, Debug)]
pub struct LoadProblem(pub String);

impl std::fmt::Display for LoadProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ConfigProblem> for LoadProblem {
    fn from(p: ConfigProblem) -> Self {
        LoadProblem(p.to_string())
    }
}

/// Loads every API of `config` in parallel. Returns the APIs that loaded and
/// every problem found (fatal or not, for `codemode check`); `fatal` is true
/// when some API could not be loaded at all.
pub async fn load_apis(config: &Config, config_file: &str) -> (Vec<LoadedApi>, Vec<LoadProblem>, bool) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("HTTP client");
    let tasks = config.apis.iter().enumerate().map(|(i, api)| {
        let http = http.clone();
        let location = config.spec_location(api);
        let limits = config.limits.clone();
        let api = api.clone();
        let file = config_file.to_string();
        async move { load_one(i, &api, &location, &http, &limits, &file).await }
    });
    let results = futures_join_all(tasks).await;
    let mut apis = Vec::new();
    let mut problems = Vec::new();
    let mut fatal = false;
    for r in results {
        match r {
            Ok((api, p)) => {
                problems.extend(p);
                apis.push(api);
            }
            Err(p) => {
                fatal = true;
                problems.extend(p);
            }
        }
    }
    (apis, problems, fatal)
}

async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("loader task panicked"));
    }
    out
}

async fn load_one(
    i: usize,
    api: &ApiConfig,
    location: &str,
    http: &reqwest::Client,
    limits: &crate::config::LimitsConfig,
    file: &str,
) -> Result<(LoadedApi, Vec<LoadProblem>), Vec<LoadProblem>> {
    let started = Instant::now();
    let mut problems = Vec::new();
    let auth = match resolve_auth(api.auth.as_ref(), i, file) {
        Ok(a) => a,
        Err(p) => {
            problems.push(p);
            Auth::None
        }
    };
    let spec = match codemode_spec::load(location, http).await {
        Ok(s) => s,
        Err(e) => {
            problems.push(LoadProblem(format!("{file}: api[{i}].spec: {e}")));
            return Err(problems);
        }
    };
    problems.extend(spec.problems.iter().map(|p| LoadProblem(p.to_string())));
    let base = match &api.base_url {
        Some(b) => b.clone(),
        None => match spec.summary.servers.first() {
            Some(s) if s.starts_with("http://") || s.starts_with("https://") => s.clone(),
            Some(s) => {
                // A relative server URL is relative to where the spec came from.
                match url::Url::parse(location).ok().and_then(|u| u.join(s).ok()) {
                    Some(u) if matches!(u.scheme(), "http" | "https") => u.to_string(),
                    _ => {
                        problems.push(LoadProblem(format!(
                            "{file}: api[{i}].base_url: the spec's first server `{s}` is not an absolute URL; set `base_url` for `{}`",
                            api.name
                        )));
                        return Err(problems);
                    }
                }
            }
            None => {
                problems.push(LoadProblem(format!(
                    "{file}: api[{i}].base_url: the spec lists no servers; set `base_url` for `{}`",
                    api.name
                )));
                return Err(problems);
            }
        },
    };
    // Server URLs may carry variables (`https://{region}.example.com`): take defaults.
    let base_url = match url::Url::parse(&base) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        _ => {
            problems.push(LoadProblem(format!(
                "{file}: api[{i}].base_url: `{base}` is not an http(s) URL; set `base_url` for `{}`",
                api.name
            )));
            return Err(problems);
        }
    };
    let mut cfg = UpstreamConfig::new(&api.name, base_url);
    cfg.auth = auth;
    cfg.headers = api.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    cfg.allow_writes = api.allow_writes;
    cfg.timeout = Duration::from_secs_f64(limits.request_timeout_secs);
    cfg.max_request_bytes = limits.max_request_kib * 1024;
    cfg.max_response_bytes = limits.max_response_kib * 1024;
    let upstream = match Upstream::new(cfg) {
        Ok(u) => u,
        Err(e) => {
            problems.push(LoadProblem(format!("{file}: api[{i}]: {e}")));
            return Err(problems);
        }
    };
    tracing::info!(
        api = %api.name,
        operations = spec.summary.operations.len(),
        nodes = spec.graph.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "loaded spec"
    );
    Ok((LoadedApi { name: api.name.clone(), spec: Arc::new(spec), upstream }, problems))
}

fn resolve_auth(auth: Option<&AuthConfig>, i: usize, file: &str) -> Result<Auth, LoadProblem> {
    let env = |var: &str, key: &str| -> Result<String, LoadProblem> {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(v),
            _ => Err(LoadProblem(format!(
                "{file}: api[{i}].auth.{key}: the environment variable `{var}` is not set (or empty); export it before starting codemode"
            ))),
        }
    };
    Ok(match auth {
        None => Auth::None,
        Some(AuthConfig::Bearer { token_env }) => {
            Auth::Bearer { token: Secret::new(env(token_env, "token_env")?), source: format!("${token_env}") }
        }
        Some(AuthConfig::Header { name, value_env }) => Auth::Header {
            name: name.clone(),
            value: Secret::new(env(value_env, "value_env")?),
            source: format!("${value_env}"),
        },
        Some(AuthConfig::Basic { user, user_env, password_env }) => {
            let user = match (user, user_env) {
                (Some(u), _) => u.clone(),
                (None, Some(var)) => env(var, "user_env")?,
                (None, None) => {
                    return Err(LoadProblem(format!("{file}: api[{i}].auth: basic auth needs `user` or `user_env`")))
                }
            };
            Auth::Basic {
                user,
                password: Secret::new(env(password_env, "password_env")?),
                source: format!("${password_env}"),
            }
        }
    })
}

/// The host side of `execute`: routes `<api>.request(...)` to its upstream.
struct ApiHost {
    upstreams: Vec<Upstream>,
}

impl Host for ApiHost {
    fn call(&self, client: &str, method: &str, args: serde_json::Value) -> HostFuture {
        let upstream = self.upstreams.iter().find(|u| u.config().name == client).cloned();
        let method = method.to_string();
        let client = client.to_string();
        Box::pin(async move {
            let Some(u) = upstream else {
                return Err(json!({"name": "TypeError", "message": format!("no API named `{client}`")}));
            };
            if method != "request" {
                return Err(
                    json!({"name": "TypeError", "message": format!("`{client}.{method}` does not exist; use `{client}.request(...)`")}),
                );
            }
            let started = Instant::now();
            let result = u.request(&args).await;
            let status = match &result {
                Ok(v) => v.get("status").cloned(),
                Err(e) => e.get("status").cloned(),
            };
            tracing::info!(api = %client, ok = result.is_ok(), status = ?status, elapsed_ms = started.elapsed().as_millis() as u64, "upstream request");
            result
        })
    }
}

/// The running service.
pub struct Service {
    /// The APIs, in config order.
    pub apis: Vec<LoadedApi>,
    search: SearchPool,
    host: Arc<ApiHost>,
    env: Arc<ExecuteEnv>,
    /// Per-call limits.
    pub limits: Limits,
    /// Result size cap in tokens.
    pub max_output_tokens: usize,
    executions: tokio::sync::Semaphore,
}

impl Service {
    /// Builds the `search` pool (every worker builds every spec) and the
    /// `execute` host.
    pub async fn start(apis: Vec<LoadedApi>, limits_config: &crate::config::LimitsConfig) -> Result<Service, String> {
        let limits = Limits {
            timeout: Duration::from_secs_f64(limits_config.timeout_secs),
            memory_bytes: limits_config.memory_mib * 1024 * 1024,
            stack_bytes: limits_config.stack_kib * 1024,
            console_bytes: limits_config.console_kib * 1024,
            max_host_calls: limits_config.max_requests,
        };
        let workers = match limits_config.search_workers {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            n => n,
        };
        let specs: Vec<SearchSpec> =
            apis.iter().map(|a| SearchSpec { name: a.name.clone(), graph: Arc::new(a.spec.graph.clone()) }).collect();
        let pool_limits = limits.clone();
        let started = Instant::now();
        let search = tokio::task::spawn_blocking(move || SearchPool::start(specs, workers, pool_limits))
            .await
            .map_err(|e| format!("search pool start panicked: {e}"))??;
        tracing::info!(
            workers,
            spec_bytes = search.spec_bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "search workers ready"
        );
        let mut env = ExecuteEnv {
            clients: apis.iter().map(|a| Client { global: a.name.clone(), methods: vec!["request".into()] }).collect(),
            aliases: vec![],
            dynamic_clients: vec![],
        };
        if apis.len() == 1 {
            env.aliases.push(("api".into(), apis[0].name.clone()));
        }
        let host = Arc::new(ApiHost { upstreams: apis.iter().map(|a| a.upstream.clone()).collect() });
        Ok(Service {
            apis,
            search,
            host,
            env: Arc::new(env),
            limits,
            max_output_tokens: limits_config.max_output_tokens,
            executions: tokio::sync::Semaphore::new(limits_config.max_concurrent_executions.max(1)),
        })
    }

    /// Runs `search` code.
    pub async fn search(&self, code: String) -> Outcome {
        self.search.run(code).await
    }

    /// Runs `execute` code.
    pub async fn execute(&self, code: String) -> Outcome {
        let _permit = self.executions.acquire().await.expect("semaphore is never closed");
        codemode_sandbox::execute(code, self.env.clone(), self.limits.clone(), self.host.clone()).await
    }
}
