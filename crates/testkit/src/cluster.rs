//! A local NATS cluster: three `nats-server` processes with JetStream, joined by
//! cluster routes on `127.0.0.1`, for failover tests.
//!
//! Each node is a [`NatsServer`] (so it is killed with SIGKILL, restarted on the
//! same ports with the same store, paused and resumed like one) launched with its
//! own configuration file in its own store directory:
//!
//! ```text
//! server_name: "n0"
//! jetstream { store_dir: "<its temporary directory>", sync_interval: always }
//! cluster { name: "frontline-test", listen: "127.0.0.1:<route port>",
//!           routes: ["nats-route://127.0.0.1:<route port of each node>", …] }
//! ```
//!
//! `sync_interval: always` fsyncs every write before it is acknowledged, as a
//! cluster that must lose nothing acknowledged runs. [`NatsCluster::start`] returns
//! once every node answers the full `GET /healthz` (JetStream current) and agrees
//! on a meta leader, so R3 streams can be created right away.
//!
//! Who leads what is read from the monitoring endpoints (`/jsz`, `/connz`), so the
//! fixture stays synchronous like the rest of the kit.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Error, NatsServer, POLL_INTERVAL, process::http_get};

/// How long [`NatsCluster::start`] and [`NatsCluster::restart`] wait for the
/// cluster to be healthy (every running node current, a meta leader elected).
pub const CLUSTER_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The cluster's name in every node's `cluster { name }`.
const CLUSTER_NAME: &str = "frontline-test";

/// Nodes of a [`NatsCluster`].
const NODES: usize = 3;

/// A running three-node NATS cluster with JetStream; every node is killed and its
/// store removed when this value is dropped.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<NatsServer>,
    names: Vec<String>,
}

impl NatsCluster {
    /// Starts three nodes (`n0`, `n1`, `n2`) routed to each other and waits until
    /// each is healthy and a JetStream meta leader is elected (at most
    /// [`CLUSTER_READY_TIMEOUT`]).
    ///
    /// # Errors
    ///
    /// As for [`NatsServer::start`]; [`Error::Timeout`] if the cluster does not
    /// form in time (with the tail of a node's log).
    pub fn start() -> Result<NatsCluster, Error> {
        let route_ports = free_ports(NODES)?;
        let routes = route_ports
            .iter()
            .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let mut nodes = Vec::with_capacity(NODES);
        let mut names = Vec::with_capacity(NODES);
        for (i, route_port) in route_ports.iter().enumerate() {
            let name = format!("n{i}");
            let dir = tempfile::Builder::new()
                .prefix(&format!("frontline-nats-{name}-"))
                .tempdir()
                .map_err(|e| Error::io("creating temporary store directory", e))?;
            let store = dir.path().display().to_string();
            let mut config = String::new();
            // Writing into a String cannot fail.
            let _ = write!(
                config,
                "server_name: \"{name}\"\n\
                 jetstream {{\n  store_dir: \"{store}\"\n  sync_interval: always\n}}\n\
                 cluster {{\n  name: \"{CLUSTER_NAME}\"\n  listen: \"127.0.0.1:{route_port}\"\n  \
                 routes: [{routes}]\n}}\n"
            );
            let path = dir.path().join("node.conf");
            std::fs::write(&path, config)
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
            let args: [OsString; 2] = ["-c".into(), path.into_os_string()];
            // Readiness here is "JetStream enabled"; the cluster forms below.
            nodes.push(NatsServer::start_in(dir, args, false)?);
            names.push(name);
        }
        let cluster = NatsCluster { nodes, names };
        cluster.wait_healthy()?;
        Ok(cluster)
    }

    /// The comma-separated seed list of every node's client URL, as `NATS_URL`
    /// takes it.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Node `i` (0, 1 or 2).
    pub fn node(&self, i: usize) -> &NatsServer {
        &self.nodes[i]
    }

    /// How many nodes the cluster has.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never: a cluster has three nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i`'s `server_name` (`n<i>`).
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// The index of the node named `server_name` (as `ServerInfo::server_name` or
    /// a stream's `cluster.leader` reports it).
    pub fn index_of(&self, server_name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == server_name)
    }

    /// Whether node `i` runs.
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].pid().is_some()
    }

    /// Kills node `i` with SIGKILL (its store is kept for [`NatsCluster::restart`]).
    ///
    /// # Errors
    ///
    /// As for [`NatsServer::kill`].
    pub fn kill(&mut self, i: usize) -> Result<(), Error> {
        self.nodes[i].kill()
    }

    /// Starts node `i` again (same ports, same store) and waits until every running
    /// node is healthy again (its streams caught up) and a meta leader is known.
    ///
    /// # Errors
    ///
    /// As for [`NatsServer::restart`]; [`Error::Timeout`] if the cluster is not
    /// healthy within [`CLUSTER_READY_TIMEOUT`].
    pub fn restart(&mut self, i: usize) -> Result<(), Error> {
        self.nodes[i].restart()?;
        self.wait_healthy()
    }

    /// The index of the node leading stream `stream` (in the global account), as
    /// the running nodes report it; `None` while there is none (an election).
    pub fn stream_leader(&self, stream: &str) -> Option<usize> {
        self.running().find_map(|i| {
            let jsz = self.monitor_json(i, "/jsz?accounts=true&streams=true")?;
            let accounts = jsz.get("account_details")?.as_array()?;
            accounts
                .iter()
                .filter_map(|a| a.get("stream_detail")?.as_array())
                .flatten()
                .find(|s| s.get("name").and_then(Value::as_str) == Some(stream))
                .and_then(|s| s.pointer("/cluster/leader")?.as_str())
                .and_then(|leader| self.index_of(leader))
        })
    }

    /// The index of the JetStream meta leader, as the running nodes report it.
    pub fn meta_leader(&self) -> Option<usize> {
        self.running().find_map(|i| {
            let jsz = self.monitor_json(i, "/jsz")?;
            let leader = jsz.pointer("/meta_cluster/leader")?.as_str()?;
            self.index_of(leader)
        })
    }

    /// How many client connections named `name` node `i` holds (read from its
    /// `/connz`); 0 if it does not run. Every Frontline service connects as
    /// `frontline`.
    pub fn connections_named(&self, i: usize, name: &str) -> usize {
        if !self.is_running(i) {
            return 0;
        }
        self.monitor_json(i, "/connz?limit=4096")
            .and_then(|connz| {
                Some(
                    connz
                        .get("connections")?
                        .as_array()?
                        .iter()
                        .filter(|c| c.get("name").and_then(Value::as_str) == Some(name))
                        .count(),
                )
            })
            .unwrap_or_default()
    }

    /// Waits until every running node answers `GET /healthz` with 200 (JetStream
    /// enabled and current) and reports a meta leader.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] after [`CLUSTER_READY_TIMEOUT`], with the tail of the log
    /// of the first node that was not ready.
    pub fn wait_healthy(&self) -> Result<(), Error> {
        let deadline = Instant::now() + CLUSTER_READY_TIMEOUT;
        loop {
            let not_ready = self.running().find(|&i| {
                let healthy = http_get(self.nodes[i].monitor_port, "/healthz")
                    .is_ok_and(|r| status_is_200(&r));
                let led = self
                    .monitor_json(i, "/jsz")
                    .and_then(|j| Some(!j.pointer("/meta_cluster/leader")?.as_str()?.is_empty()))
                    .unwrap_or(false);
                !(healthy && led)
            });
            let Some(i) = not_ready else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    port: self.nodes[i].port(),
                    timeout: CLUSTER_READY_TIMEOUT,
                    log_tail: self.nodes[i].log_tail(),
                });
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// The indices of the running nodes.
    fn running(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.is_running(i))
    }

    /// The JSON body of a monitoring endpoint of node `i`.
    fn monitor_json(&self, i: usize, path: &str) -> Option<Value> {
        let response = http_get(self.nodes[i].monitor_port, path).ok()?;
        if !status_is_200(&response) {
            return None;
        }
        let (_, body) = response.split_once("\r\n\r\n")?;
        serde_json::from_str(body).ok()
    }
}

/// Whether an HTTP response's status line says 200.
fn status_is_200(response: &str) -> bool {
    let mut parts = response
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace();
    parts.next().is_some_and(|v| v.starts_with("HTTP/")) && parts.next() == Some("200")
}

/// `n` distinct free ports on 127.0.0.1 (every listener is held until all are known).
fn free_ports(n: usize) -> Result<Vec<u16>, Error> {
    let listeners = (0..n)
        .map(|_| {
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .map_err(|e| Error::io("binding an ephemeral port on 127.0.0.1", e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(|e| Error::io("reading an ephemeral port", e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_nodes_form_a_cluster_and_take_a_node_back() -> Result<(), Box<dyn std::error::Error>> {
        let mut cluster = NatsCluster::start()?;
        assert_eq!(cluster.len(), 3);
        assert_eq!(cluster.urls().split(',').count(), 3);
        assert_eq!(cluster.index_of("n2"), Some(2));
        let meta = cluster.meta_leader().ok_or("a meta leader")?;
        // A node that does not lead (killing the leader costs a 4-9 s election).
        let other = (meta + 1) % cluster.len();
        let port = cluster.node(other).port();
        cluster.kill(other)?;
        assert!(!cluster.is_running(other));
        assert_eq!(cluster.connections_named(other, "anyone"), 0);
        cluster.restart(other)?;
        assert!(cluster.is_running(other));
        assert_eq!(cluster.node(other).port(), port, "restart keeps the port");
        assert!(cluster.meta_leader().is_some());
        Ok(())
    }
}
