//! A stub authoritative DNS server for tests, on loopback: it answers A and
//! AAAA queries for fixed names with fixed addresses (UDP and TCP), an empty
//! answer for a type it has no address of, NXDOMAIN for any other name, and
//! counts the queries it got per name. Answers carry a TTL of 1 s, so that
//! a caching server in front of it does not hide a change for long. It stands in for the inbound
//! Resolver endpoint (and, with no names, for an upstream that knows
//! nothing).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// Names and the addresses the stub answers for them.
pub type Zone = Vec<(String, Vec<IpAddr>)>;

#[derive(Default)]
struct State {
    records: BTreeMap<Name, Vec<IpAddr>>,
    queries: BTreeMap<String, usize>,
}

pub struct DnsStub {
    /// Where it listens (UDP and TCP on the same port).
    pub addrs: Vec<SocketAddr>,
    state: Arc<Mutex<State>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for DnsStub {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn fqdn(name: &str) -> Result<Name> {
    Ok(Name::from_str(&format!("{}.", name.trim_end_matches('.')))?.to_lowercase())
}

fn answer(query: &[u8], state: &Mutex<State>) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let mut response = Message::new();
    response
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_authoritative(true)
        .set_recursion_desired(request.recursion_desired());
    let mut state = state.lock().unwrap();
    for q in request.queries() {
        response.add_query(q.clone());
        let name = q.name().to_lowercase();
        *state
            .queries
            .entry(name.to_string().trim_end_matches('.').to_string())
            .or_default() += 1;
        let Some(addresses) = state.records.get(&name) else {
            response.set_response_code(ResponseCode::NXDomain);
            continue;
        };
        for address in addresses {
            let rdata = match (q.query_type(), address) {
                (RecordType::A, IpAddr::V4(a)) => RData::A(A(*a)),
                (RecordType::AAAA, IpAddr::V6(a)) => RData::AAAA(AAAA(*a)),
                _ => continue,
            };
            response.add_answer(Record::from_rdata(q.name().clone(), 1, rdata));
        }
    }
    response.to_vec().ok()
}

impl DnsStub {
    /// Listen on each of `binds` (port 0: any free port, the same for UDP
    /// and TCP) and answer the names of `zone` with their addresses.
    pub async fn start(binds: &[SocketAddr], zone: Zone) -> Result<DnsStub> {
        let mut state = State::default();
        for (name, addresses) in zone {
            state.records.insert(fqdn(&name)?, addresses);
        }
        let state = Arc::new(Mutex::new(state));
        let mut addrs = Vec::new();
        let mut tasks = Vec::new();
        for bind in binds {
            let udp = UdpSocket::bind(bind).await?;
            let local = udp.local_addr()?;
            let tcp = TcpListener::bind(local).await?;
            addrs.push(local);
            let s = state.clone();
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                while let Ok((len, peer)) = udp.recv_from(&mut buf).await {
                    if let Some(reply) = answer(&buf[..len], &s) {
                        let _ = udp.send_to(&reply, peer).await;
                    }
                }
            }));
            let s = state.clone();
            tasks.push(tokio::spawn(async move {
                while let Ok((mut stream, _)) = tcp.accept().await {
                    let s = s.clone();
                    tokio::spawn(async move {
                        loop {
                            let mut len = [0u8; 2];
                            if stream.read_exact(&mut len).await.is_err() {
                                return;
                            }
                            let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
                            if stream.read_exact(&mut buf).await.is_err() {
                                return;
                            }
                            let Some(reply) = answer(&buf, &s) else {
                                return;
                            };
                            let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                            framed.extend_from_slice(&reply);
                            if stream.write_all(&framed).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            }));
        }
        Ok(DnsStub {
            addrs,
            state,
            tasks,
        })
    }

    /// Stop answering, and return once the sockets are closed (dropping
    /// the stub only asks its tasks to stop; the port may stay bound for
    /// a moment after).
    pub async fn stop(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }

    /// How many questions for `name` the stub has been asked so far.
    pub fn queries(&self, name: &str) -> usize {
        let key = name.trim_end_matches('.').to_lowercase();
        self.state
            .lock()
            .unwrap()
            .queries
            .get(&key)
            .copied()
            .unwrap_or(0)
    }
}
