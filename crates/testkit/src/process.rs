//! Running a service binary as a child process, the way an operator would: env
//! configuration in, a TCP port to wait for, SIGTERM to stop it.

use std::{
    io::Read,
    net::{Ipv4Addr, TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::Error;

/// A free TCP port on 127.0.0.1 (bound and released; fine for tests).
pub fn free_port() -> Result<u16, Error> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::io("binding an ephemeral port on 127.0.0.1", e))
}

/// The environment a Frontline service binary needs to run against `nats_url`, with
/// gRPC on `grpc_port` and Prometheus metrics on `metrics_port`. `database_url` is
/// passed as `DATABASE_URL` for services that keep read models in PostgreSQL
/// (intake); give `None` for services that need none.
pub fn service_env(
    nats_url: &str,
    secret: &str,
    database_url: Option<&str>,
    grpc_port: u16,
    metrics_port: u16,
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("NATS_URL", nats_url.to_string()),
        ("FRONTLINE_JWT_SECRET", secret.to_string()),
        ("FRONTLINE_KEK", crate::TEST_KEK.to_string()),
        ("FRONTLINE_LISTEN", format!("127.0.0.1:{grpc_port}")),
        (
            "FRONTLINE_METRICS_LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        ),
        ("FRONTLINE_LOG_FORMAT", "json".to_string()),
        ("FRONTLINE_SHUTDOWN_GRACE_SECS", "5".to_string()),
    ];
    if let Some(url) = database_url {
        env.push(("DATABASE_URL", url.to_string()));
    }
    env
}

/// `GET path` over HTTP/1.0 on 127.0.0.1:`port`; the whole response, headers included.
pub fn http_get(port: u16, path: &str) -> Result<String, Error> {
    use std::io::Write;
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .map_err(|e| Error::io(format!("connecting to 127.0.0.1:{port}"), e))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .and_then(|()| write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n"))
        .map_err(|e| Error::io("sending an HTTP request", e))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| Error::io("reading an HTTP response", e))?;
    Ok(response)
}

/// Sends signal `name` (`"STOP"`, `"CONT"`, `"KILL"`, …) to process `pid` with
/// `kill(1)`, for fault tests.
///
/// # Errors
///
/// [`Error::Io`] if `kill` could not run or refused (no such process).
pub fn signal(pid: u32, name: &str) -> Result<(), Error> {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .map_err(|e| Error::io(format!("sending SIG{name} to {pid}"), e))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::io(
            format!("sending SIG{name} to {pid}"),
            std::io::Error::other(format!("kill exited with {status}")),
        ))
    }
}

/// A service binary running as a child process; killed on drop if still running.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Child,
}

impl ServiceProcess {
    /// Starts a Frontline service binary against `nats_url` (and PostgreSQL at
    /// `database_url`, if given) on free ports (see [`service_env`]) and waits until
    /// it listens; returns it with its gRPC and metrics ports.
    pub fn start_frontline(
        binary: &Path,
        nats_url: &str,
        secret: &str,
        database_url: Option<&str>,
    ) -> Result<(Self, u16, u16), Error> {
        let (grpc, metrics) = (free_port()?, free_port()?);
        let env = service_env(nats_url, secret, database_url, grpc, metrics);
        let mut service = Self::spawn(binary, &env)?;
        service.wait_for_port(grpc, Duration::from_secs(30))?;
        Ok((service, grpc, metrics))
    }

    /// Starts `binary` with `env` added to the environment; stdout and stderr are
    /// captured (see [`ServiceProcess::terminate`]).
    pub fn spawn(binary: &Path, env: &[(&str, String)]) -> Result<Self, Error> {
        Self::spawn_without(binary, env, &[])
    }

    /// [`ServiceProcess::spawn`], with the variables named in `remove` taken out of
    /// the inherited environment (say, a `DATABASE_URL` the test run itself has).
    pub fn spawn_without(
        binary: &Path,
        env: &[(&str, String)],
        remove: &[&str],
    ) -> Result<Self, Error> {
        let mut command = Command::new(binary);
        for name in remove {
            command.env_remove(name);
        }
        let child = command
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(format!("starting {}", binary.display()), e))?;
        Ok(ServiceProcess { child })
    }

    /// Waits until the process accepts TCP connections on `port`, or fails if it
    /// exits first or `timeout` passes.
    pub fn wait_for_port(&mut self, port: u16, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .try_wait()
                .map_err(|e| Error::io("polling the service", e))?
            {
                return Err(Error::io(
                    format!("service exited before listening ({status})"),
                    std::io::Error::other(self.output()),
                ));
            }
            if Instant::now() > deadline {
                return Err(Error::io(
                    format!("service did not listen on {port} within {timeout:?}"),
                    std::io::Error::other(self.output()),
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process with SIGKILL (no chance to clean up, as with `kill -9`) and
    /// reaps it.
    pub fn kill(mut self) -> Result<(), Error> {
        self.child
            .kill()
            .map_err(|e| Error::io("sending SIGKILL", e))?;
        self.child
            .wait()
            .map_err(|e| Error::io("reaping the service", e))?;
        Ok(())
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit; returns the exit status
    /// and everything the process printed. Kills it if it does not exit in time.
    pub fn terminate(self, timeout: Duration) -> Result<(ExitStatus, String), Error> {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(|e| Error::io("sending SIGTERM", e))?;
        self.wait(timeout)
    }

    /// Waits up to `timeout` for the process to exit by itself; returns the exit
    /// status and its output. Kills it if it does not exit in time.
    pub fn wait(mut self, timeout: Duration) -> Result<(ExitStatus, String), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .map_err(|e| Error::io("waiting for the service", e))?
            {
                return Ok((status, self.output()));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(Error::io(
                    format!("service did not exit within {timeout:?}"),
                    std::io::Error::other(self.output()),
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the process printed so far (only complete after it exited).
    fn output(&mut self) -> String {
        let mut out = String::new();
        if let Some(mut s) = self.child.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        if let Some(mut s) = self.child.stderr.take() {
            let _ = s.read_to_string(&mut out);
        }
        out
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
