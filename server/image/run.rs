//! An image's config applied to a create request, as Docker applies it.

use super::{Error, ForContainer, Result};
use crate::spec::{ImageUse, Request};

/// Fills `req` from the image: the command is the entrypoint (the
/// request's override, or the image's) followed by the request's args, or
/// the image's Cmd when it gives none and keeps the entrypoint; Env and
/// Labels go under the request's; WorkingDir, User and StopSignal apply
/// where the request says nothing; the Healthcheck under the request's,
/// field by field; each Volume becomes an anonymous volume.
pub fn apply(
    image: ForContainer,
    entrypoint: Option<Vec<String>>,
    req: &mut Request,
) -> Result<()> {
    let c = image.config;
    let keeps_entrypoint = entrypoint.is_none();
    let mut args = entrypoint.unwrap_or_else(|| c.entrypoint.clone().unwrap_or_default());
    let entrypoint_args = args.len();
    match req.args.is_empty() {
        false => args.append(&mut req.args),
        true if keeps_entrypoint => args.extend(c.cmd.clone().unwrap_or_default()),
        true => {}
    }
    if args.is_empty() {
        return Err(Error::Invalid(format!(
            "no command: the image {} has neither Entrypoint nor Cmd, give one",
            image.reference
        )));
    }
    req.args = args;
    req.entrypoint_args = entrypoint_args;
    let given: Vec<&str> = req
        .env
        .iter()
        .filter_map(|e| e.split_once('=').map(|(k, _)| k))
        .collect();
    let mut env: Vec<String> = c
        .env
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !given.contains(&e.split_once('=').map_or(e.as_str(), |(k, _)| k)))
        .collect();
    env.append(&mut req.env);
    req.env = env;
    if req.working_dir.is_empty() {
        req.working_dir = c.working_dir;
    }
    if req.user.is_empty() {
        req.user = c.user;
    }
    if req.stop_signal.is_empty() {
        req.stop_signal = c.stop_signal;
    }
    for (k, v) in c.labels.unwrap_or_default() {
        req.labels.entry(k).or_insert(v);
    }
    let image_health = c.healthcheck.map(|h| h.request()).unwrap_or_default();
    req.health = std::mem::take(&mut req.health).over(image_health);
    req.exposed_ports = c.exposed_ports.unwrap_or_default().into_keys().collect();
    req.volumes = c.volumes.unwrap_or_default().into_keys().collect();
    req.image = Some(ImageUse {
        id: image.id,
        reference: image.reference,
        layers_dir: image.layers_dir,
        lower: image.lower,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::RunConfig;

    fn image(c: RunConfig) -> ForContainer {
        ForContainer {
            id: "sha256:x".into(),
            reference: "app:1".into(),
            config: c,
            layers_dir: "/l".into(),
            lower: vec!["l/a".into()],
            platform: crate::image::oci::Platform::parse("linux/arm64/v8").unwrap(),
        }
    }

    #[test]
    fn a_platform_asked_must_be_the_images() {
        let i = image(RunConfig::default());
        for ok in ["", "linux/arm64", "linux/arm64/v8"] {
            assert!(i.check_platform(ok).is_ok(), "{ok}");
        }
        for wrong in ["linux/amd64", "windows/arm64", "linux/arm64/v9"] {
            assert!(
                matches!(i.check_platform(wrong), Err(Error::WrongPlatform(_))),
                "{wrong}"
            );
        }
        assert!(matches!(i.check_platform("linux"), Err(Error::Invalid(_))));
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn docker_rules() {
        let c = RunConfig {
            entrypoint: Some(strings(&["/entry"])),
            cmd: Some(strings(&["serve", "-v"])),
            env: Some(strings(&["PATH=/img", "A=1", "B=2"])),
            working_dir: "/srv".into(),
            user: "app".into(),
            stop_signal: "SIGQUIT".into(),
            labels: Some(
                [
                    ("l".to_string(), "img".to_string()),
                    ("m".into(), "img".into()),
                ]
                .into(),
            ),
            volumes: Some([("/data".to_string(), serde_json::json!({}))].into()),
            ..Default::default()
        };
        let run = |entry: Option<&[&str]>, args: &[&str]| {
            let mut r = Request {
                args: strings(args),
                env: strings(&["B=req"]),
                labels: [("l".to_string(), "req".to_string())].into(),
                ..Default::default()
            };
            apply(image(c.clone()), entry.map(strings), &mut r).map(|()| r)
        };
        let r = run(None, &[]).unwrap();
        assert_eq!(r.args, strings(&["/entry", "serve", "-v"]));
        assert_eq!(r.env, strings(&["PATH=/img", "A=1", "B=req"]));
        assert_eq!(
            (
                r.working_dir.as_str(),
                r.user.as_str(),
                r.stop_signal.as_str()
            ),
            ("/srv", "app", "SIGQUIT")
        );
        assert_eq!(r.labels["l"], "req");
        assert_eq!(r.labels["m"], "img");
        assert_eq!(r.volumes, strings(&["/data"]));
        assert_eq!(r.image.as_ref().unwrap().lower, strings(&["l/a"]));
        // A command replaces Cmd; the entrypoint stays.
        assert_eq!(run(None, &["x"]).unwrap().args, strings(&["/entry", "x"]));
        // --entrypoint drops Cmd; with a command it takes it.
        assert_eq!(
            run(Some(&["/bin/sh"]), &[]).unwrap().args,
            strings(&["/bin/sh"])
        );
        assert_eq!(
            run(Some(&["/bin/sh"]), &["-c", "true"]).unwrap().args,
            strings(&["/bin/sh", "-c", "true"])
        );
        // --entrypoint "" with a command: the command alone.
        assert_eq!(run(Some(&[]), &["ls"]).unwrap().args, strings(&["ls"]));
        assert!(run(Some(&[]), &[]).is_err());
    }
}
