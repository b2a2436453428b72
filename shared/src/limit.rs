//! Client-side rate limiting of the Route 53 Resolver API (about 5 requests
//! per second per account and region): every HTTP attempt of the resolver
//! client, retries included, waits for its turn.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// At most `burst` starts in any window of `burst / rate` seconds (with a
/// rate of 4: 4 in any second), and the window is ARRIVAL_GUARD longer: what
/// AWS counts is arrivals, and a start that needs a new connection reaches
/// AWS later than one on a pooled connection, so starts exactly a window
/// apart could arrive less than a window apart. A burst of that size goes
/// at once, so a reconcile's few concurrent Resolver reads are not spread
/// over a second; past it, each start waits until the oldest of the last
/// `burst` starts has left the window.
/// How much later one request may reach AWS than another sent after it
/// (a connection to set up, a TLS handshake) without the two arriving
/// closer than the rate allows: 5% of a 4-a-second rate's window.
pub const ARRIVAL_GUARD: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub struct RateLimiter {
    burst: usize,
    window: Duration,
    /// The last `burst` starts, oldest first.
    starts: Mutex<VecDeque<Instant>>,
}

impl RateLimiter {
    pub fn per_second(rate: f64) -> RateLimiter {
        let rate = rate.max(0.01);
        let burst = (rate.floor() as usize).max(1);
        RateLimiter {
            burst,
            window: Duration::from_secs_f64(burst as f64 / rate) + ARRIVAL_GUARD,
            starts: Mutex::new(VecDeque::with_capacity(burst)),
        }
    }

    /// Wait for the next turn. A start is counted when it is taken, not
    /// when it was due: a waiter that wakes late (a busy process) moves
    /// the next turns later with it instead of leaving them closer to it.
    pub async fn acquire(&self) {
        loop {
            let due = {
                let mut starts = self.starts.lock().await;
                let now = Instant::now();
                match starts.front() {
                    Some(oldest) if starts.len() == self.burst && *oldest + self.window > now => {
                        *oldest + self.window
                    }
                    _ => {
                        if starts.len() == self.burst {
                            starts.pop_front();
                        }
                        starts.push_back(now);
                        return;
                    }
                }
            };
            tokio::time::sleep_until(due).await;
        }
    }
}

/// An HTTP client whose every request first waits for the limiter, then
/// has `attempt_timeout` to get its answer.
#[derive(Clone, Debug)]
pub struct RateLimitedClient {
    inner: SharedHttpClient,
    limiter: Arc<RateLimiter>,
    attempt_timeout: Duration,
}

impl RateLimitedClient {
    pub fn new(
        inner: SharedHttpClient,
        limiter: Arc<RateLimiter>,
        attempt_timeout: Duration,
    ) -> RateLimitedClient {
        RateLimitedClient {
            inner,
            limiter,
            attempt_timeout,
        }
    }
}

#[derive(Debug)]
struct RateLimitedConnector {
    inner: SharedHttpConnector,
    limiter: Arc<RateLimiter>,
    attempt_timeout: Duration,
}

impl HttpConnector for RateLimitedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let limiter = self.limiter.clone();
        let attempt_timeout = self.attempt_timeout;
        HttpConnectorFuture::new(async move {
            limiter.acquire().await;
            match tokio::time::timeout(attempt_timeout, inner.call(request)).await {
                Ok(answer) => answer,
                // A timeout error: the SDK's retry strategy tries again.
                Err(_) => Err(ConnectorError::timeout(
                    format!(
                        "no answer within {} ms (attempt timeout)",
                        attempt_timeout.as_millis()
                    )
                    .into(),
                )),
            }
        })
    }
}

impl HttpClient for RateLimitedClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(RateLimitedConnector {
            inner: self.inner.http_connector(settings, components),
            limiter: self.limiter.clone(),
            attempt_timeout: self.attempt_timeout,
        })
    }
}

/// The HTTPS client every AWS client of a process shares: the SDK's default
/// (rustls with aws-lc, HTTP(S)_PROXY and NO_PROXY from the environment)
/// with the roots `roots` says (crate::tls), built once.
///
/// With the system's roots, each connector the SDK builds parses every
/// system root certificate (about 150 on Amazon Linux 2023, 290 on Debian). The SDK's own default builds one
/// per service client when the client is made, to warm up, and another on
/// its first request; one client per service and four services made that
/// eight parses per cold start. Shared, and with the warm-up left to the
/// first request (which needs the connector anyway), it is one.
pub fn default_http_client(roots: crate::tls::TlsRoots) -> SharedHttpClient {
    use aws_smithy_http_client::{proxy::ProxyConfig, tls, ConnectorBuilder};
    let context = roots.context();
    let sdk_default = aws_smithy_http_client::Builder::new().build_with_connector_fn(
        move |settings, runtime_components| {
            let mut builder = ConnectorBuilder::default()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .tls_context(context.clone());
            builder.set_connector_settings(settings.cloned());
            if let Some(components) = runtime_components {
                builder.set_sleep_impl(components.sleep_impl());
            }
            builder.set_proxy_config(Some(ProxyConfig::from_env()));
            builder.build()
        },
    );
    SharedHttpClient::new(BuiltOnFirstUse(sdk_default))
}

/// Leaves out the eager connector of `validate_base_client_config`: the
/// connector is built, once per distinct timeout setting and cached, by the
/// first request.
#[derive(Debug)]
struct BuiltOnFirstUse(SharedHttpClient);

impl HttpClient for BuiltOnFirstUse {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_at_once_and_no_second_holds_more_than_the_rate() {
        let limiter = Arc::new(RateLimiter::per_second(4.0));
        let start = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..10 {
            let l = limiter.clone();
            handles.push(tokio::spawn(async move {
                l.acquire().await;
                Instant::now()
            }));
        }
        let mut times = Vec::new();
        for h in handles {
            times.push(h.await.unwrap() - start);
        }
        times.sort();
        let ms: Vec<u128> = times.iter().map(|t| t.as_millis()).collect();
        // 4 at once, 4 a window (a second and the guard) later, then the
        // last 2.
        assert_eq!(ms, vec![0, 0, 0, 0, 1050, 1050, 1050, 1050, 2100, 2100]);
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_secs(1))
                .count();
            assert!(in_window <= 4, "{ms:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_fractional_rate_spaces_single_turns() {
        let limiter = RateLimiter::per_second(0.5);
        let start = Instant::now();
        limiter.acquire().await;
        limiter.acquire().await;
        assert_eq!(
            Instant::now() - start,
            Duration::from_secs(2) + ARRIVAL_GUARD
        );
    }
}
