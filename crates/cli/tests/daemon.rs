//! `sauve run` as a service manager sees it: the real binary, started and
//! stopped with SIGTERM in every state (behaviour §4; issue: it must never hang).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a stopped server may take: the target is a second (it takes
/// well under: each test prints it); twice that leaves room for a loaded
/// machine.
const EXIT_LIMIT: Duration = Duration::from_secs(2);

/// A hang guard for waiting on the child.
const EXIT_GUARD: Duration = Duration::from_secs(10);

fn app(root: &Path, data: Vec<u8>, settings: &[(&str, &str)]) -> PathBuf {
    let app = root.join("App");
    std::fs::create_dir_all(app.join("Data")).unwrap();
    std::fs::write(app.join("Data/App.4DD"), data).unwrap();
    for (k, v) in settings {
        let out = Command::new(env!("CARGO_BIN_EXE_sauve"))
            .args(["settings", "set", k, v, "--app", app.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    app
}

/// A running `sauve run`, its log lines (stderr) read as they come.
struct Server {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    url: String,
    token: String,
}

/// Starts `sauve run` and waits for its "listening" line.
fn start(app: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sauve"))
        .args([
            "run",
            "--app",
            app.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let line = lines
            .recv_timeout(EXIT_GUARD)
            .unwrap_or_else(|e| panic!("sauve run said nothing ({e})"));
        if line.contains("sauve server listening") {
            break;
        }
    }
    let text = std::fs::read_to_string(app.join("Logs/sauve-server.json")).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    Server {
        child,
        lines,
        url: file["url"].as_str().unwrap().to_owned(),
        token: file["token"].as_str().unwrap().to_owned(),
    }
}

impl Server {
    /// Sends SIGTERM and waits for the exit: its code and how long it took.
    fn terminate(mut self) -> (Option<i32>, Duration, Vec<String>) {
        let sent = Instant::now();
        let kill = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let took = sent.elapsed();
                let rest: Vec<String> = self.lines.try_iter().collect();
                eprintln!("sauve run exited {took:?} after SIGTERM");
                assert!(
                    took < EXIT_LIMIT,
                    "sauve run took {took:?} to exit after SIGTERM"
                );
                return (status.code(), took, rest);
            }
            if sent.elapsed() > EXIT_GUARD {
                let _ = self.child.kill();
                panic!("sauve run did not exit within {EXIT_GUARD:?} of SIGTERM");
            }
            // The child's exit is not an event this process can await
            // without a signal handler of its own; poll its status.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn sauve_run_exits_promptly_on_sigterm_when_idle() {
    let root = tempfile::tempdir().unwrap();
    let app = app(root.path(), vec![1; 1024], &[]);
    let server = start(&app);
    let (code, _, _) = server.terminate();
    assert_eq!(code, Some(0));
    assert!(!app.join("Logs/sauve-server.json").exists());
}

#[test]
fn sauve_run_exits_promptly_on_sigterm_with_invalid_settings() {
    let root = tempfile::tempdir().unwrap();
    let app = app(
        root.path(),
        vec![1; 1024],
        &[("Scheduler/Frequency", "Hourly")],
    );
    let file = app.join("Settings/backup.4DSettings");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("<Every>12</Every>", "<Every>25</Every>"),
    )
    .unwrap();
    let server = start(&app);
    // It starts, and says why nothing is scheduled.
    let warned = loop {
        let line = server.lines.recv_timeout(EXIT_GUARD).unwrap();
        if line.contains("invalid settings") {
            break line;
        }
    };
    assert!(
        warned.contains("Hourly/Every: invalid value \"25\""),
        "{warned}"
    );
    let (code, _, _) = server.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn sauve_run_exits_promptly_on_sigterm_during_a_backup_which_ends_with_1406() {
    let root = tempfile::tempdir().unwrap();
    // Level 19 on 64 MiB of noise takes many seconds.
    let mut data = vec![0u8; 64 << 20];
    fastrand::Rng::with_seed(7).fill(&mut data);
    let app = app(
        root.path(),
        data,
        &[("Advanced/CompressionRate", "Compact")],
    );
    let server = start(&app);
    let mut client = Command::new(env!("CARGO_BIN_EXE_sauve"))
        .args([
            "backup",
            "--remote",
            &server.url,
            "--token",
            &server.token,
            "--json",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = client.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("\"event\":\"file\"") {
            break;
        }
    }
    let (code, _, _) = server.terminate();
    assert_eq!(code, Some(0));
    // The client is not left hanging, and the stopped run is recorded.
    let _ = lines.count();
    client.wait().unwrap();
    let journal = Command::new(env!("CARGO_BIN_EXE_sauve"))
        .args([
            "journal",
            "--app",
            app.to_str().unwrap(),
            "--json",
            "--tail",
            "1",
        ])
        .output()
        .unwrap();
    let entries: serde_json::Value = serde_json::from_slice(&journal.stdout).unwrap();
    assert_eq!(entries[0]["rawTitle"], "Backup stopped", "{entries}");
    assert_eq!(entries[0]["status"], 1406);
}

#[test]
fn sauve_ui_prints_a_one_time_login_link_that_never_holds_the_token() {
    let root = tempfile::tempdir().unwrap();
    let app = app(root.path(), b"data".to_vec(), &[]);
    let alone = Command::new(env!("CARGO_BIN_EXE_sauve"))
        .args(["ui", "--no-open", "--app", app.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(alone.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&alone.stderr).contains("start one with `sauve run --app"),
        "{}",
        String::from_utf8_lossy(&alone.stderr)
    );
    let server = start(&app);
    let out = Command::new(env!("CARGO_BIN_EXE_sauve"))
        .args(["ui", "--no-open", "--app", app.to_str().unwrap()])
        .env_remove("DISPLAY")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(
        link.starts_with(&format!("{}/login?code=", server.url)),
        "{link}"
    );
    assert!(
        !link.contains(&server.token),
        "the link never holds the token"
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let first = agent.get(&link).call().unwrap();
    assert_eq!(first.status(), 200);
    let cookie = first
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.starts_with("sauve_session=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let again = agent.get(&link).call().unwrap();
    assert_eq!(again.status(), 401, "the code works once");
    // The page itself answers at the server's root, behind the login.
    let root_page = agent.get(&format!("{}/", server.url)).call().unwrap();
    assert_eq!(root_page.status(), 303);
    let (code, _, _) = server.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn sauve_ui_hash_password_prints_a_hash_sauve_toml_accepts() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sauve"))
        .args(["ui", "--hash-password"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery staple\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let root = tempfile::tempdir().unwrap();
    let app = app(root.path(), b"data".to_vec(), &[]);
    std::fs::create_dir_all(app.join("Settings")).unwrap();
    std::fs::write(
        app.join("Settings/sauve.toml"),
        format!("[ui]\npassword_hash = \"{hash}\"\n"),
    )
    .unwrap();
    let s = sauve_settings::load_sauve_toml(&app).unwrap();
    assert_eq!(s.ui.password_hash.as_deref(), Some(hash.as_str()));

    let short = Command::new(env!("CARGO_BIN_EXE_sauve"))
        .args(["ui", "--hash-password"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(short.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));
}

/// Runs `sauve ARGS`, which must end by itself: its exit code and stderr.
fn run_to_end(args: &[&str], dir: &Path) -> (Option<i32>, String) {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sauve"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code(), err);
        }
        if started.elapsed() > EXIT_GUARD {
            let _ = child.kill();
            panic!("sauve {args:?} did not end within {EXIT_GUARD:?}");
        }
        // As in `terminate`: the child's exit is polled.
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends one raw HTTP/1.1 request to the server at `url` and reads the
/// answer to its end (the request asks to close).
fn raw_request(url: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(EXIT_GUARD)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

fn login_request(host: &str, secret: &str) -> String {
    let body = format!("secret={secret}&next=%2F");
    format!(
        "POST /login HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn a_second_sauve_run_on_the_same_app_exits_2_naming_the_first_and_leaves_its_server_file() {
    let root = tempfile::tempdir().unwrap();
    let app = app(root.path(), vec![1; 1024], &[]);
    let first = start(&app);
    let server_file = app.join("Logs/sauve-server.json");
    let before = std::fs::read_to_string(&server_file).unwrap();
    let pid = first.child.id();
    let (code, err) = run_to_end(
        &[
            "run",
            "--app",
            app.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        root.path(),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("another sauve run serves")
            && err.contains(&format!("(pid {pid}, {};", first.url))
            && err.contains("sauve-run.lock"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&server_file).unwrap(), before);
    // The first one still serves, with its own file.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let status = agent
        .get(format!("{}/v1/status", first.url))
        .header("Authorization", format!("Bearer {}", first.token))
        .call()
        .unwrap();
    assert_eq!(status.status(), 200);
    let (code, _, _) = first.terminate();
    assert_eq!(code, Some(0));
    assert!(!server_file.exists());
    // Once it has ended, the next one starts.
    let next = start(&app);
    let (code, _, _) = next.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn sauve_run_leaves_a_server_file_another_process_wrote_meanwhile() {
    let root = tempfile::tempdir().unwrap();
    let app = app(root.path(), vec![1; 1024], &[]);
    let server = start(&app);
    let path = app.join("Logs/sauve-server.json");
    let mut file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    file["pid"] = 1.into();
    file["url"] = "http://127.0.0.1:1".into();
    std::fs::write(&path, file.to_string()).unwrap();
    let (code, _, _) = server.terminate();
    assert_eq!(code, Some(0));
    let left: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(left["pid"], 1, "{left}");
}

#[test]
fn sauve_run_refuses_to_listen_outside_loopback_without_tls_or_insecure_listen() {
    let root = tempfile::tempdir().unwrap();
    let app = app(root.path(), vec![1; 1024], &[]);
    let app_arg = app.to_str().unwrap();
    for (listen, extra) in [
        ("0.0.0.0:0", None),
        ("[::]:0", None),
        ("192.0.2.1:7070", None),
        ("0.0.0.0:0", Some("http://backup.example.com/")),
    ] {
        let mut args = vec!["run", "--app", app_arg, "--listen", listen];
        if let Some(url) = extra {
            args.extend(["--public-url", url]);
        }
        let (code, err) = run_to_end(&args, root.path());
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("refusing to listen on {listen}:"))
                && err.contains("accepted: a loopback address")
                && err.contains("--public-url https://")
                && err.contains("--insecure-listen"),
            "{err}"
        );
    }
    // Refused before anything was started or written.
    assert!(!app.join("Logs/sauve-server.json").exists());
    assert!(!app.join("Logs/sauve-run.lock").exists());
}

#[test]
fn the_server_refuses_a_rebinding_host_and_logs_failed_logins_with_their_source() {
    let root = tempfile::tempdir().unwrap();
    let app = app(root.path(), vec![1; 1024], &[]);
    let server = start(&app);
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    // A DNS rebinding page's login: its own name, a matching Origin.
    let answer = raw_request(
        &server.url,
        &login_request(&format!("evil.example:{port}"), &server.token),
    );
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
    assert!(
        !answer.to_ascii_lowercase().contains("set-cookie"),
        "{answer}"
    );
    assert!(
        answer.contains(&format!("accepted: 127.0.0.1:{port}")),
        "{answer}"
    );
    // Through the server's own name, a wrong token is refused and logged
    // with where it came from.
    let host = format!("127.0.0.1:{port}");
    let answer = raw_request(&server.url, &login_request(&host, "wrong"));
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let logged = loop {
        let line = server.lines.recv_timeout(EXIT_GUARD).unwrap();
        if line.contains("failed login") {
            break line;
        }
    };
    assert!(logged.contains("from 127.0.0.1"), "{logged}");
    // And the right one logs in.
    let answer = raw_request(&server.url, &login_request(&host, &server.token));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("set-cookie: sauve_session="),
        "{answer}"
    );
    let (code, _, _) = server.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn remote_commands_take_the_token_from_a_token_file_or_sauve_token() {
    let root = tempfile::tempdir().unwrap();
    let app = app(root.path(), vec![1; 1024], &[]);
    let server = start(&app);
    let token_file = root.path().join("token");
    std::fs::write(&token_file, format!("{}\n", server.token)).unwrap();
    let status = |args: &[&str], env: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sauve"));
        c.args(["status", "--remote", &server.url])
            .args(args)
            .current_dir(root.path())
            .env_remove("SAUVE_TOKEN");
        if let Some(t) = env {
            c.env("SAUVE_TOKEN", t);
        }
        let out = c.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = status(&["--token-file", token_file.to_str().unwrap()], None);
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = status(&[], Some(&server.token));
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = status(&[], Some("wrong"));
    assert_eq!(code, Some(1), "SAUVE_TOKEN is the one sent: {err}");
    let (code, err) = status(&[], None);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--token-file FILE, SAUVE_TOKEN"), "{err}");
    let missing = root.path().join("no-token");
    let (code, err) = status(
        &["--token-file", missing.to_str().unwrap()],
        Some(&server.token),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "cannot read the token file \"{}\"",
            missing.display()
        )),
        "{err}"
    );
    let (code, _, _) = server.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn a_restore_into_an_app_that_sauve_run_serves_is_refused_whatever_force_says() {
    // Found by hand: `sauve restore SET --to APP --force` replaced the data
    // file of an app that `sauve run` was serving.
    let root = tempfile::tempdir().unwrap();
    let app = app(root.path(), vec![7; 4096], &[]);
    let (code, err) = run_to_end(&["backup", "--app", app.to_str().unwrap()], root.path());
    assert_eq!(code, Some(0), "{err}");
    std::fs::write(app.join("Data/App.4DD"), vec![8; 4096]).unwrap();
    let set = root.path().join("Backups/App[0001].4BK");
    let restore = [
        "restore",
        set.to_str().unwrap(),
        "--to",
        app.to_str().unwrap(),
        "--force",
    ];
    // Found in review: the check read the path as written, so a symlink
    // into the app hid it.
    std::os::unix::fs::symlink(&app, root.path().join("lnk")).unwrap();
    std::os::unix::fs::symlink(app.join("Data"), root.path().join("into")).unwrap();
    let server = start(&app);
    for to in [
        app.clone(),
        app.join("Data/Restored"),
        root.path().join("lnk/Data"),
        root.path().join("into"),
        root.path().join("into/Restored"),
    ] {
        let mut args = restore;
        let to = to.to_str().unwrap().to_owned();
        args[3] = &to;
        let (code, err) = run_to_end(&args, root.path());
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains("(1402)") && err.contains("a `sauve run` serves it"),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read(app.join("Data/App.4DD")).unwrap(),
        vec![8; 4096]
    );
    assert!(!app.join("Data/Restored").exists());
    let (code, _, _) = server.terminate();
    assert_eq!(code, Some(0));
    // Once the app is no longer in use, --force restores into it.
    let (code, err) = run_to_end(&restore, root.path());
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        std::fs::read(app.join("Data/App.4DD")).unwrap(),
        vec![7; 4096]
    );
}
