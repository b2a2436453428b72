//! AWS clients, built once from the standard SDK configuration chain
//! (AWS_REGION, credentials, AWS_ENDPOINT_URL), each with the counter of
//! its calls (`calls`), the accounts they act in, and the error type of the
//! adapters.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub use crate::calls::{is_write_operation, CallCounter, Counts};
use crate::model::Account;

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

/// The service clients, sharing one call counter.
#[derive(Clone, Debug)]
pub struct Clients {
    pub eks: aws_sdk_eks::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub resolver: aws_sdk_route53resolver::Client,
    pub ssm: aws_sdk_ssm::Client,
    /// EventBridge, built on first use: most runs announce nothing, and a
    /// client costs its share of a cold start (README, Performance).
    events: Arc<std::sync::OnceLock<aws_sdk_eventbridge::Client>>,
    events_config: aws_sdk_eventbridge::config::Builder,
    /// RAM (the rules' share in the hub, invitations in a consumer) and
    /// Organizations (the accounts of an OU), built on first use too.
    ram: Arc<std::sync::OnceLock<aws_sdk_ram::Client>>,
    ram_config: aws_sdk_ram::config::Builder,
    organizations: Arc<std::sync::OnceLock<aws_sdk_organizations::Client>>,
    organizations_config: aws_sdk_organizations::config::Builder,
    sts: Arc<std::sync::OnceLock<aws_sdk_sts::Client>>,
    sts_config: aws_sdk_sts::config::Builder,
    pub counter: CallCounter,
    pub region: String,
    /// The account these clients act in: `Home` for the deployment's own.
    pub account: Account,
    /// Every Route 53 Resolver request of this process in this account
    /// waits for it (AWS's rate is per account and region).
    pub resolver_limiter: Arc<crate::limit::RateLimiter>,
    /// What they were built from, for the clients of another account
    /// (`accounts::assume`).
    pub(crate) sdk: aws_config::SdkConfig,
    pub(crate) resolver_rate: f64,
    pub(crate) timeouts: Timeouts,
}

impl Clients {
    /// The EventBridge client (built the first time it is asked for).
    pub fn events(&self) -> &aws_sdk_eventbridge::Client {
        self.events.get_or_init(|| {
            aws_sdk_eventbridge::Client::from_conf(self.events_config.clone().build())
        })
    }

    /// The RAM client (built the first time it is asked for).
    pub fn ram(&self) -> &aws_sdk_ram::Client {
        self.ram
            .get_or_init(|| aws_sdk_ram::Client::from_conf(self.ram_config.clone().build()))
    }

    /// The Organizations client (built the first time it is asked for).
    pub fn organizations(&self) -> &aws_sdk_organizations::Client {
        self.organizations.get_or_init(|| {
            aws_sdk_organizations::Client::from_conf(self.organizations_config.clone().build())
        })
    }

    /// The STS client (built the first time it is asked for).
    pub fn sts(&self) -> &aws_sdk_sts::Client {
        self.sts
            .get_or_init(|| aws_sdk_sts::Client::from_conf(self.sts_config.clone().build()))
    }

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
    ///
    /// `roots` says which root certificates verify the endpoints (`auto`
    /// is resolved here, from this process's environment).
    pub async fn from_env(
        region: Option<String>,
        resolver_rate: f64,
        roots: crate::tls::TlsRoots,
    ) -> Result<Clients, NoRegion> {
        use aws_config::environment::{
            EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
        };
        use aws_config::meta::region::ProvideRegion;
        use aws_sdk_ssm::config::ProvideCredentials;

        let roots = roots.resolve(|name| std::env::var(name).ok());
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(crate::limit::default_http_client(roots));
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
    ) -> Result<Clients, NoRegion> {
        Clients::from_sdk_config_with(sdk, resolver_rate, Timeouts::default())
    }

    pub fn from_sdk_config_with(
        sdk: &aws_config::SdkConfig,
        resolver_rate: f64,
        timeouts: Timeouts,
    ) -> Result<Clients, NoRegion> {
        use aws_smithy_types::timeout::TimeoutConfig;
        let region = sdk.region().map(|r| r.to_string()).ok_or(NoRegion)?;
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
            .unwrap_or_else(|| crate::limit::default_http_client(crate::tls::TlsRoots::System));
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
            .timeout_config(timeout.clone())
            .interceptor(counter.clone())
            .build();
        let events_config = aws_sdk_eventbridge::config::Builder::from(sdk)
            .timeout_config(timeout.clone())
            .interceptor(counter.clone());
        let ram_config = aws_sdk_ram::config::Builder::from(sdk)
            .timeout_config(timeout.clone())
            .interceptor(counter.clone());
        let organizations_config = aws_sdk_organizations::config::Builder::from(sdk)
            .timeout_config(timeout.clone())
            .interceptor(counter.clone());
        let sts_config = aws_sdk_sts::config::Builder::from(sdk)
            .timeout_config(timeout)
            .interceptor(counter.clone());
        Ok(Clients {
            eks: aws_sdk_eks::Client::from_conf(eks),
            ec2: aws_sdk_ec2::Client::from_conf(ec2),
            resolver: aws_sdk_route53resolver::Client::from_conf(resolver),
            ssm: aws_sdk_ssm::Client::from_conf(ssm),
            events: Arc::default(),
            events_config,
            ram: Arc::default(),
            ram_config,
            organizations: Arc::default(),
            organizations_config,
            sts: Arc::default(),
            sts_config,
            counter,
            region,
            account: Account::Home,
            resolver_limiter,
            sdk: sdk.clone(),
            resolver_rate,
            timeouts,
        })
    }
}

/// No AWS region is configured: nothing can be asked of AWS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no AWS region is set; set AWS_REGION or pass --region")]
pub struct NoRegion;

/// A failed AWS call: which one, the service's error code and message,
/// what kind of failure it is (from one table of codes; whether trying
/// again later can help follows from it), and the SDK's error as its
/// source. Failures that are not AWS's (a step that waits for an earlier
/// one, a resource of someone else's in the way) are the apply's and the
/// reconcile's own errors, never this.
#[derive(Clone, Debug)]
pub struct AwsError {
    /// Who made the call, when not the deployment itself: "account ID
    /// (role ARN)" (`Accounts::describe`).
    pub account: Option<String>,
    pub operation: String,
    pub code: Option<String>,
    pub message: String,
    pub kind: ErrorKind,
    pub source: Option<Arc<dyn StdError + Send + Sync>>,
}

/// Equal when the call, code, message and kind are: the source is the
/// same failure as the SDK reported it.
impl PartialEq for AwsError {
    fn eq(&self, other: &AwsError) -> bool {
        (
            &self.account,
            &self.operation,
            &self.code,
            &self.message,
            self.kind,
        ) == (
            &other.account,
            &other.operation,
            &other.code,
            &other.message,
            other.kind,
        )
    }
}

impl Eq for AwsError {}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operation = match &self.account {
            Some(account) => format!("{} in {account}", self.operation),
            None => self.operation.clone(),
        };
        match &self.code {
            Some(code) => write!(f, "{operation} failed: {code}: {}", self.message),
            None => write!(f, "{operation} failed: {}", self.message),
        }
    }
}

impl StdError for AwsError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// What kind of failure an error code reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Too many requests: the same call succeeds later.
    Throttled,
    /// AWS failed or timed out on its side: the same call may succeed later.
    Unavailable,
    /// Something still uses it, or it is in a state that refuses the call
    /// for now (an association going away, an interface detaching).
    InUse,
    NotFound,
    AlreadyExists,
    AccessDenied,
    /// A quota.
    LimitExceeded,
    /// The request never got an answer (a connection, a timeout).
    Network,
    /// Anything else: the request is wrong as it stands.
    Other,
}

impl ErrorKind {
    /// Whether the same call may succeed later. Exhaustive: a new kind
    /// must say.
    pub fn is_transient(self) -> bool {
        match self {
            ErrorKind::Throttled
            | ErrorKind::Unavailable
            | ErrorKind::InUse
            | ErrorKind::Network => true,
            ErrorKind::NotFound
            | ErrorKind::AlreadyExists
            | ErrorKind::AccessDenied
            | ErrorKind::LimitExceeded
            | ErrorKind::Other => false,
        }
    }
}

/// The error codes of EC2, EKS, Route 53 Resolver, SSM, RAM and STS that this
/// product acts on, by kind. A code not listed is `Other` (a 5xx answer is
/// `Unavailable` whatever its code).
const CODES: &[(&str, ErrorKind)] = &[
    ("Throttling", ErrorKind::Throttled),
    ("ThrottlingException", ErrorKind::Throttled),
    ("ThrottledException", ErrorKind::Throttled),
    ("RequestLimitExceeded", ErrorKind::Throttled),
    ("TooManyRequestsException", ErrorKind::Throttled),
    ("RequestThrottled", ErrorKind::Throttled),
    ("InternalError", ErrorKind::Unavailable),
    ("InternalFailure", ErrorKind::Unavailable),
    ("InternalServerError", ErrorKind::Unavailable),
    ("InternalServiceErrorException", ErrorKind::Unavailable),
    ("InternalServiceError", ErrorKind::Unavailable),
    ("ServiceUnavailable", ErrorKind::Unavailable),
    ("ServiceUnavailableException", ErrorKind::Unavailable),
    ("Unavailable", ErrorKind::Unavailable),
    ("RequestTimeout", ErrorKind::Unavailable),
    ("RequestTimeoutException", ErrorKind::Unavailable),
    ("ResourceUnavailableException", ErrorKind::Unavailable),
    ("ServerException", ErrorKind::Unavailable),
    ("DependencyViolation", ErrorKind::InUse),
    ("ResourceInUseException", ErrorKind::InUse),
    ("IncorrectState", ErrorKind::InUse),
    ("ResourceNotFoundException", ErrorKind::NotFound),
    ("InvalidPermission.NotFound", ErrorKind::NotFound),
    ("InvalidSecurityGroupRuleId.NotFound", ErrorKind::NotFound),
    ("InvalidGroup.NotFound", ErrorKind::NotFound),
    ("ParameterNotFound", ErrorKind::NotFound),
    // RAM's: a share, or what it holds, that is not there.
    ("UnknownResourceException", ErrorKind::NotFound),
    ("ResourceExistsException", ErrorKind::AlreadyExists),
    ("InvalidGroup.Duplicate", ErrorKind::AlreadyExists),
    ("InvalidPermission.Duplicate", ErrorKind::AlreadyExists),
    ("ParameterAlreadyExists", ErrorKind::AlreadyExists),
    ("AccessDenied", ErrorKind::AccessDenied),
    ("AccessDeniedException", ErrorKind::AccessDenied),
    ("UnauthorizedOperation", ErrorKind::AccessDenied),
    ("LimitExceededException", ErrorKind::LimitExceeded),
];

/// The codes of one kind, as the table lists them.
pub fn codes_of(kind: ErrorKind) -> impl Iterator<Item = &'static str> {
    CODES
        .iter()
        .filter(move |(_, k)| *k == kind)
        .map(|(code, _)| *code)
}

/// The kind of an error code.
pub fn kind_of(code: &str) -> ErrorKind {
    CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, kind)| *kind)
        .unwrap_or(ErrorKind::Other)
}

impl AwsError {
    pub fn from_sdk<E, R>(operation: &str, err: SdkError<E, R>) -> AwsError
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        let mut error = match &err {
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().map(str::to_string);
                let status = service.raw();
                let message = e
                    .message()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{e}"));
                let server_side = format!("{status:?}").contains("status: 5");
                let kind = match code.as_deref().map(kind_of) {
                    Some(ErrorKind::Other) | None if server_side => ErrorKind::Unavailable,
                    Some(kind) => kind,
                    None => ErrorKind::Other,
                };
                AwsError::new(operation, code, message, kind)
            }
            SdkError::ConstructionFailure(_) => {
                AwsError::new(operation, None, error_chain(&err), ErrorKind::Other)
            }
            _ => AwsError::new(
                operation,
                err.code().map(str::to_string),
                error_chain(&err),
                ErrorKind::Network,
            ),
        };
        error.source = Some(Arc::new(err));
        error
    }

    /// A failure AWS reported outside an SDK error (an entry of a batch
    /// call refused), of `kind`.
    pub fn new(
        operation: &str,
        code: Option<String>,
        message: String,
        kind: ErrorKind,
    ) -> AwsError {
        AwsError {
            account: None,
            operation: operation.to_string(),
            code,
            message,
            kind,
            source: None,
        }
    }

    /// The same failure, said to be of a call made in `account` (the
    /// description `Accounts::describe` gives; None for the deployment's
    /// own): kept when it says so already.
    pub fn in_account(mut self, account: Option<String>) -> AwsError {
        if self.account.is_none() {
            self.account = account;
        }
        self
    }

    /// Whether the same call may succeed later (from its kind).
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }

    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// A permission the caller lacks.
    pub fn is_access_denied(&self) -> bool {
        self.kind == ErrorKind::AccessDenied
    }

    /// The resource is not there (any more).
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
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
    R: fmt::Debug + Send + Sync + 'static,
{
    move |err| AwsError::from_sdk(operation, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_the_table_and_say_what_may_succeed_later() {
        assert_eq!(kind_of("ThrottlingException"), ErrorKind::Throttled);
        assert_eq!(kind_of("DependencyViolation"), ErrorKind::InUse);
        assert_eq!(kind_of("InvalidGroup.NotFound"), ErrorKind::NotFound);
        assert_eq!(kind_of("ParameterAlreadyExists"), ErrorKind::AlreadyExists);
        assert_eq!(kind_of("UnauthorizedOperation"), ErrorKind::AccessDenied);
        assert_eq!(kind_of("InvalidParameterValue"), ErrorKind::Other);
        let transient: Vec<&str> = CODES
            .iter()
            .filter(|(_, kind)| kind.is_transient())
            .map(|(code, _)| *code)
            .collect();
        for code in [
            "RequestLimitExceeded",
            "ServiceUnavailable",
            "IncorrectState",
        ] {
            assert!(transient.contains(&code), "{code}");
        }
        for code in [
            "ResourceNotFoundException",
            "AccessDenied",
            "LimitExceededException",
        ] {
            assert!(!transient.contains(&code), "{code}");
        }
        let e = AwsError::new("EC2.DescribeVpcs", None, "x".into(), ErrorKind::Network);
        assert!(e.is_transient() && e.source().is_none());
        assert_eq!(
            codes_of(ErrorKind::Throttled).collect::<Vec<_>>(),
            [
                "Throttling",
                "ThrottlingException",
                "ThrottledException",
                "RequestLimitExceeded",
                "TooManyRequestsException",
                "RequestThrottled"
            ]
        );
    }
}
