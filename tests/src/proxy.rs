//! A recording HTTP proxy between the AWS SDK and the emulator, on loopback:
//! it notes the time and the AWS operation of every request it forwards, so
//! that tests can count calls per service and per second as AWS would see
//! them (after any client-side waiting).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One forwarded request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Duration,
    /// When the answer went back (None: not yet, or the connection failed).
    pub done: Option<Duration>,
    /// "Route53Resolver.ListResolverRules", "EC2.DescribeVpcs", or the path.
    pub operation: String,
}

#[derive(Clone)]
pub struct Proxy {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    faults: Arc<Mutex<Faults>>,
}

/// Requests the proxy answers itself with a throttling error instead of
/// forwarding them.
#[derive(Clone, Debug, Default)]
struct Faults {
    /// Service prefix ("Route53Resolver") and every how many requests.
    throttle: Option<(String, usize)>,
    counter: usize,
    injected: usize,
    /// Operations whose last request was throttled: their next one passes,
    /// so that a client's retry budget is never exhausted by the proxy alone.
    owed: std::collections::HashSet<String>,
    /// Added before every request is forwarded, as a far-away AWS would.
    latency: Duration,
}

impl Proxy {
    /// Start a proxy to `upstream` ("http://127.0.0.1:PORT").
    pub async fn start(upstream: &str) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let upstream = upstream.trim_start_matches("http://").to_string();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let faults: Arc<Mutex<Faults>> = Arc::default();
        let started = Instant::now();
        let record = seen.clone();
        let inject = faults.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let record = record.clone();
                let inject = inject.clone();
                tokio::spawn(async move {
                    let _ = serve(client, &upstream, record, inject, started).await;
                });
            }
        });
        Ok(Proxy { url, seen, faults })
    }

    /// Answer every `every`-th request of `service` with a 400
    /// ThrottlingException, as AWS does past its rate limit.
    pub fn throttle_every(&self, service: &str, every: usize) {
        let mut f = self.faults.lock().unwrap();
        f.throttle = Some((service.to_string(), every.max(1)));
    }

    /// Delay every forwarded request by `latency` (a fixed round trip).
    pub fn set_latency(&self, latency: Duration) {
        self.faults.lock().unwrap().latency = latency;
    }

    /// Forget the requests seen so far (between the phases of a benchmark).
    pub fn reset(&self) {
        self.seen.lock().unwrap().clear();
    }

    /// How many throttling errors were injected.
    pub fn injected(&self) -> usize {
        self.faults.lock().unwrap().injected
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Sequential rounds: the longest chain of requests in which each one
    /// started only after the one before it was answered. Requests that ran
    /// at the same time count once, however slowly the emulator (which
    /// serves one request at a time) answered them.
    pub fn rounds(&self) -> usize {
        let mut seen = self.seen();
        seen.sort_by_key(|s| s.at);
        let mut chain: Vec<usize> = Vec::with_capacity(seen.len());
        for (i, s) in seen.iter().enumerate() {
            let before = (0..i)
                .filter(|&j| seen[j].done.is_some_and(|d| d <= s.at))
                .map(|j| chain[j])
                .max()
                .unwrap_or(0);
            chain.push(before + 1);
        }
        chain.into_iter().max().unwrap_or(0)
    }

    /// The largest number of requests of `service` that started within any
    /// window of length `window`.
    pub fn max_in_window(&self, service: &str, window: Duration) -> usize {
        let times: Vec<Duration> = self
            .seen()
            .into_iter()
            .filter(|s| s.operation.starts_with(service))
            .map(|s| s.at)
            .collect();
        let mut best = 0;
        for (i, start) in times.iter().enumerate() {
            let n = times[i..]
                .iter()
                .take_while(|t| **t < *start + window)
                .count();
            best = best.max(n);
        }
        best
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn operation(head: &str, body: &[u8]) -> String {
    if let Some(target) = header(head, "x-amz-target") {
        // "Route53Resolver.ListResolverRules", "AmazonSSM.GetParameter"
        return target.to_string();
    }
    let body = String::from_utf8_lossy(body);
    if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        return format!("EC2.{action}");
    }
    let path = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    format!("EKS.{path}")
}

/// Read one HTTP message (head and Content-Length body) from `stream`.
async fn read_message(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<Option<(String, Vec<u8>)>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length: usize = header(&head, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let mut chunk = [0u8; 16384];
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    anyhow::bail!("connection closed mid-message");
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[end + 4..end + 4 + length].to_vec();
            buf.drain(..end + 4 + length);
            return Ok(Some((head, body)));
        }
        let mut chunk = [0u8; 16384];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn serve(
    mut client: TcpStream,
    upstream: &str,
    record: Arc<Mutex<Vec<Seen>>>,
    faults: Arc<Mutex<Faults>>,
    started: Instant,
) -> Result<()> {
    let mut from_client = Vec::new();
    while let Some((head, body)) = read_message(&mut client, &mut from_client).await? {
        let op = operation(&head, &body);
        let index = {
            let mut r = record.lock().unwrap();
            r.push(Seen {
                at: started.elapsed(),
                done: None,
                operation: op.clone(),
            });
            r.len() - 1
        };
        let finish = |record: &Arc<Mutex<Vec<Seen>>>| {
            if let Some(s) = record.lock().unwrap().get_mut(index) {
                s.done = Some(started.elapsed());
            }
        };
        let (throttle, latency) = {
            let mut f = faults.lock().unwrap();
            let latency = f.latency;
            let throttle = match f.throttle.clone() {
                Some((service, every)) if op.starts_with(&service) => {
                    if f.owed.remove(&op) {
                        false
                    } else {
                        f.counter += 1;
                        let hit = f.counter.is_multiple_of(every);
                        if hit {
                            f.injected += 1;
                            f.owed.insert(op.clone());
                        }
                        hit
                    }
                }
                _ => false,
            };
            (throttle, latency)
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if throttle {
            let body = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
            client
                .write_all(
                    format!(
                        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\n\
                         x-amzn-ErrorType: ThrottlingException\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await?;
            finish(&record);
            continue;
        }
        // One upstream connection per request keeps framing simple.
        let mut server = TcpStream::connect(upstream).await?;
        let head = head
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
            .collect::<Vec<_>>()
            .join("\r\n");
        server
            .write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
            .await?;
        server.write_all(&body).await?;
        let mut response = Vec::new();
        server.read_to_end(&mut response).await?;
        // Keep the client connection open: drop the upstream's close.
        let text_end = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(0);
        let head = String::from_utf8_lossy(&response[..text_end]).to_string();
        let body = &response[(text_end + 4).min(response.len())..];
        let mut head: Vec<String> = head
            .lines()
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                !l.starts_with("connection:") && !l.starts_with("content-length:")
            })
            .map(str::to_string)
            .collect();
        head.push(format!("Content-Length: {}", body.len()));
        client
            .write_all(format!("{}\r\n\r\n", head.join("\r\n")).as_bytes())
            .await?;
        client.write_all(body).await?;
        finish(&record);
    }
    Ok(())
}
