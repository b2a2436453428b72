//! On-premises forwarder configuration, rendered from what is published in
//! SSM: pure functions from the published clusters to a file's text.
//! Output is deterministic (sorted by name) so that a file changes only when
//! what is published changes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::model::{endpoint_host, ip_sort_key, ClusterId, ParameterView, StateDoc};
use crate::owner::TAG_OWNER;

mod windows;

use crate::ssm::{PARAM_ENDPOINT, PARAM_INBOUND_IPS, PARAM_INBOUND_IPV6, PARAM_STATE};
use windows::windows_script;
pub use windows::WindowsScope;

/// One cluster as published under the prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The cluster's key: its name for the deployment's own account,
    /// "account:name" for a spoke's (its parameters under
    /// `{prefix}/{account}/{name}/`), as the files' comments name it.
    pub cluster: String,
    /// The endpoint host name (lower case, no trailing dot).
    pub name: String,
    /// IPv4 addresses, sorted.
    pub ips: Vec<String>,
    /// IPv6 addresses, sorted (dual-stack endpoints only).
    pub ipv6: Vec<String>,
}

impl Published {
    /// Every address to forward to: IPv4 first, then IPv6.
    pub fn servers(&self) -> Vec<String> {
        self.ips.iter().chain(&self.ipv6).cloned().collect()
    }
}

/// The configuration formats `render` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Bind,
    BindOptions,
    Dnsmasq,
    Unbound,
    Coredns,
    Powerdns,
    PowerdnsLua,
    Knot,
    Windows,
}

impl Format {
    pub const ALL: [Format; 9] = [
        Format::Bind,
        Format::BindOptions,
        Format::Dnsmasq,
        Format::Unbound,
        Format::Coredns,
        Format::Powerdns,
        Format::PowerdnsLua,
        Format::Knot,
        Format::Windows,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Bind => "bind",
            Format::BindOptions => "bind-options",
            Format::Dnsmasq => "dnsmasq",
            Format::Unbound => "unbound",
            Format::Coredns => "coredns",
            Format::Powerdns => "powerdns",
            Format::PowerdnsLua => "powerdns-lua",
            Format::Knot => "knot",
            Format::Windows => "windows",
        }
    }

    pub fn parse(text: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == text)
    }

    fn comment(self) -> &'static str {
        match self {
            Format::Bind | Format::BindOptions => "//",
            Format::Windows
            | Format::Dnsmasq
            | Format::Unbound
            | Format::Coredns
            | Format::Powerdns => "#",
            Format::PowerdnsLua | Format::Knot => "--",
        }
    }
}

/// What `render` trusts: the parameters under the prefix that carry this
/// deployment's owner tag (read with a tag filter, so that a parameter
/// written by anyone else never becomes a forward zone).
#[derive(Clone, Debug, Default)]
pub struct Trust {
    pub owner: String,
    pub owned: BTreeSet<String>,
}

/// Group the parameters under `prefix` into published clusters. Only what
/// we published is used, and only as an EKS endpoint: a parameter without
/// our owner tag, a name that is not an EKS endpoint's host name, or an
/// address outside the private ranges (and the cluster VPC's recorded
/// blocks) leaves its cluster out with a warning that names it, so that the
/// file never forwards another name, or anywhere public.
pub fn collect(
    prefix: &str,
    parameters: &[ParameterView],
    trust: &Trust,
) -> (Vec<Published>, Vec<String>) {
    let (published, warnings, _) = collect_with_skipped(prefix, parameters, trust);
    (published, warnings)
}

/// `collect`, and the names of the clusters left out because a parameter
/// of theirs was malformed (not those whose parameters are gone).
pub fn collect_with_skipped(
    prefix: &str,
    parameters: &[ParameterView],
    trust: &Trust,
) -> (Vec<Published>, Vec<String>, BTreeSet<String>) {
    let mut by_cluster: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut warnings = Vec::new();
    for p in parameters {
        // Only a cluster's parameters: not the deployment's own records
        // (settings), nor anything else under the prefix.
        let Some(path) = crate::ssm::parse_parameter_name(prefix, &p.name) else {
            continue;
        };
        let (cluster, leaf) = (path.cluster.to_string(), path.leaf.as_str());
        if !trust.owned.contains(&p.name) {
            warnings.push(format!(
                "skipping parameter {}: it does not carry our owner tag ({TAG_OWNER}={}), \
                 so this deployment did not publish it",
                p.name, trust.owner
            ));
            continue;
        }
        by_cluster
            .entry(cluster)
            .or_default()
            .insert(leaf.to_string(), p.value.clone());
    }
    let mut published = Vec::new();
    let mut skipped = BTreeSet::new();
    for (cluster, values) in by_cluster {
        match parse_cluster(&cluster, &values) {
            Ok(p) => published.push(p),
            Err(problem) => {
                warnings.push(format!(
                    "skipping cluster {cluster} ({}/): {problem}",
                    crate::ssm::cluster_folder(prefix, &ClusterId::from_key(&cluster))
                ));
                skipped.insert(cluster);
            }
        }
    }
    (published, warnings, skipped)
}

/// What a watching render serves: the clusters read now, and for each
/// cluster left out now because a parameter of it is malformed, its last
/// good forwarders (`last`), with a warning that names it. A cluster whose
/// parameters are gone is gone.
pub fn keep_last_good(
    now: Vec<Published>,
    skipped: &BTreeSet<String>,
    last: &[Published],
) -> (Vec<Published>, Vec<String>) {
    let mut out = now;
    let mut warnings = Vec::new();
    for good in last {
        if skipped.contains(&good.cluster) && !out.iter().any(|p| p.cluster == good.cluster) {
            warnings.push(format!(
                "keeping the last good forwarders of cluster {} ({}) until its parameters are \
                 valid again",
                good.cluster,
                good.servers().join(", ")
            ));
            out.push(good.clone());
        }
    }
    (out, warnings)
}

/// Whether `host` has the form of an EKS API server endpoint (AWS-FACTS:
/// "<id>.<shard>.<region>.eks.amazonaws.com", China ".com.cn", dual-stack
/// "<id>.<shard>.<region>.api.aws", China "api.amazonwebservices.com.cn"):
/// an id, at least one more label, a region, then the suffix. Never a bare
/// suffix, never another name.
pub fn is_eks_endpoint(host: &str) -> bool {
    const SUFFIXES: [&str; 4] = [
        ".eks.amazonaws.com",
        ".eks.amazonaws.com.cn",
        ".api.aws",
        ".api.amazonwebservices.com.cn",
    ];
    let Some(head) = SUFFIXES.iter().find_map(|s| host.strip_suffix(s)) else {
        return false;
    };
    let labels: Vec<&str> = head.split('.').collect();
    if labels.len() < 3 {
        return false;
    }
    let region = labels[labels.len() - 1];
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    is_region(region) && labels.iter().all(|l| label_ok(l))
}

/// "eu-west-1", "us-gov-west-1", "cn-north-1", "us-isob-east-1".
fn is_region(label: &str) -> bool {
    let parts: Vec<&str> = label.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].chars().all(|c| c.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

fn parse_cluster(cluster: &str, values: &BTreeMap<String, String>) -> Result<Published, String> {
    if !crate::event::is_cluster_name(&ClusterId::from_key(cluster).name) {
        return Err("not a valid cluster name".into());
    }
    let raw_name = values
        .get(PARAM_ENDPOINT)
        .ok_or_else(|| format!("no {PARAM_ENDPOINT} parameter"))?;
    let name = endpoint_host(raw_name)
        .filter(|n| n == &raw_name.trim().trim_end_matches('.').to_ascii_lowercase())
        .ok_or_else(|| format!("{PARAM_ENDPOINT} '{raw_name}' is not a host name"))?;
    if !is_eks_endpoint(&name) {
        return Err(format!(
            "{PARAM_ENDPOINT} '{name}' is not an EKS endpoint name \
             (<id>.<shard>.<region>.eks.amazonaws.com or .api.aws)"
        ));
    }
    // Where an inbound address may be: the private ranges, or the cluster
    // VPC's own blocks outside them, as its state records them.
    let mut allowed = crate::config::private_ranges();
    if let Some(doc) = values
        .get(PARAM_STATE)
        .and_then(|v| serde_json::from_str::<StateDoc>(v).ok())
    {
        allowed.extend(doc.vpc_cidrs.iter().filter_map(|c| c.parse::<IpNet>().ok()));
    }
    let inside = |ip: IpAddr| allowed.iter().any(|net| net.contains(&ip));
    let raw_ips = values
        .get(PARAM_INBOUND_IPS)
        .ok_or_else(|| format!("no {PARAM_INBOUND_IPS} parameter"))?;
    let mut ips = Vec::new();
    for ip in raw_ips.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let addr: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("{PARAM_INBOUND_IPS} has '{ip}', which is not an IPv4 address"))?;
        if !inside(IpAddr::V4(addr)) {
            return Err(format!(
                "{PARAM_INBOUND_IPS} has '{ip}', outside the private ranges and the cluster \
                 VPC's recorded blocks"
            ));
        }
        ips.push(addr.to_string());
    }
    if ips.is_empty() {
        return Err(format!("{PARAM_INBOUND_IPS} is empty"));
    }
    ips.sort_by_key(|ip| ip_sort_key(ip));
    ips.dedup();
    let mut ipv6 = Vec::new();
    if let Some(raw) = values.get(PARAM_INBOUND_IPV6) {
        for ip in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let addr: Ipv6Addr = ip.parse().map_err(|_| {
                format!("{PARAM_INBOUND_IPV6} has '{ip}', which is not an IPv6 address")
            })?;
            if !inside(IpAddr::V6(addr)) {
                return Err(format!(
                    "{PARAM_INBOUND_IPV6} has '{ip}', outside the private ranges and the \
                     cluster VPC's recorded blocks"
                ));
            }
            ipv6.push(addr.to_string());
        }
        ipv6.sort();
        ipv6.dedup();
    }
    Ok(Published {
        cluster: cluster.to_string(),
        name,
        ips,
        ipv6,
    })
}

/// The text of a configuration file in `format` for `clusters`.
pub fn render(format: Format, prefix: &str, clusters: &[Published]) -> String {
    let source = Source {
        prefix: prefix.to_string(),
        ..Source::default()
    };
    render_from(format, &source, clusters)
}

/// Where a file's clusters were read: the prefix, the account and the
/// regions (which name the Windows script's record of what it manages), and
/// how the Windows script makes its zones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Source {
    pub prefix: String,
    /// The account whose parameters were read (empty when not known).
    pub account: String,
    /// The regions read, in the order given.
    pub regions: Vec<String>,
    pub windows_scope: WindowsScope,
}

impl Source {
    /// Names the Windows script's record: one per prefix, account and set
    /// of regions, so that two scheduled tasks on one server (two
    /// deployments, accounts or regions) never remove each other's zones.
    pub fn record_key(&self) -> String {
        let mut regions = self.regions.clone();
        regions.sort();
        regions.dedup();
        let mut parts = vec![self.prefix.as_str(), self.account.as_str()];
        parts.extend(regions.iter().map(String::as_str));
        crate::owner::digest(&parts, 12)
    }
}

/// `render` for clusters read from `source`.
pub fn render_from(format: Format, source: &Source, clusters: &[Published]) -> String {
    let prefix = &source.prefix;
    let mut clusters = clusters.to_vec();
    clusters.sort_by(|a, b| a.name.cmp(&b.name).then(a.cluster.cmp(&b.cluster)));
    let c = format.comment();
    let mut out = String::new();
    out.push_str(&format!(
        "{c} Generated by eks-private-dns render --format {} from SSM parameters under {prefix}.\n\
         {c} Do not edit: the next render replaces this file. {} cluster(s).\n",
        format.name(),
        clusters.len()
    ));
    match format {
        Format::Bind | Format::BindOptions | Format::Dnsmasq => {
            render_bind_or_dnsmasq(format, &clusters, &mut out)
        }
        Format::Unbound
        | Format::Coredns
        | Format::Powerdns
        | Format::PowerdnsLua
        | Format::Knot => render_forwarders(format, &clusters, &mut out),
        Format::Windows => out.push_str(&windows_script(source, &clusters)),
    }
    out
}

/// BIND's zones and options, dnsmasq's servers.
fn render_bind_or_dnsmasq(format: Format, clusters: &[Published], out: &mut String) {
    let c = format.comment();
    match format {
        Format::Bind => {
            out.push_str(&format!(
                "{c} Include at the top level of named.conf; put the bind-options file\n\
                 {c} inside options {{ }} so that DNSSEC validation skips these names.\n"
            ));
            for p in clusters {
                out.push_str(&format!(
                    "\n{c} cluster {}\nzone \"{}\" {{\n\ttype forward;\n\tforward only;\n\tforwarders {{ {} }};\n}};\n",
                    p.cluster,
                    p.name,
                    p.servers().iter().map(|s| format!("{s};")).collect::<Vec<_>>().join(" ")
                ));
            }
        }
        Format::BindOptions => {
            out.push_str(&format!(
                "{c} Include inside options {{ }} of named.conf.\n"
            ));
            if !clusters.is_empty() {
                out.push_str("validate-except {\n");
                for p in clusters {
                    out.push_str(&format!("\t\"{}\";\n", p.name));
                }
                out.push_str("};\n");
            }
        }
        Format::Dnsmasq => {
            out.push_str(&format!(
                "{c} Use with conf-file= or put in /etc/dnsmasq.d/.\n"
            ));
            for p in clusters {
                out.push_str(&format!("\n{c} cluster {}\n", p.cluster));
                for s in p.servers() {
                    out.push_str(&format!("server=/{}/{s}\n", p.name));
                }
                out.push_str(&format!("rebind-domain-ok=/{}/\n", p.name));
            }
        }
        _ => unreachable!("{} is not rendered here", format.name()),
    }
}

/// Unbound, CoreDNS, the PowerDNS Recursor and Knot Resolver: forward zones.
fn render_forwarders(format: Format, clusters: &[Published], out: &mut String) {
    let c = format.comment();
    match format {
        Format::Unbound => {
            out.push_str(&format!(
                "{c} Include from unbound.conf (include: \"this file\").\n"
            ));
            if !clusters.is_empty() {
                out.push_str("server:\n");
                for p in clusters {
                    out.push_str(&format!(
                        "\tdomain-insecure: \"{}\"\n\tprivate-domain: \"{}\"\n",
                        p.name, p.name
                    ));
                }
            }
            for p in clusters {
                out.push_str(&format!(
                    "\n{c} cluster {}\nforward-zone:\n\tname: \"{}\"\n",
                    p.cluster, p.name
                ));
                for s in p.servers() {
                    out.push_str(&format!("\tforward-addr: {s}\n"));
                }
            }
        }
        Format::Coredns => {
            out.push_str(&format!(
                "{c} Import from the Corefile (import this file).\n"
            ));
            for p in clusters {
                out.push_str(&format!(
                    "\n{c} cluster {}\n{}:53 {{\n    forward . {}\n}}\n",
                    p.cluster,
                    p.name,
                    p.servers().join(" ")
                ));
            }
        }
        // A forward-zones-file: recursor.conf names it (an include-dir file
        // may not add to forward-zones without a parent setting).
        Format::Powerdns => {
            out.push_str(&format!(
                "{c} Name it in recursor.conf: forward-zones-file=<this file> (PowerDNS Recursor\n\
                 {c} 4.x); with dnssec=validate, load the powerdns-lua file too.\n"
            ));
            for p in clusters {
                out.push_str(&format!(
                    "\n{c} cluster {}\n{}={}\n",
                    p.cluster,
                    p.name,
                    p.servers().join(";")
                ));
            }
        }
        // Negative trust anchors: the private names have no DNSSEC chain
        // from the root, and a validating recursor refuses them without.
        Format::PowerdnsLua => {
            out.push_str(&format!(
                "{c} Name it in recursor.conf: lua-config-file=<this file> (PowerDNS Recursor\n\
                 {c} 4.x), so that validation skips the forwarded names.\n"
            ));
            for p in clusters {
                out.push_str(&format!(
                    "\n{c} cluster {}\naddNTA(\"{}\", \"eks-private-dns: private EKS endpoint\")\n",
                    p.cluster, p.name
                ));
            }
        }
        // Knot Resolver 5: a stub policy per name, as its documentation
        // replaces part of the tree with an internal server: the query goes
        // to the inbound endpoint (which recurses) with validation off for
        // that name only, since it has no DNSSEC chain from the root.
        Format::Knot => {
            out.push_str(&format!(
                "{c} Load it from kresd.conf with dofile('<this file>') (Knot Resolver 5.x),\n\
                 {c} before any policy that would send these names elsewhere.\n"
            ));
            for p in clusters {
                let servers: Vec<String> = p.servers().iter().map(|s| format!("'{s}'")).collect();
                out.push_str(&format!(
                    "\n{c} cluster {}\npolicy.add(policy.suffix(policy.STUB({{{}}}), {{todname('{}.')}}))\n",
                    p.cluster,
                    servers.join(", "),
                    p.name
                ));
            }
        }
        _ => unreachable!("{} is not rendered here", format.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(cluster: &str, ip: &str) -> Published {
        Published {
            cluster: cluster.into(),
            name: format!("{cluster}.gr7.eu-west-1.eks.amazonaws.com"),
            ips: vec![ip.into()],
            ipv6: Vec::new(),
        }
    }

    #[test]
    fn a_watching_render_keeps_the_last_good_forwarders_of_a_malformed_cluster_only() {
        let last = vec![
            one("a", "10.0.0.1"),
            one("b", "10.0.0.2"),
            one("c", "10.0.0.3"),
        ];
        // b is malformed now, c is gone, a changed, d is new.
        let now = vec![one("a", "10.0.0.9"), one("d", "10.0.0.4")];
        let skipped = BTreeSet::from(["b".to_string(), "e".to_string()]);
        let (serve, warnings) = keep_last_good(now, &skipped, &last);
        let names: Vec<(&str, &str)> = serve
            .iter()
            .map(|p| (p.cluster.as_str(), p.ips[0].as_str()))
            .collect();
        assert_eq!(
            names,
            [("a", "10.0.0.9"), ("d", "10.0.0.4"), ("b", "10.0.0.2")]
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("cluster b") && warnings[0].contains("10.0.0.2"));
    }

    fn param(name: &str, value: &str) -> ParameterView {
        ParameterView {
            name: name.into(),
            value: value.into(),
            kind: "String".into(),
            version: 1,
        }
    }

    fn published() -> Vec<ParameterView> {
        vec![
            param(
                "/eks-private-dns/prod/endpoint",
                "abc.gr7.eu-west-1.eks.amazonaws.com",
            ),
            param("/eks-private-dns/prod/inbound-ips", "10.0.2.10,10.0.1.10"),
            param("/eks-private-dns/prod/state", "{}"),
            param(
                "/eks-private-dns/dev/endpoint",
                "def.yl4.eu-west-1.eks.amazonaws.com",
            ),
            param("/eks-private-dns/dev/inbound-ips", "10.1.1.5,10.1.2.5"),
            param("/eks-private-dns/dev/inbound-ipv6", "fd00::5"),
            // Incomplete and malformed clusters are skipped, by name.
            param(
                "/eks-private-dns/half/endpoint",
                "ghi.sk1.eu-west-1.eks.amazonaws.com",
            ),
            param(
                "/eks-private-dns/bad/endpoint",
                "jkl.sk1.eu-west-1.eks.amazonaws.com",
            ),
            param("/eks-private-dns/bad/inbound-ips", "10.0.0.1,not-an-ip"),
            param("/eks-private-dns/evil/endpoint", "x.example.com\"; };"),
            param("/eks-private-dns/evil/inbound-ips", "10.0.0.1"),
        ]
    }

    /// Everything in `params` is ours.
    fn all_owned(params: &[ParameterView]) -> Trust {
        Trust {
            owner: "eks-private-dns".into(),
            owned: params.iter().map(|p| p.name.clone()).collect(),
        }
    }

    #[test]
    fn collects_complete_clusters_and_names_the_rest() {
        let params = published();
        let (clusters, warnings) = collect("/eks-private-dns", &params, &all_owned(&params));
        let names: Vec<&str> = clusters.iter().map(|c| c.cluster.as_str()).collect();
        assert_eq!(names, vec!["dev", "prod"]);
        assert_eq!(clusters[1].ips, vec!["10.0.1.10", "10.0.2.10"], "sorted");
        assert_eq!(clusters[0].ipv6, vec!["fd00::5"]);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        for w in ["half", "bad", "evil"] {
            assert!(
                warnings
                    .iter()
                    .any(|x| x.contains(&format!("cluster {w} "))),
                "{warnings:?}"
            );
        }
    }

    #[test]
    fn only_what_we_published_and_only_eks_names_at_private_addresses() {
        let mut params = published();
        let ours = all_owned(&params);
        params.extend([
            // Written by someone else under the prefix: no owner tag.
            param(
                "/eks-private-dns/corp/endpoint",
                "x.gr7.eu-west-1.eks.amazonaws.com",
            ),
            param("/eks-private-dns/corp/inbound-ips", "10.9.9.9"),
        ]);
        let mut hostile = vec![
            ("name", "corp.example.com", "10.0.0.1"),
            ("suffix", "eu-west-1.api.aws", "10.0.0.1"),
            ("short", "gr7.eu-west-1.eks.amazonaws.com", "10.0.0.1"),
            (
                "endslike",
                "abc.gr7.eu-west-1.eks.amazonaws.com.evil.example",
                "10.0.0.1",
            ),
            (
                "lookalike",
                "abc.gr7.eu-west-1.xeks.amazonaws.com",
                "10.0.0.1",
            ),
            ("noregion", "abc.gr7.europe.eks.amazonaws.com", "10.0.0.1"),
            (
                "public",
                "abc.gr7.eu-west-1.eks.amazonaws.com",
                "203.0.113.9",
            ),
            (
                "loopback",
                "abc.gr7.eu-west-1.eks.amazonaws.com",
                "127.0.0.1",
            ),
        ];
        let mut trust = ours.clone();
        for (cluster, name, ip) in hostile.drain(..) {
            for (leaf, value) in [("endpoint", name), ("inbound-ips", ip)] {
                let full = format!("/eks-private-dns/{cluster}/{leaf}");
                trust.owned.insert(full.clone());
                params.push(param(&full, value));
            }
        }
        let (clusters, warnings) = collect("/eks-private-dns", &params, &trust);
        let names: Vec<&str> = clusters.iter().map(|c| c.cluster.as_str()).collect();
        assert_eq!(names, vec!["dev", "prod"], "{warnings:?}");
        for w in [
            "parameter /eks-private-dns/corp/endpoint",
            "parameter /eks-private-dns/corp/inbound-ips",
            "cluster name ",
            "cluster suffix ",
            "cluster short ",
            "cluster endslike ",
            "cluster lookalike ",
            "cluster noregion ",
            "cluster public ",
            "cluster loopback ",
        ] {
            assert!(warnings.iter().any(|x| x.contains(w)), "{w}: {warnings:?}");
        }
        assert!(warnings
            .iter()
            .any(|x| x.contains("corp/endpoint") && x.contains("owner tag")));
        // A public address inside the cluster VPC's recorded blocks is its own.
        let state = r#"{"schema":1,"cluster":"public","cluster-arn":"a","vpc-id":"vpc-1",
            "endpoint":"e","inbound-endpoint-id":"i","outbound-endpoint-id":null,
            "rule-id":null,"associated-vpcs":[],"control-plane-security-group-id":"g",
            "control-plane-rule-ids":[],"allowed-cidrs":[],"vpc-cidrs":["203.0.113.0/24"],
            "updated-at":""}"#;
        params.push(param("/eks-private-dns/public/state", state));
        trust.owned.insert("/eks-private-dns/public/state".into());
        let (clusters, _) = collect("/eks-private-dns", &params, &trust);
        assert!(clusters.iter().any(|c| c.cluster == "public"));
        // The deployment's own records are no cluster.
        params.push(param("/eks-private-dns/_deployment/settings", "{}"));
        let (_, warnings) = collect("/eks-private-dns", &params, &trust);
        assert!(
            !warnings.iter().any(|w| w.contains("_deployment")),
            "{warnings:?}"
        );
    }

    #[test]
    fn eks_endpoint_forms() {
        for ok in [
            "0a1b2c3d4e5f60718293a4b5c6d7e8f9.gr7.eu-west-1.eks.amazonaws.com",
            "abc.sk1.us-gov-west-1.eks.amazonaws.com",
            "abc.yl4.cn-north-1.eks.amazonaws.com.cn",
            "abc.gr7.eu-west-1.api.aws",
            "abc.yl4.cn-northwest-1.api.amazonwebservices.com.cn",
        ] {
            assert!(is_eks_endpoint(ok), "{ok}");
        }
        for bad in [
            "eks.amazonaws.com",
            "eu-west-1.eks.amazonaws.com",
            "gr7.eu-west-1.eks.amazonaws.com",
            "eu-west-1.api.aws",
            "s3.eu-west-1.api.aws.example.com",
            "abc.gr7.eu-west-1.eks.amazonaws.com.example.com",
            "abc.gr7.west.eks.amazonaws.com",
            "abc.gr7.eu-west-x.eks.amazonaws.com",
            "a_b.gr7.eu-west-1.eks.amazonaws.com",
            "corp.example.com",
        ] {
            assert!(!is_eks_endpoint(bad), "{bad}");
        }
    }

    #[test]
    fn every_format_is_deterministic_and_names_every_cluster() {
        let params = published();
        let (clusters, _) = collect("/eks-private-dns", &params, &all_owned(&params));
        let mut reversed = clusters.clone();
        reversed.reverse();
        for format in Format::ALL {
            let a = render(format, "/eks-private-dns", &clusters);
            let b = render(format, "/eks-private-dns", &reversed);
            assert_eq!(a, b, "{}", format.name());
            assert!(a.contains("Generated by eks-private-dns"));
            for c in &clusters {
                assert!(a.contains(&c.name), "{} lacks {}", format.name(), c.name);
            }
            assert_eq!(Format::parse(format.name()), Some(format));
        }
    }

    #[test]
    fn empty_renders_are_valid_files() {
        for format in Format::ALL {
            let text = render(format, "/eks-private-dns", &[]);
            assert!(text.contains("0 cluster(s)"));
            assert!(!text.contains("validate-except {\n};"));
        }
    }
}
