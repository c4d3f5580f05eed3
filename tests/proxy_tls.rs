//! The providers are reached over https in production, and the sandbox speaks plain http; here
//! a TLS terminator with certificates made for the test (by `openssl`) stands in front of it,
//! so the proxy's https path runs for real: the handshake, the certificate check, streaming.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod proxy_support;

use common::db::TestDb;
use proxy_support as ps;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

#[tokio::test]
async fn an_https_upstream_is_used_when_trusted_and_refused_when_not() {
    let certs = Certificates::make();
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    let tls = terminate_tls(&certs, sandbox).await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let mut options = ps::options(&db.url, sandbox);
    options.openai = vec![proxy::Target {
        base_url: format!("https://{tls}/openai/v1"),
        api_key: "sk-sandbox".into(),
    }];
    options.upstream_ca_file = Some(certs.ca.clone());

    let proxy = ps::RunningProxy::start(options.clone()).await;
    let res = ps::post_chat(&proxy, &user.key, "gpt-4o-mini", false).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["choices"][0]["message"]["content"].is_string(),
        "{body}"
    );
    let res = ps::post_chat(&proxy, &user.key, "gpt-4o-mini", true).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    proxy.stop().await;

    // The same upstream without its authority: the certificate check refuses it.
    options.upstream_ca_file = None;
    let proxy = ps::RunningProxy::start(options.clone()).await;
    let res = ps::post_chat(&proxy, &user.key, "gpt-4o-mini", false).await;
    assert_eq!(res.status(), 502);
    proxy.stop().await;

    // A CA file that is not one stops the start with a clear error.
    options.upstream_ca_file = Some(certs.dir.join("missing.pem"));
    let err = proxy::build_with(options)
        .await
        .err()
        .expect("a missing CA file");
    assert!(err.to_string().contains("PROXY_UPSTREAM_CA_FILE"), "{err}");
    db.drop().await;
}

/// A test authority and a certificate it signed for 127.0.0.1.
struct Certificates {
    dir: PathBuf,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Certificates {
    fn make() -> Self {
        let dir = std::env::temp_dir().join(format!("pdx-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let ca_out = [
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=test-ca",
            "-days",
            "2",
        ];
        openssl(&[&["req", "-x509"], &ec[..], &ca_out[..]].concat());
        std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        openssl(
            &[
                &["req"],
                &ec[..],
                &[
                    "-keyout",
                    "leaf.key",
                    "-out",
                    "leaf.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
        );
        openssl(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
            "-out",
            "leaf.pem",
        ]);
        Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("leaf.pem"),
            key: dir.join("leaf.key"),
            dir,
        }
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Accepts TLS on a free port and relays each connection to `to` in plain TCP.
async fn terminate_tls(certs: &Certificates, to: SocketAddr) -> SocketAddr {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&certs.cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(Path::new(&certs.key)).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses our certificate ends the handshake: nothing to relay.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(mut plain) = tokio::net::TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    addr
}
