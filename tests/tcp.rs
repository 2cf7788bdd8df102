//! The API on TCP: mutual TLS by default, plain TCP only when asked and
//! only on loopback. Certificates are made here: a CA, the daemon's
//! certificate for 127.0.0.1, a client's, and a client signed by another CA.

mod common;

use berth::pb::containers_client::ContainersClient;
use berth::pb::ListRequest;
use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let pem = params.self_signed(&key).unwrap().pem();
    Ca {
        issuer: Issuer::new(params, key),
        pem,
    }
}

/// Writes NAME.pem and NAME.key, signed by `ca`; returns their paths.
fn leaf(dir: &Path, ca: &Ca, name: &str, server: bool) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().unwrap();
    let sans = match server {
        true => vec!["127.0.0.1".to_string(), "localhost".to_string()],
        false => vec![],
    };
    let mut params = CertificateParams::new(sans).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![match server {
        true => ExtendedKeyUsagePurpose::ServerAuth,
        false => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

/// The address berthd logged for its TCP listener.
async fn tcp_addr(d: &Daemon) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = d.log();
        if let Some(line) = log
            .lines()
            .find(|l| l.contains("serving") && l.contains("TCP"))
        {
            let addr = line.split("addr=").nth(1).unwrap();
            return addr.split_whitespace().next().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no TCP listener in {log}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A List through `endpoint`: Ok if the daemon answered.
async fn list_through(endpoint: Endpoint) -> Result<usize, String> {
    let channel = endpoint.connect().await.map_err(|e| format!("{e:?}"))?;
    let mut api = ContainersClient::new(channel);
    let list = api
        .list(ListRequest {
            all: true,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(list.into_inner().containers.len())
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_requires_a_client_certificate_from_the_ca() {
    let mut d = Daemon::start("tls").await;
    let pki = d.dir.join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    let (good, rogue) = (ca("berth test CA"), ca("another CA"));
    std::fs::write(pki.join("ca.pem"), &good.pem).unwrap();
    let (server_cert, server_key) = leaf(&pki, &good, "daemon", true);
    let (client_cert, client_key) = leaf(&pki, &good, "client", false);
    let (rogue_cert, rogue_key) = leaf(&pki, &rogue, "rogue", false);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let args = [
        "--listen".to_string(),
        "tcp://127.0.0.1:0".into(),
        "--tls-cert".into(),
        s(&server_cert),
        "--tls-key".into(),
        s(&server_key),
        "--tls-client-ca".into(),
        s(&pki.join("ca.pem")),
    ];
    d.stop_daemon(libc::SIGTERM);
    d.args = args.to_vec();
    d.spawn().await;
    let addr = tcp_addr(&d).await;
    let host = format!("tcp://{addr}");

    // The library with the client's certificate: the whole API.
    let tls = berth::Tls {
        ca: pki.join("ca.pem"),
        cert: client_cert.clone(),
        key: client_key.clone(),
        server_name: None,
    };
    let channel = berth::connect_with(&host, Some(&tls)).await.unwrap();
    let mut api = ContainersClient::new(channel);
    let id = started(&mut api, spec("over-tcp", &["true"])).await;
    let exit = api
        .wait(berth::pb::WaitRequest {
            id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(exit.exit_code, 0);

    // The CLI, from BERTH_TLS_* variables.
    let o = Command::new(berth_cli())
        .args(["--host", &host, "ps", "-a"])
        .env("BERTH_TLS_CA", pki.join("ca.pem"))
        .env("BERTH_TLS_CERT", &client_cert)
        .env("BERTH_TLS_KEY", &client_key)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("over-tcp"));

    // Refused: no client certificate, one from another CA, plain HTTP.
    let https = || Endpoint::from_shared(format!("https://{addr}")).unwrap();
    let ca_only = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&good.pem));
    let no_cert = https().tls_config(ca_only.clone()).unwrap();
    let rogue_identity = Identity::from_pem(
        std::fs::read(&rogue_cert).unwrap(),
        std::fs::read(&rogue_key).unwrap(),
    );
    let rogue = https()
        .tls_config(ca_only.identity(rogue_identity))
        .unwrap();
    let plain = Endpoint::from_shared(format!("http://{addr}")).unwrap();
    for (what, endpoint) in [
        ("no certificate", no_cert),
        ("another CA", rogue),
        ("plain", plain),
    ] {
        let r = list_through(endpoint.timeout(Duration::from_secs(5))).await;
        assert!(r.is_err(), "{what}: {r:?}");
    }
    // And the CLI without TLS options.
    let o = Command::new(berth_cli())
        .args(["--host", &host, "ps"])
        .env_remove("BERTH_TLS_CA")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(d
        .log()
        .contains("client connected over TCP peer=127.0.0.1:"));
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_tcp_only_on_loopback_and_only_when_asked() {
    let d = Daemon::start("plaintcp").await;
    let root = d.dir.join("other-root");
    let sock = d.dir.join("other.sock");
    let base = [
        "--socket",
        sock.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
    ];
    for (extra, message) in [
        (
            &["--listen", "tcp://0.0.0.0:0"][..],
            "needs --tls-cert, --tls-key and --tls-client-ca",
        ),
        (
            &["--listen", "tcp://0.0.0.0:0", "--insecure-tcp"][..],
            "only allowed on a loopback address",
        ),
        (&["--listen", "localhost:80"][..], "invalid --listen"),
        (&["--insecure-tcp"][..], "without --listen"),
    ] {
        let o = berthd_fails(&[&base[..], extra].concat());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{extra:?}");
        assert!(err.contains(message), "{extra:?}: {err}");
        assert!(
            !root.exists() && !sock.exists(),
            "{extra:?} set something up"
        );
    }

    // On loopback, asked for: served, with a warning.
    let mut d = d;
    d.stop_daemon(libc::SIGTERM);
    d.args = vec![
        "--listen".into(),
        "tcp://127.0.0.1:0".into(),
        "--insecure-tcp".into(),
    ];
    d.spawn().await;
    let addr = tcp_addr(&d).await;
    assert!(d.log().contains("serving plain TCP without TLS"));
    let channel = berth::connect(&format!("tcp://{addr}")).await.unwrap();
    let list = ContainersClient::new(channel)
        .list(ListRequest {
            all: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(list.into_inner().containers.is_empty());
}
