use std::{
    fs::OpenOptions,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

/// The real binary as a child process: same arguments and environment on
/// every (re)start, stdout and stderr appended to one log file.
pub struct ServiceProcess {
    pub name: String,
    bin: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    pub log: PathBuf,
    child: Option<Child>,
}

impl ServiceProcess {
    pub fn new(
        name: &str,
        bin: &Path,
        args: &[&str],
        envs: Vec<(String, String)>,
        log: PathBuf,
    ) -> Self {
        Self {
            name: name.to_owned(),
            bin: bin.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            envs,
            log,
            child: None,
        }
    }

    pub fn start(&mut self) {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("log {}: {e}", self.log.display()));
        let err = out.try_clone().expect("log handle");
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Only what the test gives: no JIESU__ settings leak in.
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        self.child = Some(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", self.name)),
        );
    }

    /// `kill -9`: no drain, no flush.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(c.id()).expect("pid"));
        if let Err(e) = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM) {
            let _ = c.kill();
            panic!("cannot send SIGTERM to {}: {e}", self.name);
        }
        c.wait().ok().and_then(|s| s.code())
    }

    /// Waits for the process to exit by itself; returns the exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        c.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `jiesu serve --target <target>` as a process of its own on free ports:
/// the admin server (`/readyz`) and the target's listen address (HTTP for
/// the gateway, gRPC for a service), on top of a platform's common
/// environment.
pub struct TargetProcess {
    pub process: ServiceProcess,
    /// The admin port (`/healthz`, `/readyz`, `/metrics`).
    pub admin: u16,
    /// The target's own port.
    pub port: u16,
}

impl TargetProcess {
    /// Starts it; `env` is the platform's common environment plus anything
    /// this process needs besides its ports.
    pub fn start(
        bin: &Path,
        target: &str,
        label: &str,
        mut env: Vec<(String, String)>,
        log: PathBuf,
    ) -> TargetProcess {
        let (admin, port) = (crate::free_port(), crate::free_port());
        env.push(("JIESU__ADMIN__ADDR".into(), format!("127.0.0.1:{admin}")));
        env.push((Self::listen_key(target), format!("127.0.0.1:{port}")));
        let mut process = ServiceProcess::new(label, bin, &["serve", "--target", target], env, log);
        process.start();
        TargetProcess {
            process,
            admin,
            port,
        }
    }

    /// The setting of a target's listen address.
    pub fn listen_key(target: &str) -> String {
        if target == "gateway" {
            "JIESU__GATEWAY__HTTP_ADDR".into()
        } else {
            format!("JIESU__{}__GRPC_ADDR", target.to_uppercase())
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits (with a deadline) until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        let url = format!("http://127.0.0.1:{}/readyz", self.admin);
        let http = reqwest::Client::new();
        let what = format!("{} ready", self.process.name);
        crate::wait_until(std::time::Duration::from_secs(60), &what, || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let ok = http.get(&url).send().await.ok()?.status().is_success();
                ok.then_some(())
            }
        })
        .await;
    }
}
