"""Route 53 Resolver's IPv6 and dual-stack endpoints, which moto ignores.

The Route 53 Resolver API reference documents, and moto implements none of:
- CreateResolverEndpoint's ResolverEndpointType (IPV4, the default, IPV6 or
  DUALSTACK: "This endpoint type is applied to all IP addresses"), and an
  IpAddressRequest's Ipv6; a dual-stack endpoint's IP addresses are in
  subnets with an IPv6 block, and an IPv6 address not given is chosen from
  the subnet.
- ResolverEndpoint.ResolverEndpointType, and IpAddressResponse.Ipv6 in
  ListResolverEndpointIpAddresses.
- UpdateResolverEndpoint's ResolverEndpointType and UpdateIpAddresses
  (IpId, Ipv6): "You can only update between IPV4 and DUALSTACK, IPV6
  endpoint type can't be updated to other type"; "If you don't specify an
  IPv6 address, one will be automatically chosen from your subnet". The
  endpoint is UPDATING while the change is made. Its Name is optional too
  (moto sets the name to None when it is not given).
- AssociateResolverEndpointIpAddress's IpAddressUpdate.Ipv6, for a
  dual-stack endpoint.
- TargetAddress.Ipv6 in a rule's TargetIps (moto requires Ip in every
  target and refuses anything but IPv4).

IPV6-only endpoints are refused here with a message that says so: the
product makes IPV4 and DUALSTACK endpoints, and moto's endpoint model gives
every IP address an IPv4 address.

Where the reference leaves a choice open, the emulator takes the stricter
one, so that the product may rely on nothing it does not say:
- An IPv6 address not asked for is "automatically chosen from your subnet",
  in no documented order: it is chosen at random (seeded by
  EMULATOR_IPV6_SEED, so that a run repeats), never the lowest free one, so
  that only asking for an address keeps it.
- Whether an endpoint whose type changes lists its new IPv6 addresses (or
  still lists the ones it loses) before the change ends is not documented:
  they are listed when UPDATING ends, not before.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
from typing import Any, Callable

from moto.ec2.models import ec2_backends
from moto.route53resolver import models as resolver_models
from moto.route53resolver import responses as resolver_responses
from moto.route53resolver.exceptions import InvalidParameterException, InvalidRequestException

TYPES = ("IPV4", "IPV6", "DUALSTACK")

# The endpoint type of the CreateResolverEndpoint being served (requests are
# served one at a time), for the backend's create to record.
_creating: dict[str, Any] = {}

# Where IPv6 addresses not asked for come from.
_choices = random.Random(int(os.environ.get("EMULATOR_IPV6_SEED", "6")))


def _subnet(endpoint_or_backend: Any, subnet_id: str) -> Any:
    ec2 = ec2_backends[endpoint_or_backend.account_id][endpoint_or_backend.region_name]
    return ec2.describe_subnets(subnet_ids=[subnet_id])[0]


def _ipv6_block(subnet: Any) -> ipaddress.IPv6Network | None:
    for association in subnet.ipv6_cidr_block_associations.values():
        if association.get("ipv6CidrBlockState", {}).get("State") == "associated":
            return ipaddress.IPv6Network(association["ipv6CidrBlock"])
    return None


def _used_ipv6(backend: Any) -> set[str]:
    used: set[str] = set()
    for endpoint in backend.resolver_endpoints.values():
        used.update(getattr(endpoint, "_ipv6", {}).values())
        used.update(getattr(endpoint, "_ipv6_coming", {}).values())
    return used


def _ipv6_for(backend: Any, subnet_id: str, wanted: str | None) -> str:
    """The IPv6 address an IP of a dual-stack endpoint gets in `subnet_id`."""
    block = _ipv6_block(_subnet(backend, subnet_id))
    if block is None:
        raise InvalidRequestException(
            f"Subnet '{subnet_id}' has no IPv6 CIDR block: a DUALSTACK Resolver endpoint needs "
            "subnets with both IPv4 and IPv6 blocks"
        )
    used = _used_ipv6(backend)
    if wanted:
        try:
            address = ipaddress.IPv6Address(wanted)
        except ValueError as exc:
            raise InvalidParameterException(f"Invalid IPv6 address: '{wanted}'") from exc
        if address not in block:
            raise InvalidRequestException(
                f"IPv6 address '{wanted}' is not in subnet '{subnet_id}' CIDR range {block}"
            )
        if str(address) in used:
            raise InvalidRequestException(f"The IPv6 address '{wanted}' is already in use")
        return str(address)
    # Anywhere in the block but the first few addresses, which EC2 keeps.
    for _ in range(64):
        candidate = str(block[_choices.randrange(16, block.num_addresses)])
        if candidate not in used:
            return candidate
    raise InvalidRequestException(f"Subnet '{subnet_id}' has no free IPv6 address")


def install(after: Callable[[Callable[[], None]], None], finish_change: Callable[[Any], None],
            takes_ip_changes: Callable[[Any], None]) -> None:
    """Patch moto with the launcher's timing helpers: `after` runs a change
    once a Resolver change's time has passed; `finish_change` settles an
    endpoint after one; `takes_ip_changes` refuses a change while the
    endpoint is not OPERATIONAL."""
    backend_class = resolver_models.Route53ResolverBackend
    endpoint_class = resolver_models.ResolverEndpoint
    response_class = resolver_responses.Route53ResolverResponse

    original_create_response = response_class.create_resolver_endpoint

    def create_response(self: Any) -> str:
        kind = self._get_param("ResolverEndpointType") or "IPV4"
        if kind not in TYPES:
            raise InvalidParameterException(
                f"Value '{kind}' at 'resolverEndpointType' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(TYPES)}]"
            )
        if kind == "IPV6":
            raise InvalidRequestException(
                "IPV6-only Resolver endpoints are not emulated here (IPV4 and DUALSTACK are)"
            )
        _creating["type"] = kind
        try:
            return original_create_response(self)
        finally:
            _creating.clear()

    original_create = backend_class.create_resolver_endpoint

    def create(self: Any, **kwargs: Any) -> Any:
        # moto's response calls the backend with keyword arguments only.
        kind = _creating.get("type", "IPV4")
        ip_addresses = kwargs["ip_addresses"]
        if kind == "DUALSTACK":
            # Checked before anything is made.
            for entry in ip_addresses:
                _ipv6_for(self, entry["SubnetId"], entry.get("Ipv6"))
        endpoint = original_create(self, **kwargs)
        endpoint._type = kind
        endpoint._ipv6 = {}
        if kind == "DUALSTACK":
            for entry in ip_addresses:
                endpoint._ipv6[entry["Ip"]] = _ipv6_for(self, entry["SubnetId"], entry.get("Ipv6"))
        return endpoint

    original_description = endpoint_class.description

    def description(self: Any) -> dict[str, Any]:
        described = original_description(self)
        described["ResolverEndpointType"] = getattr(self, "_type", "IPV4")
        return described

    original_ip_descriptions = endpoint_class.ip_descriptions

    def ip_descriptions(self: Any) -> list[dict[str, Any]]:
        listed = original_ip_descriptions(self)
        for entry in listed:
            ipv6 = getattr(self, "_ipv6", {}).get(entry.get("Ip"))
            if ipv6:
                entry["Ipv6"] = ipv6
        return listed

    original_update_response = response_class.update_resolver_endpoint

    def update_response(self: Any) -> str:
        endpoint_id = self._get_param("ResolverEndpointId")
        kind = self._get_param("ResolverEndpointType")
        updates = self._get_param("UpdateIpAddresses") or []
        backend = self.route53resolver_backend
        if kind is not None:
            if kind not in TYPES:
                raise InvalidParameterException(
                    f"Value '{kind}' at 'resolverEndpointType' failed to satisfy constraint: "
                    f"Member must satisfy enum value set: [{', '.join(TYPES)}]"
                )
            backend._validate_resolver_endpoint_id(endpoint_id)
            endpoint = backend.resolver_endpoints[endpoint_id]
            change_type(backend, endpoint, kind, updates)
        if self._get_param("Name") is None:
            # Name is optional: an update without it keeps the endpoint's
            # name (moto sets it to None, and then cannot sort endpoints).
            backend._validate_resolver_endpoint_id(endpoint_id)
            endpoint = backend.resolver_endpoints[endpoint_id]
            return json.dumps({"ResolverEndpoint": endpoint.description()})
        return original_update_response(self)

    def change_type(backend: Any, endpoint: Any, kind: str, updates: list[dict[str, Any]]) -> None:
        current = getattr(endpoint, "_type", "IPV4")
        if kind == current:
            return
        if kind == "IPV6" or current == "IPV6":
            raise InvalidRequestException(
                "You can only update between IPV4 and DUALSTACK, IPV6 endpoint type can't be "
                "updated to other type"
            )
        takes_ip_changes(endpoint)
        chosen: dict[str, str] = {}
        if kind == "DUALSTACK":
            by_id = {update["IpId"]: update.get("Ipv6") for update in updates}
            for subnet_id, addresses in endpoint.subnets.items():
                for ip, ip_id in addresses.items():
                    chosen[ip] = _ipv6_for(backend, subnet_id, by_id.get(ip_id))
        # The addresses it gains are held (no one else gets them), and
        # listed, like the loss of the old ones, once the change ends.
        endpoint._ipv6_coming = chosen
        endpoint._type = kind
        endpoint._changes += 1
        endpoint.status = "UPDATING"

        def done() -> None:
            endpoint._ipv6 = endpoint._ipv6_coming
            endpoint._ipv6_coming = {}
            finish_change(endpoint)

        after(done)

    original_associate_ip = backend_class.associate_resolver_endpoint_ip_address

    def associate_ip(self: Any, resolver_endpoint_id: str, value: dict[str, Any]) -> Any:
        self._validate_resolver_endpoint_id(resolver_endpoint_id)
        endpoint = self.resolver_endpoints[resolver_endpoint_id]
        dual = getattr(endpoint, "_type", "IPV4") == "DUALSTACK"
        if dual:
            _ipv6_for(self, value["SubnetId"], value.get("Ipv6"))
        result = original_associate_ip(self, resolver_endpoint_id, value)
        if dual:
            endpoint._ipv6[value["Ip"]] = _ipv6_for(self, value["SubnetId"], value.get("Ipv6"))
        return result

    original_disassociate_ip = backend_class.disassociate_resolver_endpoint_ip_address

    def disassociate_ip(self: Any, resolver_endpoint_id: str, value: dict[str, Any]) -> Any:
        result = original_disassociate_ip(self, resolver_endpoint_id, value)
        endpoint = self.resolver_endpoints[resolver_endpoint_id]
        listed = {ip for addresses in endpoint.subnets.values() for ip in addresses}
        endpoint._ipv6 = {
            ip: v6 for ip, v6 in getattr(endpoint, "_ipv6", {}).items() if ip in listed
        }
        return result

    original_create_rule = backend_class.create_resolver_rule

    def create_rule(self: Any, *args: Any, **kwargs: Any) -> Any:
        target_ips = kwargs.get("target_ips") or []
        for target in target_ips:
            check_target(target)
        # moto checks Ip in every target: give it the IPv4 ones, keep all.
        kwargs["target_ips"] = [t for t in target_ips if t.get("Ip")]
        rule = original_create_rule(self, *args, **kwargs)
        rule.target_ips = target_ips
        return rule

    def check_target(target: dict[str, Any]) -> None:
        if not target.get("Ip") and not target.get("Ipv6"):
            raise InvalidParameterException("A target address needs an Ip or an Ipv6")
        if target.get("Ipv6"):
            try:
                ipaddress.IPv6Address(target["Ipv6"])
            except ValueError as exc:
                raise InvalidParameterException(
                    f"Invalid IPv6 address: '{target['Ipv6']}'"
                ) from exc

    response_class.create_resolver_endpoint = create_response
    backend_class.create_resolver_endpoint = create
    endpoint_class.description = description
    endpoint_class.ip_descriptions = ip_descriptions
    response_class.update_resolver_endpoint = update_response
    backend_class.associate_resolver_endpoint_ip_address = associate_ip
    backend_class.disassociate_resolver_endpoint_ip_address = disassociate_ip
    backend_class.create_resolver_rule = create_rule
