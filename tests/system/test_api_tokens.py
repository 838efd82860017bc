"""Every configured token is long enough not to be guessed: a shorter one stops the start, naming the variable.

The message says which token by its place and its domain, never the token
itself (a secret, which a log of the failed start would keep).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.harness import ROOT
from tests.readside import configured, secret
from worker.settings import SettingsError, load_settings


def test_a_token_shorter_than_32_characters_stops_the_start_naming_the_variable():
    with pytest.raises(SettingsError, match=r"JOBTASK_API_TOKENS: .*token 2 \(domain domain-b\) has 5 characters"):
        load_settings(api_tokens={secret("token-a"): {"domain_id": "domain-a"}, "short": {"domain_id": "domain-b"}})
    env = {"JOBTASK_API_TOKENS": json.dumps({"a-weak-secret": {"domain_id": "domain-a"}}), "PATH": "/usr/bin:/bin"}
    started = subprocess.run([sys.executable, "-m", "uvicorn", "worker.api:app", "--port", "0"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
    assert started.returncode != 0
    assert "JOBTASK_API_TOKENS" in started.stderr and "13 characters" in started.stderr
    assert "a-weak-secret" not in started.stderr
    assert load_settings(api_tokens=configured({"token-a": {"domain_id": "domain-a"}})).api_tokens
