//! `render`: on-premises forwarder configuration from what this deployment
//! published, written atomically and only when it changes.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};

use shared::config::Mode;
use shared::reconcile::Reconciler;

use crate::*;

/// The clusters published under `path` by this deployment (parameters
/// with our owner tag, EKS names, private addresses), the warnings for what
/// was skipped, and how many parameters were read.
pub(crate) async fn published_under(
    rec: &Reconciler,
    path: &str,
) -> Result<(Vec<shared::render::Published>, Vec<String>, usize)> {
    let (parameters, owned) = tokio::try_join!(
        shared::observe::parameters_recursive(&rec.clients, path),
        shared::observe::owned_parameter_names(&rec.clients, path, &rec.owner, None),
    )
    .map_err(|e| anyhow!("{e}"))?;
    let trust = shared::render::Trust {
        owner: rec.owner.id.clone(),
        owned,
    };
    let (clusters, warnings) = shared::render::collect(&rec.config.ssm_prefix, &parameters, &trust);
    Ok((clusters, warnings, parameters.len()))
}

/// How many clusters a file that render wrote says it has (its header
/// line); None for any other file.
pub(crate) fn rendered_clusters(text: &str) -> Option<usize> {
    text.lines().take(3).find_map(|line| {
        let (_, rest) = line.split_once("Do not edit: the next render replaces this file. ")?;
        rest.strip_suffix(" cluster(s).")?.parse().ok()
    })
}

pub(crate) async fn render(
    cli: &Cli,
    format: &str,
    cluster: Option<&str>,
    out: Option<&std::path::Path>,
    allow_empty: bool,
) -> Result<ExitCode> {
    use shared::render::{render, Format};
    let format = Format::parse(format).ok_or_else(|| {
        anyhow!(
            "'{format}' is not a format; use one of {}",
            Format::ALL.map(|f| f.name()).join(", ")
        )
    })?;
    let rec = reconciler(cli, Mode::Plan).await?;
    let prefix = rec.config.ssm_prefix.clone();
    let path = match cluster {
        Some(name) => format!("{prefix}/{name}"),
        None => prefix.clone(),
    };
    let (clusters, warnings, parameters) = published_under(&rec, &path).await?;
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    if let (Some(name), true) = (cluster, clusters.is_empty()) {
        return Err(anyhow!(
            "no complete parameters for cluster {name} under {prefix}/{name}/"
        ));
    }
    let text = render(format, &prefix, &clusters);
    let Some(out) = out else {
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    };
    let before = std::fs::read_to_string(out).ok();
    if clusters.is_empty() && !allow_empty {
        let had =
            before.as_deref().filter(|t| !t.trim().is_empty()).map(|t| {
                match rendered_clusters(t) {
                    Some(0) => None,
                    Some(n) => Some(format!("its {n} cluster(s)")),
                    None => Some("its content".to_string()),
                }
            });
        if let Some(Some(had)) = had {
            return Err(anyhow!(
                "found no published cluster under {prefix}/ in {} ({} parameters, {} skipped), \
                 so {} keeps {had}; check the region, the profile and \
                 EKS_PRIVATE_DNS_SSM_PREFIX, or pass --allow-empty if every cluster is gone",
                rec.clients.region,
                parameters,
                warnings.len(),
                out.display()
            ));
        }
    }
    let changed = write_if_changed(out, &text, before.as_deref())?;
    if !changed {
        if cli.output == Output::Json {
            println!(
                "{}",
                serde_json::json!({"file": out, "changed": false, "clusters": clusters.len()})
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if cli.output == Output::Json {
        println!(
            "{}",
            serde_json::json!({"file": out, "changed": true, "clusters": clusters.len()})
        );
    } else if std::io::stderr().is_terminal() {
        eprintln!("{} updated ({} clusters)", out.display(), clusters.len());
    }
    Ok(ExitCode::from(2))
}

/// Replace `out` with `text` unless it holds it already (`before`, as
/// read); whether it wrote. Written beside the target and renamed over it,
/// keeping the old file's permissions: readers see the old file or the new
/// one, never half of one, and nothing is left behind on failure.
pub(crate) fn write_if_changed(
    out: &std::path::Path,
    text: &str,
    before: Option<&str>,
) -> Result<bool> {
    if before == Some(text) {
        return Ok(false);
    }
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = out
        .file_name()
        .ok_or_else(|| anyhow!("--out {} is not a file path", out.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    if let Ok(meta) = std::fs::metadata(out) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, out).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot replace {}", out.display())
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("eks-private-dns-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn writes_only_changes_atomically_and_keeps_the_mode() {
        let dir = scratch("write");
        let out = dir.join("eks.conf");
        assert!(write_if_changed(&out, "one\n", None).unwrap(), "a new file");
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(
            !write_if_changed(&out, "one\n", Some("one\n")).unwrap(),
            "unchanged"
        );
        assert!(write_if_changed(&out, "two\n", Some("one\n")).unwrap());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "two\n");
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "the old file's permissions");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
        // A directory that does not exist: an error that names the file.
        let err = write_if_changed(&dir.join("missing/eks.conf"), "x", None).unwrap_err();
        assert!(format!("{err:#}").contains("missing"), "{err:#}");
    }
}
