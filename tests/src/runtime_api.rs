//! A minimal Lambda runtime API on loopback, for the cold-start benchmark
//! and the end-to-end test of the built functions: it serves `/next` with
//! the events it is given (each with a deadline 900 s away, in milliseconds
//! since the epoch, as Lambda gives it) and notes when a function first
//! asked for work (the end of its init) and when each response came.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// What a function sent the runtime API.
#[derive(Debug)]
enum Call {
    /// GET .../invocation/next, with the way to answer it.
    Next(oneshot::Sender<Vec<u8>>),
    /// POST .../invocation/{id}/response or /error, or .../init/error.
    Result { error: bool, body: Vec<u8> },
}

/// One cold start: init, then one invocation per event.
#[derive(Debug)]
pub struct ColdStart {
    /// From spawning the process to its first request for work.
    pub init: Duration,
    /// From spawning the process to its first connection to AWS (the
    /// command's AWS_ENDPOINT_URL), when it made one.
    pub first_aws_request: Option<Duration>,
    /// Each invocation: from handing out the event to the response.
    pub invocations: Vec<Duration>,
    /// The responses (or errors) the function sent.
    pub responses: Vec<(bool, String)>,
    /// Peak resident memory (VmHWM) after the last invocation, in KiB.
    pub peak_rss_kib: u64,
    /// What the function printed on stdout (its log lines, where Lambda
    /// takes them, and the embedded metrics among them).
    pub stdout: String,
}

async fn read_request(stream: &mut TcpStream) -> Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let mut chunk = [0u8; 8192];
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    bail!("connection closed mid-request");
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok((head, buf[end + 4..end + 4 + length].to_vec()));
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn connection(mut stream: TcpStream, calls: mpsc::UnboundedSender<Call>) {
    loop {
        let Ok((head, body)) = read_request(&mut stream).await else {
            return;
        };
        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
        if path.ends_with("/invocation/next") {
            // The answer comes from the benchmark. The connection stays open
            // afterwards, as the real runtime API keeps it: a server that
            // closed it unannounced would make a client lose its next request.
            let (answer, answered) = oneshot::channel();
            if calls.send(Call::Next(answer)).is_err() {
                return;
            }
            let Ok(answer) = answered.await else {
                return;
            };
            if stream.write_all(&answer).await.is_err() {
                return;
            }
            continue;
        }
        let error = path.ends_with("/error");
        let _ = stream
            .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
            .await;
        let _ = calls.send(Call::Result { error, body });
    }
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The function's next call; an error at the deadline, or as soon as the
/// function has exited.
async fn next(
    rx: &mut mpsc::UnboundedReceiver<Call>,
    child: &mut Killed,
    deadline: Instant,
    what: &str,
) -> Result<Call> {
    loop {
        if let Ok(Some(status)) = child.0.try_wait() {
            bail!("the function exited ({status}) before its {what}");
        }
        if Instant::now() >= deadline {
            bail!("no {what} before the deadline");
        }
        match tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
            Ok(Some(call)) => return Ok(call),
            Ok(None) => bail!("the runtime API stopped"),
            Err(_) => continue,
        }
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Stands between a function and its AWS endpoint (loopback) and notes when
/// the first connection came: the first AWS request, with the connector and
/// its TLS setup built, whatever the endpoint's scheme.
async fn witness(upstream: &str) -> Result<(String, Arc<OnceLock<Instant>>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let upstream = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let first = Arc::new(OnceLock::new());
    let noted = first.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let _ = noted.set(Instant::now());
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    Ok((url, first))
}

/// Start `command` as a Lambda function against a fresh runtime API on
/// loopback, hand it `events` one by one, and measure.
pub async fn cold_start(
    mut command: Command,
    events: &[Vec<u8>],
    timeout: Duration,
) -> Result<ColdStart> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let api = listener.local_addr()?.to_string();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let accept = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(connection(stream, tx.clone()));
        }
    });
    command
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let endpoint = command
        .get_envs()
        .find(|(k, _)| *k == "AWS_ENDPOINT_URL")
        .and_then(|(_, v)| v.map(|v| v.to_string_lossy().to_string()));
    let mut first_contact = None;
    if let Some(endpoint) = endpoint {
        let (url, first) = witness(&endpoint).await?;
        command.env("AWS_ENDPOINT_URL", url);
        first_contact = Some(first);
    }
    let started = Instant::now();
    let mut child = Killed(command.spawn().context("the function starts")?);
    // Read on a thread of its own, so that a full pipe never stops the
    // function; the thread ends when the process does.
    let mut out = child.0.stdout.take().context("the function's stdout")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut text);
        text
    });
    let pid = child.0.id();
    let deadline = started + timeout;
    let mut waiting = match next(&mut rx, &mut child, deadline, "request for work").await? {
        Call::Next(stream) => stream,
        Call::Result { body, .. } => bail!("init failed: {}", String::from_utf8_lossy(&body)),
    };
    let init = started.elapsed();
    let mut invocations = Vec::new();
    let mut responses = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let deadline_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
            + 900_000;
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
             Lambda-Runtime-Aws-Request-Id: bench-{i}\r\n\
             Lambda-Runtime-Deadline-Ms: {deadline_ms}\r\n\
             Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:eu-west-1:123456789012:function:bench\r\n\
             Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n\
             Content-Length: {}\r\n\r\n",
            event.len()
        );
        let mut answer = head.into_bytes();
        answer.extend_from_slice(event);
        let handed = Instant::now();
        if waiting.send(answer).is_err() {
            bail!("the function hung up while waiting for work");
        }
        let mut result = None;
        let mut stream = None;
        while result.is_none() || stream.is_none() {
            match next(&mut rx, &mut child, deadline, "response").await? {
                Call::Result { error, body } => {
                    invocations.push(handed.elapsed());
                    result = Some((error, String::from_utf8_lossy(&body).to_string()));
                }
                Call::Next(s) => stream = Some(s),
            }
        }
        responses.push(result.expect("set"));
        waiting = stream.expect("set");
    }
    let peak_rss_kib = peak_rss_kib(pid);
    drop(child);
    accept.abort();
    let stdout = reader.join().unwrap_or_default();
    let first_aws_request = first_contact
        .and_then(|first| first.get().copied())
        .map(|at| at.saturating_duration_since(started));
    Ok(ColdStart {
        init,
        first_aws_request,
        invocations,
        responses,
        peak_rss_kib,
        stdout,
    })
}
