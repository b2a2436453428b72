//! AWS clients, built once from the standard SDK configuration chain
//! (AWS_REGION, credentials, AWS_ENDPOINT_URL), with a counter of the API
//! calls each reconcile makes, and the error type of the adapters.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Serialize;

/// Counts every attempt (so retries count too), by service and operation.
#[derive(Clone, Debug, Default)]
pub struct CallCounter {
    inner: Arc<Mutex<Counts>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// "Service.Operation" -> attempts.
    pub calls: BTreeMap<String, u64>,
    /// Attempts answered with a throttling error.
    pub throttles: u64,
    /// Looks taken while waiting for AWS to finish something, by service
    /// (each is one of the calls above).
    pub polls: BTreeMap<String, u64>,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.calls.values().sum()
    }

    /// Calls that change something.
    pub fn writes(&self) -> u64 {
        self.calls
            .iter()
            .filter(|(name, _)| is_write_operation(name))
            .map(|(_, n)| n)
            .sum()
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Counts) -> Counts {
        let mut calls = BTreeMap::new();
        for (name, n) in &self.calls {
            let before = earlier.calls.get(name).copied().unwrap_or(0);
            if *n > before {
                calls.insert(name.clone(), n - before);
            }
        }
        let mut polls = BTreeMap::new();
        for (service, n) in &self.polls {
            let before = earlier.polls.get(service).copied().unwrap_or(0);
            if *n > before {
                polls.insert(service.clone(), n - before);
            }
        }
        Counts {
            calls,
            throttles: self.throttles.saturating_sub(earlier.throttles),
            polls,
        }
    }

    pub fn total_polls(&self) -> u64 {
        self.polls.values().sum()
    }
}

/// Whether "Service.Operation" changes anything.
pub fn is_write_operation(name: &str) -> bool {
    let op = name.rsplit('.').next().unwrap_or(name);
    const READ: &[&str] = &["Describe", "List", "Get"];
    !READ.iter().any(|prefix| op.starts_with(prefix))
}

impl CallCounter {
    pub fn snapshot(&self) -> Counts {
        self.inner.lock().expect("counter lock").clone()
    }

    /// Note one look taken while waiting (`service`: "Route53Resolver", "EC2").
    pub fn add_poll(&self, service: &str) {
        *self
            .inner
            .lock()
            .expect("counter lock")
            .polls
            .entry(service.to_string())
            .or_default() += 1;
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            let key = format!("{}.{}", meta.service(), meta.name());
            *self
                .inner
                .lock()
                .expect("counter lock")
                .calls
                .entry(key)
                .or_default() += 1;
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let throttled = context
            .response()
            .map(|r| r.status().as_u16() == 429)
            .unwrap_or(false)
            || context
                .output_or_error()
                .and_then(|r| r.err())
                .map(|e| {
                    let text = format!("{e:?}");
                    THROTTLING_CODES.iter().any(|c| text.contains(c))
                })
                .unwrap_or(false);
        if throttled {
            self.inner.lock().expect("counter lock").throttles += 1;
        }
        Ok(())
    }
}

const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
];

/// How long one attempt and one operation (its retries included) may take.
/// The SDK's clients have no such limit unless given one: a request whose
/// answer never comes (a black-holed connection) would wait until the
/// Lambda's own timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing a connection (the SDK's default).
    pub connect: Duration,
    /// One attempt, from sending the request to the whole answer. AWS
    /// answers these calls in well under a second; a page of a large
    /// DescribeSecurityGroupRules in a few.
    pub attempt: Duration,
    /// One operation, its retries and their backoff included (3 attempts).
    pub operation: Duration,
    /// One Route 53 Resolver operation: its attempts also wait for their
    /// turn under the rate limit, which a sweep's burst makes longer. Its
    /// attempt timeout starts once the turn comes.
    pub resolver_operation: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_millis(3100),
            attempt: Duration::from_secs(10),
            operation: Duration::from_secs(45),
            resolver_operation: Duration::from_secs(90),
        }
    }
}

/// The four service clients, sharing one call counter.
#[derive(Clone, Debug)]
pub struct Clients {
    pub eks: aws_sdk_eks::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub resolver: aws_sdk_route53resolver::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub counter: CallCounter,
    pub region: String,
    /// Every Route 53 Resolver request of this process waits for it.
    pub resolver_limiter: Arc<crate::limit::RateLimiter>,
}

impl Clients {
    /// Load the standard configuration chain; `region` overrides AWS_REGION.
    ///
    /// The SDK's default chains look at the environment first. When the
    /// environment has the answer (in Lambda it has both the region and the
    /// role's credentials), it is used directly: building the rest of the
    /// chains (an STS client for web identity, the ECS and instance metadata
    /// providers, a second region chain) took about a tenth of the cold start (the
    /// figures are in the README, Performance), for providers that would
    /// never be asked. Where the environment has no answer, the default
    /// chains are built as before.
    pub async fn from_env(region: Option<String>, resolver_rate: f64) -> Result<Clients, AwsError> {
        use aws_config::environment::{
            EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
        };
        use aws_config::meta::region::ProvideRegion;
        use aws_sdk_ssm::config::ProvideCredentials;

        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(crate::limit::default_http_client());
        let region = match region {
            Some(region) => Some(aws_config::Region::new(region)),
            None => EnvironmentVariableRegionProvider::new().region().await,
        };
        if let Some(region) = region {
            loader = loader.region(region);
        }
        let env_credentials = EnvironmentVariableCredentialsProvider::new();
        if env_credentials.provide_credentials().await.is_ok() {
            loader = loader.credentials_provider(env_credentials);
        }
        let sdk = loader.load().await;
        Clients::from_sdk_config(&sdk, resolver_rate)
    }

    pub fn from_sdk_config(
        sdk: &aws_config::SdkConfig,
        resolver_rate: f64,
    ) -> Result<Clients, AwsError> {
        Clients::from_sdk_config_with(sdk, resolver_rate, Timeouts::default())
    }

    pub fn from_sdk_config_with(
        sdk: &aws_config::SdkConfig,
        resolver_rate: f64,
        timeouts: Timeouts,
    ) -> Result<Clients, AwsError> {
        use aws_smithy_types::timeout::TimeoutConfig;
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .ok_or_else(|| AwsError {
                operation: "configuration".into(),
                code: Some("NoRegion".into()),
                message: "no AWS region is set; set AWS_REGION or pass --region".into(),
                transient: false,
            })?;
        let counter = CallCounter::default();
        let timeout = TimeoutConfig::builder()
            .connect_timeout(timeouts.connect)
            .operation_attempt_timeout(timeouts.attempt)
            .operation_timeout(timeouts.operation)
            .build();
        let eks = aws_sdk_eks::config::Builder::from(sdk)
            .timeout_config(timeout.clone())
            .interceptor(counter.clone())
            .build();
        let ec2 = aws_sdk_ec2::config::Builder::from(sdk)
            .timeout_config(timeout.clone())
            .interceptor(counter.clone())
            .build();
        let resolver_limiter = Arc::new(crate::limit::RateLimiter::per_second(resolver_rate));
        let http = sdk
            .http_client()
            .unwrap_or_else(crate::limit::default_http_client);
        // The Resolver client's attempt timeout is applied by the rate
        // limited connector once the attempt's turn has come: the SDK's
        // would count the wait for the turn as part of the attempt.
        let resolver = aws_sdk_route53resolver::config::Builder::from(sdk)
            .http_client(crate::limit::RateLimitedClient::new(
                http,
                resolver_limiter.clone(),
                timeouts.attempt,
            ))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(timeouts.connect)
                    .operation_timeout(timeouts.resolver_operation)
                    .build(),
            )
            .interceptor(counter.clone())
            .build();
        let ssm = aws_sdk_ssm::config::Builder::from(sdk)
            .timeout_config(timeout)
            .interceptor(counter.clone())
            .build();
        Ok(Clients {
            eks: aws_sdk_eks::Client::from_conf(eks),
            ec2: aws_sdk_ec2::Client::from_conf(ec2),
            resolver: aws_sdk_route53resolver::Client::from_conf(resolver),
            ssm: aws_sdk_ssm::Client::from_conf(ssm),
            counter,
            region,
            resolver_limiter,
        })
    }
}

/// A failed AWS call: which one, the service's error code and message, and
/// whether trying again later can help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsError {
    pub operation: String,
    pub code: Option<String>,
    pub message: String,
    pub transient: bool,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} failed: {code}: {}", self.operation, self.message),
            None => write!(f, "{} failed: {}", self.operation, self.message),
        }
    }
}

impl StdError for AwsError {}

/// Error codes after which the same call may succeed later.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServiceErrorException",
    "InternalServiceError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Unavailable",
    "RequestTimeout",
    "RequestTimeoutException",
    "DependencyViolation",
    "ResourceInUseException",
    "ResourceUnavailableException",
    "IncorrectState",
    "ServerException",
];

impl AwsError {
    pub fn from_sdk<E, R>(operation: &str, err: SdkError<E, R>) -> AwsError
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: fmt::Debug,
    {
        match &err {
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().map(str::to_string);
                let status = service.raw();
                let message = e
                    .message()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{e}"));
                let server_side = format!("{status:?}").contains("status: 5");
                let transient = code
                    .as_deref()
                    .map(|c| TRANSIENT_CODES.contains(&c))
                    .unwrap_or(false)
                    || server_side;
                AwsError {
                    operation: operation.into(),
                    code,
                    message,
                    transient,
                }
            }
            SdkError::ConstructionFailure(_) => AwsError {
                operation: operation.into(),
                code: None,
                message: error_chain(&err),
                transient: false,
            },
            _ => AwsError {
                operation: operation.into(),
                code: err.code().map(str::to_string),
                message: error_chain(&err),
                transient: true,
            },
        }
    }

    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// A permission the caller lacks.
    pub fn is_access_denied(&self) -> bool {
        [
            "AccessDenied",
            "AccessDeniedException",
            "UnauthorizedOperation",
        ]
        .iter()
        .any(|c| self.is_code(c))
    }

    pub fn message_contains(&self, text: &str) -> bool {
        self.message.contains(text)
    }
}

/// "outer: inner: innermost", so that a connection failure says why.
pub fn error_chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    text
}

/// Shorthand for adapters: `.map_err(aws("ec2.DescribeVpcs"))`.
pub fn aws<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: fmt::Debug,
{
    move |err| AwsError::from_sdk(operation, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_operations() {
        assert!(is_write_operation("EC2.AuthorizeSecurityGroupIngress"));
        assert!(is_write_operation("SSM.PutParameter"));
        assert!(!is_write_operation("Route53Resolver.ListResolverRules"));
        assert!(!is_write_operation("EKS.DescribeCluster"));
        assert!(!is_write_operation("SSM.GetParametersByPath"));
    }

    #[test]
    fn counts_since() {
        let mut a = Counts::default();
        a.calls.insert("EC2.DescribeVpcs".into(), 2);
        let mut b = a.clone();
        b.calls.insert("EC2.DescribeVpcs".into(), 5);
        b.calls.insert("SSM.PutParameter".into(), 1);
        let d = b.since(&a);
        assert_eq!(d.total(), 4);
        assert_eq!(d.writes(), 1);
    }
}
