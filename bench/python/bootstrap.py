"""What most teams would write: a Python handler that imports boto3 and
creates the same four clients at init, run as a custom runtime against the
Lambda runtime API (so that its cold start is measured the same way as the
Rust functions')."""

import json
import os
import urllib.request

import boto3

EKS = boto3.client("eks")
EC2 = boto3.client("ec2")
RESOLVER = boto3.client("route53resolver")
SSM = boto3.client("ssm")

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation"

while True:
    with urllib.request.urlopen(API + "/next") as response:
        request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
        json.loads(response.read() or b"{}")
    body = json.dumps({"ok": True}).encode()
    urllib.request.urlopen(
        urllib.request.Request(API + "/" + request_id + "/response", data=body, method="POST")
    ).read()
