"""Lint the IAM policies of the templates with parliament.

Every inline policy of every AWS::IAM::Role (and AWS::IAM::ManagedPolicy) in
each template (the hub's template.yaml, the spoke's spoke/template.yaml) is
resolved as CloudFormation would resolve it for a deployment with the
parameters' defaults, or examples of the right shape where a parameter has
none (Fn::Sub, Ref and Fn::GetAtt become example ARNs), then analysed by
parliament against its copy of the Service Authorization Reference. Any
finding fails the check, unless it is listed in ACCEPTED below with the
reason the reference shows it wrong.

Policy documents in JSON files (the on-premises host's policy in
contrib/iam/) are linted the same way.

Usage: python iam_lint.py template.yaml [spoke/template.yaml ...] [policy.json ...]
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import yaml
from parliament import analyze_policy_string

PARTITION = "aws"
REGION = "eu-west-1"
ACCOUNT = "123456789012"
STACK = "eks-private-dns"
# Example values of the parameters that have no default.
EXAMPLES = {
    "HubAccountId": "210987654321",
    "HubClusterEventRoleArn": "arn:aws:iam::210987654321:role/hub-ClusterEventRole",
    "HubSweepRoleArn": "arn:aws:iam::210987654321:role/hub-SweepRole",
}

# Findings that the Service Authorization Reference shows wrong, each with
# the reason: (issue, statement Sid, action). parliament checks a statement's
# resources against an action's required resource types only (those marked
# "*"); an action that also needs permission on an optional resource type is
# granted it in a statement of its own, which parliament then reports.
ACCEPTED: list[tuple[str, str, str, str]] = [
    (
        "RESOURCE_MISMATCH",
        "CreateSecurityGroupsInVpcs",
        "ec2:CreateSecurityGroup",
        "the reference lists vpc as a resource type of ec2:CreateSecurityGroup "
        "beside security-group*: the call is authorized on the VPC too",
    ),
    (
        "RESOURCE_MISMATCH",
        "OwnRulesOnly",
        "ec2:AuthorizeSecurityGroupIngress",
        "the reference lists security-group-rule (with aws:RequestTag/${TagKey}) as a "
        "resource type of ec2:AuthorizeSecurityGroupIngress: tagging the new rule is "
        "authorized on it",
    ),
] + [
    (
        "UNKNOWN_CONDITION_FOR_ACTION",
        "ResolverEndpointNetworkInterfaces",
        action,
        "aws:ViaAWSService is a global condition key (IAM User Guide, AWS global "
        "condition context keys: true in requests a service makes with the "
        "principal's credentials, forward access sessions), valid with every "
        "action; parliament's copy of the keys predates it",
    )
    for action in [
        "ec2:CreateNetworkInterface",
        "ec2:CreateNetworkInterfacePermission",
        "ec2:DeleteNetworkInterface",
        "ec2:ModifyNetworkInterfaceAttribute",
    ]
]


class Tagged:
    def __init__(self, tag: str, value: Any):
        self.tag = tag
        self.value = value


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Tagged:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return Tagged(suffix, value)


class Loader(yaml.SafeLoader):
    pass


Loader.add_multi_constructor("!", _tagged)


class Template:
    def __init__(self, doc: dict[str, Any]):
        self.doc = doc
        self.parameters = {
            name: str(p.get("Default", EXAMPLES.get(name, f"example-{name}")))
            for name, p in doc.get("Parameters", {}).items()
        }
        self.resources = doc.get("Resources", {})

    def arn_of(self, logical: str, attribute: str) -> str:
        kind = self.resources.get(logical, {}).get("Type", "")
        service = {
            "AWS::SQS::Queue": "sqs",
            "AWS::Logs::LogGroup": "logs",
            "AWS::SNS::Topic": "sns",
            "AWS::Events::EventBus": "events",
        }.get(kind)
        if attribute == "QueueName":
            return f"{STACK}-{logical}"
        if kind == "AWS::Logs::LogGroup":
            name = self.resolve(self.resources[logical]["Properties"]["LogGroupName"])
            return f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"
        if kind == "AWS::Events::EventBus":
            return f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:event-bus/{logical}"
        if service is None:
            return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{logical}"
        return f"arn:{PARTITION}:{service}:{REGION}:{ACCOUNT}:{STACK}-{logical}"

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::Partition": PARTITION,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": STACK,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return f"{STACK}-{name}"

    def resolve(self, value: Any) -> Any:
        if isinstance(value, Tagged):
            return self.intrinsic(value.tag, value.value)
        if isinstance(value, dict):
            if len(value) == 1:
                (key, inner), = value.items()
                if key in ("Ref", "Fn::Sub", "Fn::GetAtt", "Fn::Join", "Fn::If"):
                    return self.intrinsic(key.replace("Fn::", ""), inner)
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def intrinsic(self, tag: str, value: Any) -> Any:
        if tag == "Ref":
            return self.ref(value)
        if tag == "GetAtt":
            logical, attribute = value.split(".", 1) if isinstance(value, str) else value
            return self.arn_of(logical, attribute)
        if tag == "Sub":
            text, names = (value, {}) if isinstance(value, str) else (value[0], value[1])

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in names:
                    return str(self.resolve(names[name]))
                if "." in name:
                    logical, attribute = name.split(".", 1)
                    return self.arn_of(logical, attribute)
                return self.ref(name)

            return re.sub(r"\$\{([^}!]+)\}", substitute, text)
        if tag == "Join":
            separator, parts = value
            return separator.join(str(self.resolve(p)) for p in parts)
        if tag == "If":
            return self.resolve(value[1])
        raise ValueError(f"unsupported intrinsic !{tag}")


def policies(template: Template) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for logical, resource in template.resources.items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                found.append(
                    (f"{logical}/{policy['PolicyName']}", template.resolve(policy["PolicyDocument"]))
                )
        if resource.get("Type") == "AWS::IAM::ManagedPolicy":
            found.append((logical, template.resolve(props["PolicyDocument"])))
    return found


def accepted(finding: Any, sid: str) -> str | None:
    """The reason a finding is wrong, when ACCEPTED lists it."""
    text = str(finding.detail)
    for issue, accepted_sid, action, reason in ACCEPTED:
        if finding.issue == issue and sid == accepted_sid and action in text:
            return reason
    return None


def main() -> int:
    paths = sys.argv[1:] or ["template.yaml"]
    found = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            if not path.endswith((".yaml", ".yml")):
                found.append((path, json.load(f)))
                continue
            template = Template(yaml.load(f, Loader=Loader))
        of_template = [(f"{path}:{name}", doc) for name, doc in policies(template)]
        if not of_template:
            print(f"{path}: no IAM policies found", file=sys.stderr)
            return 1
        found.extend(of_template)
    failures = 0
    used = set()
    for name, document in found:
        # One statement at a time, so that a finding names its statement.
        for index, statement in enumerate(document.get("Statement", [])):
            sid = statement.get("Sid", f"#{index}")
            single = {"Version": document.get("Version", "2012-10-17"), "Statement": [statement]}
            policy = analyze_policy_string(json.dumps(single), filepath=f"{name}/{sid}")
            for finding in policy.findings:
                reason = accepted(finding, sid)
                if reason is not None:
                    used.add(sid)
                    print(f"{name}/{sid}: {finding.issue} accepted: {reason}")
                    continue
                failures += 1
                print(
                    f"{name}/{sid}: {finding.severity} {finding.issue}: {finding.title}\n"
                    f"    {finding.detail}",
                    file=sys.stderr,
                )
    for _, sid, _, _ in ACCEPTED:
        if sid not in used:
            failures += 1
            print(f"ACCEPTED names {sid}, which no longer has that finding: remove it", file=sys.stderr)
    statements = sum(len(d.get("Statement", [])) for _, d in found)
    if failures:
        print(f"parliament: {failures} finding(s) in {len(found)} policies", file=sys.stderr)
        return 1
    print(f"parliament: {len(found)} policies, {statements} statements, no findings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
