//! `codemode`: an MCP server that gives an AI agent whole APIs through two
//! tools, `search` and `execute`. See ARCHITECTURE.md for the map.

mod approve;
mod catalog;
mod config;
mod detached;
mod discover;
mod graphql;
mod hints;
mod host;
mod init;
mod install;
mod live;
mod mcp_file;
mod media;
mod operations;
mod render;
mod rounds;
mod schema;
mod secrets;
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
    /// Which log lines: `error`, `warn`, `info` (default), `debug`,
    /// `trace`, or a filter such as `info,codemode_portal=debug`.
    /// Overrides the CODEMODE_LOG variable.
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,
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
            | Command::Check(source)
            | Command::Login { source, .. } => source,
            Command::Audit(_)
            | Command::Install(_)
            | Command::Init(_)
            | Command::Config { .. }
            | Command::Completions { .. } => return config::LogFormat::Text,
        };
        if source.spec.is_some() {
            return config::LogFormat::Text;
        }
        let Ok(Some(found)) = discover::Places::from_env().find(source.config.as_deref()) else {
            return config::LogFormat::Text;
        };
        std::fs::read_to_string(found.path)
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
        /// Reload when the config file, the --mcp-config file or a local
        /// spec file changes (as SIGHUP does).
        #[arg(long)]
        watch: bool,
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
    /// Sign in to an upstream MCP server that uses OAuth (`[[mcp]] auth =
    /// { type = "oauth" }`): prints the authorization URL (or opens it with
    /// --open), catches the redirect on a loopback port and stores the
    /// tokens, encrypted, for `serve` to use and refresh.
    Login {
        #[command(flatten)]
        source: SourceArgs,
        /// The `[[mcp]]` server's name.
        server: String,
        /// Also open the URL in the default browser.
        #[arg(long)]
        open: bool,
        /// Longest wait for the browser to come back, in seconds.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
    },
    /// What ran: list and filter recorded searches and executes, show one
    /// with its calls, or export them (JSON, JSONL for a SIEM).
    Audit(AuditCli),
    /// Add codemode to an MCP client's config file (merged, with a backup),
    /// or print the entry with --print.
    Install(InstallArgs),
    /// Write a commented codemode.toml from a spec or another client's
    /// `mcpServers` file, then check it.
    Init(InitArgs),
    /// The config format: `codemode config schema` prints its JSON Schema.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print a shell completion script, e.g.
    /// `codemode completions bash > ~/.local/share/bash-completion/completions/codemode`.
    Completions {
        /// `bash`, `zsh`, `fish`, `elvish` or `powershell`.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Clone)]
enum ConfigCommand {
    /// The JSON Schema of codemode.toml (for editors: taplo, Even Better TOML).
    Schema,
    /// Which config file a command run here would read, and why.
    Path,
}

#[derive(Args, Clone)]
struct InstallArgs {
    /// The client.
    #[arg(value_enum)]
    client: install::Client,
    /// Print the entry and the file it belongs in; change nothing.
    #[arg(long)]
    print: bool,
    /// The config the client's codemode serves (written as an absolute path;
    /// default: the one `serve` would find here).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// The server's name in the client.
    #[arg(long, default_value = "codemode")]
    name: String,
    /// The client's config file (default: the platform's place for it).
    #[arg(long)]
    file: Option<PathBuf>,
    /// The program the client starts (default: this binary's absolute path,
    /// since desktop clients do not see the shell's PATH).
    #[arg(long)]
    command: Option<String>,
}

#[derive(Args, Clone)]
struct InitArgs {
    /// An OpenAPI spec (path or URL; JSON or YAML).
    #[arg(long, conflicts_with = "from", required_unless_present = "from")]
    spec: Option<String>,
    /// Import the servers of an `mcpServers` JSON(C) file or a Codex config.toml.
    #[arg(long)]
    from: Option<PathBuf>,
    /// Global name for --spec (default: from the file name).
    #[arg(long, requires = "spec")]
    name: Option<String>,
    /// Base URL for --spec (default: the spec's first server).
    #[arg(long, requires = "spec")]
    base_url: Option<String>,
    /// Where to write.
    #[arg(long, short = 'o', default_value = "codemode.toml")]
    output: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    force: bool,
    /// Do not run `codemode check` on the new file.
    #[arg(long)]
    no_check: bool,
}

#[derive(Args, Clone)]
struct AuditCli {
    /// Config file whose `[audit] path` (or `url`) names the store
    /// (default: the config `serve` finds, else the default store).
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
    /// Config file (TOML). Default, when no --spec is given: $CODEMODE_CONFIG,
    /// else ./codemode.toml, else codemode/codemode.toml in the user's config
    /// directory (~/.config on Linux).
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
    /// Upstream MCP servers from another client's file: `mcpServers` JSON
    /// (Claude Desktop, Cursor, VS Code; comments, trailing commas and
    /// `${VAR}` allowed) or Codex's config.toml (`[mcp_servers.*]`).
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
        match self.config_checked()? {
            (config, file, problems) if problems.is_empty() => Ok((config, file)),
            (_, _, problems) => Err(problems),
        }
    }

    /// [`Self::config`] for `check`: a config that reads but fails its checks
    /// comes back with those problems, so that the specs and servers are
    /// still loaded and every problem is reported in one run.
    fn config_checked(&self) -> Result<(Config, String, Vec<String>), Vec<String>> {
        let (mut config, file, problems) = self.config_file()?;
        config.policy.dry_run |= self.dry_run;
        Ok((config, file, problems))
    }

    fn config_file(&self) -> Result<(Config, String, Vec<String>), Vec<String>> {
        if let Some(spec) = &self.spec {
            let name = self.name.clone().unwrap_or_else(|| name_from_location(spec));
            let config = Config {
                apis: vec![ApiConfig {
                    name,
                    kind: Default::default(),
                    spec: crate::config::SpecPaths::one(spec.clone()),
                    url: None,
                    max_depth: None,
                    max_cost: None,
                    base_url: self.base_url.clone(),
                    auth: self.bearer_env.clone().map(|token_env| AuthConfig::Bearer {
                        token_env: Some(token_env),
                        token_file: None,
                        token_command: None,
                    }),
                    auth_for: vec![],
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
                    refresh_secs: None,
                }],
                base_dir: std::env::current_dir().unwrap_or_default(),
                ..Config::default()
            };
            let problems = config.check("command line");
            if !problems.is_empty() {
                return Err(problems.iter().map(|p| p.to_string()).collect());
            }
            return Ok((config, "command line".into(), vec![]));
        }
        let places = discover::Places::from_env();
        let path = match places.find(self.config.as_deref()).map_err(|e| vec![e])? {
            Some(found) => found.path,
            None if self.mcp_config.is_some() => {
                // Only upstream MCP servers, from --mcp-config.
                return Ok((
                    Config { base_dir: std::env::current_dir().unwrap_or_default(), ..Config::default() },
                    "command line".into(),
                    vec![],
                ));
            }
            None => return Err(vec![places.nothing_found()]),
        };
        let to_strings = |ps: Vec<config::ConfigProblem>| ps.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        Config::load_unchecked(&path).map(|(c, ps)| (c, path.display().to_string(), to_strings(ps))).map_err(to_strings)
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

/// The log filter: `--log-level`, else `CODEMODE_LOG`, else `info` (with
/// rmcp's own lines from `warn`). A bare level keeps rmcp at `warn` unless it
/// is quieter; a full filter is taken as written.
fn log_filter(flag: Option<&str>, default: &str) -> Result<tracing_subscriber::EnvFilter, String> {
    let Some(level) = flag else {
        return Ok(tracing_subscriber::EnvFilter::try_from_env("CODEMODE_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)));
    };
    let directive = match level.to_ascii_lowercase().as_str() {
        l @ ("error" | "warn" | "off") => l.to_string(),
        l @ ("info" | "debug" | "trace") => format!("{l},rmcp=warn"),
        _ => level.to_string(),
    };
    tracing_subscriber::EnvFilter::try_new(&directive).map_err(|e| {
        format!("--log-level `{level}`: {e}; use error, warn, info, debug or trace, or a filter such as `info,codemode_portal=debug`")
    })
}

fn main() -> ExitCode {
    steady_allocator();
    // The process wall's workers are this binary started again (Linux only:
    // seccomp, memfds; elsewhere the sandbox runs in-process).
    #[cfg(target_os = "linux")]
    if std::env::args_os().nth(1).is_some_and(|a| a == WORKER_ARG) {
        codemode_sandbox::worker::main();
    }
    let started = Instant::now();
    let cli = Cli::parse();
    // A server logs what it does (INFO); a one-shot command prints its answer
    // and only warnings, so its output reads without the loading chatter.
    let default_filter = if matches!(cli.command, Command::Serve { .. }) { "info,rmcp=warn" } else { "warn" };
    let filter = match log_filter(cli.log_level.as_deref(), default_filter) {
        Ok(f) => f,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let filter = || filter.clone();
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
    // build (o200k's 200,000 ranks and its regex) and is first needed by the
    // first tool result, not by the handshake or `tools/list`: build it on a
    // thread of its own, started before the specs load, and do not wait for
    // it. A result rendered before it is done waits for the rest (the
    // `LazyLock` in render.rs). Its own thread, not the blocking pool, so
    // that a start-up that fails exits without waiting for it.
    std::thread::Builder::new()
        .name("tokenizer".into())
        .spawn(|| {
            let t = Instant::now();
            render::warm_up();
            tracing::debug!(build_ms = t.elapsed().as_millis() as u64, "tokenizer built");
        })
        .expect("spawn the tokenizer thread");
    let (config, file) = source.config().map_err(|ps| {
        for p in ps {
            eprintln!("error: {p}");
        }
        ExitCode::from(2)
    })?;
    for notice in config.passthrough_notices() {
        tracing::warn!("{notice}");
    }
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
    tracing::info!(ready_ms = started.elapsed().as_millis() as u64, apis = service.apis.len(), "ready");
    Ok(CodemodeServer::new(Arc::new(service)))
}

async fn run(cli: Cli, started: Instant) -> ExitCode {
    match cli.command {
        Command::Serve { source, transport, listen, watch } => {
            // From here on SIGHUP reloads instead of ending the process (one
            // that arrives while the APIs load waits for the reload loop).
            let (triggers, pending) = live::channel();
            live::hangups(triggers.clone());
            let reloading = Reloading { source: source.clone(), watch, triggers, pending };
            match serve_http(&source, transport, listen, started, reloading).await {
                Ok(code) => code,
                Err(reloading) => serve_stdio(&source, started, reloading).await,
            }
        }
        Command::Search { source, code } => one_call(&source, tools::ToolKind::Search, code, started).await,
        Command::Exec { source, code } => one_call(&source, tools::ToolKind::Execute, code, started).await,
        Command::Tokens { stdin: true, json, .. } => count_stdin(json),
        Command::Tokens { source, json, .. } => token_report(&source, json, started).await,
        Command::Check(source) => check(&source).await,
        Command::Login { source, server, open, timeout_secs } => login(&source, &server, open, timeout_secs).await,
        Command::Audit(args) => audit(args),
        Command::Install(args) => install(args),
        Command::Init(args) => init(args).await,
        Command::Config { command: ConfigCommand::Schema } => {
            // Piped into `head` or a file: a closed pipe is not a crash.
            let text = serde_json::to_string_pretty(&schema::config_schema()).expect("serialises");
            let _ = std::io::Write::write_all(&mut std::io::stdout(), format!("{text}\n").as_bytes());
            ExitCode::SUCCESS
        }
        Command::Config { command: ConfigCommand::Path } => {
            let places = discover::Places::from_env();
            match places.find(None) {
                Ok(Some(found)) => {
                    println!("{} (from {})", found.path.display(), found.origin);
                    ExitCode::SUCCESS
                }
                Ok(None) => {
                    println!("{}", places.nothing_found());
                    ExitCode::FAILURE
                }
                Err(e) => {
                    println!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "codemode", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
    }
}

/// What `serve` needs to reload: how to read the config again, whether to
/// watch its files, and the reload requests (SIGHUP, the watcher, refreshes).
struct Reloading {
    source: SourceArgs,
    watch: bool,
    triggers: live::Triggers,
    pending: tokio::sync::mpsc::Receiver<live::Trigger>,
}

impl Reloading {
    /// Starts the reload loop over `live`, whose first generation is `first`.
    fn spawn(self, live: &live::Live, first: CodemodeServer) {
        let Reloading { source, watch, triggers, pending } = self;
        let first = match source.config() {
            Ok((config, file)) => generation(&config, &file, &source, first, watch),
            // Unreachable in practice (the config just loaded); reload anyway.
            Err(_) => live::Generation { server: first, watched: vec![], refresh: vec![], restart_only: String::new() },
        };
        let source = Arc::new(source);
        tokio::spawn(live::reloads(live.clone(), triggers, pending, first, move |previous| {
            let source = source.clone();
            async move { rebuild(&source, watch, previous).await }
        }));
    }
}

/// The next generation from the config as it is now: everything loaded and
/// started beside the running one; any problem that would stop start-up
/// stops the reload instead.
async fn rebuild(source: &SourceArgs, watch: bool, previous: CodemodeServer) -> Result<live::Generation, Vec<String>> {
    let (config, file) = source.config()?;
    let Loaded { apis, servers, problems, fatal } = load_everything(source, &config, &file).await;
    if fatal {
        return Err(problems.iter().map(|p| p.to_string()).collect());
    }
    for p in &problems {
        tracing::warn!("{p}");
    }
    let service = service::Service::start(apis, servers, &config, sandbox_options(source, &config))
        .await
        .map_err(|e| vec![format!("{file}: {e}")])?;
    // The sign-in store belongs to the HTTP listener, which a reload keeps.
    if let Some(c) = previous.service().user_credentials() {
        service.set_user_credentials(c);
    }
    Ok(generation(&config, &file, source, previous.reloaded(Arc::new(service)), watch))
}

/// What a generation watches and refreshes, from its config.
fn generation(
    config: &Config,
    file: &str,
    source: &SourceArgs,
    server: CodemodeServer,
    watch: bool,
) -> live::Generation {
    let remote = |s: &str| s.starts_with("http://") || s.starts_with("https://");
    let mut watched = Vec::new();
    if watch {
        // `file` is the path the config was read from, or "command line".
        if std::path::Path::new(file).is_file() {
            watched.push(PathBuf::from(file));
        }
        watched.extend(source.mcp_config.clone());
        for api in &config.apis {
            for location in config.spec_locations(api) {
                if !remote(&location) {
                    watched.push(PathBuf::from(location));
                }
            }
        }
    }
    let refresh = config
        .apis
        .iter()
        .filter_map(|api| {
            let every = std::time::Duration::from_secs_f64(api.refresh_secs?);
            // An introspected GraphQL schema is asked again through the
            // client that introspected it.
            if api.kind == config::ApiKind::Graphql && api.spec.is_empty() {
                let loaded = server.service().apis.iter().find(|a| a.name == api.name)?;
                let upstream = loaded.graphql.as_ref()?.introspected.clone()?;
                return Some(live::Refresh {
                    api: api.name.clone(),
                    of: live::RefreshOf::Introspection(Box::new(upstream)),
                    every,
                });
            }
            let url = url::Url::parse(&config.spec_location(api)).ok().filter(|u| remote(u.as_str()))?;
            Some(live::Refresh { api: api.name.clone(), of: live::RefreshOf::Url(url), every })
        })
        .collect();
    // Debug text, compared only: what changed in these needs a restart.
    let restart_only = format!("{:?} {:?}", config.server, config.auth);
    live::Generation { server, watched, refresh, restart_only }
}

/// `serve` over stdio: one session, reloadable like HTTP.
async fn serve_stdio(source: &SourceArgs, started: Instant, reloading: Reloading) -> ExitCode {
    // Over stdio: no HTTP request to forward a credential from.
    if let Ok((config, file)) = source.config() {
        let problems = config.stdio_problems();
        for p in &problems {
            eprintln!("error: {file}: {p}");
        }
        if !problems.is_empty() {
            return ExitCode::from(2);
        }
    }
    let server = match start(source, started).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let live = live::Live::new(server.clone());
    reloading.spawn(&live, server);
    let running = match live.clone().serve(stdio::transport()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: MCP session failed to start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ended = running.waiting().await;
    live.current().service().shutdown().await;
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

/// `codemode install <client>`.
fn install(a: InstallArgs) -> ExitCode {
    let config = match discover::Places::from_env().find(a.config.as_deref()) {
        Ok(found) => found.map(|f| std::path::absolute(&f.path).unwrap_or(f.path)),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(c) = config.as_ref().filter(|c| !c.is_file()) {
        eprintln!("error: {}: no such config file (write one with `codemode init`)", c.display());
        return ExitCode::from(2);
    }
    let mut args = vec!["serve".to_string()];
    if let Some(c) = &config {
        args.extend(["--config".into(), c.display().to_string()]);
    }
    let request = install::Request {
        client: a.client,
        name: a.name,
        command: a.command.unwrap_or_else(install::this_binary),
        args,
        file: a.file,
    };
    let done = if a.print { request.print() } else { request.write() };
    match done {
        Ok(text) => {
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
            if config.is_none() {
                eprintln!(
                    "note: no config file was found, so the entry runs `codemode serve` alone: it will read ${} or {} (create it with `codemode init`)",
                    discover::ENV,
                    discover::Places::from_env().user_file().map(|p| p.display().to_string()).unwrap_or_default()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// `codemode init`: write the file, then `check` it.
async fn init(a: InitArgs) -> ExitCode {
    if a.output.exists() && !a.force {
        eprintln!("error: {} exists: pass --force to overwrite it, or --output another path", a.output.display());
        return ExitCode::from(2);
    }
    let source = match (&a.spec, &a.from) {
        (Some(spec), _) => {
            let name = a.name.clone().unwrap_or_else(|| name_from_location(spec));
            // A local spec is written relative to the new file when it can
            // be, else absolute, so the config works from any directory.
            let location = if spec.starts_with("http://") || spec.starts_with("https://") {
                spec.clone()
            } else {
                let abs = std::path::absolute(spec).unwrap_or_else(|_| PathBuf::from(spec));
                let dir = std::path::absolute(&a.output)
                    .ok()
                    .and_then(|o| o.parent().map(std::path::Path::to_path_buf))
                    .unwrap_or_default();
                abs.strip_prefix(&dir).map(|r| r.display().to_string()).unwrap_or_else(|_| abs.display().to_string())
            };
            init::Source::Spec { location, name, base_url: a.base_url.clone() }
        }
        (None, Some(from)) => init::Source::McpFile(from.clone()),
        (None, None) => unreachable!("clap requires --spec or --from"),
    };
    let text = match init::render(&source) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = a.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("error: {}: cannot create: {e}", dir.display());
            return ExitCode::from(2);
        }
    }
    if let Err(e) = std::fs::write(&a.output, text) {
        eprintln!("error: {}: cannot write: {e}", a.output.display());
        return ExitCode::from(2);
    }
    println!("wrote {}", a.output.display());
    if a.no_check {
        return ExitCode::SUCCESS;
    }
    println!("codemode check --config {}", a.output.display());
    let source = SourceArgs {
        config: Some(a.output.clone()),
        spec: None,
        base_url: None,
        name: None,
        bearer_env: None,
        allow_writes: false,
        mock: false,
        dry_run: false,
        mcp_config: None,
        isolation: None,
    };
    check(&source).await
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
    let found = match discover::Places::from_env().find(a.config.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut store = match found {
        Some(discover::Found { path, origin: discover::Origin::Flag | discover::Origin::Env }) => {
            match Config::load(&path) {
                Ok(c) => c.audit,
                Err(ps) => {
                    for p in ps {
                        eprintln!("error: {p}");
                    }
                    return ExitCode::from(2);
                }
            }
        }
        // A discovered file that does not load: the default store, as before.
        Some(found) => Config::load(&found.path).map(|c| c.audit).unwrap_or_default(),
        None => Default::default(),
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
    let (config, file, config_problems) = match source.config_checked() {
        Ok(c) => c,
        Err(ps) => {
            for p in &ps {
                println!("{p}");
            }
            println!("{} problem(s)", ps.len());
            return ExitCode::FAILURE;
        }
    };
    // Even when an API did not load (`fatal`), the rest is started and
    // checked (the sandbox, every MCP server), so one run lists every problem.
    let Loaded { apis, servers, problems: loaded, fatal: _ } = load_everything(source, &config, &file).await;
    let mut problems: Vec<service::LoadProblem> = config_problems.into_iter().map(service::LoadProblem).collect();
    problems.extend(loaded);
    if config.server.transport == codemode_http::Transport::Http || config.auth.is_configured() {
        let names: Vec<String> =
            config.apis.iter().map(|a| a.name.clone()).chain(config.mcp.iter().map(|m| m.name.clone())).collect();
        for p in codemode_http::check(&config.server, &config.auth, &names) {
            problems.push(service::LoadProblem(format!("{file}: {p}")));
        }
    }
    if config.server.transport == codemode_http::Transport::Stdio {
        for p in config.stdio_problems() {
            problems.push(service::LoadProblem(format!("{file}: {p}")));
        }
    }
    for notice in config.passthrough_notices() {
        println!("{notice}");
    }
    for p in &problems {
        println!("{p}");
    }
    for line in cache_report(&config) {
        println!("{line}");
    }
    let mut count = problems.len();
    {
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
                // Every upstream MCP server, connected or not: tool counts
                // for those that answered, the error for those that did not.
                for st in s.portal.as_ref().map(|p| p.status()).unwrap_or_default() {
                    let what = st.upstream.as_deref().map(|u| format!(" ({u})")).unwrap_or_default();
                    match &st.state {
                        codemode_portal::ServerState::Ready => {
                            println!("mcp: {}{what}: connected, {} tools", st.name, st.tools)
                        }
                        codemode_portal::ServerState::Failed(e)
                        | codemode_portal::ServerState::Reconnecting { last_error: e, .. } => {
                            println!("{file}: mcp server `{}` failed: {e}", st.name);
                            count += 1;
                        }
                        // A server that needs a person to sign in: the fix, not a silent "connecting".
                        codemode_portal::ServerState::NeedsSignIn(message) => {
                            println!("{file}: mcp `{}`: {message}", st.name);
                            count += 1;
                        }
                        // Nothing to connect to before a principal calls.
                        codemode_portal::ServerState::PerPrincipal { .. } => println!(
                            "mcp: {}: per principal: each principal's own upstream session, opened with its own credential on its first use (not connected by check)",
                            st.name
                        ),
                        other => {
                            println!("{file}: mcp server `{}` did not connect ({other:?})", st.name);
                            count += 1;
                        }
                    }
                    for p in &st.problems {
                        println!("mcp: {}: {p}", st.name);
                    }
                }
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

/// `codemode login <server>`: the sign-in of one OAuth `[[mcp]]` server.
async fn login(source: &SourceArgs, name: &str, open: bool, timeout_secs: u64) -> ExitCode {
    let (config, file) = match source.config() {
        Ok(c) => c,
        Err(ps) => {
            for p in &ps {
                eprintln!("error: {p}");
            }
            return ExitCode::from(2);
        }
    };
    let servers = match mcp_servers(source, &config, &file) {
        Ok((servers, problems)) => {
            for p in problems.iter().filter(|p| p.0.contains(&format!("mcp[{}]", index_of(&config, name)))) {
                eprintln!("error: {p}");
            }
            servers
        }
        Err(p) => {
            eprintln!("error: {p}");
            return ExitCode::from(2);
        }
    };
    let Some(server) = servers.iter().find(|s| s.name == name) else {
        let names: Vec<&str> = servers.iter().filter(|s| s.oauth.is_some()).map(|s| s.name.as_str()).collect();
        eprintln!(
            "error: {file}: no [[mcp]] server named `{name}` (servers with OAuth: {})",
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        );
        return ExitCode::from(2);
    };
    let options = codemode_portal::oauth::LoginOptions {
        open_browser: open,
        timeout: std::time::Duration::from_secs(timeout_secs),
    };
    let mut out = std::io::stdout();
    match codemode_portal::oauth::login(server, &options, &mut out).await {
        Ok(r) => {
            let scopes = if r.scopes.is_empty() { "none named".to_string() } else { r.scopes.join(" ") };
            let lasts = r.expires_in.map(|s| format!("; the access token lasts {s}s")).unwrap_or_default();
            let refresh = if r.refreshable {
                "; codemode refreshes it before it expires"
            } else {
                "; no refresh token was issued, so sign in again when it expires"
            };
            match &r.store {
                Some(p) => println!("signed in to `{name}` (scopes: {scopes}){lasts}{refresh}; tokens stored encrypted in {}", p.display()),
                None => println!("`{name}` accepted codemode's client credentials (scopes: {scopes}){lasts}; nothing is stored: `serve` gets its own token"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The index of `[[mcp]]` table `name` (for its problems), or usize::MAX.
fn index_of(config: &Config, name: &str) -> usize {
    config.mcp.iter().position(|m| m.name == name).unwrap_or(usize::MAX)
}

/// For each API whose spec is at an http(s) URL: how old its cached copy
/// is (what a server down at the next start would serve).
fn cache_report(config: &Config) -> Vec<String> {
    use codemode_spec::cache;
    let mut lines = Vec::new();
    for api in &config.apis {
        if api.kind == config::ApiKind::Graphql && api.spec.is_empty() {
            let endpoint = api.url.as_deref().and_then(|u| url::Url::parse(u).ok());
            let Some(endpoint) = endpoint else { continue };
            let name = &api.name;
            let key = graphql::introspection_key(name, endpoint.as_str());
            lines.push(match (cache::dir(), cache::info_of(&key)) {
                (None, _) => format!("{name}: schema introspected at {endpoint}: not cached (CODEMODE_CACHE_DIR=off, or no cache directory)"),
                (Some(dir), None) => format!("{name}: schema introspected at {endpoint}: no cached copy yet in {}", dir.display()),
                (Some(_), Some(info)) => format!(
                    "{name}: schema introspected at {endpoint}: cached copy confirmed by its server {} ago ({} bytes; each start introspects again and compares)",
                    cache::human_age(info.age_secs()),
                    info.bytes
                ),
            });
            continue;
        }
        let Some(url) =
            url::Url::parse(&config.spec_location(api)).ok().filter(|u| matches!(u.scheme(), "http" | "https"))
        else {
            continue;
        };
        let name = &api.name;
        let line = match (cache::dir(), cache::info(&url)) {
            (None, _) => format!("{name}: spec {url}: not cached (CODEMODE_CACHE_DIR=off, or no cache directory)"),
            (Some(dir), None) => format!("{name}: spec {url}: no cached copy yet in {}", dir.display()),
            (Some(_), Some(info)) => {
                let validator = match (&info.etag, &info.last_modified) {
                    (Some(e), _) => format!("ETag {e}"),
                    (None, Some(lm)) => format!("Last-Modified {lm}"),
                    (None, None) => "no validator: every start downloads it again".into(),
                };
                let refresh = match api.refresh_secs {
                    Some(s) => format!(", refreshed every {}", cache::human_age(s as u64)),
                    None => String::new(),
                };
                format!(
                    "{name}: spec {url}: cached copy confirmed by its server {} ago ({} bytes, {validator}{refresh})",
                    cache::human_age(info.age_secs()),
                    info.bytes
                )
            }
        };
        lines.push(line);
    }
    lines
}

/// `[[mcp]]` servers from the config plus those of `--mcp-config`.
fn mcp_servers(
    source: &SourceArgs,
    config: &Config,
    file: &str,
) -> Result<(Vec<codemode_portal::ServerConfig>, Vec<service::LoadProblem>), service::LoadProblem> {
    let (mut servers, problems) = service::mcp_servers(config, file);
    if let Some(path) = &source.mcp_config {
        let more = mcp_file::read(path, &|name| std::env::var(name).ok()).map_err(service::LoadProblem)?;
        servers.extend(more);
    }
    Ok((servers, problems))
}

/// `serve` over MCP Streamable HTTP; `Err` (handing `reloading` back) when
/// the transport is stdio. The listener starts first (`/healthz` answers at
/// once); `/readyz` and `/mcp` answer once every API has loaded.
async fn serve_http(
    source: &SourceArgs,
    transport: Option<codemode_http::Transport>,
    listen: Option<String>,
    started: Instant,
    reloading: Reloading,
) -> Result<ExitCode, Reloading> {
    // A config that does not load is reported by `start` (stdio's path).
    let Ok((mut config, file)) = source.config() else { return Err(reloading) };
    let transport =
        transport.unwrap_or(if listen.is_some() { codemode_http::Transport::Http } else { config.server.transport });
    if transport != codemode_http::Transport::Http {
        return Err(reloading);
    }
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    let names: Vec<String> =
        config.apis.iter().map(|a| a.name.clone()).chain(config.mcp.iter().map(|m| m.name.clone())).collect();
    let http = match codemode_http::HttpServer::<live::Live>::bind(&config.server, &config.auth, &names).await {
        Ok(h) => h,
        Err(e) => {
            for line in e.to_string().lines() {
                eprintln!("error: {file}: {line}");
            }
            return Ok(ExitCode::from(2));
        }
    };
    let mut http = http;
    // `/metrics` (opt-in): rendered from the service's telemetry once it runs.
    let metrics = (config.telemetry.prometheus && std::env::var("OTEL_SDK_DISABLED").map_or(true, |v| v != "true"))
        .then(|| http.serve_metrics());
    let ready = http.ready_handle();
    let user_credentials = http.user_credentials();
    let mut serving = tokio::spawn(http.run(codemode_http::shutdown_signal()));
    let server = tokio::select! {
        s = start(source, started) => match s {
            Ok(s) => s,
            Err(code) => {
                serving.abort();
                return Ok(code);
            }
        },
        _ = &mut serving => return Ok(ExitCode::SUCCESS),
    };
    let live = live::Live::new(server.clone());
    if let Some(c) = user_credentials {
        server.service().set_user_credentials(c);
    }
    if let Some(m) = metrics {
        // The current generation's: a reload starts its counters afresh.
        let live = live.clone();
        m.set(Arc::new(move || live.current().service().telemetry.prometheus_text()));
    }
    ready.set(live.clone());
    reloading.spawn(&live, server);
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
    live.current().service().shutdown().await;
    Ok(code)
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
    // A server that is this codemode on this config would start itself
    // again and again: left out (never started, not even by `check`), and fatal.
    let cwd = std::env::current_dir().unwrap_or_default();
    let (looping, servers): (Vec<_>, Vec<_>) = servers
        .into_iter()
        .partition(|s| file != "command line" && mcp_file::starts_itself(s, std::path::Path::new(file), &cwd));
    for s in looping {
        fatal = true;
        problems.push(service::LoadProblem(format!(
            "{file}: MCP server `{}` starts codemode on this same config: it would start itself again and again; remove it, or give it a config of its own (--config)",
            s.name
        )));
    }
    Loaded { apis, servers, problems, fatal }
}
