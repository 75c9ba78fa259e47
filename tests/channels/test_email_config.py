"""The email configuration as its module documents it: the example loads as YAML and
validates (a flow mapping around ``${…}`` would not: ``{signing_key: ${KEY}}``)."""

import re

import yaml

import acf.channels.email.config as email_config
from acf.channels.email.config import EmailFields


def test_the_documented_example_is_valid_yaml_and_a_valid_account() -> None:
    doc = email_config.__doc__ or ""
    [block] = re.findall(r"```yaml\n(.*?)```", doc, re.DOTALL)
    fields = EmailFields.model_validate(yaml.safe_load(block)["email"])
    assert fields.inbound.mailgun is not None
    assert fields.inbound.mailgun.signing_key == "${MAILGUN_SIGNING_KEY}"
    assert fields.aliases == ["help@acme.example"]
