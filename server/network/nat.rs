//! The last word on a container's NAT rules: whatever rule still names it
//! after the plugins' DEL (the bridge plugin's masquerading, portmap's
//! DNAT) is deleted, and the per-container chains those rules used.
//! Plugins tag each rule with a comment holding the container's id; a DEL
//! cut short, or one that stops at a rule already gone, leaves them.

/// Splits an iptables-save rule into arguments: blanks separate them,
/// except inside double quotes, where \" is a quote.
fn split(rule: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut any) = (false, false);
    let mut chars = rule.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => cur.extend(chars.next()),
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any || !cur.is_empty() {
                    args.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        args.push(cur);
    }
    args
}

/// A chain a plugin made for one container (not the shared ones).
fn own_chain(chain: &str) -> bool {
    chain.starts_with("CNI-") && !chain.starts_with("CNI-HOSTPORT-")
}

async fn xtables(program: &str, args: &[String]) -> bool {
    tokio::process::Command::new(program)
        .args(["-w", "5", "-t", "nat"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// Deletes the NAT rules naming container `id`, then its chains, in
/// iptables and ip6tables.
pub async fn sweep(id: &str) {
    for program in ["iptables", "ip6tables"] {
        sweep_in(program, id).await;
    }
}

async fn sweep_in(program: &str, id: &str) {
    let Ok(out) = tokio::process::Command::new(format!("{program}-save"))
        .args(["-t", "nat"])
        .output()
        .await
    else {
        return;
    };
    let tag = format!("id: \\\"{id}\\\"");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut chains = Vec::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("-A ") && l.contains(&tag))
    {
        let mut args = split(line);
        args[0] = "-D".into();
        for pair in args.windows(2) {
            if (pair[0] == "-j" || pair[0] == "-D") && own_chain(&pair[1]) {
                chains.push(pair[1].clone());
            }
        }
        if xtables(program, &args).await {
            tracing::info!(
                container = id,
                rule = line,
                program,
                "removed a NAT rule the CNI plugins left"
            );
        }
    }
    chains.sort();
    chains.dedup();
    for chain in chains {
        xtables(program, &["-F".into(), chain.clone()]).await;
        xtables(program, &["-X".into(), chain]).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_split_as_iptables_save_quotes_them() {
        let rule = r#"-A POSTROUTING -s 172.18.0.2/32 -m comment --comment "name: \"bridge\" id: \"ab\"" -j CNI-3d30"#;
        let args = split(rule);
        assert_eq!(args[7], r#"name: "bridge" id: "ab""#);
        assert_eq!(args.last().unwrap(), "CNI-3d30");
        assert_eq!(args.len(), 10);
        assert_eq!(split(r#"-A X --comment """#), ["-A", "X", "--comment", ""]);
        assert!(
            own_chain("CNI-DN-1f2") && !own_chain("CNI-HOSTPORT-DNAT") && !own_chain("POSTROUTING")
        );
    }
}
