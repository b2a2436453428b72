//! A recording, fault-injecting HTTP proxy between the AWS SDK and the
//! emulator, on loopback. It notes the time and the AWS operation of every
//! request, so that tests can count calls per service and per second as AWS
//! would see them (after any client-side waiting), and it can make AWS
//! misbehave: throttle (400), fail (500 InternalError, 503
//! ServiceUnavailable), reset the connection, answer late, forward the
//! request and drop the answer (the write happened; the client does not know),
//! or take the request and never answer (a black hole),
//! chosen per request by rate and operation from a seed, so a run repeats.
//! It can also hold everything after the k-th write, for a test to kill the
//! client right after that write.

use std::collections::{BTreeMap, HashMap};
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
    /// Whether the request changes something (EKS: any method but GET).
    pub write: bool,
    /// The SDK's attempt number (1, then 2, 3 for its retries).
    pub attempt: u32,
    /// The access key id that signed it: who called (each account's
    /// credentials have their own).
    pub caller: String,
    /// What the proxy did to it instead of forwarding it faithfully.
    pub fault: Option<Fault>,
}

/// What the proxy can do to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// 400 (EC2: 503 RequestLimitExceeded; EKS: 429) throttling error.
    Throttle,
    /// 500 InternalError.
    Internal,
    /// 503 ServiceUnavailable.
    Unavailable,
    /// Reset the connection before forwarding.
    Reset,
    /// Forward after a delay (FaultPlan::delay).
    Delay,
    /// Forward, let AWS do it, and drop the answer: the connection closes.
    DropResponse,
    /// Take the request and never answer, keeping the connection open (a
    /// black-holed network path): only the client's timeout ends it.
    BlackHole,
}

impl Fault {
    pub const ALL: [Fault; 7] = [
        Fault::Throttle,
        Fault::Internal,
        Fault::Unavailable,
        Fault::Reset,
        Fault::Delay,
        Fault::DropResponse,
        Fault::BlackHole,
    ];
}

/// Faults chosen per request: each request whose operation starts with
/// `operations` (empty: all) gets one, with probability `rate`, of one of
/// `kinds`. The choice is a hash of the seed, the operation and how many
/// requests of that operation came before, so that a run repeats even when
/// its requests interleave differently.
#[derive(Clone, Debug)]
pub struct FaultPlan {
    pub seed: u64,
    pub rate: f64,
    pub operations: String,
    pub kinds: Vec<Fault>,
    pub delay: Duration,
}

impl FaultPlan {
    /// Every kind of fault at `rate` over all operations.
    pub fn all(seed: u64, rate: f64) -> FaultPlan {
        FaultPlan {
            seed,
            rate,
            operations: String::new(),
            kinds: Fault::ALL.to_vec(),
            delay: Duration::from_millis(300),
        }
    }
}

/// Requests per service and operation, and what was done to them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub requests: usize,
    pub writes: usize,
    /// Requests the SDK sent as a retry (attempt 2 or later).
    pub retries: usize,
    pub faults: BTreeMap<Fault, usize>,
}

impl Tally {
    pub fn faults_injected(&self) -> usize {
        self.faults.values().sum()
    }

    /// What happened after `earlier` (a total taken before).
    pub fn since(&self, earlier: &Tally) -> Tally {
        let mut faults = self.faults.clone();
        for (k, v) in &earlier.faults {
            if let Some(n) = faults.get_mut(k) {
                *n -= v;
            }
        }
        Tally {
            requests: self.requests - earlier.requests,
            writes: self.writes - earlier.writes,
            retries: self.retries - earlier.retries,
            faults,
        }
    }

    pub fn add(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.writes += other.writes;
        self.retries += other.retries;
        for (k, v) in &other.faults {
            *self.faults.entry(*k).or_default() += v;
        }
    }
}

#[derive(Clone)]
pub struct Proxy {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// The account and the assumed-role ARN of each access key STS
    /// AssumeRole gave through it.
    assumed: Arc<Mutex<HashMap<String, (String, String)>>>,
    faults: Arc<Mutex<Faults>>,
    held: Arc<tokio::sync::Notify>,
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
    plan: Option<FaultPlan>,
    /// Requests seen per operation (the plan's hash input).
    per_operation: HashMap<String, u64>,
    /// Operations ("Route53Resolver.CreateResolverEndpoint") refused with
    /// AccessDenied to the role of an account, as AWS refuses a call that
    /// no policy of the role allows.
    denied: Vec<(String, String)>,
    /// Hold after this many writes have been answered by AWS.
    hold_after: Option<usize>,
    writes_answered: usize,
    holding: bool,
}

/// A 64-bit mix (splitmix64's finaliser).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

impl FaultPlan {
    fn choose(&self, operation: &str, nth: u64) -> Option<Fault> {
        if self.kinds.is_empty() || !operation.starts_with(&self.operations) {
            return None;
        }
        let mut h = mix(self.seed ^ 0x9e3779b97f4a7c15);
        for b in operation.bytes() {
            h = mix(h ^ u64::from(b));
        }
        h = mix(h ^ nth);
        let draw = (h >> 11) as f64 / (1u64 << 53) as f64;
        if draw >= self.rate {
            return None;
        }
        let pick = mix(h ^ 0x5851f42d4c957f2d) % self.kinds.len() as u64;
        Some(self.kinds[pick as usize])
    }
}

impl Proxy {
    /// Start a proxy to `upstream` ("http://127.0.0.1:PORT").
    pub async fn start(upstream: &str) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let upstream = upstream.trim_start_matches("http://").to_string();
        let proxy = Proxy {
            url,
            seen: Arc::default(),
            assumed: Arc::default(),
            faults: Arc::default(),
            held: Arc::default(),
        };
        let started = Instant::now();
        let shared = proxy.clone();
        let listener = listener.into_std()?;
        // Its own thread and runtime: a request is timed when it arrives,
        // however busy the runtime of the clients that sent it is.
        std::thread::Builder::new()
            .name("proxy".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the proxy's runtime");
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    while let Ok((client, _)) = listener.accept().await {
                        let upstream = upstream.clone();
                        let proxy = shared.clone();
                        tokio::spawn(async move {
                            let _ = serve(client, &upstream, proxy, started).await;
                        });
                    }
                });
            })?;
        Ok(proxy)
    }

    /// Inject faults by `plan` from now on (None: stop).
    pub fn inject(&self, plan: Option<FaultPlan>) {
        self.faults.lock().unwrap().plan = plan;
    }

    /// After the `k`-th write from now has been done by AWS, answer nothing
    /// more: that answer and every later request wait until `release`. A
    /// test kills its client once `wait_held` returns, as a crash right after
    /// the write would.
    pub fn hold_after_writes(&self, k: usize) {
        let mut f = self.faults.lock().unwrap();
        f.hold_after = Some(k);
        f.writes_answered = 0;
        f.holding = false;
    }

    /// Wait until the proxy holds (see `hold_after_writes`).
    pub async fn wait_held(&self) {
        loop {
            let notified = self.held.notified();
            if self.faults.lock().unwrap().holding {
                return;
            }
            notified.await;
        }
    }

    /// Whether the proxy holds.
    pub fn holding(&self) -> bool {
        self.faults.lock().unwrap().holding
    }

    /// Stop holding: held connections are closed unanswered.
    pub fn release(&self) {
        let mut f = self.faults.lock().unwrap();
        f.hold_after = None;
        f.holding = false;
        drop(f);
        self.held.notify_waiters();
    }

    /// Requests by operation, since the last `reset`.
    pub fn tally(&self) -> BTreeMap<String, Tally> {
        let mut out: BTreeMap<String, Tally> = BTreeMap::new();
        for s in self.seen() {
            let t = out.entry(s.operation.clone()).or_default();
            t.requests += 1;
            t.writes += usize::from(s.write);
            t.retries += usize::from(s.attempt > 1);
            if let Some(f) = s.fault {
                *t.faults.entry(f).or_default() += 1;
            }
        }
        out
    }

    /// All requests since the last `reset`, summed.
    pub fn total(&self) -> Tally {
        let mut total = Tally::default();
        for t in self.tally().values() {
            total.add(t);
        }
        total
    }

    /// Answer every `every`-th request of `service` with a 400
    /// ThrottlingException, as AWS does past its rate limit.
    pub fn throttle_every(&self, service: &str, every: usize) {
        let mut f = self.faults.lock().unwrap();
        f.throttle = Some((service.to_string(), every.max(1)));
    }

    /// Refuse `operation` to the role of `account` from now on, as AWS
    /// refuses a call that no policy of the role allows.
    pub fn deny(&self, account: &str, operation: &str) {
        let mut f = self.faults.lock().unwrap();
        f.denied.push((account.to_string(), operation.to_string()));
    }

    /// Refuse nothing any more (the missing permission granted).
    pub fn allow_all(&self) {
        self.faults.lock().unwrap().denied.clear();
    }

    /// Delay every forwarded request by `latency` (a fixed round trip).
    pub fn set_latency(&self, latency: Duration) {
        self.faults.lock().unwrap().latency = latency;
    }

    /// Forget the requests seen so far (between the phases of a benchmark).
    pub fn reset(&self) {
        self.seen.lock().unwrap().clear();
    }

    /// How many throttling errors `throttle_every` injected.
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
        self.max_in_window_of(service, window, |_| true)
    }

    /// The same, for the requests of callers `caller` takes.
    pub fn max_in_window_of(
        &self,
        service: &str,
        window: Duration,
        caller: impl Fn(&str) -> bool,
    ) -> usize {
        self.busiest_window_of(service, window, caller).len()
    }

    /// The requests of `service` from callers `caller` takes that AWS's
    /// throttling would have refused: AWS enforces an API's rate with a
    /// token bucket per account and region (the EC2 and ECS API references
    /// describe theirs), `capacity` tokens refilled at `rate` a second,
    /// each request taking one. A refused request takes none.
    pub fn over_rate_of(
        &self,
        service: &str,
        rate: f64,
        capacity: f64,
        caller: impl Fn(&str) -> bool,
    ) -> Vec<Seen> {
        let mut tokens = capacity;
        let mut last = Duration::ZERO;
        let mut refused = Vec::new();
        for s in self.seen() {
            if !(s.operation.starts_with(service) && caller(&s.caller)) {
                continue;
            }
            tokens = (tokens + (s.at.saturating_sub(last)).as_secs_f64() * rate).min(capacity);
            last = last.max(s.at);
            if tokens >= 1.0 {
                tokens -= 1.0;
            } else {
                refused.push(s);
            }
        }
        refused
    }

    /// The requests of the busiest `window` of `service` from callers
    /// `caller` takes, by arrival, for a message that shows them.
    pub fn busiest_window_of(
        &self,
        service: &str,
        window: Duration,
        caller: impl Fn(&str) -> bool,
    ) -> Vec<Seen> {
        let seen: Vec<Seen> = self
            .seen()
            .into_iter()
            .filter(|s| s.operation.starts_with(service) && caller(&s.caller))
            .collect();
        let mut best: &[Seen] = &[];
        for (i, start) in seen.iter().enumerate() {
            let n = seen[i..]
                .iter()
                .take_while(|s| s.at < start.at + window)
                .count();
            if n > best.len() {
                best = &seen[i..i + n];
            }
        }
        best.to_vec()
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
    let path = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    let service = signing_service(head);
    let body = String::from_utf8_lossy(body);
    if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        return match service.as_str() {
            "sts" => format!("STS.{action}"),
            _ => format!("EC2.{action}"),
        };
    }
    match service.as_str() {
        // RAM's REST paths name the operation: "/getresourceshares".
        "ram" => format!("RAM.{}", path.trim_start_matches('/')),
        _ => format!("EKS.{path}"),
    }
}

/// The service a request is signed for (its credential scope:
/// "Credential=AKID/20261207/eu-west-1/ram/aws4_request").
fn signing_service(head: &str) -> String {
    header(head, "authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or_default()
        .to_string()
}

fn is_write(head: &str, operation: &str) -> bool {
    if operation.starts_with("EKS.") {
        return !head.starts_with("GET ");
    }
    if let Some(path) = operation.strip_prefix("RAM.") {
        return !(path.starts_with("get") || path.starts_with("list"));
    }
    shared::aws::is_write_operation(operation)
}

/// "Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261207/..." -> "AKID".
fn caller(head: &str) -> String {
    header(head, "authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or_default()
        .to_string()
}

/// "amz-sdk-request: attempt=2; max=3" -> 2.
fn attempt(head: &str) -> u32 {
    header(head, "amz-sdk-request")
        .and_then(|v| {
            v.split(';')
                .find_map(|kv| kv.trim().strip_prefix("attempt="))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(1)
}

/// An AWS error answer in the protocol of `operation`'s service.
fn error_answer(operation: &str, fault: Fault) -> Vec<u8> {
    let (status, code, message) = match fault {
        Fault::Throttle if operation.starts_with("EC2.") => {
            (503, "RequestLimitExceeded", "Request limit exceeded.")
        }
        Fault::Throttle if operation.starts_with("EKS.") || operation.starts_with("RAM.") => {
            (429, "ThrottlingException", "Rate exceeded")
        }
        Fault::Throttle if operation.starts_with("STS.") => (400, "Throttling", "Rate exceeded"),
        Fault::Throttle => (400, "ThrottlingException", "Rate exceeded"),
        Fault::Unavailable => (503, "ServiceUnavailable", "Service unavailable"),
        _ => (500, "InternalError", "An internal error has occurred"),
    };
    error_response(operation, status, code, message)
}

/// An error `code` with `status` and `message`, framed as `operation`'s
/// service frames its errors.
fn error_response(operation: &str, status: u16, code: &str, message: &str) -> Vec<u8> {
    let reason = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Service Unavailable",
    };
    let (content_type, body) = if operation.starts_with("EC2.") {
        (
            "text/xml;charset=UTF-8",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>\
                 <Code>{code}</Code><Message>{message}</Message></Error></Errors>\
                 <RequestID>injected</RequestID></Response>"
            ),
        )
    } else if operation.starts_with("STS.") {
        (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code>\
                 <Message>{message}</Message></Error><RequestId>injected</RequestId>\
                 </ErrorResponse>"
            ),
        )
    } else if operation.starts_with("EKS.") || operation.starts_with("RAM.") {
        ("application/json", format!(r#"{{"message":"{message}"}}"#))
    } else {
        (
            "application/x-amz-json-1.1",
            format!(r#"{{"__type":"{code}","message":"{message}"}}"#),
        )
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nx-amzn-ErrorType: {code}\r\n\
         x-amzn-RequestId: injected\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
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

/// Forward one request upstream and return the answer, re-framed for a
/// kept-alive client connection.
async fn forward(upstream: &str, head: &str, body: &[u8]) -> Result<Vec<u8>> {
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
    server.write_all(body).await?;
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
    let mut out = format!("{}\r\n\r\n", head.join("\r\n")).into_bytes();
    out.extend_from_slice(body);
    Ok(out)
}

/// What to do with one request, decided under the lock.
struct Decision {
    fault: Option<Fault>,
    latency: Duration,
    delay: Duration,
    hold: bool,
}

async fn serve(
    mut client: TcpStream,
    upstream: &str,
    proxy: Proxy,
    started: Instant,
) -> Result<()> {
    let mut from_client = Vec::new();
    while let Some((head, body)) = read_message(&mut client, &mut from_client).await? {
        let op = operation(&head, &body);
        let write = is_write(&head, &op);
        if let Some(answer) = proxy.denial(&op, &caller(&head)) {
            proxy.seen.lock().unwrap().push(Seen {
                at: started.elapsed(),
                done: Some(started.elapsed()),
                operation: op.clone(),
                write,
                attempt: attempt(&head),
                caller: caller(&head),
                fault: None,
            });
            client.write_all(&answer).await?;
            continue;
        }
        let decision = {
            let mut f = proxy.faults.lock().unwrap();
            let throttle_every = match f.throttle.clone() {
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
            let nth = {
                let n = f.per_operation.entry(op.clone()).or_default();
                *n += 1;
                *n
            };
            let fault = if throttle_every {
                Some(Fault::Throttle)
            } else {
                f.plan.as_ref().and_then(|p| p.choose(&op, nth))
            };
            Decision {
                fault,
                latency: f.latency,
                delay: f.plan.as_ref().map(|p| p.delay).unwrap_or_default(),
                hold: f.holding,
            }
        };
        let index = {
            let mut r = proxy.seen.lock().unwrap();
            r.push(Seen {
                at: started.elapsed(),
                done: None,
                operation: op.clone(),
                write,
                attempt: attempt(&head),
                caller: caller(&head),
                fault: decision.fault,
            });
            r.len() - 1
        };
        let finish = || {
            if let Some(s) = proxy.seen.lock().unwrap().get_mut(index) {
                s.done = Some(started.elapsed());
            }
        };
        if decision.hold {
            // A crashed client's requests: never forwarded, never answered.
            proxy.wait_released().await;
            return Ok(());
        }
        if !decision.latency.is_zero() {
            tokio::time::sleep(decision.latency).await;
        }
        match decision.fault {
            Some(fault @ (Fault::Throttle | Fault::Internal | Fault::Unavailable)) => {
                client.write_all(&error_answer(&op, fault)).await?;
                finish();
                continue;
            }
            Some(Fault::Reset) => {
                client.set_zero_linger()?;
                finish();
                return Ok(());
            }
            Some(Fault::Delay) => tokio::time::sleep(decision.delay).await,
            Some(Fault::BlackHole) => {
                // Never forwarded, never answered: wait for the client to
                // give up and close the connection.
                let mut sink = [0u8; 4096];
                while client.read(&mut sink).await.map(|n| n > 0).unwrap_or(false) {}
                finish();
                return Ok(());
            }
            _ => {}
        }
        let answer = forward(upstream, &head, &body).await?;
        if op == "STS.AssumeRole" {
            proxy.note_assumed(&body, &answer);
        }
        if write && proxy.count_write_and_maybe_hold() {
            proxy.wait_released().await;
            return Ok(());
        }
        if decision.fault == Some(Fault::DropResponse) {
            finish();
            return Ok(());
        }
        client.write_all(&answer).await?;
        finish();
    }
    Ok(())
}

impl Proxy {
    /// The account an access key acts in: a role's (STS AssumeRole through
    /// this proxy), or None for another key (the emulator's own account).
    pub fn account_of(&self, caller: &str) -> Option<String> {
        self.assumed
            .lock()
            .unwrap()
            .get(caller)
            .map(|(account, _)| account.clone())
    }

    /// The assumed-role ARN an access key acts as, when a role's.
    fn principal_of(&self, caller: &str) -> Option<(String, String)> {
        self.assumed.lock().unwrap().get(caller).cloned()
    }

    /// Note the key an AssumeRole answer gave, and the role's account.
    fn note_assumed(&self, request: &[u8], answer: &[u8]) {
        let request = String::from_utf8_lossy(request);
        let answer = String::from_utf8_lossy(answer);
        let account = request
            .split('&')
            .find_map(|kv| kv.strip_prefix("RoleArn="))
            .map(|arn| arn.replace("%3A", ":").replace("%2F", "/"))
            .and_then(|arn| arn.split(':').nth(4).map(str::to_string));
        let key = answer
            .split("<AccessKeyId>")
            .nth(1)
            .and_then(|rest| rest.split("</AccessKeyId>").next())
            .map(str::to_string);
        // <AssumedRoleUser><Arn>arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION</Arn>
        let arn = answer
            .split("<AssumedRoleUser>")
            .nth(1)
            .and_then(|rest| rest.split("<Arn>").nth(1))
            .and_then(|rest| rest.split("</Arn>").next())
            .map(str::to_string)
            .unwrap_or_default();
        if let (Some(account), Some(key)) = (account, key) {
            self.assumed.lock().unwrap().insert(key, (account, arn));
        }
    }

    /// AWS's AccessDenied answer when `operation` is denied to the role
    /// `caller` acts as. The message is AWS's for an identity-based denial:
    /// it names the principal and the action.
    fn denial(&self, operation: &str, caller: &str) -> Option<Vec<u8>> {
        let (account, principal) = self.principal_of(caller)?;
        let denied = self.faults.lock().unwrap().denied.clone();
        if !denied.iter().any(|(a, o)| *a == account && o == operation) {
            return None;
        }
        let (service, action) = operation.split_once('.')?;
        let prefix = match service {
            "AmazonSSM" => "ssm".to_string(),
            other => other.to_ascii_lowercase(),
        };
        let action = format!("{prefix}:{action}");
        let message = format!(
            "User: {principal} is not authorized to perform: {action} because no \
             identity-based policy allows the {action} action"
        );
        Some(match service {
            // EC2's code for a call no policy allows.
            "EC2" => error_response(operation, 403, "UnauthorizedOperation", &message),
            _ => error_response(operation, 400, "AccessDeniedException", &message),
        })
    }

    /// Count a write AWS has done; true when that write starts the hold.
    fn count_write_and_maybe_hold(&self) -> bool {
        let mut f = self.faults.lock().unwrap();
        if f.holding {
            return true;
        }
        let Some(k) = f.hold_after else {
            return false;
        };
        f.writes_answered += 1;
        if f.writes_answered >= k {
            f.holding = true;
            drop(f);
            self.held.notify_waiters();
            return true;
        }
        false
    }

    async fn wait_released(&self) {
        loop {
            let notified = self.held.notified();
            if !self.faults.lock().unwrap().holding {
                return;
            }
            notified.await;
        }
    }
}
