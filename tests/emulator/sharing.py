"""Several accounts: AWS RAM shares of Route 53 Resolver rules, and STS.

moto serves several accounts already: credentials that STS AssumeRole gave
for a role of account X act in X (the role need not exist). What it lacks,
each modelled here as the references document it:

RAM (AWS RAM API reference; User Guide, "Sharing your AWS resources"):
- AssociateResourceShare and DisassociateResourceShare (resources and
  principals added to, or taken from, a share), GetResourceShareInvitations
  and AcceptResourceShareInvitation.
- CreateResourceShare's tags and clientToken ("Specifies a unique,
  case-sensitive identifier that you provide to ensure the idempotency of
  the request": the same token makes no second share), and
  GetResourceShares' filters (name, resourceShareStatus, resourceShareArns,
  tagFilters) and the tags in its answer: moto keeps no tags, ignores the
  token and every filter, and lists deleted shares.
- UpdateResourceShare changes what it is given: a name left out stays
  ("name: ... Specifies the name of the resource share", optional); moto
  blanks it, and allowExternalPrincipals left out stays too (moto sets
  true).
- Who may use a shared resource: a principal of an ACTIVE share that holds
  it. Inside the owner's Organization with sharing enabled
  (EnableSharingWithAwsOrganization, from the management account) the
  principal has access at once; any other account gets an invitation
  (PENDING) and has access once it accepts it. allowExternalPrincipals false
  refuses accounts outside the Organization. moto records neither the
  invitations nor whether sharing was enabled.

Route 53 Resolver (Developer Guide, "Sharing forwarding rules with other AWS
accounts"):
- A rule shared with an account is listed to it (ListResolverRules,
  GetResolverRule) with ShareStatus SHARED_WITH_ME, and it associates the
  rule with its own VPCs as with its own rules; the owner's shared rules are
  SHARED_BY_ME, the others NOT_SHARED (moto says NOT_SHARED always). A rule
  not shared with the caller, or shared by an invitation not accepted yet,
  is not found. The consumer cannot change or delete it. The owner's
  DeleteResolverRule waits for the owner's own associations only.
- PutResolverRulePolicy and GetResolverRulePolicy (RAM calls the first when
  a rule is shared): kept, as AWS keeps the policy.

STS (API reference, AssumeRole): a session of a role assumed with the
credentials of another assumed role (role chaining) lasts at most an hour:
asking for more fails with ValidationError.

Test control (not an AWS API): POST /_emulator/sts with {"deny": [ROLE_ARN,
...]} makes AssumeRole of those roles fail with AccessDenied, as when a
role's trust policy does not name the caller (nothing else makes it fail
here).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.core.responses import BaseResponse
from moto.core.utils import unix_time, utcnow
from moto.organizations.models import organizations_backends
from moto.ram import models as ram_models
from moto.ram import responses as ram_responses
from moto.ram import urls as ram_urls
from moto.ram.exceptions import InvalidParameterException, UnknownResourceException
from moto.route53resolver import models as resolver_models
from moto.route53resolver import responses as resolver_responses
from moto.route53resolver.exceptions import ResourceNotFoundException
from moto.sts import responses as sts_responses
from moto.sts.exceptions import STSClientError, STSValidationError

class OperationNotPermittedException(JsonRESTError):
    """RAM's, with the message of the case at hand (moto's has one fixed)."""

    code = 400

    def __init__(self, message: str):
        super().__init__("OperationNotPermittedException", message)


# Invitations by ARN; the management accounts whose Organization shares.
_invitations: dict[str, dict[str, Any]] = {}
_sharing_enabled: set[str] = set()
# Roles whose AssumeRole is refused (the test control).
_denied_roles: set[str] = set()
# Resolver rule policies by rule ARN.
_rule_policies: dict[str, str] = {}


def reset() -> None:
    _invitations.clear()
    _sharing_enabled.clear()
    _denied_roles.clear()
    _rule_policies.clear()


def control(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /_emulator/sts."""
    denied = request.get("deny")
    if not isinstance(denied, list):
        return 400, {"error": 'expected {"deny": [ROLE_ARN, ...]}'}
    _denied_roles.update(str(arn) for arn in denied)
    return 200, {"deny": sorted(_denied_roles)}


# ---------------------------------------------------------------------------
# Who is in whose Organization
# ---------------------------------------------------------------------------
def _management_of(account: str) -> str | None:
    """The management account of `account`'s Organization, if any."""
    for backend in organizations_backends[account].values():
        if backend.org is not None:
            return account
    master = organizations_backends.master_accounts.get(account)
    return master[0] if master else None


def _inside(owner: str, principal: str) -> bool:
    """Whether `principal` has access to `owner`'s shares without an
    invitation: both in one Organization, which shares."""
    management = _management_of(owner)
    return (
        management is not None
        and management in _sharing_enabled
        and _management_of(principal) == management
    )


def _in_organization(owner: str, principal: str) -> bool:
    management = _management_of(owner)
    return management is not None and _management_of(principal) == management


# ---------------------------------------------------------------------------
# RAM
# ---------------------------------------------------------------------------
def _share(backend: Any, arn: str | None) -> Any:
    for share in backend.resource_shares:
        if share.arn == arn and share.status == "ACTIVE":
            return share
    raise UnknownResourceException(f"ResourceShare {arn} could not be found.")


def _described(share: Any) -> dict[str, Any]:
    """A share as RAM describes it, with its tags."""
    described = share.describe()
    described.pop("featureSet", None)
    described["tags"] = list(getattr(share, "tags", []))
    return described


def _account_principals(principals: list[str]) -> list[str]:
    return [p for p in principals if len(p) == 12 and p.isdigit()]


def _invite(share: Any, principals: list[str]) -> None:
    """Invitations for the accounts among `principals` that need one."""
    for account in _account_principals(principals):
        if account == share.owning_account_id or _inside(share.owning_account_id, account):
            continue
        if not share.allow_external_principals and not _in_organization(
            share.owning_account_id, account
        ):
            raise OperationNotPermittedException(
                f"The resource share {share.arn} does not allow principals outside its "
                f"organization, and {account} is not in it."
            )
        exists = any(
            i["resourceShareArn"] == share.arn and i["receiverAccountId"] == account
            for i in _invitations.values()
        )
        if not exists:
            arn = (
                f"arn:aws:ram:{share.region}:{share.owning_account_id}:"
                f"resource-share-invitation/{uuid.uuid4()}"
            )
            _invitations[arn] = {
                "resourceShareInvitationArn": arn,
                "resourceShareName": share.name,
                "resourceShareArn": share.arn,
                "senderAccountId": share.owning_account_id,
                "receiverAccountId": account,
                "invitationTimestamp": unix_time(utcnow()),
                "status": "PENDING",
            }


def _associations(share: Any, kind: str, entities: list[str], status: str) -> list[dict[str, Any]]:
    now = unix_time(utcnow())
    return [
        {
            "resourceShareArn": share.arn,
            "resourceShareName": share.name,
            "associatedEntity": entity,
            "associationType": kind,
            "status": status,
            "creationTime": now,
            "lastUpdatedTime": now,
            "external": kind == "PRINCIPAL"
            and not _in_organization(share.owning_account_id, entity),
        }
        for entity in entities
    ]


def _has_access(owner: str, consumer: str, region: str, resource_arn: str) -> bool:
    """Whether `consumer` may use `owner`'s resource `resource_arn`."""
    if owner == consumer:
        return True
    for share in ram_models.ram_backends[owner][region].resource_shares:
        if share.status != "ACTIVE" or resource_arn not in share.resource_arns:
            continue
        if consumer not in share.principals:
            continue
        if _inside(owner, consumer):
            return True
        accepted = any(
            i["resourceShareArn"] == share.arn
            and i["receiverAccountId"] == consumer
            and i["status"] == "ACCEPTED"
            for i in _invitations.values()
        )
        if accepted:
            return True
    return False


def _shares_holding(owner: str, region: str, resource_arn: str) -> bool:
    return any(
        share.status == "ACTIVE" and resource_arn in share.resource_arns and share.principals
        for share in ram_models.ram_backends[owner][region].resource_shares
    )


def _install_ram() -> None:
    backend_class = ram_models.ResourceAccessManagerBackend
    response_class = ram_responses.ResourceAccessManagerResponse

    original_create = backend_class.create_resource_share

    def create(self: Any, **kwargs: Any) -> dict[str, Any]:
        token = kwargs.get("clientToken")
        if token:
            for share in self.resource_shares:
                if getattr(share, "client_token", None) == token and share.status == "ACTIVE":
                    described = _described(share)
                    return {"resourceShare": described, "clientToken": token}
        answer = original_create(self, **kwargs)
        share = _share(self, answer["resourceShare"]["resourceShareArn"])
        share.client_token = token
        share.tags = list(kwargs.get("tags") or [])
        try:
            _invite(share, kwargs.get("principals", []))
        except OperationNotPermittedException:
            self.resource_shares.remove(share)
            raise
        answer["resourceShare"] = _described(share)
        if token:
            answer["clientToken"] = token
        return answer

    def shares_response(self: Any) -> str:
        owner = self._get_param("resourceOwner")
        if owner not in ("SELF", "OTHER-ACCOUNTS"):
            raise InvalidParameterException(
                f"{owner} is not a valid resource owner. Specify either SELF or "
                "OTHER-ACCOUNTS and try again."
            )
        name = self._get_param("name")
        status = self._get_param("resourceShareStatus")
        arns = self._get_param("resourceShareArns") or []
        tag_filters = self._get_param("tagFilters") or []
        backend = self.ram_backend
        if owner == "SELF":
            candidates = list(backend.resource_shares)
        else:
            candidates = [
                share
                for other, regions in ram_models.ram_backends.items()
                if other != backend.account_id
                for share in regions[backend.region_name].resource_shares
                if backend.account_id in share.principals
            ]

        def tagged(share: Any) -> bool:
            tags = {t.get("key"): t.get("value") for t in getattr(share, "tags", [])}
            return all(
                f.get("tagKey") in tags and tags[f.get("tagKey")] in (f.get("tagValues") or [])
                for f in tag_filters
            )

        found = [
            _described(share)
            for share in candidates
            if (not name or share.name == name)
            and (not status or share.status == status)
            and (not arns or share.arn in arns)
            and tagged(share)
        ]
        return json.dumps({"resourceShares": found})

    original_enable = backend_class.enable_sharing_with_aws_organization

    def enable(self: Any) -> dict[str, Any]:
        answer = original_enable(self)
        _sharing_enabled.add(self.account_id)
        return answer

    def associate(self: Any, arn: str, resources: list[str], principals: list[str]) -> dict[str, Any]:
        share = _share(self, arn)
        new_principals = [p for p in principals if p not in share.principals]
        _invite(share, new_principals)
        share.add_principals(new_principals)
        share.add_resources([r for r in resources if r not in share.resource_arns])
        share.last_updated_time = utcnow()
        return {
            "resourceShareAssociations": _associations(share, "RESOURCE", resources, "ASSOCIATED")
            + _associations(share, "PRINCIPAL", principals, "ASSOCIATED")
        }

    def disassociate(self: Any, arn: str, resources: list[str], principals: list[str]) -> dict[str, Any]:
        share = _share(self, arn)
        share.resource_arns = [r for r in share.resource_arns if r not in resources]
        share.principals = [p for p in share.principals if p not in principals]
        for key in [
            k
            for k, i in _invitations.items()
            if i["resourceShareArn"] == arn and i["receiverAccountId"] in principals
        ]:
            del _invitations[key]
        share.last_updated_time = utcnow()
        return {
            "resourceShareAssociations": _associations(share, "RESOURCE", resources, "DISASSOCIATED")
            + _associations(share, "PRINCIPAL", principals, "DISASSOCIATED")
        }

    def associate_response(self: Any) -> str:
        return json.dumps(
            associate(
                self.ram_backend,
                self._get_param("resourceShareArn"),
                self._get_param("resourceArns") or [],
                self._get_param("principals") or [],
            )
        )

    def disassociate_response(self: Any) -> str:
        return json.dumps(
            disassociate(
                self.ram_backend,
                self._get_param("resourceShareArn"),
                self._get_param("resourceArns") or [],
                self._get_param("principals") or [],
            )
        )

    def invitations_response(self: Any) -> str:
        shares = self._get_param("resourceShareArns") or []
        arns = self._get_param("resourceShareInvitationArns") or []
        mine = [
            dict(i)
            for i in _invitations.values()
            if i["receiverAccountId"] == self.current_account
            and (not shares or i["resourceShareArn"] in shares)
            and (not arns or i["resourceShareInvitationArn"] in arns)
        ]
        return json.dumps({"resourceShareInvitations": mine})

    def accept_response(self: Any) -> str:
        arn = self._get_param("resourceShareInvitationArn")
        invitation = _invitations.get(arn)
        if invitation is None or invitation["receiverAccountId"] != self.current_account:
            raise UnknownResourceException(f"ResourceShareInvitation {arn} could not be found.")
        if invitation["status"] != "PENDING":
            raise InvalidParameterException(
                f"The invitation {arn} is {invitation['status']}, not PENDING."
            )
        invitation["status"] = "ACCEPTED"
        return json.dumps({"resourceShareInvitation": dict(invitation)})

    def update_response(self: Any) -> str:
        arn = self._get_param("resourceShareArn")
        share = _share(self.ram_backend, arn)
        name = self._get_param("name")
        allow = self._get_param("allowExternalPrincipals")
        if name:
            share.name = name
        if allow is not None:
            share.allow_external_principals = bool(allow)
        share.last_updated_time = utcnow()
        return json.dumps({"resourceShare": _described(share)})

    backend_class.create_resource_share = create
    response_class.get_resource_shares = shares_response
    response_class.update_resource_share = update_response
    backend_class.enable_sharing_with_aws_organization = enable
    response_class.associate_resource_share = associate_response
    response_class.disassociate_resource_share = disassociate_response
    response_class.get_resource_share_invitations = invitations_response
    response_class.accept_resource_share_invitation = accept_response
    dispatch = ram_responses.ResourceAccessManagerResponse.dispatch
    for path in (
        "associateresourceshare",
        "disassociateresourceshare",
        "getresourceshareinvitations",
        "acceptresourceshareinvitation",
    ):
        ram_urls.url_paths["{0}/" + path + "$"] = dispatch


# ---------------------------------------------------------------------------
# Route 53 Resolver
# ---------------------------------------------------------------------------
class _Seen:
    """A rule as one account sees it: its ShareStatus is the viewer's."""

    def __init__(self, rule: Any, share_status: str):
        self._rule = rule
        self._share_status = share_status

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rule, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._rule, name, value)

    def description(self) -> dict[str, Any]:
        described = self._rule.description()
        described["ShareStatus"] = self._share_status
        return described


def _shared_with(backend: Any) -> dict[str, Any]:
    """The rules of other accounts that `backend`'s account may use, by id."""
    found: dict[str, Any] = {}
    for owner, regions in resolver_models.route53resolver_backends.items():
        if owner == backend.account_id:
            continue
        other = regions.get(backend.region_name) if hasattr(regions, "get") else None
        if other is None:
            continue
        for rule in other.resolver_rules.values():
            if _has_access(owner, backend.account_id, backend.region_name, rule.arn):
                found[rule.id] = rule
    return found


def _as_owner(backend: Any, rule: Any) -> _Seen:
    shared = _shares_holding(backend.account_id, backend.region_name, rule.arn)
    return _Seen(rule, "SHARED_BY_ME" if shared else "NOT_SHARED")


def _install_resolver() -> None:
    backend_class = resolver_models.Route53ResolverBackend
    response_class = resolver_responses.Route53ResolverResponse

    original_list = backend_class.list_resolver_rules
    unpaged_list = original_list.__wrapped__

    # Named as moto's: its paginator looks its model up by the name.
    def list_resolver_rules(self: Any, filters: Any) -> list[Any]:
        own = [_as_owner(self, r) for r in unpaged_list(self, filters)]
        normalized = [dict(f) for f in (filters or [])]
        self._add_field_name_to_filter(normalized)
        shared = [
            _Seen(rule, "SHARED_WITH_ME")
            for rule in _shared_with(self).values()
            if self._matches_all_filters(rule, normalized)
        ]
        return sorted(own + shared, key=lambda r: (r.name or "", r.id))

    paged_list = resolver_models.paginate(pagination_model=resolver_models.PAGINATION_MODEL)(
        list_resolver_rules
    )
    del original_list

    original_get = backend_class.get_resolver_rule

    def get_rule(self: Any, resolver_rule_id: str) -> Any:
        if resolver_rule_id in self.resolver_rules:
            return _as_owner(self, original_get(self, resolver_rule_id))
        shared = _shared_with(self).get(resolver_rule_id)
        if shared is None:
            raise ResourceNotFoundException(
                f"Resolver rule with ID '{resolver_rule_id}' does not exist"
            )
        return _Seen(shared, "SHARED_WITH_ME")

    def lending(method_name: str) -> Any:
        """A rule method that a consumer may call on a rule shared with it:
        the rules shared with it are lent to its backend for the call (so
        that a second rule for the same name is refused as with its own)."""
        original = getattr(backend_class, method_name)

        def call(self: Any, resolver_rule_id: str, *args: Any, **kwargs: Any) -> Any:
            shared = _shared_with(self)
            if resolver_rule_id not in self.resolver_rules and resolver_rule_id not in shared:
                raise ResourceNotFoundException(
                    f"Resolver rule with ID '{resolver_rule_id}' does not exist"
                )
            lent = [rule_id for rule_id in shared if rule_id not in self.resolver_rules]
            for rule_id in lent:
                self.resolver_rules[rule_id] = shared[rule_id]
            try:
                return original(self, resolver_rule_id, *args, **kwargs)
            finally:
                for rule_id in lent:
                    self.resolver_rules.pop(rule_id, None)

        return call

    original_update = response_class.update_resolver_rule

    def update_rule(self: Any) -> str:
        rule_id = self._get_param("ResolverRuleId")
        if rule_id not in self.route53resolver_backend.resolver_rules:
            if rule_id in _shared_with(self.route53resolver_backend):
                raise _ResolverAccessDenied(
                    f"Resolver rule '{rule_id}' is shared with this account, which may not "
                    "change it"
                )
        return original_update(self)

    def put_policy(self: Any) -> str:
        arn = self._get_param("Arn")
        policy = self._get_param("ResolverRulePolicy")
        owner = arn.split(":")[4] if arn and arn.count(":") >= 5 else ""
        if owner != self.current_account:
            raise ResourceNotFoundException(f"Resolver rule '{arn}' does not exist")
        _rule_policies[arn] = policy
        return json.dumps({"ReturnValue": True})

    def get_policy(self: Any) -> str:
        arn = self._get_param("Arn")
        if arn not in _rule_policies:
            raise ResourceNotFoundException(f"No policy for resolver rule '{arn}'")
        return json.dumps({"ResolverRulePolicy": _rule_policies[arn]})

    backend_class.list_resolver_rules = paged_list
    backend_class.get_resolver_rule = get_rule
    backend_class.associate_resolver_rule = lending("associate_resolver_rule")
    backend_class.disassociate_resolver_rule = lending("disassociate_resolver_rule")
    response_class.update_resolver_rule = update_rule
    response_class.put_resolver_rule_policy = put_policy
    response_class.get_resolver_rule_policy = get_policy


class _ResolverAccessDenied(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("AccessDeniedException", message)


# ---------------------------------------------------------------------------
# STS
# ---------------------------------------------------------------------------
class _AccessDenied(STSClientError):
    def __init__(self, message: str):
        super().__init__("AccessDenied", message)


def _install_sts() -> None:
    response_class = sts_responses.TokenResponse
    original = response_class.assume_role

    def assume_role(self: Any) -> Any:
        role_arn = self._get_param("RoleArn")
        caller = self.backend
        chained = caller.get_assumed_role_from_access_key(self.get_access_key())
        if role_arn in _denied_roles:
            who = chained.arn if chained else f"arn:aws:iam::{self.current_account}:user/test"
            raise _AccessDenied(
                f"User: {who} is not authorized to perform: sts:AssumeRole on resource: "
                f"{role_arn}"
            )
        duration = self._get_int_param("DurationSeconds", 3600)
        if chained is not None and duration > 3600:
            raise STSValidationError(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles "
                "assumed by role chaining."
            )
        return original(self)

    response_class.assume_role = assume_role


def install() -> None:
    _install_ram()
    _install_resolver()
    _install_sts()


# BaseResponse is imported for the type of the patched responses.
_ = BaseResponse
