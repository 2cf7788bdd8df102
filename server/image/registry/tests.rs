use super::*;

#[test]
fn challenges() {
    let (s, p) = parse_challenge(
        r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/redis:pull,push""#,
    );
    assert_eq!(s, "Bearer");
    assert_eq!(p["realm"], "https://auth.docker.io/token");
    assert_eq!(p["service"], "registry.docker.io");
    assert_eq!(p["scope"], "repository:library/redis:pull,push");
    let (s, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
    assert_eq!(
        (s.as_str(), p["realm"].as_str()),
        ("Basic", "Registry Realm")
    );
    let (_, p) = parse_challenge("Bearer realm=http://x/t, service=s");
    assert_eq!(
        (p["realm"].as_str(), p["service"].as_str()),
        ("http://x/t", "s")
    );
}

#[test]
fn endpoints_and_mirrors() {
    let dir = std::env::temp_dir().join(format!("berth-reg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("r.toml");
    std::fs::write(
        &cfg,
        "[\"docker.io\"]\nmirrors = [\"127.0.0.1:5001\", \"https://m.example\"]\n[\"127.0.0.1:5001\"]\ninsecure = true\n",
    )
    .unwrap();
    let r = Registries::open(Some(&cfg), dir.join("auth.json")).unwrap();
    let e: Vec<String> = r
        .endpoints("docker.io")
        .into_iter()
        .map(|e| e.base)
        .collect();
    assert_eq!(
        e,
        [
            "http://127.0.0.1:5001",
            "https://m.example",
            "https://registry-1.docker.io"
        ]
    );
    let e: Vec<String> = r
        .endpoints("127.0.0.1:5001")
        .into_iter()
        .map(|e| e.base)
        .collect();
    assert_eq!(e, ["http://127.0.0.1:5001"]);
    // Loopback is plain HTTP unless a CA or `insecure = false` says
    // otherwise; every other host is TLS unless set insecure.
    std::fs::write(
        &cfg,
        "[\"127.0.0.2:5000\"]\nca = \"/ca.pem\"\n[\"localhost:5001\"]\ninsecure = false\n",
    )
    .unwrap();
    let r = Registries::open(Some(&cfg), dir.join("auth.json")).unwrap();
    for (host, base) in [
        ("127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("127.9.9.9", "http://127.9.9.9"),
        ("[::1]:5000", "http://[::1]:5000"),
        ("localhost:5000", "http://localhost:5000"),
        ("127.0.0.2:5000", "https://127.0.0.2:5000"),
        ("localhost:5001", "https://localhost:5001"),
        ("10.0.0.1:5000", "https://10.0.0.1:5000"),
        ("localhost.example", "https://localhost.example"),
        ("[::2]:5000", "https://[::2]:5000"),
    ] {
        assert_eq!(r.endpoints(host).pop().unwrap().base, base, "{host}");
    }
    std::fs::write(&cfg, "[\"x\"]\nmirors = []\n").unwrap();
    assert!(Registries::open(Some(&cfg), dir.join("auth.json")).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
