//! `verify`: ask DNS servers (the inbound Resolver IPs, or one given) for a
//! cluster's endpoint name, over UDP and TCP, and report what each answered.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
}

/// One query's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub server: String,
    pub transport: Transport,
    pub record_type: String,
    pub addresses: Vec<String>,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Check {
    pub fn ok(&self) -> bool {
        self.error.is_none() && !self.addresses.is_empty()
    }
}

/// "10.0.0.2" or "10.0.0.2:5353" or "[fd00::2]:53" -> a socket address.
pub fn parse_server(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(format!(
        "'{text}' is not a server address (expected IP or IP:PORT, e.g. 10.0.0.2 or 127.0.0.1:5353)"
    ))
}

fn build_query(name: &str, record_type: RecordType, id: u16) -> Result<Vec<u8>, String> {
    let name = Name::from_str(&format!("{}.", name.trim_end_matches('.')))
        .map_err(|e| format!("'{name}' is not a DNS name: {e}"))?;
    let mut message = Message::new();
    message
        .set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(name, record_type));
    message.to_vec().map_err(|e| e.to_string())
}

fn parse_response(bytes: &[u8], id: u16, record_type: RecordType) -> Result<Vec<String>, String> {
    let message = Message::from_vec(bytes).map_err(|e| format!("malformed answer: {e}"))?;
    if message.id() != id {
        return Err("answer with a wrong id".into());
    }
    if message.response_code() != ResponseCode::NoError {
        return Err(format!("answered {}", message.response_code()));
    }
    let mut addresses: Vec<String> = message
        .answers()
        .iter()
        .filter(|r| r.record_type() == record_type)
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    addresses.sort();
    if addresses.is_empty() {
        return Err(format!("no {record_type} record in the answer"));
    }
    Ok(addresses)
}

async fn exchange(
    server: SocketAddr,
    transport: Transport,
    query: &[u8],
) -> std::io::Result<Vec<u8>> {
    match transport {
        Transport::Udp => {
            let bind: SocketAddr = if server.is_ipv4() {
                "0.0.0.0:0".parse().expect("valid")
            } else {
                "[::]:0".parse().expect("valid")
            };
            let socket = UdpSocket::bind(bind).await?;
            socket.connect(server).await?;
            socket.send(query).await?;
            let mut buf = vec![0u8; 4096];
            let n = socket.recv(&mut buf).await?;
            buf.truncate(n);
            Ok(buf)
        }
        Transport::Tcp => {
            let mut stream = TcpStream::connect(server).await?;
            let mut framed = (query.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(query);
            stream.write_all(&framed).await?;
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await?;
            let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
            stream.read_exact(&mut buf).await?;
            Ok(buf)
        }
    }
}

/// Ask `server` for `name` once.
pub async fn check(
    server: SocketAddr,
    name: &str,
    record_type: RecordType,
    transport: Transport,
    timeout: Duration,
) -> Check {
    let id: u16 = (std::process::id() as u16) ^ (Instant::now().elapsed().subsec_nanos() as u16);
    let started = Instant::now();
    let result = match build_query(name, record_type, id) {
        Err(e) => Err(e),
        Ok(query) => match tokio::time::timeout(timeout, exchange(server, transport, &query)).await
        {
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(bytes)) => parse_response(&bytes, id, record_type),
        },
    };
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (addresses, error) = match result {
        Ok(a) => (a, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    Check {
        server: server.to_string(),
        transport,
        record_type: record_type.to_string(),
        addresses,
        latency_ms: (latency_ms * 10.0).round() / 10.0,
        error,
    }
}

/// Ask every server for `name` (A, and AAAA when `dual_stack`) over UDP
/// and TCP, all at once.
pub async fn verify(
    servers: &[SocketAddr],
    name: &str,
    dual_stack: bool,
    timeout: Duration,
) -> Vec<Check> {
    let mut types = vec![RecordType::A];
    if dual_stack {
        types.push(RecordType::AAAA);
    }
    let mut checks = Vec::new();
    for server in servers {
        for transport in [Transport::Udp, Transport::Tcp] {
            for record_type in &types {
                checks.push(check(*server, name, *record_type, transport, timeout));
            }
        }
    }
    futures::future::join_all(checks).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_parse_with_and_without_port() {
        assert_eq!(parse_server("10.0.0.2").unwrap().to_string(), "10.0.0.2:53");
        assert_eq!(parse_server("127.0.0.1:5353").unwrap().port(), 5353);
        assert_eq!(parse_server("fd00::2").unwrap().to_string(), "[fd00::2]:53");
        assert!(parse_server("dns.example.com").is_err());
    }

    #[test]
    fn queries_round_trip() {
        let q = build_query("abc.gr7.eu-west-1.eks.amazonaws.com", RecordType::A, 7).unwrap();
        let m = Message::from_vec(&q).unwrap();
        assert_eq!(m.id(), 7);
        assert_eq!(
            m.queries()[0].name().to_string(),
            "abc.gr7.eu-west-1.eks.amazonaws.com."
        );
        // A query is not an answer.
        assert!(parse_response(&q, 7, RecordType::A).is_err());
        assert!(parse_response(&q, 8, RecordType::A)
            .unwrap_err()
            .contains("wrong id"));
    }
}
