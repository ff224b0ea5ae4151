//! The portal against real MCP servers (installed by tests/peers-setup.sh):
//! server-everything (stdio and Streamable HTTP), server-memory,
//! server-filesystem, mcp-server-time, mcp-server-git, and
//! @ivotoby/openapi-mcp-server on the Cloudflare spec (1,533 tools, some
//! with invalid input schemas).

mod common;

use std::time::{Duration, Instant};

use codemode_portal::{Portal, ServerConfig, ServerState};
use common::*;
use serde_json::{json, Value};

fn err_name(e: &Value) -> &str {
    e["name"].as_str().unwrap_or_default()
}

fn err_msg(e: &Value) -> &str {
    e["message"].as_str().unwrap_or_default()
}

fn git_repo() -> std::path::PathBuf {
    let repo = temp_dir("git");
    let run = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(ok.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&ok.stderr));
    };
    run(&["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "hello\n").unwrap();
    run(&["add", "README.md"]);
    run(&["commit", "-q", "-m", "first commit"]);
    std::fs::write(repo.join("README.md"), "hello\nchanged\n").unwrap();
    repo
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_naming_and_types_across_five_servers() {
    let root = temp_dir("fs");
    let mem = temp_dir("mem").join("memory.jsonl");
    let repo = git_repo();
    let t = Instant::now();
    let portal = Portal::start(
        vec![
            everything_stdio("everything"),
            memory("memory", &mem),
            filesystem("fs", &root),
            time("time"),
            git("git", &repo),
        ],
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    println!("5 servers connected in parallel in {:?}", t.elapsed());
    for s in portal.status() {
        assert_eq!(s.state, ServerState::Ready, "{s:?}");
        println!("  {:<10} {:>3} tools  {:?}", s.name, s.tools, s.upstream);
    }
    let counts: Vec<(String, usize)> = portal.status().into_iter().map(|s| (s.name, s.tools)).collect();
    assert_eq!(
        counts,
        vec![
            ("everything".into(), 13),
            ("memory".into(), 9),
            ("fs".into(), 14),
            ("time".into(), 2),
            ("git".into(), 12)
        ]
    );
    assert_eq!(portal.server_names(), vec!["everything", "memory", "fs", "time", "git"]);
    let tools = portal.tools();
    assert_eq!(tools.len(), 50);
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    for n in [
        "everything_get_sum",
        "everything_get_tiny_image",
        "memory_create_entities",
        "fs_read_text_file",
        "time_get_current_time",
        "git_git_status",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    let sum = portal.tool("everything_get_sum").unwrap();
    assert_eq!((sum.server.as_str(), sum.tool.as_str()), ("everything", "get-sum"));
    assert_eq!(sum.annotations.as_ref().unwrap()["readOnlyHint"], true);
    assert!(tools.iter().all(|t| t.schema_problem.is_none()), "real servers publish object schemas");

    // Snapshot-ish: the declarations for server-everything.
    let ts = portal.types(Some("everything_get_structured_content")).unwrap();
    assert_eq!(
        ts,
        r#"type EverythingGetStructuredContentInput = {
  /** Choose city */
  location: "New York" | "Chicago" | "Los Angeles";
};
type EverythingGetStructuredContentOutput = {
  /** Temperature in celsius */
  temperature: number;
  /** Weather conditions description */
  conditions: string;
  /** Humidity percentage */
  humidity: number;
};

declare const codemode: {
  /**
   * Returns structured content along with an output schema for client data validation
   * Server `everything`, tool `get-structured-content`. Read-only.
   */
  everything_get_structured_content(args: EverythingGetStructuredContentInput): Promise<EverythingGetStructuredContentOutput>;
};
"#
    );
    let all = portal.types(None).unwrap();
    for needle in [
        "everything_get_sum(args: EverythingGetSumInput): Promise<unknown>;",
        "everything_get_env(args?: EverythingGetEnvInput): Promise<unknown>;",
        "type EverythingGetEnvInput = {};",
        "  /**\n   * Number of resource links to return (1-10)\n   * >= 1, <= 10\n   * @default 3\n   */\n  count?: number;",
        "memory_create_entities(args: MemoryCreateEntitiesInput): Promise<MemoryCreateEntitiesOutput>;",
        "    /** An array of observation contents associated with the entity */\n    observations: string[];",
        // $ref into $defs (mcp-server-time's output schema) becomes a named type.
        "  source: TimeConvertTimeOutput_TimeResult;",
        "type TimeConvertTimeOutput_TimeResult = {",
        "Server `fs`, tool `write_file`. Destructive.",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    assert!(all.trim_end().ends_with("};"));
    let t = Instant::now();
    tsc_check(&all, "five-ts").unwrap();
    println!("tsc --strict on the declarations of 50 tools ({} bytes): ok in {:?}", all.len(), t.elapsed());
    let groups = portal.process_groups();
    assert_eq!(groups.len(), 5);
    let t = Instant::now();
    portal.shutdown().await;
    println!("shutdown of 5 stdio servers: {:?}", t.elapsed());
    for (_, g) in groups {
        assert_group_gone(g).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_unwrapping_and_chaining_across_servers() {
    let root = temp_dir("fs");
    std::fs::write(
        root.join("people.json"),
        r#"[{"name": "Ada", "role": "engineer"}, {"name": "Grace", "role": "admiral"}]"#,
    )
    .unwrap();
    let mem = temp_dir("mem").join("memory.jsonl");
    let portal = Portal::start(
        vec![everything_stdio("everything"), memory("memory", &mem), filesystem("fs", &root)],
        Duration::from_secs(30),
    )
    .await
    .unwrap();

    // Validation names the field and what was expected.
    let e = portal.call("everything_get_sum", json!({"a": "1"})).await.unwrap_err();
    assert_eq!(err_name(&e), "InvalidArguments", "{e}");
    assert!(err_msg(&e).contains("args.a: expected number (First number), got string \"1\""), "{e}");
    assert!(err_msg(&e).contains("args.b: missing required field (number: Second number)"), "{e}");
    assert_eq!(e["problems"].as_array().unwrap().len(), 2);
    let e = portal.call("everything_get_structured_content", json!({"location": "Paris"})).await.unwrap_err();
    assert!(err_msg(&e).contains("args.location: expected one of \"New York\", \"Chicago\", \"Los Angeles\""), "{e}");
    let e = portal
        .call("memory_create_entities", json!({"entities": [{"name": "x", "entityType": "t", "observations": [1]}]}))
        .await
        .unwrap_err();
    assert!(err_msg(&e).contains("args.entities[0].observations[0]: expected string, got number 1"), "{e}");

    // Unwrapping: text, structuredContent, image content.
    assert_eq!(portal.call("everything_echo", json!({"message": "hi"})).await.unwrap(), json!("Echo: hi"));
    let sum = portal.call("everything_get_sum", json!({"a": 2, "b": 3})).await.unwrap();
    assert!(sum.as_str().unwrap().contains('5'), "{sum}");
    let weather = portal.call("everything_get_structured_content", json!({"location": "Chicago"})).await.unwrap();
    assert!(weather["temperature"].is_number() && weather["conditions"].is_string(), "{weather}");
    let image = portal.call("everything_get_tiny_image", json!({})).await.unwrap();
    let items = image.as_array().expect("mixed content is a list");
    let img = items.iter().find(|c| c["type"] == "image").expect("an image object");
    assert_eq!(img["mimeType"], "image/png");
    assert!(img["data"].as_str().unwrap().len() > 100);
    assert!(items.iter().any(|c| c.is_string()), "text blocks as values: {image}");

    // Chaining: read a file through filesystem, store entities in memory, read them back.
    let text = portal.call("fs_read_text_file", json!({"path": root.join("people.json")})).await.unwrap();
    // server-filesystem publishes an outputSchema: {content: string}.
    let people: Value = serde_json::from_str(text["content"].as_str().unwrap()).unwrap();
    let entities: Vec<Value> = people
        .as_array()
        .unwrap()
        .iter()
        .map(|p| json!({"name": p["name"], "entityType": "person", "observations": [format!("works as {}", p["role"].as_str().unwrap())]}))
        .collect();
    let created = portal.call("memory_create_entities", json!({"entities": entities})).await.unwrap();
    assert_eq!(created["entities"].as_array().unwrap().len(), 2, "{created}");
    let found = portal.call("memory_search_nodes", json!({"query": "admiral"})).await.unwrap();
    let names: Vec<&str> = found["entities"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["Grace"], "{found}");
    let graph = portal.call("memory_read_graph", json!({})).await.unwrap();
    assert_eq!(graph["entities"].as_array().unwrap().len(), 2);

    // A tool error from the upstream (path outside the allowed root).
    let e = portal.call("fs_read_text_file", json!({"path": "/etc/hostname"})).await.unwrap_err();
    assert_eq!(err_name(&e), "ToolError", "{e}");
    assert!(err_msg(&e).contains("outside allowed directories") || err_msg(&e).contains("Access denied"), "{e}");
    assert_eq!((e["server"].as_str(), e["tool"].as_str()), (Some("fs"), Some("read_text_file")));
    portal.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_and_git_from_pip() {
    let repo = git_repo();
    let portal = Portal::start(vec![time("time"), git("git", &repo)], Duration::from_secs(30)).await.unwrap();
    let now = portal.call("time_get_current_time", json!({"timezone": "UTC"})).await.unwrap();
    assert_eq!(now["timezone"], "UTC", "{now}");
    assert!(now["datetime"].as_str().unwrap().contains('T'));
    let conv = portal
        .call("time_convert_time", json!({"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}))
        .await
        .unwrap();
    assert!(conv["target"]["datetime"].as_str().unwrap().contains("21:00"), "{conv}");
    let e = portal.call("time_get_current_time", json!({"timezone": "Mars/Olympus"})).await.unwrap_err();
    assert_eq!(err_name(&e), "ToolError", "{e}");
    let status = portal.call("git_git_status", json!({"repo_path": repo})).await.unwrap();
    assert!(status.to_string().contains("README.md"), "{status}");
    let log = portal.call("git_git_log", json!({"repo_path": repo})).await.unwrap();
    assert!(log.to_string().contains("first commit"), "{log}");
    portal.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_allow_deny_read_only() {
    let root = temp_dir("fs");
    std::fs::write(root.join("a.txt"), "A").unwrap();
    let mut fs = filesystem("fs", &root);
    fs.read_only = true;
    let mut ev = everything_stdio("everything");
    ev.allow = vec!["get-*".into(), "echo".into()];
    ev.deny = vec!["get_env".into()]; // sanitised local name also matches
    let portal = Portal::start(vec![fs, ev], Duration::from_secs(30)).await.unwrap();
    let names: Vec<String> = portal.tools().into_iter().map(|t| t.name).collect();
    assert!(names.contains(&"fs_read_text_file".to_string()) && names.contains(&"fs_list_directory".to_string()));
    assert!(!names.iter().any(|n| n == "fs_write_file" || n == "fs_edit_file" || n == "fs_move_file"), "{names:?}");
    assert!(names.contains(&"everything_get_sum".to_string()) && names.contains(&"everything_echo".to_string()));
    assert!(!names.contains(&"everything_get_env".to_string()), "denied");
    assert!(!names.contains(&"everything_toggle_simulated_logging".to_string()), "not allowed");
    let e = portal.call("fs_write_file", json!({"path": root.join("b.txt"), "content": "x"})).await.unwrap_err();
    assert_eq!(err_name(&e), "ToolNotAllowed", "{e}");
    assert!(err_msg(&e).contains("read-only"), "{e}");
    assert!(!root.join("b.txt").exists());
    let e = portal.call("everything_get_env", json!({})).await.unwrap_err();
    assert!(err_msg(&e).contains("deny pattern `get_env`"), "{e}");
    let e = portal.call("everything_toggle_simulated_logging", json!({})).await.unwrap_err();
    assert!(err_msg(&e).contains("none of the allowed patterns"), "{e}");
    assert!(portal.types(Some("fs_write_file")).unwrap_err().contains("not available"));
    assert_eq!(
        portal.call("fs_read_text_file", json!({"path": root.join("a.txt")})).await.unwrap(),
        json!({"content": "A"})
    );
    portal.shutdown().await;
}

/// server-everything over Streamable HTTP, started on a free port.
struct HttpEverything {
    child: tokio::process::Child,
    url: String,
}

async fn http_everything() -> HttpEverything {
    let port = free_port();
    let child = everything_on(port, "streamableHttp");
    wait_for_port(port, Duration::from_secs(60)).await;
    HttpEverything { child, url: format!("http://127.0.0.1:{port}/mcp") }
}

/// server-everything in `mode` (`streamableHttp`, `sse`) on `port`.
fn everything_on(port: u16, mode: &str) -> tokio::process::Child {
    tokio::process::Command::new("node")
        .arg(node_module("@modelcontextprotocol/server-everything/dist/index.js"))
        .arg(mode)
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamable_http_everything() {
    init_logs();
    let mut server = http_everything().await;
    let t = Instant::now();
    let portal = Portal::start(vec![ServerConfig::http("web", &server.url)], Duration::from_secs(30)).await.unwrap();
    println!("server-everything over Streamable HTTP: connected in {:?}", t.elapsed());
    let st = &portal.status()[0];
    assert_eq!(st.state, ServerState::Ready, "{st:?}");
    assert_eq!(st.tools, 13);
    assert!(portal.process_groups().is_empty(), "no child process for HTTP");
    assert_eq!(portal.call("web_echo", json!({"message": "over http"})).await.unwrap(), json!("Echo: over http"));
    let w = portal.call("web_get_structured_content", json!({"location": "New York"})).await.unwrap();
    assert!(w["humidity"].is_number());
    let e = portal.call("web_get_sum", json!({"a": 1})).await.unwrap_err();
    assert!(err_msg(&e).contains("args.b"), "{e}");
    // Parallel calls on one HTTP session.
    let t = Instant::now();
    let calls = (0..20).map(|i| portal.call("web_get_sum", json!({"a": i, "b": 1})));
    let results = futures::future::join_all(calls).await;
    println!("20 parallel get-sum calls over Streamable HTTP: {:?}", t.elapsed());
    for (i, r) in results.iter().enumerate() {
        assert!(r.as_ref().unwrap().as_str().unwrap().contains(&(i + 1).to_string()), "{r:?}");
    }
    // The server goes away: calls fail clearly, nothing hangs.
    server.child.kill().await.unwrap();
    let t = Instant::now();
    let e = portal.call("web_echo", json!({"message": "gone"})).await.unwrap_err();
    println!("after the HTTP server died ({:?}): {e}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert!(["UpstreamError", "UpstreamUnavailable"].contains(&err_name(&e)), "{e}");
    // It comes back on the same port: the portal reconnects.
    let port: u16 = server.url.trim_start_matches("http://127.0.0.1:").trim_end_matches("/mcp").parse().unwrap();
    let _again = tokio::process::Command::new("node")
        .arg(node_module("@modelcontextprotocol/server-everything/dist/index.js"))
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for_port(port, Duration::from_secs(60)).await;
    let t = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        match portal.call("web_echo", json!({"message": "back"})).await {
            Ok(v) => {
                assert_eq!(v, json!("Echo: back"));
                break;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "never recovered: {e} {:?}", portal.status());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    println!("recovered {:?} after the HTTP server came back; state {:?}", t.elapsed(), portal.status()[0].state);
    portal.shutdown().await;
}

/// server-everything over the legacy HTTP+SSE transport (`sse`).
fn sse_everything(port: u16) -> tokio::process::Child {
    everything_on(port, "sse")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_sse_everything() {
    init_logs();
    let port = free_port();
    let mut child = sse_everything(port);
    wait_for_port(port, Duration::from_secs(60)).await;
    let url = format!("http://127.0.0.1:{port}/sse");
    let t = Instant::now();
    let portal = Portal::start(vec![ServerConfig::sse("old", &url)], Duration::from_secs(30)).await.unwrap();
    println!("server-everything over HTTP+SSE: connected in {:?}", t.elapsed());
    let st = &portal.status()[0];
    assert_eq!(st.state, ServerState::Ready, "{st:?}");
    assert_eq!(st.tools, 13);
    assert_eq!(portal.call("old_echo", json!({"message": "over sse"})).await.unwrap(), json!("Echo: over sse"));
    let e = portal.call("old_get_sum", json!({"a": 1})).await.unwrap_err();
    assert!(err_msg(&e).contains("args.b"), "{e}");
    // Parallel calls on one session: answers matched to their requests.
    let t = Instant::now();
    let calls = (0..20).map(|i| portal.call("old_get_sum", json!({"a": i, "b": 1})));
    let results = futures::future::join_all(calls).await;
    println!("20 parallel get-sum calls over HTTP+SSE: {:?}", t.elapsed());
    for (i, r) in results.iter().enumerate() {
        assert!(r.as_ref().unwrap().as_str().unwrap().contains(&(i + 1).to_string()), "{r:?}");
    }
    // The server goes away: calls fail clearly, nothing hangs; it comes
    // back on the same port and the portal reconnects.
    child.kill().await.unwrap();
    let t = Instant::now();
    let e = portal.call("old_echo", json!({"message": "gone"})).await.unwrap_err();
    println!("after the SSE server died ({:?}): {e}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert!(["UpstreamError", "UpstreamUnavailable"].contains(&err_name(&e)), "{e}");
    let _again = sse_everything(port);
    wait_for_port(port, Duration::from_secs(60)).await;
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        match portal.call("old_echo", json!({"message": "back"})).await {
            Ok(v) => {
                assert_eq!(v, json!("Echo: back"));
                break;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "never recovered: {e} {:?}", portal.status());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    portal.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_sse_refuses_what_is_not_an_sse_stream() {
    // A Streamable HTTP endpoint named as `sse`: a clear error, not a hang.
    let everything = http_everything().await;
    let url = everything.url.clone();
    let options = codemode_portal::PortalOptions { max_attempts: 1, ..Default::default() };
    let portal =
        Portal::start_with(vec![ServerConfig::sse("x", &url)], Duration::from_secs(10), options).await.unwrap();
    let st = &portal.status()[0];
    assert_ne!(st.state, ServerState::Ready, "{st:?}");
    let e = portal.call("x_echo", json!({"message": "x"})).await.unwrap_err();
    println!("an SSE client at a Streamable HTTP endpoint: {e} / {:?}", portal.status()[0]);
    portal.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudflare_openapi_server_huge_and_partly_invalid() {
    let t = Instant::now();
    let portal = Portal::start(vec![cloudflare_openapi("cf"), everything_stdio("everything")], Duration::from_secs(60))
        .await
        .unwrap();
    println!("openapi-mcp-server (Cloudflare spec) + everything: {:?}", t.elapsed());
    let st = &portal.status()[0];
    assert_eq!(st.state, ServerState::Ready, "{st:?}");
    let tools: Vec<_> = portal.tools().into_iter().filter(|t| t.server == "cf").collect();
    assert_eq!(tools.len(), 1533, "{:?}", st.problems);
    let bad: Vec<_> = tools.iter().filter(|t| t.schema_problem.is_some()).collect();
    assert_eq!(bad.len(), 60, "allOf request bodies without `type: object`");
    assert!(bad[0].schema_problem.as_deref().unwrap().contains("allOf"), "{:?}", bad[0].schema_problem);
    assert!(st.problems.iter().any(|p| p.contains("60 tool(s) have schema problems")), "{:?}", st.problems);
    assert!(tools.iter().all(|t| t.name.starts_with("cf_") && !t.name.contains('-')));
    // The other server is unaffected.
    assert_eq!(portal.call("everything_echo", json!({"message": "x"})).await.unwrap(), json!("Echo: x"));

    let t = Instant::now();
    let n = portal.tools().len();
    let json = serde_json::to_string(&portal.tools()).unwrap();
    println!("tools() twice ({n} tools) + serialising them ({} KB): {:?}", json.len() / 1024, t.elapsed());
    // Types for one broken tool, and for all 1,533 (type-checked).
    let one = portal.types(Some(&bad[0].name)).unwrap();
    assert!(
        one.contains(" & (") || one.contains(" & {"),
        "allOf becomes an intersection: {}",
        &one[..one.len().min(2000)]
    );
    assert!(one.contains("Note: inputSchema has no `type: \"object\"`"), "{}", &one[..one.len().min(3000)]);
    let t = Instant::now();
    let all = portal.types(None).unwrap();
    println!("types() for {} tools: {} KB in {:?}", portal.tools().len(), all.len() / 1024, t.elapsed());
    let t = Instant::now();
    tsc_check(&all, "cf-ts").unwrap();
    println!("tsc --strict on them: ok in {:?}", t.elapsed());

    // Validation on a bad-schema tool still uses what is there (allOf).
    let name = &bad[0].name;
    let e = portal.call(name, json!({"account_id": 5})).await.unwrap_err();
    assert_eq!(err_name(&e), "InvalidArguments", "{e}");
    assert!(err_msg(&e).contains("args.account_id: expected string"), "{e}");
    // A valid call reaches the upstream, which fails to reach its (closed) API: a tool error.
    let e = portal.call("cf_accounts_list_accounts", json!({})).await.unwrap_err();
    assert_eq!(err_name(&e), "ToolError", "{e}");
    println!("cf_accounts_list_accounts → {}", err_msg(&e));
    portal.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timings() {
    use rmcp::model::CallToolRequestParams;
    use rmcp::ServiceExt;

    // Connect time per server, one at a time.
    let root = temp_dir("fs");
    let mem = temp_dir("mem").join("memory.jsonl");
    let repo = git_repo();
    let mut http = http_everything().await;
    let servers = vec![
        everything_stdio("everything"),
        memory("memory", &mem),
        filesystem("fs", &root),
        time("time"),
        git("git", &repo),
        cloudflare_openapi("cf"),
        ServerConfig::http("web", &http.url),
    ];
    println!("connect (spawn/dial + initialize + tools/list), one server at a time:");
    for s in servers {
        let name = s.name.clone();
        let t = Instant::now();
        let p = Portal::start(vec![s], Duration::from_secs(60)).await.unwrap();
        let took = t.elapsed();
        let st = &p.status()[0];
        assert_eq!(st.state, ServerState::Ready, "{st:?}");
        println!("  {name:<10} {:>5} ms  {:>4} tools", took.as_millis(), st.tools);
        p.shutdown().await;
    }

    // Overhead per call: the portal vs a plain rmcp client calling the same
    // upstream (each its own server-everything process), interleaved rounds.
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(node_module("@modelcontextprotocol/server-everything/dist/index.js")).arg("stdio");
    cmd.stderr(std::process::Stdio::null());
    let direct = ().serve(rmcp::transport::TokioChildProcess::new(cmd).unwrap()).await.unwrap();
    let portal = Portal::start(vec![everything_stdio("everything")], Duration::from_secs(30)).await.unwrap();
    let mut args = serde_json::Map::new();
    args.insert("message".into(), json!("ping"));
    let (mut direct_t, mut portal_t) = (Duration::ZERO, Duration::ZERO);
    const ROUNDS: u32 = 5;
    const PER: u32 = 50;
    for round in 0..=ROUNDS {
        let t = Instant::now();
        for _ in 0..PER {
            direct.call_tool(CallToolRequestParams::new("echo").with_arguments(args.clone())).await.unwrap();
        }
        let d = t.elapsed();
        let t = Instant::now();
        for _ in 0..PER {
            portal.call("everything_echo", json!({"message": "ping"})).await.unwrap();
        }
        let p = t.elapsed();
        if round > 0 {
            // round 0 warms up
            direct_t += d;
            portal_t += p;
        }
    }
    let n = (ROUNDS * PER) as f64;
    let (direct_us, portal_us) = (direct_t.as_micros() as f64 / n, portal_t.as_micros() as f64 / n);
    println!(
        "sequential echo over stdio, mean of {n}: plain rmcp client {direct_us:.0} µs, portal {portal_us:.0} µs (difference {:+.0} µs)",
        portal_us - direct_us
    );
    direct.cancel().await.unwrap();
    // The portal's own work per call, without I/O: lookup + validation (an invalid call stops there).
    let t = Instant::now();
    for _ in 0..1000 {
        portal.call("everything_get_sum", json!({"a": 1, "b": "x"})).await.unwrap_err();
    }
    println!("lookup + validation + error object, no I/O: {:.1} µs per call", t.elapsed().as_micros() as f64 / 1000.0);

    // 20 parallel calls vs 20 sequential.
    let t = Instant::now();
    let results =
        futures::future::join_all((0..20).map(|i| portal.call("everything_get_sum", json!({"a": i, "b": 1})))).await;
    let par = t.elapsed();
    assert!(results.iter().all(Result::is_ok));
    let t = Instant::now();
    for i in 0..20 {
        portal.call("everything_get_sum", json!({"a": i, "b": 1})).await.unwrap();
    }
    println!("20 get-sum calls over stdio: parallel {par:?}, sequential {:?}", t.elapsed());
    let t = Instant::now();
    let results = futures::future::join_all(
        (0..20).map(|_| portal.call("everything_trigger_long_running_operation", json!({"duration": 1, "steps": 2}))),
    )
    .await;
    let par_slow = t.elapsed();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // One after the other they take 20 s, in parallel about 1 s: half the
    // serial time tells them apart however busy the machine is.
    assert!(par_slow < Duration::from_secs(10), "20 one-second operations took {par_slow:?}: not parallel");
    println!("20 parallel 1-second long-running operations over stdio: {par_slow:?}");
    portal.shutdown().await;

    let portal = Portal::start(vec![ServerConfig::http("web", &http.url)], Duration::from_secs(30)).await.unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let direct = ().serve(rmcp::transport::StreamableHttpClientTransport::from_uri(http.url.as_str())).await.unwrap();
    let (mut direct_t, mut portal_t) = (Duration::ZERO, Duration::ZERO);
    for round in 0..=3 {
        let t = Instant::now();
        for _ in 0..20 {
            direct.call_tool(CallToolRequestParams::new("echo").with_arguments(args.clone())).await.unwrap();
        }
        let d = t.elapsed();
        let t = Instant::now();
        for _ in 0..20 {
            portal.call("web_echo", json!({"message": "ping"})).await.unwrap();
        }
        if round > 0 {
            direct_t += d;
            portal_t += t.elapsed();
        }
    }
    println!(
        "sequential echo over Streamable HTTP, mean of 60: plain rmcp client {:.0} µs, portal {:.0} µs",
        direct_t.as_micros() as f64 / 60.0,
        portal_t.as_micros() as f64 / 60.0
    );
    direct.cancel().await.unwrap();
    let t = Instant::now();
    let results = futures::future::join_all(
        (0..20).map(|_| portal.call("web_trigger_long_running_operation", json!({"duration": 1, "steps": 2}))),
    )
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    println!("20 parallel 1-second long-running operations over Streamable HTTP: {:?}", t.elapsed());
    portal.shutdown().await;
    http.child.kill().await.unwrap();
}
