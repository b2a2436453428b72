//! `render`: on-premises forwarder configuration from what this deployment
//! published, written atomically and only when it changes.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};

use shared::config::Mode;
use shared::reconcile::Reconciler;
use shared::render::{render_from, Format, Published, Source, WindowsScope};

use crate::*;

/// What `published_under` found.
pub(crate) struct Found {
    pub clusters: Vec<Published>,
    pub warnings: Vec<String>,
    /// Clusters left out for a malformed parameter.
    pub skipped: std::collections::BTreeSet<String>,
    pub parameters: usize,
}

/// The clusters published under `path` by this deployment (parameters
/// with our owner tag, EKS names, private addresses), the warnings for what
/// was skipped, and how many parameters were read.
pub(crate) async fn published_under(rec: &Reconciler, path: &str) -> Result<Found> {
    let (parameters, owned) = tokio::try_join!(
        shared::observe::parameters_recursive(&rec.clients, path),
        shared::observe::owned_parameter_names(&rec.clients, path, &rec.owner, None),
    )
    .map_err(|e| {
        anyhow!(
            "cannot read the parameters under {path}/ in {}: {e}",
            rec.clients.region
        )
    })?;
    let trust = shared::render::Trust {
        owner: rec.owner.id.clone(),
        owned,
    };
    let (clusters, warnings, skipped) =
        shared::render::collect_with_skipped(&rec.config.ssm_prefix, &parameters, &trust);
    Ok(Found {
        clusters,
        warnings,
        skipped,
        parameters: parameters.len(),
    })
}

/// How many clusters a file that render wrote says it has (its header
/// line); None for any other file.
pub(crate) fn rendered_clusters(text: &str) -> Option<usize> {
    text.lines().take(3).find_map(|line| {
        let (_, rest) = line.split_once("Do not edit: the next render replaces this file. ")?;
        rest.strip_suffix(" cluster(s).")?.parse().ok()
    })
}

/// Where and how `render` writes.
pub(crate) struct RenderTarget<'a> {
    pub cluster: Option<&'a str>,
    pub out: Option<&'a std::path::Path>,
    pub allow_empty: bool,
    /// A shell command to run after the file changed.
    pub reload: Option<&'a str>,
    pub windows_scope: WindowsScope,
}

/// The --windows-replication-scope value.
pub(crate) fn windows_scope(text: &str) -> Result<WindowsScope> {
    WindowsScope::parse(text).ok_or_else(|| {
        anyhow!(
            "--windows-replication-scope '{text}' is not a scope; use one of {}",
            WindowsScope::ALL.map(|s| s.name()).join(", ")
        )
    })
}

fn format_named(format: &str) -> Result<Format> {
    Format::parse(format).ok_or_else(|| {
        anyhow!(
            "'{format}' is not a format; use one of {}",
            Format::ALL.map(|f| f.name()).join(", ")
        )
    })
}

/// What a render reads: one reconciler per region (`--region` repeated,
/// or the configuration chain's), and the source it names in the file.
struct Readers {
    recs: Vec<Reconciler>,
    source: Source,
}

async fn readers(cli: &Cli, format: Format, target: &RenderTarget<'_>) -> Result<Readers> {
    let regions: Vec<Option<String>> = match cli.region.as_slice() {
        [] => vec![None],
        given => given.iter().cloned().map(Some).collect(),
    };
    let mut recs = Vec::new();
    for region in regions {
        recs.push(reconciler_in(cli, Mode::Plan, region).await?.0);
    }
    let mut regions: Vec<String> = Vec::new();
    for rec in &recs {
        if !regions.contains(&rec.clients.region) {
            regions.push(rec.clients.region.clone());
        }
    }
    let account = match format {
        Format::Windows => caller_account(&recs[0]).await?,
        _ => String::new(),
    };
    let source = Source {
        prefix: recs[0].config.ssm_prefix.clone(),
        account,
        regions,
        windows_scope: target.windows_scope,
    };
    Ok(Readers { recs, source })
}

/// The account of the credentials (sts:GetCallerIdentity, which needs no
/// permission): it names the Windows script's record.
async fn caller_account(rec: &Reconciler) -> Result<String> {
    let roots = rec
        .config
        .tls_roots
        .resolve(|name| std::env::var(name).ok());
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(rec.clients.region.clone()))
        .http_client(shared::limit::default_http_client(roots))
        .load()
        .await;
    let out = aws_sdk_sts::Client::new(&sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "cannot tell which account the parameters are in (sts:GetCallerIdentity): {}",
                aws_sdk_sts::error::DisplayErrorContext(&e)
            )
        })?;
    Ok(out.account().unwrap_or_default().to_string())
}

/// What a pass read: the clusters (each once), the warnings, and how many
/// parameters were read.
struct Read {
    clusters: Vec<Published>,
    warnings: Vec<String>,
    parameters: usize,
}

/// One pass over every region: the clusters to write (`last` keeps the
/// forwarders of a cluster whose parameters are malformed now, for a
/// watching render), and the warnings.
async fn read_all(
    readers: &Readers,
    target: &RenderTarget<'_>,
    last: Option<&[Published]>,
) -> Result<Read> {
    let prefix = &readers.source.prefix;
    let path = match target.cluster {
        Some(name) => {
            shared::ssm::cluster_folder(prefix, &shared::model::ClusterId::from_key(name))
        }
        None => prefix.clone(),
    };
    let mut read = Read {
        clusters: Vec::new(),
        warnings: Vec::new(),
        parameters: 0,
    };
    let mut skipped = std::collections::BTreeSet::new();
    for rec in &readers.recs {
        let found = published_under(rec, &path).await?;
        read.parameters += found.parameters;
        read.warnings.extend(found.warnings);
        skipped.extend(found.skipped);
        // Each cluster once: a region given twice reads the same names.
        for p in found.clusters {
            if !read.clusters.iter().any(|c| c.name == p.name) {
                read.clusters.push(p);
            }
        }
    }
    if let Some(last) = last {
        let (kept, more) = shared::render::keep_last_good(read.clusters, &skipped, last);
        read.clusters = kept;
        read.warnings.extend(more);
    }
    if let (Some(name), true) = (target.cluster, read.clusters.is_empty()) {
        return Err(anyhow!(
            "no complete parameters for cluster {name} under {prefix}/{name}/ in {}",
            readers.source.regions.join(", ")
        ));
    }
    Ok(read)
}

/// Write `text` to `out` when it changed, unless that would empty a file
/// that has clusters (without --allow-empty); whether it wrote.
fn write_out(
    readers: &Readers,
    out: &std::path::Path,
    text: &str,
    read: &Read,
    allow_empty: bool,
) -> Result<bool> {
    let before = std::fs::read_to_string(out).ok();
    if read.clusters.is_empty() && !allow_empty {
        let had = before
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .and_then(|t| match rendered_clusters(t) {
                Some(0) => None,
                Some(n) => Some(format!("its {n} cluster(s)")),
                None => Some("its content".to_string()),
            });
        if let Some(had) = had {
            return Err(anyhow!(
                "found no published cluster under {}/ in {} ({} parameters, {} skipped), so {} \
                 keeps {had}; check the region, the profile and EKS_PRIVATE_DNS_SSM_PREFIX, or \
                 pass --allow-empty if every cluster is gone",
                readers.source.prefix,
                readers.source.regions.join(", "),
                read.parameters,
                read.warnings.len(),
                out.display()
            ));
        }
    }
    write_if_changed(out, text, before.as_deref())
}

/// Run the reload command through the shell; an error that says how it
/// ended.
fn run_reload(command: &str) -> Result<()> {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .status()
        .with_context(|| format!("cannot run the reload command '{command}'"))?;
    if !status.success() {
        return Err(anyhow!("the reload command '{command}' failed ({status})"));
    }
    Ok(())
}

pub(crate) async fn render(cli: &Cli, format: &str, target: &RenderTarget<'_>) -> Result<ExitCode> {
    let format = format_named(format)?;
    let readers = readers(cli, format, target).await?;
    let read = read_all(&readers, target, None).await?;
    for warning in &read.warnings {
        eprintln!("warning: {warning}");
    }
    let text = render_from(format, &readers.source, &read.clusters);
    let Some(out) = target.out else {
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    };
    let changed = write_out(&readers, out, &text, &read, target.allow_empty)?;
    let clusters = read.clusters.len();
    if cli.output == Output::Json {
        println!(
            "{}",
            serde_json::json!({"file": out, "changed": changed, "clusters": clusters})
        );
    } else if changed && std::io::stderr().is_terminal() {
        eprintln!("{} updated ({clusters} clusters)", out.display());
    }
    if !changed {
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(command) = target.reload {
        run_reload(command)?;
    }
    Ok(ExitCode::from(2))
}

/// `render --watch`: a pass every `seconds` until the process is stopped
/// (SIGTERM at any time is safe: the file is replaced by a rename). A pass
/// that fails (SSM unreachable, no permission, a render that would empty
/// the file) leaves the file as it is and warns; the reload runs after a
/// pass that changed the file, and again after each pass until it succeeds.
pub(crate) async fn render_watch(
    cli: &Cli,
    format: &str,
    target: &RenderTarget<'_>,
    seconds: u64,
) -> Result<ExitCode> {
    let format = format_named(format)?;
    let out = target.out.ok_or_else(|| anyhow!("--watch needs --out"))?;
    let every = std::time::Duration::from_secs(seconds.max(1));
    let readers = readers(cli, format, target).await?;
    let mut last: Vec<Published> = Vec::new();
    let mut reload_owed = false;
    for pass_number in 1u64.. {
        let pass = async {
            let read = read_all(&readers, target, Some(&last)).await?;
            for warning in &read.warnings {
                eprintln!("warning: {warning}");
            }
            let text = render_from(format, &readers.source, &read.clusters);
            let changed = write_out(&readers, out, &text, &read, target.allow_empty)?;
            Ok::<_, anyhow::Error>((read.clusters, changed))
        };
        match pass.await {
            Ok((clusters, changed)) => {
                if changed {
                    eprintln!("{} updated ({} clusters)", out.display(), clusters.len());
                }
                tracing::info!(
                    pass = pass_number,
                    changed,
                    clusters = clusters.len(),
                    "render pass"
                );
                reload_owed |= changed;
                last = clusters;
            }
            Err(e) => {
                tracing::info!(pass = pass_number, failed = true, "render pass");
                eprintln!("warning: keeping {}: {e:#}", out.display())
            }
        }
        if let (true, Some(command)) = (reload_owed, target.reload) {
            match run_reload(command) {
                Ok(()) => reload_owed = false,
                Err(e) => eprintln!("warning: {e:#}; trying again after the next pass"),
            }
        }
        tokio::time::sleep(every).await;
    }
    unreachable!("a watch goes on until it is stopped")
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
