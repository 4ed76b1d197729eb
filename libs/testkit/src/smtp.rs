//! A real SMTP server for tests: aiosmtpd (PyPI, pinned in
//! `smtp/requirements.txt`) in a virtualenv under the target directory,
//! made the first time and shared by every test after. Each message it
//! takes is written as a JSON line, read back with [`SmtpSink::messages`].
//! A recipient `nobody@…` is refused with 550, as a server refuses an
//! unknown mailbox.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{free_port, unique_tag};

const SCRIPT: &str = include_str!("smtp/sink.py");
const REQUIREMENTS: &str = include_str!("smtp/requirements.txt");

/// One message the server took.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub message_id: String,
    pub body: String,
}

pub struct SmtpSink {
    pub port: u16,
    out: PathBuf,
    child: Child,
    _dir: PathBuf,
}

static VENV: Mutex<()> = Mutex::new(());

fn target_dir() -> PathBuf {
    if let Ok(t) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(t);
    }
    // `<workspace>/target`: this crate is `<workspace>/libs/testkit`.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
}

/// The virtualenv's python, made once (and again when the requirements
/// change); a half-made one is never used: it is built aside and renamed.
fn python() -> PathBuf {
    let _guard = VENV.lock().unwrap_or_else(|p| p.into_inner());
    let root = target_dir().join("tools");
    let venv = root.join("smtp-venv");
    let stamp = venv.join("requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(REQUIREMENTS) {
        return venv.join("bin/python");
    }
    std::fs::create_dir_all(&root).expect("target/tools");
    let aside = root.join(format!("smtp-venv.{}", unique_tag()));
    let ok = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&aside)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3 -m venv failed (make test installs python3-venv)"
    );
    std::fs::write(aside.join("requirements.txt"), REQUIREMENTS).expect("requirements");
    let ok = Command::new(aside.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(aside.join("requirements.txt"))
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "pip could not install aiosmtpd (PyPI is needed the first time)"
    );
    let _ = std::fs::remove_dir_all(&venv);
    if std::fs::rename(&aside, &venv).is_err() {
        // Another test process made it meanwhile.
        let _ = std::fs::remove_dir_all(&aside);
    }
    venv.join("bin/python")
}

impl SmtpSink {
    /// Starts a server on a free port and waits until it listens.
    pub fn start() -> Self {
        let python = python();
        let dir = std::env::temp_dir().join(format!("jiesu-smtp-{}", unique_tag()));
        std::fs::create_dir_all(&dir).expect("smtp dir");
        let script = dir.join("sink.py");
        std::fs::write(&script, SCRIPT).expect("smtp script");
        let out = dir.join("messages.jsonl");
        let port = free_port();
        let child = Command::new(python)
            .arg(&script)
            .arg(port.to_string())
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP server");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the SMTP server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            port,
            out,
            child,
            _dir: dir,
        }
    }

    /// Every message taken so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("a message line"))
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}
