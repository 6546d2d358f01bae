"""Benchmark of issue 12, wide webhooks: GitHub ``push`` events, mostly ``extra``, through the HTTP path, CPU only.

10,000 events shaped like GitHub's ``push`` webhook payload (``ref``, ``before``/``after``, a
``repository`` object of ~40 keys with its ``owner``, ``pusher``, ``organization``, ``sender``,
1-3 ``commits`` with nested ``author``/``committer`` and file lists, ``head_commit``; 4.4-6.3 KB
each, 5.0 KB on average, values varied per event, fixed seed), posted as 200-event JSON arrays
(about 1 MB each). The route maps 6 columns
(four of them dotted paths: ``repository.full_name``, ``repository.id``, ``sender.login``,
``head_commit.id``; ``ref``; ``forced`` as a boolean), takes TimeGenerated from
``head_commit.timestamp`` (GitHub's local-offset times, ``2026-12-03T04:20:53+01:00``) and keeps
everything else in ``extra: Properties`` (dynamic): a key read only through a dotted path stays in
``Properties`` whole, so nearly every byte of an event is ``extra``. No ``_http.`` context path
and no ``id_column``, so the route has a typed path (``shared/typed.py``: events decoded from
their bytes straight into the columns, ``Properties`` kept as the sender's raw JSON); ``run``
checks it and the output says whether it applied. Same bytes, same run:

* relay       - what the HTTP trigger does per body: ``decode_http_body`` then ``Engine.run`` with
                ``decoded.records(context)`` (the typed path when the route has one); an uploader that
                accepts every request unsent (ISA-L gzip still runs in the upload threads). The
                webhook signature check (HMAC-SHA256 of the body, before decoding) is not measured;
* sdk         - the SDK sample path: stdlib ``json.loads`` of each body, a dict -> columns map with
                the dotted paths read in Python (``bench.cpu_path.dotted_mapper``: no coercion, the
                time left as sent) and the rest in ``Properties``, the SDK's own
                ``_create_gzip_requests`` (under Python's default GC thresholds, as an SDK user's
                process has them);
* passthrough - ``orjson.loads`` + ``orjson.dumps`` + ISA-L gzip level 1, in as many requests as the
                relay sends, no per-field work;
* relay_default_gc - the relay under Python's default GC thresholds (what ``shared/gctune.py`` is worth).

The route's stream is declared here (inline ``columns:``), not in the shipped DCR. (The shipped
``github`` route maps ``_http.headers.*``, a context path, which keeps it on the dict path.)
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import yaml

from bench.common import ROOT, bench_main, contender_lines, ratio_line, say

EVENTS = 10_000
BODY_EVENTS = 200
SEED = 20261203
BASE = datetime(2026, 12, 3, 4, 20, 53, tzinfo=UTC)
COLUMNS = {"TimeGenerated": "datetime", "Repo": "string", "RepoId": "long", "Sender": "string", "Ref": "string",
           "HeadCommit": "string", "Forced": "boolean", "Properties": "dynamic"}
MAP = {"Repo": "repository.full_name", "RepoId": "repository.id", "Sender": "sender.login", "Ref": "ref",
       "HeadCommit": "head_commit.id", "Forced": "forced"}
TIME_FIELD = "head_commit.timestamp"
OFFSETS = tuple(timezone(timedelta(minutes=minutes)) for minutes in (60, -300, -480, 330, 540, 0, 120, -180))
ORGS = ("contoso", "fabrikam", "northwind", "adventure-works", "tailspin")
REPOS = ("relay", "infra", "web-frontend", "payments-service", "docs", "terraform-modules", "sdk-python",
         "mobile-app")
USERS = tuple(f"{first}-{last}" for first in ("ana", "ben", "chen", "dara", "eli", "fay", "gus", "hana")
              for last in ("dev", "ops", "gh"))
LANGUAGES = ("Python", "TypeScript", "Go", "HCL", "C#", None)
BRANCHES = ("main", "main", "main", "develop", "release/2026.12", "feature/typed-path", "fix/offset-times")
VERBS = ("Fix", "Add", "Update", "Remove", "Refactor", "Bump", "Document", "Test")
THINGS = ("retry policy", "webhook parser", "README", "CI workflow", "dependency pins", "time parsing",
          "upload concurrency", "typed path", "error messages", "route validation")
EARLIER_COMMITS = (0, 0, 0, 0, 0, 0, 1, 1, 1, 2)  # commits pushed before the head commit
FILES = ("shared/engine.py", "shared/typed.py", "README.md", "docs/config.md", ".github/workflows/ci.yml",
         "tests/unit/test_plan.py", "infra/main.bicep", "requirements.txt", "package.json", "src/index.ts")


def build_route() -> Any:
    """The benchmark's route: inline columns, 6 mapped (4 dotted), ``time_field: head_commit.timestamp``, ``extra``."""
    from shared.config import parse_config

    raw = {"name": "wide-webhook", "source": "http", "match": "wide", "endpoint": "https://127.0.0.1:1",
           "dcr": "dcr-" + "0" * 32, "stream": "Custom-WideWebhook",
           "columns": [{"name": name, "type": kind} for name, kind in COLUMNS.items()],
           "map": MAP, "time_field": TIME_FIELD, "extra": "Properties"}
    return parse_config(yaml.safe_dump({"routes": [raw]}), {}, ROOT).routes[0]


def _sha(rng: random.Random) -> str:
    return f"{rng.getrandbits(160):040x}"


def _user(login: str, number: int) -> dict[str, Any]:
    """A GitHub user object as webhooks send it (``sender``, ``owner``)."""
    api = f"https://api.github.com/users/{login}"
    return {"login": login, "id": 1_000_000 + number, "node_id": f"MDQ6VXNlcj{number:08d}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{1_000_000 + number}?v=4", "gravatar_id": "",
            "url": api, "html_url": f"https://github.com/{login}", "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}", "organizations_url": f"{api}/orgs", "repos_url": f"{api}/repos", "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events", "type": "User", "site_admin": False}


def _repository(rng: random.Random, org: str, name: str, pushed: datetime) -> dict[str, Any]:
    """The ``repository`` object of a push payload: ~40 keys, most of them URLs."""
    full = f"{org}/{name}"
    api = f"https://api.github.com/repos/{full}"
    number = REPOS.index(name) * 10 + ORGS.index(org)
    created = datetime(2019, 1, 1, tzinfo=UTC) + timedelta(days=number * 37)
    return {
        "id": 186_853_002 + number * 7919, "node_id": f"R_kgDOL{number:06d}", "name": name, "full_name": full,
        "private": number % 3 == 0, "owner": {**_user(org, number), "type": "Organization", "name": org,
                                              "email": None},
        "html_url": f"https://github.com/{full}", "description": f"The {name.replace('-', ' ')} of {org}",
        "fork": False, "url": f"https://github.com/{full}", "forks_url": f"{api}/forks",
        "branches_url": f"{api}/branches{{/branch}}", "tags_url": f"{api}/tags",
        "commits_url": f"{api}/commits{{/sha}}", "issues_url": f"{api}/issues{{/number}}",
        "pulls_url": f"{api}/pulls{{/number}}", "created_at": int(created.timestamp()),
        "updated_at": (pushed - timedelta(minutes=rng.randrange(1, 600))).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pushed_at": int(pushed.timestamp()), "git_url": f"git://github.com/{full}.git",
        "ssh_url": f"git@github.com:{full}.git", "clone_url": f"https://github.com/{full}.git",
        "homepage": None if number % 2 else f"https://{name}.{org}.example", "size": rng.randrange(100, 90_000),
        "stargazers_count": rng.randrange(0, 5000), "watchers_count": rng.randrange(0, 5000),
        "language": LANGUAGES[number % len(LANGUAGES)], "has_issues": True, "has_projects": number % 2 == 0,
        "has_wiki": number % 4 == 0, "has_pages": False, "forks_count": rng.randrange(0, 400), "archived": False,
        "disabled": False, "open_issues_count": rng.randrange(0, 120),
        "license": {"key": "mit", "name": "MIT License", "spdx_id": "MIT"} if number % 3 else None,
        "topics": ["azure", "logs", name.split("-")[0]][: 1 + number % 3], "visibility": "public",
        "default_branch": "main", "stargazers": rng.randrange(0, 5000), "master_branch": "main",
        "organization": org,
    }


def _commit(rng: random.Random, full: str, author: str, moment: datetime) -> dict[str, Any]:
    sha = _sha(rng)
    person = {"name": author.replace("-", " ").title(), "email": f"{author}@users.noreply.github.com",
              "username": author}
    files = rng.sample(FILES, rng.randrange(1, 5))
    return {"id": sha, "tree_id": _sha(rng), "distinct": True,
            "message": f"{rng.choice(VERBS)} {rng.choice(THINGS)}" + (
                f"\n\n{rng.choice(VERBS)} {rng.choice(THINGS)} too; see #{rng.randrange(1, 4000)}."
                if rng.random() < 0.5 else ""),
            "timestamp": moment.isoformat(), "url": f"https://github.com/{full}/commit/{sha}",
            "author": person, "committer": person if rng.random() < 0.8 else
            {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
            "added": files[:1] if rng.random() < 0.3 else [], "removed": [], "modified": files}


def event(rng: random.Random, number: int) -> dict[str, Any]:
    """One push webhook payload (4.4-6.3 KB as JSON)."""
    org, name = ORGS[number % len(ORGS)], REPOS[rng.randrange(len(REPOS))]
    full, pusher = f"{org}/{name}", USERS[rng.randrange(len(USERS))]
    moment = (BASE + timedelta(seconds=number * 3)).astimezone(OFFSETS[rng.randrange(len(OFFSETS))])
    commits = [_commit(rng, full, pusher, moment - timedelta(minutes=3 * (n + 1))) for n in range(rng.choice(EARLIER_COMMITS))]
    head = _commit(rng, full, pusher, moment)
    commits.append(head)
    before, branch = _sha(rng), BRANCHES[rng.randrange(len(BRANCHES))]
    return {
        "ref": f"refs/heads/{branch}", "before": before, "after": head["id"],
        "repository": _repository(rng, org, name, moment), "pusher": {"name": pusher, "email": head["author"]["email"]},
        "organization": {"login": org, "id": 9_000_000 + ORGS.index(org), "url": f"https://api.github.com/orgs/{org}",
                         "repos_url": f"https://api.github.com/orgs/{org}/repos",
                         "hooks_url": f"https://api.github.com/orgs/{org}/hooks",
                         "avatar_url": f"https://avatars.githubusercontent.com/u/{9_000_000 + ORGS.index(org)}?v=4",
                         "description": None},
        "sender": _user(pusher, USERS.index(pusher)), "created": False, "deleted": False,
        "forced": rng.random() < 0.05, "base_ref": None,
        "compare": f"https://github.com/{full}/compare/{before[:12]}...{head['id'][:12]}",
        "commits": commits, "head_commit": head,
    }


def events(count: int, seed: int = SEED) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [event(rng, n) for n in range(count)]


def bodies(count: int = EVENTS, per_body: int = BODY_EVENTS) -> list[bytes]:
    generated = events(count)
    return [orjson.dumps(generated[first:first + per_body]) for first in range(0, count, per_body)]


def run(count: int = EVENTS, repeat: int = 5) -> dict[str, Any]:
    from bench.issue12 import time_http_arrays
    from shared.normalize import Normalizer

    route = build_route()
    typed = Normalizer(route).typed is not None
    say(f"wide webhook: {count:,} GitHub push events as {BODY_EVENTS:,}-event JSON arrays "
        f"(typed path: {'yes' if typed else 'NO, dict path'})")
    context = {"_http": {"method": "POST", "route": "wide", "headers": {"content-type": "application/json",
                                                                        "x-github-event": "push"}}}
    return {**time_http_arrays("wide webhook", route, bodies(count), context, count, repeat),
            "body_events": min(BODY_EVENTS, count)}


def lines(result: dict[str, Any]) -> list[str]:
    path = ("typed path: bytes straight into columns, Properties kept raw" if result["typed_path"]
            else "dict path: the route has no typed path")
    rows = [f"{result['events']:,} GitHub push events of {result['bytes_per_event']:,} bytes on average as "
            f"{result['body_events']:,}-event JSON arrays ({result['input_bytes'] / 1e6:.1f} MB), best of "
            f"{result['repeat']} interleaved runs:", ""]
    rows += contender_lines(result, (
        ("relay", f"relay: decode_http_body + Engine.run ({path}, ISA-L gzip)"),
        ("sdk", "SDK sample path: json.loads + map (dotted lookups) + _create_gzip_requests"),
        ("passthrough", "passthrough: orjson.loads + orjson.dumps + ISA-L gzip"),
        ("relay_default_gc", "ablation: relay under Python's default GC thresholds")), mb_per_s=True)
    rows += ["", ratio_line(result, f"{result['relay_requests']} requests; SDK {result['sdk_requests']} requests")]
    return rows


if __name__ == "__main__":
    bench_main(__doc__, EVENTS, run, lines)
