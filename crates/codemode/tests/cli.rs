//! Drives the real binary's commands: check, tokens, search and exec.

use std::path::PathBuf;
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_codemode"));
    c.env("CODEMODE_LOG", "warn");
    c
}

fn spec(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/specs").join(name).to_string_lossy().into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("codemode-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const ALL: [(&str, &str); 7] = [
    ("cloudflare", "cloudflare-2024-08-06.openapi.json"),
    ("github", "github-octokit-23.0.2.api.github.com.json"),
    ("stripe", "stripe-2023-09-12.spec3.yaml"),
    ("kubernetes", "kubernetes-1.12-2018-10.swagger.json"),
    ("twilio", "twilio_api_v2010.json"),
    ("httpbin", "httpbin-0.10.4.spec.json"),
    ("kinto", "kinto-26.5.0.swagger.json"),
];

fn config_for(apis: &[(&str, &str)]) -> String {
    apis.iter()
        .map(|(n, f)| format!("[[api]]\nname = \"{n}\"\nspec = \"{}\"\nbase_url = \"http://127.0.0.1:9\"\n", spec(f)))
        .collect()
}

#[test]
fn check_passes_on_every_shared_spec() {
    let cfg = temp_file("all.toml", &config_for(&ALL));
    let o = bin().args(["check", "--config"]).arg(&cfg).output().unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    // The wall is checked, not assumed: a worker tried what it must not do.
    assert!(out.starts_with("sandbox: process wall holds — a worker (uid "), "{out}");
    for denied in ["execve", "fork", "open", "socket", "ptrace"] {
        assert!(out.lines().next().unwrap().contains(denied), "{out}");
    }
    assert!(out.contains("\nok: cloudflare (1533 operations)"), "{out}");
}

#[test]
fn check_reports_every_problem_with_where_and_how() {
    let broken = temp_file(
        "broken.json",
        r##"{"openapi": "3.0.0", "info": {"title": "t", "version": "1"}, "servers": [{"url": "http://127.0.0.1:9"}],
            "paths": {"/a": {"get": {"responses": {"200": {"description": "x", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Nope"}}}}}}}}}"##,
    );
    let cfg = temp_file(
        "broken.toml",
        &format!(
            "[[api]]\nname = \"a\"\nspec = \"{}\"\nauth = {{ type = \"bearer\", token_env = \"CODEMODE_TEST_UNSET_VAR\" }}\n[[api]]\nname = \"b\"\nspec = \"/nonexistent/spec.yaml\"\n",
            broken.display()
        ),
    );
    let o = bin().args(["check", "--config"]).arg(&cfg).env_remove("CODEMODE_TEST_UNSET_VAR").output().unwrap();
    assert!(!o.status.success());
    let out = stdout(&o);
    assert!(out.contains("api[0].auth.token_env") && out.contains("CODEMODE_TEST_UNSET_VAR"), "{out}");
    assert!(out.contains("broken.json#/paths/~1a/get/responses/200") && out.contains("Nope"), "{out}");
    assert!(out.contains("api[1].spec") && out.contains("/nonexistent/spec.yaml"), "{out}");
    assert!(out.contains("3 problem(s)"), "{out}");

    let literal = temp_file(
        "literal.toml",
        "[[api]]\nname = \"a\"\nspec = \"x.json\"\nauth = { type = \"basic\", user = \"u\", password = \"hunter2\" }\n",
    );
    let o = bin().args(["check", "--config"]).arg(&literal).output().unwrap();
    assert!(!o.status.success());
    assert!(stdout(&o).contains("password_env"), "{}", stdout(&o));
}

fn tokens(args: &[&str]) -> serde_json::Value {
    let o = bin().arg("tokens").args(args).arg("--json").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn footprint_stays_small_and_grows_slowly() {
    let cf = tokens(&["--spec", &spec("cloudflare-2024-08-06.openapi.json")]);
    let ours = cf["codemode"]["o200k"].as_u64().unwrap();
    let naive = cf["naive_total"]["o200k"].as_u64().unwrap();
    assert!(ours <= 1000, "codemode tools/list is {ours} o200k tokens");
    assert!(naive > 900_000, "naive list is {naive} tokens");
    let cfg = temp_file("all-tokens.toml", &config_for(&ALL));
    let all = tokens(&["--config", cfg.to_str().unwrap()]);
    let with_all = all["codemode"]["o200k"].as_u64().unwrap();
    let cfg1 = temp_file("one-tokens.toml", &config_for(&ALL[..1]));
    let one = tokens(&["--config", cfg1.to_str().unwrap()])["codemode"]["o200k"].as_u64().unwrap();
    let per_extra = (with_all - one) / (ALL.len() as u64 - 1);
    assert!(per_extra <= 150, "each extra API adds {per_extra} tokens ({one} → {with_all})");
}

#[test]
fn search_and_exec_from_the_shell() {
    // Swagger 2.0 is presented in OpenAPI 3 shape.
    let o = bin()
        .args(["search", "--spec", &spec("kinto-26.5.0.swagger.json"), "--base-url", "http://127.0.0.1:9"])
        .arg("async () => Object.keys(spec.paths['/buckets'].post.requestBody.content)")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("application/json"), "{}", stdout(&o));
    // Stripe: a cyclic spec, searched in place.
    let o = bin()
        .args(["search", "--spec", &spec("stripe-2023-09-12.spec3.yaml")])
        .arg("async () => spec.paths['/v1/payouts/{payout}'].get.responses['200'].content['application/json'].schema.properties.original_payout.anyOf[1]")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout(&o).trim(), r##"{"$circular":"#/components/schemas/payout"}"##);
    // exec failures exit non-zero with the message on stdout.
    let o = bin()
        .args(["exec", "--spec", &spec("httpbin-0.10.4.spec.json"), "--base-url", "http://127.0.0.1:9"])
        .arg("async () => api.request({method: 'DELETE', path: '/delete'})")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stdout(&o).contains("allow_writes"), "{}", stdout(&o));
}

#[test]
fn a_spec_with_an_unreadable_ref_stops_start_up_unless_the_api_allows_it() {
    let dir = std::env::temp_dir().join(format!("codemode-cli-refs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let api = dir.join("api.yaml");
    std::fs::write(
        &api,
        "openapi: 3.0.0\ninfo: {title: t, version: '1'}\nservers: [{url: 'http://127.0.0.1:9'}]\npaths:\n  /a:\n    get:\n      parameters: [{$ref: 'params.yaml#/P'}]\n      responses: {'200': {description: ok}}\ncomponents:\n  schemas:\n    Big: {$ref: 'big.yaml'}\n",
    )
    .unwrap();
    std::fs::write(dir.join("params.yaml"), "P: {name: a, in: query\n").unwrap();
    std::fs::write(dir.join("big.yaml"), "type: integer\nmaximum: 18446744073709552000\n").unwrap();
    let config = |extra: &str| {
        let p = dir.join(format!("codemode{}.toml", extra.len()));
        std::fs::write(&p, format!("[[api]]\nname = \"a\"\nspec = \"{}\"\n{extra}", api.display())).unwrap();
        p
    };
    let code =
        "async () => [String(spec.components.schemas.Big.maximum), spec.paths['/a'].get.parameters[0].$unresolved]";

    // Start-up stops, and says what (file, pointer, parser message) and how to fix it.
    let strict = config("");
    let o = bin().args(["search", "--config"]).arg(&strict).arg(code).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("api[0].spec") && err.contains("api.yaml#/paths/~1a/get/parameters/0/$ref"), "{err}");
    assert!(err.contains("params.yaml") && err.contains("invalid YAML") && err.contains("line"), "{err}");
    assert!(err.contains("Fix that document or the reference, or set `allow_unreadable_refs = true`"), "{err}");
    // `codemode check` reports it too.
    let o = bin().args(["check", "--config"]).arg(&strict).output().unwrap();
    assert!(!o.status.success());
    assert!(stdout(&o).contains("allow_unreadable_refs") && stdout(&o).contains("1 problem(s)"), "{}", stdout(&o));

    // Allowed: it starts, the missing part reads as unresolved, the rest is there
    // (a 20-digit integer in YAML reads back as its literal).
    let lenient = config("allow_unreadable_refs = true\n");
    let o = bin().args(["search", "--config"]).arg(&lenient).arg(code).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v, serde_json::json!(["18446744073709552000", "params.yaml#/P"]));
    // An unknown key is still refused (the config's rule), with the known ones named.
    let typo = config("allow_unreadable_ref = true\n");
    let o = bin().args(["check", "--config"]).arg(&typo).output().unwrap();
    assert!(!o.status.success() && stdout(&o).contains("allow_unreadable_ref"), "{}", stdout(&o));
}
