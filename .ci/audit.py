"""CI's dependency audit: pip-audit over the hashed locks in requirements/, against an advisory database.

``make audit`` runs it (``.ci/run`` before the tests). pip-audit reads the locks as they are
(``--disable-pip``: nothing is installed or resolved, every version is pinned and hashed) and asks
PyPI's JSON API for each locked release's advisories, or OSV's API when PyPI cannot answer.

- A known vulnerability of a locked version fails the run (exit 1) and names it, with the version
  that fixes it: update the lock (``make lock``). One that cannot be fixed yet is listed in
  ``requirements/audit-ignore.txt`` (an id per line, ``# why`` after it), which pip-audit then skips.
- An advisory database that cannot be reached, or that answers for none of the locked releases
  (a mirror that serves no per-release JSON), is said in one WARNING line and the run goes on
  (exit 0): CI without a network still tests, and an audit that did not happen never reads as passed.
- Anything else that stops pip-audit fails the run with its output.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ("requirements/service.txt", "requirements/test.txt")
IGNORED = ROOT / "requirements" / "audit-ignore.txt"
# Each service pip-audit can ask, and a request that shows it answers at all.
SERVICES = (("pypi", "https://pypi.org/pypi/pip/json", None),
            ("osv", "https://api.osv.dev/v1/query", b'{"package": {"name": "pip", "ecosystem": "PyPI"}}'))
TIMEOUT = 300  # seconds for one audit: a few hundred small requests
# What pip-audit (requests, urllib3) says when the service is out of reach.
UNREACHABLE = re.compile(r"ConnectionError|ConnectTimeout|ReadTimeout|Max retries exceeded|"
                         r"Temporary failure in name resolution|Name or service not known|Network is unreachable|"
                         r"ServiceError|timed out", re.IGNORECASE)


@dataclass
class Audit:
    """One service's answer: the findings, or why it gave none."""

    service: str
    audited: int = 0
    found: list[tuple[dict, dict]] | None = None
    unanswered: str | None = None  # the service could not answer: why
    failed: str | None = None  # pip-audit itself failed: its output


def ignored_ids() -> list[str]:
    if not IGNORED.exists():
        return []
    ids = (line.split("#", 1)[0].strip() for line in IGNORED.read_text().splitlines())
    return [vulnerability for vulnerability in ids if vulnerability]


def reachable(url: str, body: bytes | None) -> str | None:
    """None if ``url`` answers, else why not."""
    try:
        urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10).close()
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))
    return None


def audit(service: str) -> Audit:
    command = [sys.executable, "-m", "pip_audit", "--disable-pip", "--require-hashes",
               "--vulnerability-service", service, "--format", "json", "--progress-spinner", "off"]
    for lock in LOCKS:
        command += ["-r", str(ROOT / lock)]
    for vulnerability in ignored_ids():
        command += ["--ignore-vuln", vulnerability]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return Audit(service, unanswered=f"no answer within {TIMEOUT} s")
    try:
        report = json.loads(done.stdout)
    except ValueError:
        if UNREACHABLE.search(done.stderr):
            return Audit(service, unanswered=done.stderr.strip().splitlines()[-1])
        return Audit(service, failed=f"exit {done.returncode}:\n{done.stderr}")
    dependencies = report.get("dependencies", [])
    answered = [dependency for dependency in dependencies if not dependency.get("skip_reason")]
    if not answered:
        reason = dependencies[0]["skip_reason"] if dependencies else "no package in the locks"
        return Audit(service, unanswered=f"it answered for none of {len(dependencies)} locked releases ({reason})")
    found = [(dependency, vulnerability) for dependency in answered for vulnerability in dependency.get("vulns", [])]
    if not found and done.returncode != 0:
        return Audit(service, failed=f"exit {done.returncode}:\n{done.stderr}")
    skipped = sorted(dependency["name"] for dependency in dependencies if dependency.get("skip_reason"))
    if skipped:
        print(f"ci: WARNING: the audit could not check {len(skipped)} packages: {', '.join(skipped)}",
              file=sys.stderr)
    return Audit(service, audited=len(answered), found=found)


def main() -> int:
    reasons = []
    for service, probe, body in SERVICES:
        why = reachable(probe, body)
        result = audit(service) if why is None else Audit(service, unanswered=why)
        if result.failed:
            print(f"ci: dependency audit failed to run ({service}) {result.failed}", file=sys.stderr)
            return 1
        if result.unanswered:
            reasons.append(f"{service}: {result.unanswered}")
            continue
        for dependency, vulnerability in result.found or []:
            fixed = ", ".join(vulnerability.get("fix_versions") or []) or "no fixed release yet"
            print(f"ci: VULNERABLE {dependency['name']} {dependency.get('version')}: {vulnerability['id']} "
                  f"(fixed in {fixed})", file=sys.stderr)
        if result.found:
            print(f"ci: dependency audit FAILED: {len(result.found)} known vulnerabilities in the locks; update "
                  "them (make lock) or list an id in requirements/audit-ignore.txt with the reason", file=sys.stderr)
            return 1
        print(f"ci: dependency audit: no known vulnerability in {result.audited} locked releases ({service})")
        return 0
    print("ci: WARNING: dependency audit NOT RUN: no advisory database could be reached ("
          + "; ".join(reasons) + ")", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
