"""Local AWS emulator for the eks-private-dns tests and demo.

Starts moto's server on a loopback address, prints "READY <port>" on stdout,
and runs until its standard input closes (so it never outlives the test
process that started it).

moto differs from the documented AWS behaviour in ways that matter to this
product. Each difference is fixed here, in the emulator, with a patch that
cites the AWS API reference; product code is never bent to the emulator.

Environment (all optional):
  EMULATOR_EKS_CREATE_SECONDS  how long a new cluster stays CREATING (default 0)
  EMULATOR_EKS_UPDATE_SECONDS  how long a cluster stays UPDATING after
                               UpdateClusterConfig (default 0)
  EMULATOR_RESOLVER_SECONDS    how long each Route 53 Resolver change takes:
                               an endpoint CREATING, UPDATING after an IP
                               change, DELETING; a rule DELETING; an
                               association CREATING or DELETING (default 0:
                               every change is final at once)

Test control (not an AWS API): GET /_emulator/events lists the events
PutEvents accepted (moto keeps none that no rule targets), oldest first;
POST /_emulator/resolver with a JSON body
{"endpoint": ID, "ip": IP, "status": S} sets an endpoint IP's status (the
endpoint is then ACTION_NEEDED while an IP is failed), {"endpoint": ID,
"status": S} an endpoint's, and {"rule": ID, "vpc": VPC, "status": S} an
association's: what AWS does when something fails, which nothing else can
cause here. POST /_emulator/eks with {"cluster": NAME, "status": S} ends the
cluster's update in progress now, S being Failed or Cancelled (its settings
are then never shown). POST /_emulator/sts with {"deny": [ROLE_ARN, ...]}
makes AssumeRole of those roles fail with AccessDenied (sharing.py).
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import secrets
import sys
import threading
import time
import uuid
from typing import Any, Callable

from moto.core.responses import ActionResult
from moto.ec2.exceptions import DependencyViolationError
from moto.ec2.models import ec2_backends
from moto.ec2.models.security_groups import SecurityGroupBackend
from moto.ec2.models.subnets import Subnet
from moto.ec2.responses.security_groups import SecurityGroups
from moto.eks import models as eks_models
from moto.events import models as events_models
from moto.eks import responses as eks_responses
from moto.eks import urls as eks_urls
from moto.eks.exceptions import InvalidParameterException, ResourceInUseException
from moto.eks.exceptions import ResourceNotFoundException
from moto.moto_server import werkzeug_app
from moto.route53resolver import models as resolver_models
from moto.route53resolver import responses as resolver_responses
from moto.route53resolver.exceptions import InvalidRequestException
from moto.route53resolver.exceptions import ResourceInUseException as ResolverInUse
from moto.route53resolver.exceptions import ResourceNotFoundException as ResolverNotFound
from moto.server import ThreadedMotoServer
from moto.ssm.exceptions import ValidationException
from moto.ssm.responses import SimpleSystemManagerResponse

import resolver_ipv6
import sharing


def _seconds(name: str) -> float:
    try:
        return float(os.environ.get(name, "0"))
    except ValueError:
        return 0.0


CREATE_SECONDS = _seconds("EMULATOR_EKS_CREATE_SECONDS")
UPDATE_SECONDS = _seconds("EMULATOR_EKS_UPDATE_SECONDS")
RESOLVER_SECONDS = _seconds("EMULATOR_RESOLVER_SECONDS")


# ---------------------------------------------------------------------------
# EKS
# ---------------------------------------------------------------------------
# DescribeCluster (EKS API reference, Cluster and VpcConfigResponse):
# - "endpoint" is https://<32 upper-case hex>.<shard>.<region>.eks.amazonaws.com
#   with no trailing slash, and it is unique per cluster. moto computes one
#   string at import time, so every cluster shares it, and it ends with "/".
# - resourcesVpcConfig carries vpcId and clusterSecurityGroupId (a security
#   group EKS creates in the cluster VPC, tagged aws:eks:cluster-name), and
#   the endpointPublicAccess (default true), endpointPrivateAccess (default
#   false) and publicAccessCidrs (default 0.0.0.0/0) flags. moto echoes the
#   request only.
# - status is CREATING until the control plane is up, then ACTIVE. moto makes
#   clusters ACTIVE at once.
_original_cluster_init = eks_models.Cluster.__init__


def _cluster_init(self: Any, *args: Any, **kwargs: Any) -> None:
    self._region = kwargs["region_name"]
    self._account_id = kwargs["account_id"]
    _original_cluster_init(self, *args, **kwargs)
    shard = secrets.choice(["gr7", "sk1", "yl4"])
    self.endpoint = (
        f"https://{secrets.token_hex(16).upper()}.{shard}."
        f"{self._region}.eks.amazonaws.com"
    )
    self._active_at = time.time() + CREATE_SECONDS
    self._updates: list[dict[str, Any]] = []
    self._updating_until = 0.0
    config = dict(self.resources_vpc_config or {})
    config.setdefault("subnetIds", [])
    config.setdefault("securityGroupIds", [])
    config.setdefault("endpointPublicAccess", True)
    config.setdefault("endpointPrivateAccess", False)
    config.setdefault("publicAccessCidrs", ["0.0.0.0/0"])
    ec2 = ec2_backends[self._account_id][self._region]
    if config["subnetIds"]:
        subnet = ec2.get_subnet(config["subnetIds"][0])
        config["vpcId"] = subnet.vpc_id
        group = ec2.create_security_group(
            name=f"eks-cluster-sg-{self.name}-{secrets.randbelow(10**10):010d}",
            description="EKS created security group applied to ENI that is attached "
            "to EKS Control Plane master nodes, as well as any managed workloads.",
            vpc_id=subnet.vpc_id,
            tags={
                "aws:eks:cluster-name": self.name,
                f"kubernetes.io/cluster/{self.name}": "owned",
            },
        )
        config["clusterSecurityGroupId"] = group.id
    self.resources_vpc_config = config
    network = dict(self.kubernetes_network_config or {})
    network.setdefault("ipFamily", "ipv4")
    self.kubernetes_network_config = network


def _status_get(self: Any) -> str:
    now = time.time()
    if getattr(self, "_deleting", False):
        return "DELETING"
    if now < getattr(self, "_active_at", 0.0):
        return "CREATING"
    if now < getattr(self, "_updating_until", 0.0):
        return "UPDATING"
    return "ACTIVE"


def _status_set(self: Any, value: str) -> None:
    # moto assigns ACTIVE in __init__; the status is derived from time instead.
    pass


def _vpc_config_get(self: Any) -> dict[str, Any]:
    """The settings as shown: those of every update that ended Successful."""
    now = time.time()
    for update in getattr(self, "_updates", []):
        done = update["_outcome"] == "Successful" and now >= update["_done_at"]
        if done and not update.get("_shown"):
            self._vpc_config.update(update["_changes"])
            update["_shown"] = True
    return self._vpc_config


def _vpc_config_set(self: Any, value: dict[str, Any]) -> None:
    self._vpc_config = value


eks_models.Cluster.__init__ = _cluster_init
eks_models.Cluster.status = property(_status_get, _status_set)
eks_models.Cluster.is_active = property(lambda self: _status_get(self) == "ACTIVE")
eks_models.Cluster.resources_vpc_config = property(_vpc_config_get, _vpc_config_set)

# UpdateClusterConfig (EKS API reference): resourcesVpcConfig carries only the
# settings to change; the others keep their values. The call is refused while
# the cluster is not ACTIVE, puts it in UPDATING, and returns an Update object
# {id, status InProgress, type, params, createdAt, errors}. DescribeUpdate and
# ListUpdates report it (InProgress, then Successful, Failed or Cancelled; a
# failed update lists its errors, and the cluster keeps the settings it had).
# moto replaces the whole resourcesVpcConfig, returns the cluster, and has
# neither DescribeUpdate nor ListUpdates. What DescribeCluster shows while an
# update is in progress the reference does not say; the stricter case is
# modelled: the settings the cluster had, until the update ends Successful
# (what it sets is in DescribeUpdate's params from the start). The test
# control ends an update Failed or Cancelled (nothing else can make one fail
# here): its settings are then never shown.
_ACCESS_KEYS = {
    "endpointPublicAccess": "EndpointPublicAccess",
    "endpointPrivateAccess": "EndpointPrivateAccess",
    "publicAccessCidrs": "PublicAccessCidrs",
}
_VPC_KEYS = {"subnetIds": "SubnetIds", "securityGroupIds": "SecurityGroupIds"}


def _update_status(update: dict[str, Any]) -> str:
    return update["_outcome"] if time.time() >= update["_done_at"] else "InProgress"


def _public_update(update: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": update["id"],
        "status": _update_status(update),
        "type": update["type"],
        "params": update["params"],
        "createdAt": update["createdAt"],
        "errors": update["_errors"] if _update_status(update) == "Failed" else [],
    }


def _find_cluster(backend: Any, name: str) -> Any:
    cluster = backend.clusters.get(name)
    if cluster is None:
        raise ResourceNotFoundException(
            clusterName=name,
            nodegroupName=None,
            fargateProfileName=None,
            addonName=None,
            message=f"No cluster found for name: {name}.",
        )
    return cluster


def _update_cluster_config(self: Any) -> ActionResult:
    name = self._get_param("name")
    changes = self._get_param("resourcesVpcConfig") or {}
    cluster = _find_cluster(self.eks_backend, name)
    if _status_get(cluster) != "ACTIVE":
        raise ResourceInUseException(
            clusterName=name,
            nodegroupName=None,
            addonName=None,
            message=f"Cluster is in {_status_get(cluster)} status, "
            "updates are allowed only when it is ACTIVE",
        )
    if not changes:
        raise InvalidParameterException("No changes needed")
    access = {k: v for k, v in changes.items() if k in _ACCESS_KEYS}
    vpc = {k: v for k, v in changes.items() if k in _VPC_KEYS}
    update_type = "EndpointAccessUpdate" if access and not vpc else "VpcConfigUpdate"
    cluster._updating_until = time.time() + UPDATE_SECONDS
    params = []
    for key, value in changes.items():
        label = _ACCESS_KEYS.get(key) or _VPC_KEYS.get(key) or key
        text = value if isinstance(value, str) else str(value).lower()
        if isinstance(value, list):
            text = '["' + '","'.join(value) + '"]'
        params.append({"type": label, "value": text})
    update = {
        "id": str(uuid.uuid4()),
        "type": update_type,
        "params": params,
        "createdAt": time.time(),
        "_done_at": cluster._updating_until,
        "_outcome": "Successful",
        "_errors": [],
        "_changes": changes,
    }
    cluster._updates.append(update)
    return ActionResult({"update": _public_update(update)})


def _describe_update(self: Any) -> ActionResult:
    name = self._get_param("name")
    update_id = self._get_param("updateId")
    cluster = _find_cluster(self.eks_backend, name)
    for update in cluster._updates:
        if update["id"] == update_id:
            return ActionResult({"update": _public_update(update)})
    raise ResourceNotFoundException(
        clusterName=name,
        nodegroupName=None,
        fargateProfileName=None,
        addonName=None,
        message=f"No update found for ID: {update_id}",
    )


def _list_updates(self: Any) -> ActionResult:
    name = self._get_param("name")
    cluster = _find_cluster(self.eks_backend, name)
    return ActionResult({"updateIds": [u["id"] for u in cluster._updates]})


def _end_update(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The test control: end a cluster's update in progress now, Failed or
    Cancelled, with the settings it changed put back as they were."""
    status = request.get("status")
    if status not in ("Failed", "Cancelled"):
        return 400, {"error": f"an update can be ended Failed or Cancelled, not {status}"}
    for account in eks_models.eks_backends.values():
        for backend in account.values():
            cluster = backend.clusters.get(request.get("cluster", ""))
            if cluster is None:
                continue
            for update in cluster._updates:
                if _update_status(update) != "InProgress":
                    continue
                now = time.time()
                update["_outcome"] = status
                update["_done_at"] = now
                if status == "Failed":
                    update["_errors"] = [
                        {
                            "errorCode": "Unknown",
                            "errorMessage": "the emulator's test control failed it",
                            "resourceIds": [cluster.name],
                        }
                    ]
                cluster._updating_until = now
                return 200, {"update": update["id"], "status": status}
            return 404, {"error": f"cluster {cluster.name} has no update in progress"}
    return 404, {"error": f"no cluster {request.get('cluster')}"}


eks_responses.EKSResponse.update_cluster_config = _update_cluster_config
eks_responses.EKSResponse.describe_update = _describe_update
eks_responses.EKSResponse.list_updates = _list_updates
eks_urls.url_paths["{0}/clusters/(?P<name>[^/]+)/updates$"] = eks_urls.response.dispatch
eks_urls.url_paths["{0}/clusters/(?P<name>[^/]+)/updates/(?P<updateId>[^/]+)$"] = (
    eks_urls.response.dispatch
)


# ---------------------------------------------------------------------------
# EC2
# ---------------------------------------------------------------------------
# AuthorizeSecurityGroupIngress (EC2 API reference) returns every rule it
# added in SecurityGroupRules. moto returns only the rules of the last
# IpPermissions entry (all of them are stored).
def _authorize_security_group_ingress(self: Any) -> ActionResult:
    self.error_on_dryrun()
    added: list[Any] = []
    for kwargs in self._process_rules_from_querystring():
        rules, _ = self.ec2_backend.authorize_security_group_ingress(**kwargs)
        added.extend(rules)
    return ActionResult({"Return": True, "SecurityGroupRules": added})


SecurityGroups.authorize_security_group_ingress = _authorize_security_group_ingress


# DescribeSubnets (EC2 API reference): each SubnetIpv6CidrBlockAssociation
# has Ipv6CidrBlockState, a SubnetCidrBlockState {State, StatusMessage},
# State being "associated" for a block in use. moto nests its own state
# dict inside it ({"state": {"State": "associated"}}), so no client reads
# a subnet's IPv6 block as associated.
def _subnet_ipv6_associations(self: Any) -> list[dict[str, Any]]:
    return [
        {
            "ipv6CidrBlock": association["ipv6CidrBlock"],
            "associationId": association["associationId"],
            "ipv6CidrBlockState": {"state": association["ipv6CidrBlockState"]["State"]},
        }
        for association in self.ipv6_cidr_block_associations.values()
        if association["ipv6CidrBlockState"]["State"] == "associated"
    ]


Subnet.ipv6_cidr_block_association_set = property(_subnet_ipv6_associations)

# DeleteSecurityGroup (EC2 API reference): "If you attempt to delete a
# security group that is associated with an instance or network interface
# ... the operation fails with DependencyViolation." moto deletes it anyway.
# (A Resolver endpoint's network interfaces stay until its deletion ends.)
_original_delete_security_group = SecurityGroupBackend.delete_security_group


def _delete_security_group(self: Any, name: str | None = None, group_id: str | None = None) -> None:
    target = group_id
    if target is None and name is not None:
        group = self.get_security_group_by_name_or_id(name)
        target = group.id if group else None
    for eni in getattr(self, "enis", {}).values():
        if any(g.id == target for g in eni.group_set):
            raise DependencyViolationError(f"resource {target} has a dependent object")
    return _original_delete_security_group(self, name=name, group_id=group_id)


SecurityGroupBackend.delete_security_group = _delete_security_group


# ---------------------------------------------------------------------------
# Route 53 Resolver
# ---------------------------------------------------------------------------
# UpdateResolverRule (Route 53 Resolver API reference) changes a rule's Name,
# TargetIps and ResolverEndpointId in place. moto does not implement it.
def _update_resolver_rule(self: Any) -> str:
    import json

    rule_id = self._get_param("ResolverRuleId")
    config = self._get_param("Config") or {}
    backend = self.route53resolver_backend
    rule = backend.get_resolver_rule(rule_id)
    if "Name" in config:
        rule.name = config["Name"]
    if "TargetIps" in config:
        rule.target_ips = config["TargetIps"]
    if "ResolverEndpointId" in config:
        backend._validate_resolver_endpoint_id(config["ResolverEndpointId"])
        rule.resolver_endpoint_id = config["ResolverEndpointId"]
    rule.modification_time = time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())
    return json.dumps({"ResolverRule": rule.description()})


resolver_responses.Route53ResolverResponse.update_resolver_rule = _update_resolver_rule

# AssociateResolverRule (API reference, and error RSLVR-00802): a VPC can have
# only one rule per domain name; a second rule for the same name fails with
# InvalidRequestException "[RSLVR-00802] Cannot associate rules with same
# domain name with same VPC". moto checks only the same rule id.
_original_associate = resolver_models.Route53ResolverBackend.associate_resolver_rule


def _associate_resolver_rule(self: Any, resolver_rule_id: str, name: str, vpc_id: str) -> Any:
    rule = self.resolver_rules.get(resolver_rule_id)
    if rule is not None:
        domain = rule.domain_name.rstrip(".").lower()
        for association in self.resolver_rule_associations.values():
            other = self.resolver_rules.get(association.resolver_rule_id)
            if (
                association.vpc_id == vpc_id
                and other is not None
                and other.domain_name.rstrip(".").lower() == domain
            ):
                raise InvalidRequestException(
                    "[RSLVR-00802] Cannot associate rules with same domain name with "
                    f"same VPC. Conflict with resolver rule '{other.id}'"
                )
    return _original_associate(self, resolver_rule_id, name, vpc_id)


resolver_models.Route53ResolverBackend.associate_resolver_rule = _associate_resolver_rule

# ListResolverRuleAssociations lists every association; Name is optional in
# AssociateResolverRule. moto sorts by name and fails (HTTP 500) when some
# associations have a name and some do not.
_original_list_associations = resolver_models.Route53ResolverBackend.list_resolver_rule_associations


def _list_resolver_rule_associations(self: Any, *args: Any, **kwargs: Any) -> Any:
    for association in self.resolver_rule_associations.values():
        if association.name is None:
            association.name = ""
    return _original_list_associations(self, *args, **kwargs)


resolver_models.Route53ResolverBackend.list_resolver_rule_associations = (
    _list_resolver_rule_associations
)


# Route 53 Resolver is asynchronous (API reference: ResolverEndpoint.Status,
# IpAddressResponse.Status, ResolverRule.Status,
# ResolverRuleAssociation.Status); moto makes every status final at once and
# deletes at once. With EMULATOR_RESOLVER_SECONDS, each change takes that
# long, as on AWS:
# - CreateResolverEndpoint returns CREATING, its IPs CREATING; then
#   OPERATIONAL and ATTACHED.
# - Associate/DisassociateResolverEndpointIpAddress leave the endpoint
#   UPDATING (the new IP CREATING, the removed one listed DELETING); AWS
#   changes IPs only between changes (Terraform's provider waits for
#   OPERATIONAL after each, internal/service/route53resolver/endpoint.go),
#   and never removes the only attached IP ("[RSLVR-00506] Can't remove the
#   only attached IP address from resolver endpoint.").
# - DeleteResolverEndpoint returns DELETING; the endpoint and its network
#   interfaces stay until it is gone. While any rule (DELETING ones too)
#   uses it, it fails: "[RSLVR-00600] Cannot delete resolver endpoint unless
#   its related resolver rules are deleted".
# - DeleteResolverRule returns DELETING (AWS CLI reference,
#   delete-resolver-rule), listed until gone; while any association
#   (DELETING ones too) remains, it fails with ResourceInUseException.
# - AssociateResolverRule returns CREATING, then COMPLETE;
#   DisassociateResolverRule leaves the association DELETING until gone.
# Endpoints are ACTION_NEEDED while any IP is failed (set through the test
# control), and OPERATIONAL again once it is removed.
_due: list[tuple[float, int, Callable[[], None]]] = []
_due_order = itertools.count()
_SETTLED_IP = "ATTACHED"
_FAILED_IP = {
    "FAILED_CREATION",
    "FAILED_RESOURCE_GONE",
    "UPDATE_FAILED",
    "ISOLATED",
    "DELETE_FAILED_FAS_EXPIRED",
}


def _after(change: Callable[[], None]) -> None:
    """Make `change` once EMULATOR_RESOLVER_SECONDS have passed (at once when 0)."""
    if RESOLVER_SECONDS <= 0:
        change()
        return
    heapq.heappush(_due, (time.time() + RESOLVER_SECONDS, next(_due_order), change))


def _advance() -> None:
    """Make every change whose time has come (before each request)."""
    now = time.time()
    while _due and _due[0][0] <= now:
        _, _, change = heapq.heappop(_due)
        change()


def _settled_status(endpoint: Any) -> str:
    failed = any(s in _FAILED_IP for s in endpoint._ip_status.values())
    return "ACTION_NEEDED" if failed else "OPERATIONAL"


def _finish_change(endpoint: Any) -> None:
    endpoint._changes -= 1
    if endpoint._changes <= 0 and endpoint.status in ("CREATING", "UPDATING"):
        endpoint.status = _settled_status(endpoint)


_original_endpoint_init = resolver_models.ResolverEndpoint.__init__


def _endpoint_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _original_endpoint_init(self, *args, **kwargs)
    self._ip_status = {entry["Ip"]: "CREATING" for entry in self.ip_addresses}
    self._leaving: dict[str, tuple[str, str]] = {}
    self._changes = 1
    self.status = "CREATING"

    def ready() -> None:
        for ip, status in self._ip_status.items():
            if status == "CREATING":
                self._ip_status[ip] = _SETTLED_IP
        _finish_change(self)

    _after(ready)


def _ip_descriptions(self: Any) -> list[dict[str, str]]:
    listed = _original_ip_descriptions(self)
    for entry in listed:
        status = self._ip_status.get(entry["Ip"], _SETTLED_IP)
        entry["Status"] = status
        if status != _SETTLED_IP:
            entry["StatusMessage"] = f"This IP address is {status}."
    for ip, (subnet, ip_id) in self._leaving.items():
        listed.append(
            {
                "IpId": ip_id,
                "SubnetId": subnet,
                "Ip": ip,
                "Status": "DELETING",
                "StatusMessage": "This IP address is being deleted.",
                "CreationTime": self.creation_time,
                "ModificationTime": self.modification_time,
            }
        )
    return listed


_original_ip_descriptions = resolver_models.ResolverEndpoint.ip_descriptions
resolver_models.ResolverEndpoint.__init__ = _endpoint_init
resolver_models.ResolverEndpoint.ip_descriptions = _ip_descriptions


def _takes_ip_changes(endpoint: Any) -> None:
    if endpoint.status not in ("OPERATIONAL", "ACTION_NEEDED"):
        raise InvalidRequestException(
            f"Resolver endpoint {endpoint.id} is {endpoint.status}: its IP addresses can be "
            "changed when it is OPERATIONAL"
        )


_original_associate_ip = resolver_models.Route53ResolverBackend.associate_resolver_endpoint_ip_address


def _associate_endpoint_ip(self: Any, resolver_endpoint_id: str, value: dict[str, Any]) -> Any:
    self._validate_resolver_endpoint_id(resolver_endpoint_id)
    endpoint = self.resolver_endpoints[resolver_endpoint_id]
    _takes_ip_changes(endpoint)
    result = _original_associate_ip(self, resolver_endpoint_id, value)
    ip = value["Ip"]
    endpoint._ip_status[ip] = "CREATING"
    endpoint._changes += 1
    endpoint.status = "UPDATING"

    def attached() -> None:
        if endpoint._ip_status.get(ip) == "CREATING":
            endpoint._ip_status[ip] = _SETTLED_IP
        _finish_change(endpoint)

    _after(attached)
    return result


_original_disassociate_ip = (
    resolver_models.Route53ResolverBackend.disassociate_resolver_endpoint_ip_address
)


def _disassociate_endpoint_ip(
    self: Any, resolver_endpoint_id: str, value: dict[str, Any]
) -> Any:
    self._validate_resolver_endpoint_id(resolver_endpoint_id)
    endpoint = self.resolver_endpoints[resolver_endpoint_id]
    _takes_ip_changes(endpoint)
    ip = value.get("Ip")
    subnet = value.get("SubnetId")
    ip_id = value.get("IpId")
    for sub, addresses in endpoint.subnets.items():
        for address, rni in addresses.items():
            if address == ip or rni == ip_id:
                ip, subnet, ip_id = address, sub, rni
    attached_left = [
        other
        for other, status in endpoint._ip_status.items()
        if other != ip and status == _SETTLED_IP
    ]
    if ip in endpoint._ip_status and not attached_left:
        raise InvalidRequestException(
            "[RSLVR-00506] Can't remove the only attached IP address from resolver endpoint."
        )
    result = _original_disassociate_ip(self, resolver_endpoint_id, value)
    endpoint._ip_status.pop(ip, None)
    if RESOLVER_SECONDS > 0 and ip:
        endpoint._leaving[ip] = (subnet or "", ip_id or "")
    endpoint._changes += 1
    endpoint.status = "UPDATING"

    def gone() -> None:
        endpoint._leaving.pop(ip, None)
        _finish_change(endpoint)

    _after(gone)
    return result


resolver_models.Route53ResolverBackend.associate_resolver_endpoint_ip_address = (
    _associate_endpoint_ip
)
resolver_models.Route53ResolverBackend.disassociate_resolver_endpoint_ip_address = (
    _disassociate_endpoint_ip
)


def _delete_resolver_endpoint(self: Any, resolver_endpoint_id: str) -> Any:
    self._validate_resolver_endpoint_id(resolver_endpoint_id)
    rules = [
        r.id for r in self.resolver_rules.values() if r.resolver_endpoint_id == resolver_endpoint_id
    ]
    if rules:
        raise InvalidRequestException(
            "[RSLVR-00600] Cannot delete resolver endpoint unless its related resolver rules "
            f"are deleted. The following rules still exist for this resolver endpoint: "
            f"{','.join(rules)}"
        )
    endpoint = self.resolver_endpoints[resolver_endpoint_id]
    if endpoint.status == "DELETING":
        return endpoint
    endpoint.status = "DELETING"
    endpoint.status_message = endpoint.status_message.replace("Successfully created", "Deleting")

    def gone() -> None:
        if self.resolver_endpoints.pop(resolver_endpoint_id, None) is not None:
            endpoint.delete_eni()

    _after(gone)
    return endpoint


resolver_models.Route53ResolverBackend.delete_resolver_endpoint = _delete_resolver_endpoint


def _delete_resolver_rule(self: Any, resolver_rule_id: str) -> Any:
    self._validate_resolver_rule_id(resolver_rule_id)
    if any(
        a.resolver_rule_id == resolver_rule_id for a in self.resolver_rule_associations.values()
    ):
        raise ResolverInUse("Please disassociate this resolver rule from VPC first before deleting")
    rule = self.resolver_rules[resolver_rule_id]
    if rule.status == "DELETING":
        return rule
    rule.status = "DELETING"
    rule.status_message = rule.status_message.replace("Successfully created", "Deleting")
    _after(lambda: self.resolver_rules.pop(resolver_rule_id, None))
    return rule


resolver_models.Route53ResolverBackend.delete_resolver_rule = _delete_resolver_rule


def _associated(self: Any, resolver_rule_id: str, name: str, vpc_id: str) -> Any:
    association = _associate_resolver_rule(self, resolver_rule_id, name, vpc_id)
    if RESOLVER_SECONDS > 0:
        association.status = "CREATING"

        def complete() -> None:
            if association.status == "CREATING":
                association.status = "COMPLETE"

        _after(complete)
    return association


resolver_models.Route53ResolverBackend.associate_resolver_rule = _associated


def _disassociate_resolver_rule(self: Any, resolver_rule_id: str, vpc_id: str) -> Any:
    if resolver_rule_id not in self.resolver_rules:
        raise ResolverNotFound(f"Resolver rule with ID '{resolver_rule_id}' does not exist")
    for association in list(self.resolver_rule_associations.values()):
        if (
            association.resolver_rule_id == resolver_rule_id
            and association.vpc_id == vpc_id
            and association.status != "DELETING"
        ):
            break
    else:
        raise ResolverNotFound(
            f"Resolver Rule Association between Resolver Rule '{resolver_rule_id}' and VPC "
            f"'{vpc_id}' does not exist"
        )
    association.status = "DELETING"
    association.status_message = "Deleting Association"
    _after(lambda: self.resolver_rule_associations.pop(association.id, None))
    return association


resolver_models.Route53ResolverBackend.disassociate_resolver_rule = _disassociate_resolver_rule


def _control(body: bytes) -> tuple[int, dict[str, Any]]:
    """The test control: make a resource's status what AWS would report."""
    request = json.loads(body or b"{}")
    status = request.get("status", "")
    for account in resolver_models.route53resolver_backends.values():
        for backend in account.values():
            endpoint = backend.resolver_endpoints.get(request.get("endpoint", ""))
            if endpoint is not None and "ip" in request:
                if request["ip"] not in endpoint._ip_status:
                    return 404, {"error": f"no IP {request['ip']} on {endpoint.id}"}
                endpoint._ip_status[request["ip"]] = status
                if endpoint.status in ("OPERATIONAL", "ACTION_NEEDED"):
                    endpoint.status = _settled_status(endpoint)
                return 200, {"endpoint": endpoint.id, "status": endpoint.status}
            if endpoint is not None:
                endpoint.status = status
                return 200, {"endpoint": endpoint.id, "status": endpoint.status}
            for association in backend.resolver_rule_associations.values():
                if (
                    association.resolver_rule_id == request.get("rule")
                    and association.vpc_id == request.get("vpc")
                ):
                    association.status = status
                    return 200, {"association": association.id, "status": status}
    return 404, {"error": f"nothing matches {request}"}


# ---------------------------------------------------------------------------
# SSM
# ---------------------------------------------------------------------------
# DescribeParameters (Systems Manager API reference): MaxResults, 1 to 50, is
# the most items a page returns. moto ignores it and returns pages of 10, so
# a caller asking for 50 made five times the calls it makes on AWS. Without
# MaxResults, pages stay at moto's 10.
def _describe_parameters(self: Any) -> ActionResult:
    page_size = self._get_param("MaxResults") or 10
    if not 1 <= int(page_size) <= 50:
        raise ValidationException(
            f"1 validation error detected: Value '{page_size}' at 'maxResults' failed to "
            "satisfy constraint: Member must have value less than or equal to 50"
        )
    page_size = int(page_size)
    filters = self._get_param("Filters")
    parameter_filters = self._get_param("ParameterFilters")
    token = self._get_param("NextToken")
    start = int(token.strip()) if isinstance(token, str) and token.strip() else 0
    result = self.ssm_backend.describe_parameters(filters, parameter_filters)
    page = result[start : start + page_size]
    response: dict[str, Any] = {
        "Parameters": [p.describe_response_object(False) for p in page]
    }
    if start + page_size < len(result):
        response["NextToken"] = str(start + page_size)
    return ActionResult(response)


SimpleSystemManagerResponse.describe_parameters = _describe_parameters


# ---------------------------------------------------------------------------
# EventBridge
# ---------------------------------------------------------------------------
# Not a difference from AWS: a record of what PutEvents accepted, which the
# test control GET /_emulator/events lists (AWS keeps nothing a rule does
# not take either; a test would otherwise need a rule, a queue and a client).
_events_seen: list[dict[str, Any]] = []
_original_put_events = events_models.EventsBackend.put_events


def _recorded_put_events(self: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    entries = _original_put_events(self, events)
    for event, entry in zip(events, entries):
        if "EventId" in entry:
            _events_seen.append(
                {
                    "account": self.account_id,
                    "region": self.region_name,
                    "source": event.get("Source"),
                    "detail-type": event.get("DetailType"),
                    "bus": event.get("EventBusName") or "default",
                    "detail": json.loads(event["Detail"]),
                }
            )
    return entries


events_models.EventsBackend.put_events = _recorded_put_events


# ---------------------------------------------------------------------------
# Every service
# ---------------------------------------------------------------------------
# Each AWS API request is atomic: two CreateResolverRule calls with the same
# CreatorRequestId make one rule, whatever their timing. moto's backends are
# not thread-safe and its threaded server lets such checks race, so requests
# are served one at a time.
_request_lock = threading.Lock()
_original_call = werkzeug_app.DomainDispatcherApplication.__call__


def _serialized_call(self: Any, environ: Any, start_response: Any) -> Any:
    with _request_lock:
        path = environ.get("PATH_INFO", "")
        if path == "/moto-api/reset":
            _due.clear()
            _events_seen.clear()
            sharing.reset()
        _advance()
        if path == "/_emulator/events":
            body = json.dumps(_events_seen).encode()
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        if path in ("/_emulator/resolver", "/_emulator/eks", "/_emulator/sts"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            if path == "/_emulator/eks":
                code, answer = _end_update(json.loads(body or b"{}"))
            elif path == "/_emulator/sts":
                code, answer = sharing.control(json.loads(body or b"{}"))
            else:
                code, answer = _control(body)
            reason = {200: "OK", 400: "Bad Request"}.get(code, "Not Found")
            start_response(
                f"{code} {reason}",
                [("Content-Type", "application/json")],
            )
            return [json.dumps(answer).encode()]
        return list(_original_call(self, environ, start_response))


werkzeug_app.DomainDispatcherApplication.__call__ = _serialized_call


# IPv6 and dual-stack Resolver endpoints and targets (its own module, which
# cites the API reference), on top of the timing above.
resolver_ipv6.install(_after, _finish_change, _takes_ip_changes)

# Several accounts: RAM shares of Resolver rules, invitations, STS's limits
# (its own module, which cites the references), on top of the above.
sharing.install()


def main() -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    print(f"READY {port}", flush=True)
    # Run until the parent closes our standard input (or exits).
    try:
        while sys.stdin.read(1024):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        stopper = threading.Thread(target=server.stop, daemon=True)
        stopper.start()
        stopper.join(timeout=2)


if __name__ == "__main__":
    main()
