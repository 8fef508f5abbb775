//! A real Garage object store (the crates.io package `garage`) on loopback:
//! one node, or a cluster of several processes with replication across them,
//! configured with Garage's own CLI (layout, key, bucket), as an operator does.
//!
//! `cargo xtask test` installs the binary (`cargo install garage --version 2.5.0
//! --locked`); [`Garage::start`] fails saying so when it is missing.

// A test harness: failing here fails the test that started the store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The version `cargo xtask test` installs.
pub const VERSION: &str = "2.5.0";

/// One `garage server` process.
struct Node {
    config: PathBuf,
    child: Option<Child>,
    rpc_port: u16,
    s3_port: u16,
    log: PathBuf,
}

/// A running Garage cluster with one key and one bucket.
pub struct Garage {
    nodes: Vec<Node>,
    /// The bucket the key may read and write.
    pub bucket: String,
    /// The access key id.
    pub key_id: String,
    /// Its secret.
    pub secret: String,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The `garage` binary: `$SAUVE_GARAGE`, else `garage` on PATH or in ~/.cargo/bin.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SAUVE_GARAGE") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("garage"))
        .find(|p| p.is_file())
}

impl Garage {
    /// Starts `nodes` processes (replication factor = `nodes`, at most 3),
    /// lays the cluster out, creates a key and the bucket `sauve-test`.
    pub fn start(nodes: usize) -> Garage {
        Garage::start_with_bucket(nodes, "sauve-test")
    }

    /// As [`Garage::start`], with the bucket's name.
    pub fn start_with_bucket(nodes: usize, bucket: &str) -> Garage {
        assert!((1..=3).contains(&nodes), "1 to 3 nodes");
        if binary().is_none() {
            panic!(
                "garage is not installed: `cargo xtask test` installs it (cargo install garage --version {VERSION} --locked --no-default-features --features bundled-libs,lmdb,sqlite)"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let secret: String = (0..32)
            .map(|_| format!("{:02x}", fastrand::u8(..)))
            .collect();
        let mut list = Vec::new();
        for i in 0..nodes {
            let (rpc_port, s3_port, admin_port) = (free_port(), free_port(), free_port());
            let base = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(base.join("meta")).unwrap();
            std::fs::create_dir_all(base.join("data")).unwrap();
            let config = base.join("garage.toml");
            std::fs::write(
                &config,
                format!(
                    "metadata_dir = \"{meta}\"\n\
                     data_dir = \"{data}\"\n\
                     db_engine = \"sqlite\"\n\
                     replication_factor = {nodes}\n\
                     rpc_bind_addr = \"127.0.0.1:{rpc_port}\"\n\
                     rpc_public_addr = \"127.0.0.1:{rpc_port}\"\n\
                     rpc_secret = \"{secret}\"\n\
                     [s3_api]\n\
                     s3_region = \"garage\"\n\
                     api_bind_addr = \"127.0.0.1:{s3_port}\"\n\
                     root_domain = \".s3.garage.localhost\"\n\
                     [admin]\n\
                     api_bind_addr = \"127.0.0.1:{admin_port}\"\n",
                    meta = base.join("meta").display(),
                    data = base.join("data").display(),
                ),
            )
            .unwrap();
            list.push(Node {
                config,
                child: None,
                rpc_port,
                s3_port,
                log: base.join("garage.log"),
            });
        }
        let mut g = Garage {
            nodes: list,
            bucket: bucket.to_owned(),
            key_id: String::new(),
            secret: String::new(),
            dir,
        };
        for i in 0..nodes {
            g.start_node(i);
        }
        let ids: Vec<String> = (0..nodes).map(|i| g.node_id(i)).collect();
        for (i, id) in ids.iter().enumerate().skip(1) {
            let addr = format!("{id}@127.0.0.1:{}", g.nodes[i].rpc_port);
            g.cli_retry(0, &["node", "connect", &addr]);
        }
        for (i, id) in ids.iter().enumerate() {
            let short = &id[..16];
            let zone = format!("dc{}", i + 1);
            g.cli_retry(0, &["layout", "assign", "-z", &zone, "-c", "1G", short]);
        }
        g.cli_retry(0, &["layout", "apply", "--version", "1"]);
        let created = g.cli_retry(0, &["key", "create", "sauve-test-key"]);
        for line in created.lines() {
            if let Some(v) = line.trim().strip_prefix("Key ID:") {
                g.key_id = v.trim().to_owned();
            }
            if let Some(v) = line.trim().strip_prefix("Secret key:") {
                g.secret = v.trim().to_owned();
            }
        }
        assert!(
            !g.key_id.is_empty() && !g.secret.is_empty(),
            "garage key create printed no key:\n{created}"
        );
        g.create_bucket(bucket);
        g
    }

    /// Creates another bucket the key may read and write.
    pub fn create_bucket(&self, bucket: &str) {
        self.cli_retry(0, &["bucket", "create", bucket]);
        self.cli_retry(
            0,
            &[
                "bucket",
                "allow",
                "--read",
                "--write",
                "--owner",
                bucket,
                "--key",
                "sauve-test-key",
            ],
        );
    }

    /// The S3 endpoint of node `i`: `http://127.0.0.1:PORT`.
    pub fn endpoint_of(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].s3_port)
    }

    /// The S3 endpoint of the first node.
    pub fn endpoint(&self) -> String {
        self.endpoint_of(0)
    }

    /// `sauve.toml` lines for a `[destination]` or `[[offsite]]` table
    /// reaching this store, with the secret through the environment
    /// variables `SAUVE_TEST_S3_KEY` and `SAUVE_TEST_S3_SECRET`.
    pub fn toml_lines(&self) -> String {
        format!(
            "endpoint = \"{}\"\nregion = \"garage\"\npath_style = true\naccess_key_id_env = \"SAUVE_TEST_S3_KEY\"\nsecret_access_key_env = \"SAUVE_TEST_S3_SECRET\"\n",
            self.endpoint()
        )
    }

    /// The options for a `sauve_store::S3Store`, with this store's credentials.
    pub fn options(&self) -> sauve_store::S3Options {
        sauve_store::S3Options {
            endpoint: Some(self.endpoint()),
            region: Some("garage".into()),
            path_style: None,
            access_key_id: Some(self.key_id.clone()),
            secret_access_key: Some(self.secret.clone()),
            ..sauve_store::S3Options::new()
        }
    }

    /// Kills node `i` (SIGKILL).
    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills every node: the store is unreachable.
    pub fn stop_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill_node(i);
        }
    }

    /// Starts node `i` again, on its ports and data, and waits until it answers.
    pub fn start_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .unwrap();
        let child = Command::new(binary().unwrap())
            .arg("-c")
            .arg(&node.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("garage starts");
        node.child = Some(child);
        let port = node.s3_port;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "garage node {i} did not listen on {port}; its log:\n{}",
                std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts every node that is not running.
    pub fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].child.is_none() {
                self.start_node(i);
            }
        }
    }

    fn node_id(&self, i: usize) -> String {
        let out = self.cli_retry_on(i, &["node", "id", "-q"]);
        let id = out.trim().split('@').next().unwrap_or_default().to_owned();
        assert!(id.len() >= 16, "garage node id printed {out:?}");
        id
    }

    fn cli_retry(&self, node: usize, args: &[&str]) -> String {
        self.cli_retry_on(node, args)
    }

    /// Runs `garage -c NODE.toml ARGS` until it succeeds (a fresh node needs
    /// a moment before it takes RPC), for at most 30 s.
    fn cli_retry_on(&self, node: usize, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new(binary().unwrap())
                .arg("-c")
                .arg(&self.nodes[node].config)
                .args(args)
                .output()
                .expect("garage runs");
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(
                Instant::now() < deadline,
                "garage {} failed: {err}",
                args.join(" ")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Where the nodes keep their files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// The `sauve ARGS` command, with a store's credentials in its environment
/// (as `SAUVE_TEST_S3_KEY` and `SAUVE_TEST_S3_SECRET`, which
/// [`Garage::toml_lines`] names) and none of the AWS variables.
pub fn sauve_command(key_id: &str, secret: &str, args: &[&str]) -> Command {
    let mut c = Command::new(crate::browser::sauve_binary());
    c.args(args)
        .env("SAUVE_TEST_S3_KEY", key_id)
        .env("SAUVE_TEST_S3_SECRET", secret)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    c
}

/// `sauve ARGS` with `garage`'s credentials, run to its end.
pub fn sauve(garage: &Garage, args: &[&str]) -> std::process::Output {
    sauve_command(&garage.key_id, &garage.secret, args)
        .output()
        .unwrap()
}

/// The bucket's `prefix`, reached with the test key.
pub fn bucket(garage: &Garage, prefix: &str) -> sauve_store::S3Store {
    sauve_store::S3Store::open(garage.bucket.clone(), prefix.into(), &garage.options()).unwrap()
}

/// Every key under `store`, sorted.
pub fn keys(rt: &tokio::runtime::Runtime, store: &dyn sauve_store::Store) -> Vec<String> {
    rt.block_on(store.list(""))
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect()
}

/// A new age identity in `dir/name` (Debian's `age-keygen`), and its recipient.
pub fn age_keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .unwrap_or_else(|e| {
            panic!("age-keygen is needed (Debian's package age, which `cargo xtask test` installs): {e}")
        });
    assert!(out.status.success(), "{out:?}");
    let recipient = Command::new("age-keygen")
        .arg("-y")
        .arg(&key)
        .output()
        .unwrap();
    (
        key,
        String::from_utf8(recipient.stdout)
            .unwrap()
            .trim()
            .to_owned(),
    )
}

/// What an operator without sauve does with an encrypted set: `age -d -i
/// KEY` each of `segments` (keys of `store`), in order, `| zstd -d | tar -x`
/// into a folder under `work`, which is returned.
pub fn extract_with_age_cli(
    rt: &tokio::runtime::Runtime,
    store: &dyn sauve_store::Store,
    segments: &[impl AsRef<str>],
    key: &Path,
    work: &Path,
) -> PathBuf {
    let mut stream = Vec::new();
    for k in segments {
        let k = k.as_ref();
        let enc = work.join("seg.age");
        std::fs::write(&enc, rt.block_on(store.get(k)).unwrap()).unwrap();
        let out = Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(key)
            .arg(&enc)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "age -d {k}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stream.extend_from_slice(&out.stdout);
    }
    let tarball = work.join("set.tar.zst");
    std::fs::write(&tarball, &stream).unwrap();
    let out_dir = work.join("x");
    std::fs::create_dir_all(&out_dir).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zstd -d -c '{}' | tar -x -C '{}'",
            tarball.display(),
            out_dir.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    out_dir
}
