//! Which root certificates the HTTPS client trusts.
//!
//! The system store is about 150 certificates on Amazon Linux 2023 and 290
//! on Debian, read from files and parsed when the first AWS request builds
//! its connector: most of the time from a Lambda's start to its first AWS
//! request (README, Performance). AWS service endpoints present
//! certificates of Amazon Trust Services, whose roots are Amazon Root CA 1
//! to 4 and the Starfield Services Root CA G2 that cross-signs them; those
//! five are compiled in (tls/amazon-trust-services.pem, each with its
//! SHA-256 fingerprint). Trusting only them is stricter than the system
//! store, not looser: verification is the same, against fewer anchors.
//!
//! `auto` picks them where they are known to be enough: in Lambda, outside
//! the China regions, with no HTTPS proxy (one that inspects TLS signs with
//! its own CA). Everywhere else, the CLI on an operator's machine among
//! them, it is the system store, as the AWS CLI does.

use aws_smithy_http_client::tls::{TlsContext, TrustStore};

/// The Amazon Trust Services roots, PEM, as the store above takes them.
pub const AMAZON_TRUST_SERVICES: &str = include_str!("tls/amazon-trust-services.pem");

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsRoots {
    /// `amazon` where it is known to be enough, `system` elsewhere.
    #[default]
    Auto,
    /// The Amazon Trust Services roots only.
    Amazon,
    /// The operating system's store.
    System,
}

impl TlsRoots {
    /// Each value's name, the default first.
    pub const CHOICES: &'static [(&'static str, Self)] = &[
        ("auto", TlsRoots::Auto),
        ("amazon", TlsRoots::Amazon),
        ("system", TlsRoots::System),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TlsRoots::Auto => "auto",
            TlsRoots::Amazon => "amazon",
            TlsRoots::System => "system",
        }
    }

    /// What `auto` means for a process with this environment.
    pub fn resolve(self, lookup: impl Fn(&str) -> Option<String>) -> TlsRoots {
        if self != TlsRoots::Auto {
            return self;
        }
        let set = |name: &str| lookup(name).is_some_and(|v| !v.trim().is_empty());
        let in_lambda = set("AWS_LAMBDA_FUNCTION_NAME");
        let china = lookup("AWS_REGION").is_some_and(|r| r.starts_with("cn-"));
        let proxied = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
            .iter()
            .any(|name| set(name));
        if in_lambda && !china && !proxied {
            TlsRoots::Amazon
        } else {
            TlsRoots::System
        }
    }

    /// The TLS context of the connector (`auto` resolved by the caller).
    pub fn context(self) -> TlsContext {
        let store = match self {
            TlsRoots::Amazon => TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES),
            TlsRoots::Auto | TlsRoots::System => TrustStore::default(),
        };
        TlsContext::builder()
            .with_trust_store(store)
            .build()
            .expect("a trust store is a valid TLS context")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn auto_is_amazon_only_in_lambda_outside_china_without_a_proxy() {
        let lambda = [
            ("AWS_LAMBDA_FUNCTION_NAME", "f"),
            ("AWS_REGION", "eu-west-1"),
        ];
        let cases: &[(&[(&str, &str)], TlsRoots)] = &[
            (&lambda, TlsRoots::Amazon),
            (
                &[
                    ("AWS_LAMBDA_FUNCTION_NAME", "f"),
                    ("AWS_REGION", "us-gov-west-1"),
                ],
                TlsRoots::Amazon,
            ),
            (
                &[
                    ("AWS_LAMBDA_FUNCTION_NAME", "f"),
                    ("AWS_REGION", "cn-north-1"),
                ],
                TlsRoots::System,
            ),
            (
                &[
                    ("AWS_LAMBDA_FUNCTION_NAME", "f"),
                    ("AWS_REGION", "eu-west-1"),
                    ("HTTPS_PROXY", "http://proxy.internal:3128"),
                ],
                TlsRoots::System,
            ),
            (&[("AWS_REGION", "eu-west-1")], TlsRoots::System),
            (
                &[
                    ("AWS_LAMBDA_FUNCTION_NAME", " "),
                    ("AWS_REGION", "eu-west-1"),
                ],
                TlsRoots::System,
            ),
        ];
        for (pairs, want) in cases {
            assert_eq!(TlsRoots::Auto.resolve(env(pairs)), *want, "{pairs:?}");
        }
        // A choice that is not auto stands, whatever the environment.
        assert_eq!(TlsRoots::System.resolve(env(&lambda)), TlsRoots::System);
        assert_eq!(
            TlsRoots::Amazon.resolve(env(&[("AWS_REGION", "cn-north-1")])),
            TlsRoots::Amazon
        );
    }

    /// The compiled-in roots are the five of Amazon Trust Services, each
    /// a certificate that parses, with the subject its comment names.
    #[test]
    fn the_amazon_roots_are_five_certificates_that_parse() {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::CertificateDer;
        let ders: Vec<CertificateDer> =
            CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES.as_bytes())
                .collect::<Result<_, _>>()
                .expect("valid PEM");
        assert_eq!(ders.len(), 5);
        let mut roots = rustls::RootCertStore::empty();
        let (valid, invalid) = roots.add_parsable_certificates(ders);
        assert_eq!((valid, invalid), (5, 0));
        for name in [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            assert!(
                AMAZON_TRUST_SERVICES.contains(&format!("CN = {name}\n")),
                "{name}"
            );
        }
    }
}
