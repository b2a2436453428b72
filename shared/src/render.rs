//! On-premises forwarder configuration, rendered from what is published in
//! SSM: pure functions from the published clusters to a file's text.
//! Output is deterministic (sorted by name) so that a file changes only when
//! what is published changes.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::model::{endpoint_host, ip_sort_key, ParameterView};
use crate::plan::{PARAM_ENDPOINT, PARAM_INBOUND_IPS, PARAM_INBOUND_IPV6};

/// One cluster as published under the prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
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
    Windows,
}

impl Format {
    pub const ALL: [Format; 7] = [
        Format::Bind,
        Format::BindOptions,
        Format::Dnsmasq,
        Format::Unbound,
        Format::Coredns,
        Format::Powerdns,
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
        }
    }
}

/// Group the parameters under `prefix` into published clusters. A cluster
/// whose parameters are incomplete or malformed is left out with a warning
/// that names it, so that it never produces a broken file.
pub fn collect(prefix: &str, parameters: &[ParameterView]) -> (Vec<Published>, Vec<String>) {
    let mut by_cluster: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let head = format!("{}/", prefix.trim_end_matches('/'));
    for p in parameters {
        let Some(rest) = p.name.strip_prefix(&head) else {
            continue;
        };
        let Some((cluster, leaf)) = rest.split_once('/') else {
            continue;
        };
        if leaf.contains('/') {
            continue;
        }
        by_cluster
            .entry(cluster.to_string())
            .or_default()
            .insert(leaf.to_string(), p.value.clone());
    }
    let mut published = Vec::new();
    let mut warnings = Vec::new();
    for (cluster, values) in by_cluster {
        match parse_cluster(&cluster, &values) {
            Ok(p) => published.push(p),
            Err(problem) => warnings.push(format!("skipping cluster {cluster}: {problem}")),
        }
    }
    (published, warnings)
}

fn parse_cluster(cluster: &str, values: &BTreeMap<String, String>) -> Result<Published, String> {
    if !crate::event::is_cluster_name(cluster) {
        return Err("not a valid cluster name".into());
    }
    let raw_name = values
        .get(PARAM_ENDPOINT)
        .ok_or_else(|| format!("no {PARAM_ENDPOINT} parameter"))?;
    let name = endpoint_host(raw_name)
        .filter(|n| n == &raw_name.trim().trim_end_matches('.').to_ascii_lowercase())
        .ok_or_else(|| format!("{PARAM_ENDPOINT} '{raw_name}' is not a host name"))?;
    let raw_ips = values
        .get(PARAM_INBOUND_IPS)
        .ok_or_else(|| format!("no {PARAM_INBOUND_IPS} parameter"))?;
    let mut ips = Vec::new();
    for ip in raw_ips.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let addr: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("{PARAM_INBOUND_IPS} has '{ip}', which is not an IPv4 address"))?;
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
        Format::Bind => {
            out.push_str(&format!(
                "{c} Include at the top level of named.conf; put the bind-options file\n\
                 {c} inside options {{ }} so that DNSSEC validation skips these names.\n"
            ));
            for p in &clusters {
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
                for p in &clusters {
                    out.push_str(&format!("\t\"{}\";\n", p.name));
                }
                out.push_str("};\n");
            }
        }
        Format::Dnsmasq => {
            out.push_str(&format!(
                "{c} Use with conf-file= or put in /etc/dnsmasq.d/.\n"
            ));
            for p in &clusters {
                out.push_str(&format!("\n{c} cluster {}\n", p.cluster));
                for s in p.servers() {
                    out.push_str(&format!("server=/{}/{s}\n", p.name));
                }
                out.push_str(&format!("rebind-domain-ok=/{}/\n", p.name));
            }
        }
        Format::Unbound => {
            out.push_str(&format!(
                "{c} Include from unbound.conf (include: \"this file\").\n"
            ));
            if !clusters.is_empty() {
                out.push_str("server:\n");
                for p in &clusters {
                    out.push_str(&format!(
                        "\tdomain-insecure: \"{}\"\n\tprivate-domain: \"{}\"\n",
                        p.name, p.name
                    ));
                }
            }
            for p in &clusters {
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
            for p in &clusters {
                out.push_str(&format!(
                    "\n{c} cluster {}\n{}:53 {{\n    forward . {}\n}}\n",
                    p.cluster,
                    p.name,
                    p.servers().join(" ")
                ));
            }
        }
        Format::Powerdns => {
            out.push_str(&format!(
                "{c} Include from recursor.conf (include-dir), PowerDNS Recursor 4.x syntax.\n"
            ));
            for p in &clusters {
                out.push_str(&format!(
                    "\n{c} cluster {}\nforward-zones+={}={}\n",
                    p.cluster,
                    p.name,
                    p.servers().join(";")
                ));
            }
        }
        Format::Windows => out.push_str(&windows_script(&clusters)),
    }
    out
}

/// A PowerShell script that converges the Windows DNS Server's conditional
/// forwarders to what is published: adds new ones, updates changed ones, and
/// removes the ones it created earlier that are no longer published (it
/// remembers those in a state file, and never touches any other zone).
fn windows_script(clusters: &[Published]) -> String {
    let mut s = String::new();
    s.push_str(
        "# Run as an administrator on the DNS server, e.g. from a scheduled task.\n\
         #Requires -Modules DnsServer\n\
         $ErrorActionPreference = 'Stop'\n\
         $StateFile = Join-Path $env:ProgramData 'eks-private-dns\\forwarders.txt'\n\
         $Wanted = [ordered]@{\n",
    );
    for p in clusters {
        let servers: Vec<String> = p.servers().iter().map(|s| format!("'{s}'")).collect();
        s.push_str(&format!("    '{}' = @({})\n", p.name, servers.join(", ")));
    }
    s.push_str(
        "}\n\
         \n\
         foreach ($Name in $Wanted.Keys) {\n\
         \x20   $Servers = [string[]]$Wanted[$Name]\n\
         \x20   $Zone = Get-DnsServerZone -Name $Name -ErrorAction SilentlyContinue\n\
         \x20   if ($null -eq $Zone) {\n\
         \x20       Add-DnsServerConditionalForwarderZone -Name $Name -MasterServers $Servers\n\
         \x20       Write-Output \"added $Name -> $($Servers -join ', ')\"\n\
         \x20   } elseif ($Zone.ZoneType -ne 'Forwarder') {\n\
         \x20       Write-Warning \"$Name exists and is not a conditional forwarder; left alone\"\n\
         \x20   } else {\n\
         \x20       $Current = [string[]]($Zone.MasterServers | ForEach-Object { $_.IPAddressToString })\n\
         \x20       if ((($Current | Sort-Object) -join ',') -ne (($Servers | Sort-Object) -join ',')) {\n\
         \x20           Set-DnsServerConditionalForwarderZone -Name $Name -MasterServers $Servers\n\
         \x20           Write-Output \"updated $Name -> $($Servers -join ', ')\"\n\
         \x20       }\n\
         \x20   }\n\
         }\n\
         \n\
         # Forwarders this script created earlier and that are no longer published.\n\
         if (Test-Path $StateFile) {\n\
         \x20   foreach ($Name in Get-Content $StateFile) {\n\
         \x20       if ($Name -and -not $Wanted.Contains($Name)) {\n\
         \x20           $Zone = Get-DnsServerZone -Name $Name -ErrorAction SilentlyContinue\n\
         \x20           if ($null -ne $Zone -and $Zone.ZoneType -eq 'Forwarder') {\n\
         \x20               Remove-DnsServerZone -Name $Name -Force\n\
         \x20               Write-Output \"removed $Name\"\n\
         \x20           }\n\
         \x20       }\n\
         \x20   }\n\
         }\n\
         New-Item -ItemType Directory -Force -Path (Split-Path $StateFile) | Out-Null\n\
         Set-Content -Path $StateFile -Value ([string[]]$Wanted.Keys)\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn collects_complete_clusters_and_names_the_rest() {
        let (clusters, warnings) = collect("/eks-private-dns", &published());
        let names: Vec<&str> = clusters.iter().map(|c| c.cluster.as_str()).collect();
        assert_eq!(names, vec!["dev", "prod"]);
        assert_eq!(clusters[1].ips, vec!["10.0.1.10", "10.0.2.10"], "sorted");
        assert_eq!(clusters[0].ipv6, vec!["fd00::5"]);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        for w in ["half", "bad", "evil"] {
            assert!(
                warnings
                    .iter()
                    .any(|x| x.contains(&format!("cluster {w}:"))),
                "{warnings:?}"
            );
        }
    }

    #[test]
    fn every_format_is_deterministic_and_names_every_cluster() {
        let (clusters, _) = collect("/eks-private-dns", &published());
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
