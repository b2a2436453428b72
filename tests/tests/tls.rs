//! The HTTPS client verifies what it connects to, whichever roots it trusts:
//! a TLS server on loopback whose certificate a root of the test's own
//! signed (made here by openssl, served by `openssl s_server`) is refused,
//! for its unknown issuer, by the compiled-in Amazon roots and by the
//! system's store alike.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_sdk_ssm::config::{Credentials, Region};
use eks_private_dns_tests::free_port;
use shared::tls::TlsRoots;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl {args:?}");
}

/// A certificate for localhost and 127.0.0.1, signed by a root made here
/// (which nothing trusts), served on a free loopback port.
async fn untrusted_server(dir: &std::path::Path) -> (Server, u16) {
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let (root, root_key) = (path("root.pem"), path("root-key.pem"));
    let (cert, key, request, ext) = (
        path("cert.pem"),
        path("key.pem"),
        path("cert.csr"),
        path("ext.cnf"),
    );
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut args = vec![
        "req",
        "-x509",
        "-days",
        "1",
        "-subj",
        "/CN=untrusted test root",
    ];
    args.extend(ec);
    args.extend(["-keyout", &root_key, "-out", &root]);
    openssl(&args);
    let mut args = vec!["req", "-subj", "/CN=localhost"];
    args.extend(ec);
    args.extend(["-keyout", &key, "-out", &request]);
    openssl(&args);
    std::fs::write(
        &ext,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &request,
        "-CA",
        &root,
        "-CAkey",
        &root_key,
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &ext,
        "-out",
        &cert,
    ]);
    let port = free_port();
    let server = Server(
        Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "s_server listens");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (server, port)
}

/// The whole error chain of a failed request, as one string.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = format!("{e}");
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

#[tokio::test]
async fn a_certificate_of_an_unknown_root_is_refused_by_either_set_of_roots() {
    let dir = std::env::temp_dir().join(format!("eks-private-dns-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_server, port) = untrusted_server(&dir).await;
    for roots in [TlsRoots::Amazon, TlsRoots::System] {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new(
                "testing", "testing", None, None, "tls test",
            ))
            .endpoint_url(format!("https://localhost:{port}"))
            .http_client(shared::limit::default_http_client(roots))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await;
        let ssm = aws_sdk_ssm::Client::new(&sdk);
        let err = ssm
            .describe_parameters()
            .send()
            .await
            .expect_err("an untrusted certificate is refused");
        let text = chain(&err);
        assert!(
            text.contains("invalid peer certificate") && text.contains("UnknownIssuer"),
            "{roots:?}: the refusal names the certificate's issuer, not something else: {text}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
