//! Servers of the test's own, for fault drills that stop, restart or wipe
//! them: a PostgreSQL cluster (`initdb` into a temporary directory, run by
//! `pg_ctl` on a free port) and a `nats-server` with JetStream storing into a
//! temporary directory. The machine's servers are never touched.
//!
//! Binaries are found on `PATH`, in Debian's `/usr/lib/postgresql/<v>/bin`
//! and `/usr/sbin`; `make test` installs the packages where they are missing.
//! PostgreSQL refuses to run as root, so under root the cluster belongs to
//! the `postgres` account and its commands run through `runuser`.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{free_port, unique_tag};

/// `name` in `extra_dirs`, on `PATH` or in the usual system directories.
fn find(name: &str, extra_dirs: &[PathBuf]) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = extra_dirs.to_vec();
    dirs.extend(std::env::split_paths(&path));
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found (make test installs it)"))
}

/// Debian keeps the server binaries per major version, newest last.
fn postgres_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("pg_ctl").is_file())
        .collect();
    dirs.sort();
    dirs.reverse();
    dirs
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Polls until something accepts TCP connections on `port`.
fn wait_listening(port: u16, what: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A PostgreSQL cluster of the test's own.
pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
}

impl PgCluster {
    /// `initdb` (trust authentication, user `postgres`) and start.
    pub fn start() -> PgCluster {
        let bin = find("pg_ctl", &postgres_dirs())
            .parent()
            .expect("bin dir")
            .to_path_buf();
        let dir = std::env::temp_dir().join(format!("jiesu-pg-{}", unique_tag()));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        if is_root() {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown of {} to postgres failed", dir.display());
        }
        let cluster = PgCluster {
            dir,
            bin,
            port: free_port(),
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ],
        );
        cluster.start_again();
        cluster
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// One of the cluster's binaries, as `postgres` under root.
    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self
            .command(tool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Server URL without a database, for `JIESU__DATABASE__URL`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// Starts the stopped cluster on the same port and data.
    pub fn start_again(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-o", &opts, "-l", &log, "-w", "start"],
        );
        wait_listening(self.port, "PostgreSQL", Duration::from_secs(30));
    }

    /// Stops it the way a crash does: every backend gone at once, recovery
    /// from the write-ahead log on the next start.
    pub fn kill(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `nats-server` with JetStream of the test's own.
pub struct NatsServer {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        let dir = std::env::temp_dir().join(format!("jiesu-nats-{}", unique_tag()));
        std::fs::create_dir_all(&dir).expect("nats dir");
        let mut server = NatsServer {
            dir,
            bin: find("nats-server", &[]),
            port: free_port(),
            child: None,
        };
        server.start_again();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn store(&self) -> PathBuf {
        self.dir.join("jetstream")
    }

    /// Starts the stopped server on the same port and store.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "nats-server is running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("nats log");
        let child = Command::new(&self.bin)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("nats-server: {e}"));
        self.child = Some(child);
        wait_listening(self.port, "nats-server", Duration::from_secs(30));
    }

    /// `kill -9`: nothing flushed, nothing said to clients.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the server and deletes its JetStream store: every stream,
    /// message and consumer it had acknowledged is gone.
    pub fn kill_and_lose_store(&mut self) {
        self.kill();
        remove(&self.store());
    }
}

fn remove(p: &Path) {
    if p.exists() {
        std::fs::remove_dir_all(p).unwrap_or_else(|e| panic!("removing {}: {e}", p.display()));
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
