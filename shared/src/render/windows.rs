//! The Windows DNS Server's output: a PowerShell script that converges the
//! conditional forwarders, recorded per source, in a file of the server or
//! in Active Directory.

use super::*;

/// Where the Windows DNS Server keeps a conditional forwarder zone:
/// `Local` in a file of this server, the others in Active Directory
/// (Add-DnsServerConditionalForwarderZone -ReplicationScope).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WindowsScope {
    #[default]
    Local,
    Forest,
    Domain,
    Legacy,
}

impl WindowsScope {
    pub const ALL: [WindowsScope; 4] = [
        WindowsScope::Local,
        WindowsScope::Forest,
        WindowsScope::Domain,
        WindowsScope::Legacy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WindowsScope::Local => "local",
            WindowsScope::Forest => "forest",
            WindowsScope::Domain => "domain",
            WindowsScope::Legacy => "legacy",
        }
    }

    pub fn parse(text: &str) -> Option<WindowsScope> {
        WindowsScope::ALL.into_iter().find(|s| s.name() == text)
    }

    /// The -ReplicationScope value, None for a file-backed zone.
    pub(super) fn replication_scope(self) -> Option<&'static str> {
        match self {
            WindowsScope::Local => None,
            WindowsScope::Forest => Some("Forest"),
            WindowsScope::Domain => Some("Domain"),
            WindowsScope::Legacy => Some("Legacy"),
        }
    }
}

/// A PowerShell script that converges the Windows DNS Server's conditional
/// forwarders to what is published: adds new ones, updates changed ones, and
/// removes the ones it created earlier that are no longer published (it
/// remembers those in a state file of its source's own, and never touches
/// any other zone). A record of an earlier version (forwarders.txt, one per
/// server) is taken over by the first script to run.
pub(super) fn windows_script(source: &Source, clusters: &[Published]) -> String {
    let mut s = String::new();
    let from = match (source.account.as_str(), source.regions.as_slice()) {
        ("", []) => source.prefix.clone(),
        ("", regions) => format!("{} in {}", source.prefix, regions.join(", ")),
        (account, []) => format!("{} of account {account}", source.prefix),
        (account, regions) => format!(
            "{} of account {account} in {}",
            source.prefix,
            regions.join(", ")
        ),
    };
    let scope = match source.windows_scope.replication_scope() {
        Some(scope) => format!("@{{ ReplicationScope = '{scope}' }}"),
        None => "@{}".to_string(),
    };
    s.push_str(&format!(
        "# Run as an administrator on the DNS server, e.g. from a scheduled task.\n\
         #Requires -Modules DnsServer\n\
         $ErrorActionPreference = 'Stop'\n\
         # It manages the forwarders of {from} only.\n\
         $StateFile = Join-Path $env:ProgramData 'eks-private-dns\\forwarders-{key}.txt'\n\
         $Legacy = Join-Path $env:ProgramData 'eks-private-dns\\forwarders.txt'\n\
         if (-not (Test-Path $StateFile) -and (Test-Path $Legacy)) {{ Move-Item $Legacy $StateFile }}\n\
         # Where new zones are kept: {where}.\n\
         $ZoneArgs = {scope}\n\
         $Wanted = [ordered]@{{\n",
        key = source.record_key(),
        where = match source.windows_scope {
            WindowsScope::Local => "a file of this server".to_string(),
            other => format!("Active Directory, -ReplicationScope {}", other.replication_scope().unwrap_or_default()),
        },
    ));
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
         \x20       Add-DnsServerConditionalForwarderZone -Name $Name -MasterServers $Servers @ZoneArgs\n\
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
