//! A stub authoritative DNS server for tests, on loopback: it answers A
//! queries for one name with fixed addresses (UDP and TCP), NXDOMAIN for
//! any other name. It stands in for the inbound Resolver endpoint.

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;

use anyhow::Result;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

pub struct DnsStub {
    /// Where it listens (UDP and TCP on the same port).
    pub addrs: Vec<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for DnsStub {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn answer(query: &[u8], name: &Name, addresses: &[Ipv4Addr]) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let mut response = Message::new();
    response
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_authoritative(true)
        .set_recursion_desired(request.recursion_desired());
    for q in request.queries() {
        response.add_query(q.clone());
        if q.name().to_lowercase() == *name {
            if q.query_type() == RecordType::A {
                for a in addresses {
                    response.add_answer(Record::from_rdata(q.name().clone(), 60, RData::A(A(*a))));
                }
            }
        } else {
            response.set_response_code(ResponseCode::NXDomain);
        }
    }
    response.to_vec().ok()
}

impl DnsStub {
    /// Listen on each of `binds` (port 0: any free port, the same for UDP
    /// and TCP) and answer `name` with `addresses`.
    pub async fn start(
        binds: &[SocketAddr],
        name: &str,
        addresses: Vec<Ipv4Addr>,
    ) -> Result<DnsStub> {
        let name = Name::from_str(&format!("{}.", name.trim_end_matches('.')))?.to_lowercase();
        let mut addrs = Vec::new();
        let mut tasks = Vec::new();
        for bind in binds {
            let udp = UdpSocket::bind(bind).await?;
            let local = udp.local_addr()?;
            let tcp = TcpListener::bind(local).await?;
            addrs.push(local);
            let (n, a) = (name.clone(), addresses.clone());
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                while let Ok((len, peer)) = udp.recv_from(&mut buf).await {
                    if let Some(reply) = answer(&buf[..len], &n, &a) {
                        let _ = udp.send_to(&reply, peer).await;
                    }
                }
            }));
            let (n, a) = (name.clone(), addresses.clone());
            tasks.push(tokio::spawn(async move {
                while let Ok((mut stream, _)) = tcp.accept().await {
                    let (n, a) = (n.clone(), a.clone());
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
                            let Some(reply) = answer(&buf, &n, &a) else {
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
        Ok(DnsStub { addrs, tasks })
    }
}
