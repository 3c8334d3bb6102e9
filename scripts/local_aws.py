"""Local AWS for runs and tests: moto in server mode, resources created from template.yaml itself.

Only the resource types the template declares for storage and messaging are created (tables,
buckets, queues, event buses, the schedule group); functions are read for their handler and
resolved environment, and given the ARN Lambda would give them (schedules target it).
"""

import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests
import yaml

from scripts.moto_serial import MotoServer

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
ACCOUNT = "123456789012"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
    """YAML loader that keeps CloudFormation short-form tags as {"Fn::X": value}."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = ROOT / "template.yaml") -> dict[str, Any]:
    """The template with its Fn::ForEach resources expanded, as CloudFormation would."""
    template: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    template["Resources"] = _expand_for_each(template["Resources"], template.get("Mappings", {}))
    return template


def _expand_for_each(fragments: dict[str, Any], mappings: dict[str, Any]) -> dict[str, Any]:
    """Replace each `Fn::ForEach::<Loop>: [Identifier, [values], {key: fragment}]` entry by one copy
    of its fragments per value (AWS::LanguageExtensions), where the loop stood."""
    expanded: dict[str, Any] = {}
    for key, value in fragments.items():
        if not key.startswith("Fn::ForEach::"):
            expanded[key] = value
            continue
        identifier, collection, body = value
        if not isinstance(collection, list):
            raise ValueError(f"{key}: only a literal list of values can be expanded here")
        for item in collection:
            copies = {
                _copy_for(name, identifier, item, mappings): _copy_for(fragment, identifier, item, mappings)
                for name, fragment in body.items()
            }
            expanded |= _expand_for_each(copies, mappings)  # nested loops
    return expanded


def _copy_for(value: Any, identifier: str, item: str, mappings: dict[str, Any]) -> Any:
    """One copy of a loop's fragment: `${Identifier}`, `&{Identifier}` (alphanumerics only) and
    `Ref: Identifier` become the item; the Fn::FindInMap and Fn::Sub variables they complete are
    resolved, so the copy reads as if it had been written out."""
    if isinstance(value, str):
        alphanumeric = re.sub(r"[^A-Za-z0-9]", "", item)
        return value.replace(f"${{{identifier}}}", item).replace(f"&{{{identifier}}}", alphanumeric)
    if isinstance(value, list):
        return [_copy_for(v, identifier, item, mappings) for v in value]
    if not isinstance(value, dict):
        return value
    if value == {"Ref": identifier}:
        return item
    value = {
        _copy_for(k, identifier, item, mappings): _copy_for(v, identifier, item, mappings)
        for k, v in value.items()
    }
    match value:
        case {"Fn::FindInMap": [str(name), str(top), str(second)]} if len(value) == 1:
            return mappings[name][top][second]
        case {"Fn::Sub": [str(text), dict(variables)]} if all(isinstance(v, str) for v in variables.values()):
            for name, replacement in variables.items():
                text = text.replace(f"${{{name}}}", replacement)
            return text if "${" not in text else {"Fn::Sub": text}
    return value


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on a free loopback port; yields its endpoint URL."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on the console
    server = MotoServer().start()
    endpoint = server.endpoint
    # moto servers of one process share their state: start from nothing.
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    try:
        yield endpoint
    finally:
        server.stop()


@dataclass
class Stack:
    """Physical names of the created resources and each function's resolved environment."""

    endpoint: str
    parameters: dict[str, str]
    physical: dict[str, str] = field(default_factory=dict)  # logical id -> name / URL
    arns: dict[str, str] = field(default_factory=dict)
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)  # the template's, unevaluated
    stream_positions: dict[str, str] = field(default_factory=dict)  # shard -> last delivered record

    def client(self, service: str) -> Any:
        """A client of this stack's moto (or of the service's own, AWS_ENDPOINT_URL_<SERVICE>)."""
        endpoint = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}", self.endpoint)
        return boto3.client(service, endpoint_url=endpoint, region_name=REGION)

    def function_env(self, logical_id: str) -> dict[str, str]:
        return dict(self.functions[logical_id]["environment"])


def create_stack(endpoint: str, parameters: dict[str, str], name: str = "local") -> Stack:
    """Create the template's tables, bucket, queues and bus in moto; resolve function settings."""
    template = load_template()
    params = {key: str(spec.get("Default", "")) for key, spec in template.get("Parameters", {}).items()}
    params |= parameters | {"AWS::StackName": name, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
    stack = Stack(endpoint, params, conditions=template.get("Conditions", {}))
    resources = template["Resources"]
    order = {
        "AWS::SQS::Queue": 0,
        "AWS::DynamoDB::Table": 1,
        "AWS::S3::Bucket": 1,
        "AWS::Events::EventBus": 1,
        "AWS::Scheduler::ScheduleGroup": 1,
    }
    # Dead-letter queues first: a queue's redrive policy needs its DLQ's ARN.
    creatable = sorted(
        (lid for lid, res in resources.items() if res["Type"] in order),
        key=lambda lid: (
            order[resources[lid]["Type"]],
            "RedrivePolicy" in resources[lid].get("Properties", {}),
        ),
    )
    for logical_id in creatable:
        _create(stack, logical_id, resources[logical_id])
    for logical_id, res in resources.items():  # what no resource is made for here: names and ARNs
        name = f"{name_of_stack(stack)}-{logical_id}"
        if res["Type"] == "AWS::Serverless::Function":
            stack.physical[logical_id] = name
            stack.arns[logical_id] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        elif res["Type"] == "AWS::IAM::Role":
            stack.arns[logical_id] = f"arn:aws:iam::{ACCOUNT}:role/{name}"
    function_globals = template.get("Globals", {}).get("Function", {})
    globals_env = function_globals.get("Environment", {}).get("Variables", {})
    for logical_id, res in resources.items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        props = res["Properties"]
        env = globals_env | props.get("Environment", {}).get("Variables", {})
        stack.functions[logical_id] = {
            "code_uri": props["CodeUri"],
            "handler": props["Handler"],
            "timeout": float(props.get("Timeout", function_globals.get("Timeout", 3))),
            "environment": {key: str(_resolve(stack, value)) for key, value in env.items()},
            "events": {key: _resolve(stack, ev) for key, ev in props.get("Events", {}).items()},
            "actions": _allowed_actions(props.get("Policies", [])),
            # How Lambda treats an asynchronous invocation that fails (lambda_local.invoke_async).
            "invoke_config": _resolve(
                stack, props.get("EventInvokeConfig", function_globals.get("EventInvokeConfig", {}))
            ),
        }
    return stack


def stack_outputs(stack: Stack) -> dict[str, str]:
    """The template's outputs as the local stack would give them (what AWS would list)."""
    return {key: str(_resolve(stack, spec["Value"])) for key, spec in load_template()["Outputs"].items()}


def _allowed_actions(policies: list[Any]) -> frozenset[str]:
    """The IAM actions a function's inline policy statements allow (`service:Operation`)."""
    actions: set[str] = set()
    for policy in policies:
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            if statement.get("Effect") == "Allow":
                listed = statement["Action"]
                actions |= {listed} if isinstance(listed, str) else set(listed)
    return frozenset(actions)


def name_of_stack(stack: Stack) -> str:
    return stack.parameters["AWS::StackName"]


def _create(stack: Stack, logical_id: str, resource: dict[str, Any]) -> None:
    kind, props = resource["Type"], _resolve(stack, resource.get("Properties", {}))
    name = f"{name_of_stack(stack)}-{logical_id}".lower()
    if kind == "AWS::DynamoDB::Table":
        stream = props.get("StreamSpecification")
        streams = {"StreamSpecification": stream | {"StreamEnabled": True}} if stream else {}
        table = stack.client("dynamodb").create_table(
            TableName=name,
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            BillingMode=props["BillingMode"],
            **streams,
        )["TableDescription"]
        stack.physical[logical_id] = name
        stack.arns[logical_id] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
        if "LatestStreamArn" in table:
            stack.arns[f"{logical_id}.StreamArn"] = table["LatestStreamArn"]
    elif kind == "AWS::Scheduler::ScheduleGroup":
        stack.client("scheduler").create_schedule_group(Name=props["Name"])
        stack.physical[logical_id] = props["Name"]
    elif kind == "AWS::S3::Bucket":
        s3 = stack.client("s3")
        s3.create_bucket(Bucket=name)
        rules = [
            {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":  # each put its version
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        stack.physical[logical_id] = name
        stack.arns[logical_id] = f"arn:aws:s3:::{name}"
    elif kind == "AWS::SQS::Queue":
        attributes = {}
        if "VisibilityTimeout" in props:
            attributes["VisibilityTimeout"] = str(props["VisibilityTimeout"])
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        url = stack.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        stack.physical[logical_id] = url
        stack.arns[logical_id] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
    elif kind == "AWS::Events::EventBus":
        bus = props["Name"]
        arn = stack.client("events").create_event_bus(Name=bus)["EventBusArn"]
        stack.physical[logical_id] = bus
        stack.arns[logical_id] = arn


def _resolve(stack: Stack, value: Any) -> Any:
    """Resolve Ref, Fn::GetAtt, Fn::Sub and Fn::If against parameters and created resources."""
    if isinstance(value, list):
        return [_resolve(stack, v) for v in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        ref = value["Ref"]
        if ref in stack.parameters:
            return stack.parameters[ref]
        return stack.physical.get(ref) or ref
    if "Fn::If" in value:
        name, chosen, other = value["Fn::If"]
        return _resolve(stack, chosen if _holds(stack, {"Condition": name}) else other)
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        if attribute == "Arn":
            return stack.arns.get(logical_id, f"arn:local:{logical_id}")
        if attribute == "StreamArn":
            return stack.arns[f"{logical_id}.StreamArn"]
        if attribute == "QueueName":
            return stack.physical.get(logical_id, "").rsplit("/", 1)[-1]
        return f"{logical_id}.{attribute}"
    if "Fn::Sub" in value:

        def substitute(match: re.Match[str]) -> str:
            token = match.group(1)
            if "." in token:
                logical_id, attribute = token.split(".", 1)
                return str(_resolve(stack, {"Fn::GetAtt": [logical_id, attribute]}))
            return str(_resolve(stack, {"Ref": token}))

        return re.sub(r"\$\{([^}]+)\}", substitute, value["Fn::Sub"])
    return {key: _resolve(stack, v) for key, v in value.items()}


def _holds(stack: Stack, condition: Any) -> bool:
    """A template condition (Condition, Fn::Equals, Fn::Not, Fn::And, Fn::Or), evaluated."""
    if "Condition" in condition:
        return _holds(stack, stack.conditions[condition["Condition"]])
    if "Fn::Equals" in condition:
        left, right = (_resolve(stack, side) for side in condition["Fn::Equals"])
        return bool(left == right)
    if "Fn::Not" in condition:
        return not _holds(stack, condition["Fn::Not"][0])
    if "Fn::And" in condition:
        return all(_holds(stack, part) for part in condition["Fn::And"])
    if "Fn::Or" in condition:
        return any(_holds(stack, part) for part in condition["Fn::Or"])
    raise ValueError(f"unsupported condition {condition!r}")


def aws_client(endpoint: str, service: str) -> Any:
    """A client of moto at `endpoint`, with moto's fake credentials whatever the environment holds."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )


def use_endpoint(endpoint: str) -> None:
    """Point every boto3 client of this process at moto, with fake credentials."""
    os.environ.update(FAKE_AWS_ENV | {"AWS_ENDPOINT_URL": endpoint})
