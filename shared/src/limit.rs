//! Client-side rate limiting of the Route 53 Resolver API (about 5 requests
//! per second per account and region): every HTTP attempt of the resolver
//! client, retries included, waits for its turn.

use std::sync::Arc;
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Evenly spaced turns: at most `rate` starts in any second.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub fn per_second(rate: f64) -> RateLimiter {
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / rate.max(0.01)),
            next: Mutex::new(None),
        }
    }

    /// Wait for the next turn.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = match *next {
                Some(t) if t > now => t,
                _ => now,
            };
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// An HTTP client whose every request first waits for the limiter.
#[derive(Clone, Debug)]
pub struct RateLimitedClient {
    inner: SharedHttpClient,
    limiter: Arc<RateLimiter>,
}

impl RateLimitedClient {
    pub fn new(inner: SharedHttpClient, limiter: Arc<RateLimiter>) -> RateLimitedClient {
        RateLimitedClient { inner, limiter }
    }
}

#[derive(Debug)]
struct RateLimitedConnector {
    inner: SharedHttpConnector,
    limiter: Arc<RateLimiter>,
}

impl HttpConnector for RateLimitedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let limiter = self.limiter.clone();
        HttpConnectorFuture::new(async move {
            limiter.acquire().await;
            inner.call(request).await
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
        })
    }
}

/// The SDK's default HTTPS client, for configurations built without one.
pub fn default_http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn turns_are_evenly_spaced() {
        let limiter = Arc::new(RateLimiter::per_second(4.0));
        let start = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..9 {
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
        // 9 turns at 4 per second: the last one 2 s after the first.
        assert_eq!(times[0], Duration::ZERO);
        assert_eq!(times[8], Duration::from_millis(2000));
        for pair in times.windows(2) {
            assert_eq!(pair[1] - pair[0], Duration::from_millis(250));
        }
    }
}
