//! Real receivers on loopback for the alert tests: an HTTP server that
//! records what webhooks post, and a real SMTP server (aiosmtpd, which
//! `cargo xtask test` installs from PyPI) with STARTTLS on certificates made for the
//! test by openssl.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use tokio::sync::mpsc;

/// What a webhook receiver got: the headers and body of each request.
pub type Posted = (HeaderMap, String);

/// An HTTP receiver on loopback answering `status` to `POST /hook`: its URL
/// and the requests as they arrive.
pub async fn webhook(status: StatusCode) -> (String, mpsc::UnboundedReceiver<Posted>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let tx = Arc::new(Mutex::new(tx));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.lock().unwrap().send((headers, body));
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

/// A test CA, and a server certificate and key for 127.0.0.1 it signed,
/// made with openssl in `dir`: (CA, certificate, key).
pub fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl is needed to make the test's certificates (apt-get install openssl, as `cargo xtask test` does)");
        assert!(status.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=sauve test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "req.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "req.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

/// A real SMTP server (aiosmtpd) on a free loopback port, with STARTTLS,
/// whose handler prints each message's envelope and content.
pub struct Smtp {
    child: std::process::Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    lines: std::sync::mpsc::Receiver<String>,
    /// The test CA that signed its certificate (`ca_file` for sauve).
    pub ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const HANDLER: &str = "\
class Print:
    async def handle_DATA(self, server, session, envelope):
        print('MAIL FROM: ' + envelope.mail_from)
        print('RCPT TO: ' + ', '.join(envelope.rcpt_tos))
        print(envelope.content.decode('utf-8', 'replace'))
        print('END MESSAGE', flush=True)
        return '250 OK'
";

impl Smtp {
    /// Starts the server; fails saying how to install aiosmtpd if it is missing.
    pub fn start() -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = certificates(dir.path());
        std::fs::write(dir.path().join("sauve_test_smtp.py"), HANDLER).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new("python3")
            .args(["-u", "-m", "aiosmtpd", "-n", "-c", "sauve_test_smtp.Print"])
            .args(["-l", &format!("127.0.0.1:{port}")])
            .arg("--tlscert")
            .arg(&cert)
            .arg("--tlskey")
            .arg(&key)
            .env("PYTHONPATH", dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 is needed for the SMTP server");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Ready when it accepts a connection (it prints nothing before a
        // message); another process gives no other sign.
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Smtp {
                    child,
                    port,
                    lines,
                    ca,
                    _dir: dir,
                };
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "aiosmtpd exited ({status}): install it with `cargo xtask test` (pip install aiosmtpd==1.4.6)"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("aiosmtpd did not listen on port {port}");
    }

    /// The next message it received: its envelope lines, then its content
    /// with folded header lines unfolded.
    pub fn message(&self) -> String {
        let mut text = String::new();
        let mut in_headers = true;
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .expect("a message");
            if line == "END MESSAGE" {
                return text;
            }
            if in_headers && line.starts_with([' ', '\t']) {
                text.pop();
                text.push(' ');
                text.push_str(line.trim_start());
            } else {
                if line.is_empty() {
                    in_headers = false;
                }
                text.push_str(&line);
            }
            text.push('\n');
        }
    }
}
