//! `codemode`: an MCP server that gives an AI agent whole APIs through two
//! tools, `search` and `execute`. See ARCHITECTURE.md for the map.

mod approve;
mod catalog;
mod config;
mod detached;
mod graphql;
mod hints;
mod host;
mod media;
mod operations;
mod render;
mod rounds;
mod server;
mod service;
mod stdio;
mod tasks;
mod tokens;
mod tools;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use rmcp::ServiceExt;

use config::{ApiConfig, AuthConfig, Config};
use server::CodemodeServer;

#[derive(Parser)]
#[command(name = "codemode", version, about = "Whole APIs for AI agents through two MCP tools: search and execute")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines on stderr: `text` (default) or `json` (one object per line,
    /// with the call's tool and principal). Default: [log] format in the config.
    #[arg(long, global = true, env = "CODEMODE_LOG_FORMAT")]
    log_format: Option<config::LogFormat>,
}

impl Cli {
    /// The log format: the flag, else `[log] format` of the config file the
    /// command names (read leniently: a broken config is reported later, by
    /// the command itself), else text.
    fn log_format(&self) -> config::LogFormat {
        if let Some(f) = self.log_format {
            return f;
        }
        let source = match &self.command {
            Command::Serve { source, .. }
            | Command::Search { source, .. }
            | Command::Exec { source, .. }
            | Command::Tokens { source, .. }
            | Command::Check(source) => source,
            Command::Audit(_) => return config::LogFormat::Text,
        };
        if source.spec.is_some() {
            return config::LogFormat::Text;
        }
        let path = source.config.clone().unwrap_or_else(|| PathBuf::from("codemode.toml"));
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| toml::from_str::<toml::Table>(&t).ok())
            .and_then(|t| t.get("log")?.get("format")?.as_str().map(str::to_string))
            .and_then(|f| f.parse().ok())
            .unwrap_or_default()
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the two tools over MCP: stdio, or Streamable HTTP at /mcp.
    Serve {
        #[command(flatten)]
        source: SourceArgs,
        /// `stdio` or `http` (default: [server] transport, else stdio; `--listen` alone means http).
        #[arg(long)]
        transport: Option<codemode_http::Transport>,
        /// Address for HTTP, e.g. 127.0.0.1:8080 (default: [server] listen).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Run `search` code once and print the result.
    Search {
        #[command(flatten)]
        source: SourceArgs,
        /// JavaScript, e.g. 'async () => Object.keys(spec.paths).length'.
        code: String,
    },
    /// Run `execute` code once and print the result.
    Exec {
        #[command(flatten)]
        source: SourceArgs,
        /// JavaScript, e.g. 'async () => (await api.request("GET /zones")).data'.
        code: String,
    },
    /// Token footprint of our tools/list next to one tool per operation
    /// (or, with --stdin, of any text: a result, a prompt).
    Tokens {
        #[command(flatten)]
        source: SourceArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Count the tokens of the text on standard input instead (no API
        /// is loaded).
        #[arg(long)]
        stdin: bool,
    },
    /// Load everything and report every problem; exit non-zero on any.
    Check(SourceArgs),
    /// What ran: list and filter recorded searches and executes, show one
    /// with its calls, or export them (JSON, JSONL for a SIEM).
    Audit(AuditCli),
}

#[derive(Args, Clone)]
struct AuditCli {
    /// Config file whose `[audit] path` (or `url`) names the store
    /// (default: ./codemode.toml if present, else the default store).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// The store itself (overrides the config).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Show one execution with its calls.
    #[arg(long)]
    show: Option<i64>,
    /// Since: RFC 3339 / a date, or back from now (15m, 2h, 7d, 1w).
    #[arg(long)]
    since: Option<String>,
    /// Until: the same forms as --since.
    #[arg(long)]
    until: Option<String>,
    /// Only this principal (`-`: the local user).
    #[arg(long)]
    principal: Option<String>,
    /// `search` or `execute`.
    #[arg(long)]
    tool: Option<String>,
    /// Only executions that called this API or MCP server.
    #[arg(long)]
    api: Option<String>,
    /// `ok` or `error`.
    #[arg(long)]
    status: Option<String>,
    /// The code contains this text.
    #[arg(long)]
    grep: Option<String>,
    /// Only executions this replica recorded (`[audit] host`).
    #[arg(long)]
    host: Option<String>,
    /// Only executions recorded after this id (incremental exports).
    #[arg(long)]
    after_id: Option<i64>,
    /// At most this many (0: all; default 50, all for --jsonl).
    #[arg(long)]
    limit: Option<usize>,
    /// A JSON array.
    #[arg(long, conflicts_with = "jsonl")]
    json: bool,
    /// One execution with its calls per line, oldest first.
    #[arg(long)]
    jsonl: bool,
}

#[derive(Args, Clone)]
struct SourceArgs {
    /// Config file (TOML). Default: ./codemode.toml when no --spec is given.
    #[arg(long, short = 'c', conflicts_with = "spec")]
    config: Option<PathBuf>,
    /// One API straight from a spec (path or URL; JSON or YAML).
    #[arg(long)]
    spec: Option<String>,
    /// Base URL for --spec (default: the spec's first server).
    #[arg(long, requires = "spec")]
    base_url: Option<String>,
    /// Global name for --spec (default: from the file name).
    #[arg(long, requires = "spec")]
    name: Option<String>,
    /// Environment variable holding a bearer token for --spec.
    #[arg(long, requires = "spec")]
    bearer_env: Option<String>,
    /// Allow methods other than GET and HEAD for --spec.
    #[arg(long, requires = "spec")]
    allow_writes: bool,
    /// Rehearsal mode for every API: answer requests from the spec, offline.
    #[arg(long)]
    mock: bool,
    /// Dry run: reads are sent, every write (non-GET/HEAD request, MCP tool
    /// without readOnlyHint) is planned instead and listed with the result.
    #[arg(long)]
    dry_run: bool,
    /// Upstream MCP servers from an `mcpServers` JSON file (Claude Desktop, Cursor…).
    #[arg(long)]
    mcp_config: Option<PathBuf>,
    /// Where model code runs: `process` (locked-down worker processes; the
    /// default on Linux) or `in-process` (no process wall). Overrides [sandbox].
    #[arg(long)]
    isolation: Option<codemode_sandbox::Isolation>,
}

impl SourceArgs {
    /// The config and the name of where it came from, with the command
    /// line's overrides applied.
    fn config(&self) -> Result<(Config, String), Vec<String>> {
        let (mut config, file) = self.config_file()?;
        config.policy.dry_run |= self.dry_run;
        Ok((config, file))
    }

    fn config_file(&self) -> Result<(Config, String), Vec<String>> {
        if let Some(spec) = &self.spec {
            let name = self.name.clone().unwrap_or_else(|| name_from_location(spec));
            let config = Config {
                apis: vec![ApiConfig {
                    name,
                    kind: Default::default(),
                    spec: spec.clone(),
                    url: None,
                    max_depth: None,
                    max_cost: None,
                    base_url: self.base_url.clone(),
                    auth: self.bearer_env.clone().map(|token_env| AuthConfig::Bearer { token_env }),
                    headers: Default::default(),
                    allow_writes: self.allow_writes,
                    mock: false,
                    mock_state: Default::default(),
                    mock_seed: None,
                    mock_strict: false,
                    allow: vec![],
                    deny: vec![],
                    approve: vec![],
                    dry_run: false,
                    allow_unreadable_refs: false,
                }],
                base_dir: std::env::current_dir().unwrap_or_default(),
                ..Config::default()
            };
            let problems = config.check("command line");
            if !problems.is_empty() {
                return Err(problems.iter().map(|p| p.to_string()).collect());
            }
            return Ok((config, "command line".into()));
        }
        let path = self.config.clone().unwrap_or_else(|| PathBuf::from("codemode.toml"));
        if self.config.is_none() && !path.exists() && self.mcp_config.is_some() {
            // Only upstream MCP servers, from --mcp-config.
            return Ok((
                Config { base_dir: std::env::current_dir().unwrap_or_default(), ..Config::default() },
                "command line".into(),
            ));
        }
        if self.config.is_none() && !path.exists() {
            return Err(vec![
                "no API given: pass --config FILE or --spec FILE_OR_URL (or put a codemode.toml in the current directory)".into(),
            ]);
        }
        Config::load(&path)
            .map(|c| (c, path.display().to_string()))
            .map_err(|ps| ps.iter().map(|p| p.to_string()).collect())
    }
}

/// `cloudflare-2024-08-06.openapi.json` → `cloudflare`.
fn name_from_location(location: &str) -> String {
    let file = location.rsplit(['/', '\\']).next().unwrap_or(location);
    let stem: String =
        file.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>().to_ascii_lowercase();
    if config::is_identifier(&stem) && !matches!(stem.as_str(), "spec" | "specs" | "console" | "codemode") {
        stem
    } else {
        "api".into()
    }
}

/// The hidden first argument that makes this binary a sandbox worker
/// process (see codemode_sandbox::worker); never typed by a person.
const WORKER_ARG: &str = "__sandbox-worker";

/// Steadies glibc's memory use for a long-lived server. Results, upstream
/// bodies and portal answers can be megabytes: with the default *dynamic*
/// mmap threshold, freeing one large block raises the threshold, later large
/// blocks land in the heap arenas and fragment them, and RSS creeps to a
/// high-water mark it never leaves. A fixed 1 MiB threshold sends large
/// blocks to mmap (returned on free); a cap on arenas bounds how many heaps
/// can each hold free memory. Measured: RSS after 300 hostile calls moved
/// from +0…+25 % to +1…+2 % (tests/hostile/test_rss.py).
fn steady_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

fn main() -> ExitCode {
    steady_allocator();
    if std::env::args_os().nth(1).is_some_and(|a| a == WORKER_ARG) {
        codemode_sandbox::worker::main();
    }
    let started = Instant::now();
    let cli = Cli::parse();
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("CODEMODE_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rmcp=warn"))
    };
    match cli.log_format() {
        config::LogFormat::Text => {
            tracing_subscriber::fmt().with_env_filter(filter()).with_writer(std::io::stderr).with_ansi(false).init()
        }
        config::LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .init(),
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(run(cli, started))
}

async fn start(source: &SourceArgs, started: Instant) -> Result<CodemodeServer, ExitCode> {
    // The tokenizer that caps results takes a good part of a second to
    // build: build it while the specs load, so that `ready` means ready. A
    // thread of its own, not the blocking pool, so that a start-up that fails
    // exits without waiting for it.
    let (built, tokenizer) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("tokenizer".into())
        .spawn(move || {
            render::warm_up();
            let _ = built.send(());
        })
        .expect("spawn the tokenizer thread");
    let (config, file) = source.config().map_err(|ps| {
        for p in ps {
            eprintln!("error: {p}");
        }
        ExitCode::from(2)
    })?;
    let Loaded { apis, servers, problems, fatal } = load_everything(source, &config, &file).await;
    for p in &problems {
        if fatal {
            eprintln!("error: {p}");
        } else {
            tracing::warn!("{p}");
        }
    }
    if fatal {
        return Err(ExitCode::from(2));
    }
    let service =
        service::Service::start(apis, servers, &config, sandbox_options(source, &config)).await.map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(2)
        })?;
    tokenizer.await.expect("the tokenizer thread ends by sending");
    tracing::info!(ready_ms = started.elapsed().as_millis() as u64, apis = service.apis.len(), "ready");
    Ok(CodemodeServer::new(Arc::new(service)))
}

async fn run(cli: Cli, started: Instant) -> ExitCode {
    match cli.command {
        Command::Serve { source, transport, listen } => {
            if let Some(code) = serve_http(&source, transport, listen, started).await {
                return code;
            }
            let server = match start(&source, started).await {
                Ok(s) => s,
                Err(code) => return code,
            };
            let service = server.service_handle();
            let running = match server.serve(stdio::transport()).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: MCP session failed to start: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let ended = running.waiting().await;
            service.shutdown().await;
            match ended {
                Ok(reason) => {
                    tracing::info!(?reason, "session ended");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Search { source, code } => one_call(&source, tools::ToolKind::Search, code, started).await,
        Command::Exec { source, code } => one_call(&source, tools::ToolKind::Execute, code, started).await,
        Command::Tokens { stdin: true, json, .. } => count_stdin(json),
        Command::Tokens { source, json, .. } => token_report(&source, json, started).await,
        Command::Check(source) => check(&source).await,
        Command::Audit(args) => audit(args),
    }
}

async fn one_call(source: &SourceArgs, tool: tools::ToolKind, code: String, started: Instant) -> ExitCode {
    let server = match start(source, started).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let r = server
        .call(
            tool,
            code,
            None,
            None,
            None,
            server::ClientMeta { name: Some("codemode-cli".into()), ..Default::default() },
        )
        .await;
    server.service().shutdown().await;
    println!("{}", r.text);
    if let Some(note) = r.note {
        eprintln!("note: {note}");
    }
    if let Some(console) = r.console {
        eprintln!("{console}");
    }
    if let Some(plan) = r.plan {
        println!("{plan}");
    }
    if r.is_error {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn audit(a: AuditCli) -> ExitCode {
    let mut store = match (&a.config, std::path::Path::new("codemode.toml").exists()) {
        (Some(p), _) => match Config::load(p) {
            Ok(c) => c.audit,
            Err(ps) => {
                for p in ps {
                    eprintln!("error: {p}");
                }
                return ExitCode::from(2);
            }
        },
        (None, true) => Config::load(std::path::Path::new("codemode.toml")).map(|c| c.audit).unwrap_or_default(),
        (None, false) => Default::default(),
    };
    if let Some(db) = &a.db {
        store.path = Some(db.display().to_string());
        store.url = None;
        store.schema = None;
    }
    let args = codemode_audit::AuditArgs {
        config: store,
        show: a.show,
        since: a.since,
        until: a.until,
        principal: a.principal,
        tool: a.tool,
        api: a.api,
        status: a.status,
        grep: a.grep,
        host: a.host,
        after_id: a.after_id,
        limit: a.limit,
        format: if a.json {
            codemode_audit::Format::Json
        } else if a.jsonl {
            codemode_audit::Format::Jsonl
        } else {
            codemode_audit::Format::Table
        },
    };
    let stdout = std::io::stdout();
    match codemode_audit::run(&args, &mut stdout.lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// `codemode tokens --stdin`: the o200k and cl100k tokens of standard input.
fn count_stdin(as_json: bool) -> ExitCode {
    let mut text = String::new();
    if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
        eprintln!("error: reading standard input: {e} (pipe UTF-8 text into `codemode tokens --stdin`)");
        return ExitCode::from(2);
    }
    let f = tokens::footprint(&text, 0);
    if as_json {
        println!("{}", serde_json::json!({"chars": text.chars().count(), "o200k": f.o200k, "cl100k": f.cl100k}));
    } else {
        println!("{} characters: {} o200k tokens, {} cl100k tokens", text.chars().count(), f.o200k, f.cl100k);
    }
    ExitCode::SUCCESS
}

async fn token_report(source: &SourceArgs, as_json: bool, started: Instant) -> ExitCode {
    let server = match start(source, started).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let ours_json = serde_json::to_string(&rmcp::model::ListToolsResult::with_all_items(server.tools().to_vec()))
        .expect("serialises");
    let ours = tokens::footprint(&ours_json, server.tools().len());
    let mut rows = Vec::new();
    let mut all_naive = Vec::new();
    for api in &server_apis(&server) {
        let naive = tokens::naive_tools(api);
        let json = serde_json::to_string(&serde_json::json!({"tools": naive})).expect("serialises");
        let f = tokens::footprint(&json, naive.len());
        rows.push((api.name.clone(), naive.len(), f));
        all_naive.extend(naive);
    }
    // Upstream MCP servers: their own tool lists, as each would send them.
    if let Some(portal) = &server.service().portal {
        for name in portal.server_names() {
            let own: Vec<serde_json::Value> = portal
                .tools()
                .iter()
                .filter(|t| t.server == name)
                .map(|t| {
                    let mut v = tools::tool_json(t);
                    v["name"] = serde_json::json!(t.tool);
                    v.as_object_mut().map(|m| m.remove("server"));
                    v
                })
                .collect();
            let json = serde_json::to_string(&serde_json::json!({"tools": own})).expect("serialises");
            rows.push((format!("mcp:{name}"), own.len(), tokens::footprint(&json, own.len())));
            all_naive.extend(own);
        }
        portal.shutdown().await;
    }
    let total = tokens::footprint(
        &serde_json::to_string(&serde_json::json!({"tools": all_naive})).expect("serialises"),
        all_naive.len(),
    );
    if as_json {
        let apis: Vec<_> = rows
            .iter()
            .map(|(n, ops, f)| serde_json::json!({"api": n, "operations": ops, "naive": {"tools": f.tools, "o200k": f.o200k, "cl100k": f.cl100k}}))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "codemode": {"tools": ours.tools, "o200k": ours.o200k, "cl100k": ours.cl100k},
                "naive_total": {"tools": total.tools, "o200k": total.o200k, "cl100k": total.cl100k},
                "apis": apis,
            })
        );
    } else {
        println!("{:<28} {:>7} {:>14} {:>14}", "tools/list", "tools", "o200k tokens", "cl100k tokens");
        for (name, _, f) in &rows {
            let label = match name.strip_prefix("mcp:") {
                Some(server) => format!("MCP server's own: {server}"),
                None => format!("one per operation: {name}"),
            };
            println!("{:<28} {:>7} {:>14} {:>14}", label, f.tools, f.o200k, f.cl100k);
        }
        if rows.len() > 1 {
            println!("{:<28} {:>7} {:>14} {:>14}", "all of the above", total.tools, total.o200k, total.cl100k);
        }
        println!("{:<28} {:>7} {:>14} {:>14}", "codemode", ours.tools, ours.o200k, ours.cl100k);
    }
    ExitCode::SUCCESS
}

fn server_apis(server: &CodemodeServer) -> Vec<&service::LoadedApi> {
    server.service().apis.iter().collect()
}

async fn check(source: &SourceArgs) -> ExitCode {
    let (config, file) = match source.config() {
        Ok(c) => c,
        Err(ps) => {
            for p in &ps {
                println!("{p}");
            }
            println!("{} problem(s)", ps.len());
            return ExitCode::FAILURE;
        }
    };
    let Loaded { apis, servers, mut problems, fatal } = load_everything(source, &config, &file).await;
    if config.server.transport == codemode_http::Transport::Http || config.auth.is_configured() {
        let names: Vec<String> =
            config.apis.iter().map(|a| a.name.clone()).chain(config.mcp.iter().map(|m| m.name.clone())).collect();
        for p in codemode_http::check(&config.server, &config.auth, &names) {
            problems.push(service::LoadProblem(format!("{file}: {p}")));
        }
    }
    for p in &problems {
        println!("{p}");
    }
    let mut count = problems.len();
    if !fatal {
        let summary: Vec<String> = apis
            .iter()
            .map(|a| match &a.graphql {
                Some(g) => format!("{} (GraphQL, {} types)", a.name, g.schema.type_count()),
                None => format!("{} ({} operations)", a.name, a.spec.summary.operations.len()),
            })
            .collect();
        match service::Service::start(apis, servers, &config, sandbox_options(source, &config)).await {
            Ok(s) => {
                match s.wall_report().await {
                    Ok(line) => println!("{line}"),
                    Err(problem) => {
                        println!("{problem}");
                        count += 1;
                    }
                }
                println!("{}", s.policy_report());
                s.shutdown().await;
                if count == 0 {
                    println!("ok: {}", summary.join(", "));
                }
            }
            Err(e) => {
                println!("{file}: the sandbox could not load the specs: {e}");
                count += 1;
            }
        }
    }
    if count > 0 {
        println!("{count} problem(s)");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `[[mcp]]` servers from the config plus those of `--mcp-config`.
fn mcp_servers(
    source: &SourceArgs,
    config: &Config,
    file: &str,
) -> Result<(Vec<codemode_portal::ServerConfig>, Vec<service::LoadProblem>), service::LoadProblem> {
    let (mut servers, problems) = service::mcp_servers(config, file);
    if let Some(path) = &source.mcp_config {
        let text = std::fs::read_to_string(path)
            .map_err(|e| service::LoadProblem(format!("{}: cannot read: {e}", path.display())))?;
        let more = codemode_portal::parse_mcp_servers_json(&text)
            .map_err(|e| service::LoadProblem(format!("{}: {e}", path.display())))?;
        servers.extend(more);
    }
    Ok((servers, problems))
}

/// `serve` over MCP Streamable HTTP; `None` when the transport is stdio.
/// The listener starts first (`/healthz` answers at once); `/readyz` and
/// `/mcp` answer once every API has loaded.
async fn serve_http(
    source: &SourceArgs,
    transport: Option<codemode_http::Transport>,
    listen: Option<String>,
    started: Instant,
) -> Option<ExitCode> {
    // A config that does not load is reported by `start` below.
    let (mut config, file) = source.config().ok()?;
    let transport =
        transport.unwrap_or(if listen.is_some() { codemode_http::Transport::Http } else { config.server.transport });
    if transport != codemode_http::Transport::Http {
        return None;
    }
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    let names: Vec<String> =
        config.apis.iter().map(|a| a.name.clone()).chain(config.mcp.iter().map(|m| m.name.clone())).collect();
    let http = match codemode_http::HttpServer::<CodemodeServer>::bind(&config.server, &config.auth, &names).await {
        Ok(h) => h,
        Err(e) => {
            for line in e.to_string().lines() {
                eprintln!("error: {file}: {line}");
            }
            return Some(ExitCode::from(2));
        }
    };
    let mut http = http;
    // `/metrics` (opt-in): rendered from the service's telemetry once it runs.
    let metrics = (config.telemetry.prometheus && std::env::var("OTEL_SDK_DISABLED").map_or(true, |v| v != "true"))
        .then(|| http.serve_metrics());
    let ready = http.ready_handle();
    let mut serving = tokio::spawn(http.run(codemode_http::shutdown_signal()));
    let server = tokio::select! {
        s = start(source, started) => match s {
            Ok(s) => s,
            Err(code) => {
                serving.abort();
                return Some(code);
            }
        },
        _ = &mut serving => return Some(ExitCode::SUCCESS),
    };
    let service = server.service_handle();
    if let Some(m) = metrics {
        let telemetry = service.telemetry.clone();
        m.set(Arc::new(move || telemetry.prometheus_text()));
    }
    ready.set(server);
    let code = match serving.await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: the HTTP server stopped: {e}");
            ExitCode::FAILURE
        }
    };
    service.shutdown().await;
    Some(code)
}

/// The wall and the worker program: this binary, run with [`WORKER_ARG`].
fn sandbox_options(source: &SourceArgs, config: &Config) -> service::SandboxOptions {
    let isolation =
        source.isolation.or(config.sandbox.isolation).unwrap_or_else(codemode_sandbox::Isolation::default_for_platform);
    let worker = std::env::current_exe()
        .ok()
        .map(|program| codemode_sandbox::WorkerCommand { program, args: vec![WORKER_ARG.into()] });
    service::SandboxOptions { isolation, worker }
}

/// What loading a config produced: the APIs and MCP servers that loaded, every
/// problem found, and whether any of them is fatal.
struct Loaded {
    apis: Vec<service::LoadedApi>,
    servers: Vec<codemode_portal::ServerConfig>,
    problems: Vec<service::LoadProblem>,
    fatal: bool,
}

async fn load_everything(source: &SourceArgs, config: &Config, file: &str) -> Loaded {
    let (apis, mut problems, mut fatal) = service::load_apis(config, file, source.mock).await;
    let servers = match mcp_servers(source, config, file) {
        Ok((servers, server_problems)) => {
            problems.extend(server_problems);
            servers
        }
        Err(p) => {
            fatal = true;
            problems.push(p);
            vec![]
        }
    };
    Loaded { apis, servers, problems, fatal }
}
