"""Did a contract-fuzz run really fuzz as its role? Reads the run's HAR record (every request
schemathesis sent, unsanitized) and the spec's `x-roles` (who may call each route, from the
service's access policy), and fails unless, for every secured operation the run covered:

- the role may call it (`x-roles` names it): every request carrying the role's token got past
  authentication and authorization (no 401, no 403 FORBIDDEN or PASSWORD_CHANGE_REQUIRED), and
  at least one such request was sent;
- the role may not: every request carrying the token was answered 403 FORBIDDEN.

Requests without the token (schemathesis's own probes of missing or invalid credentials) are
counted and reported, not judged here: the `ignored_auth` check judges them.

Usage:
  contract-fuzz-auth.py check SPEC ROLE TOKEN HAR... [--exclude-path PATH]...
  contract-fuzz-auth.py refused SPEC ROLE: the operations ROLE may not call, one a line, as
      schemathesis names them ("GET /v1/users")
"""

import argparse
import json
import sys
from collections import Counter, defaultdict
from urllib.parse import urlsplit

import yaml

METHODS = ("get", "put", "post", "delete", "patch")
AUTH_REFUSALS = {"FORBIDDEN", "PASSWORD_CHANGE_REQUIRED"}


def operations(spec, excluded):
    """(path template, method) -> roles allowed, for every secured operation the run covered."""
    found = {}
    for path, item in spec["paths"].items():
        if path in excluded:
            continue
        for method in METHODS:
            operation = item.get(method)
            if operation is None or not operation.get("security"):
                continue
            roles = operation.get("x-roles")
            if not roles:
                sys.exit(f"{method.upper()} {path} is secured but its x-roles are missing")
            found[(path, method.upper())] = set(roles)
    return found


def route(paths, path):
    """The spec path a request path reaches: literal segments win over parameters, as in the
    service's router (`/v1/transactions/batch` is not `/v1/transactions/{id}`)."""
    segments = path.split("/")
    best, best_literals = None, -1
    for template in paths:
        parts = template.split("/")
        if len(parts) != len(segments):
            continue
        literals = 0
        for part, segment in zip(parts, segments):
            if part.startswith("{") and part.endswith("}"):
                if not segment:
                    break
            elif part == segment:
                literals += 1
            else:
                break
        else:
            if literals > best_literals:
                best, best_literals = template, literals
    return best


def error_code(response):
    try:
        return json.loads(response["content"].get("text") or "")["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def load_spec(path):
    with open(path, encoding="utf-8") as file:
        return yaml.safe_load(file)


def refused_operations(arguments):
    for (path, method), roles in sorted(operations(load_spec(arguments.spec), set()).items()):
        if arguments.role not in roles:
            print(f"{method} {path}")


def check(arguments):
    spec = load_spec(arguments.spec)
    entries = []
    for har in arguments.har:
        with open(har, encoding="utf-8") as file:
            entries += json.load(file)["log"]["entries"]
    role = arguments.role
    secured = operations(spec, set(arguments.exclude_path))
    paths = list(spec["paths"])
    bearer = f"Bearer {arguments.token}"

    admitted, refused, outcomes = Counter(), Counter(), defaultdict(Counter)
    without_token = 0
    for entry in entries:
        request, response = entry["request"], entry["response"]
        key = (route(paths, urlsplit(request["url"]).path), request["method"])
        if key not in secured:
            continue  # an open route, or a method the route does not take (405)
        headers = {h["name"].lower(): h["value"] for h in request["headers"]}
        if headers.get("authorization") != bearer:
            without_token += 1
            continue
        status, code = response["status"], error_code(response)
        if status == 401 or (status == 403 and code in AUTH_REFUSALS):
            refused[key] += 1
            outcomes[key][f"{status} {code}"] += 1
        else:
            admitted[key] += 1
            outcomes[key][str(status)] += 1

    problems = []
    allowed = [key for key, roles in secured.items() if role in roles]
    forbidden = [key for key, roles in secured.items() if role not in roles]
    for key in sorted(allowed):
        if refused[key] or not admitted[key]:
            problems.append((key, f"x-roles names {role}: no request may be refused", outcomes[key]))
    for key in sorted(forbidden):
        if set(outcomes[key]) != {"403 FORBIDDEN"}:
            problems.append((key, f"x-roles leaves {role} out: every request must be 403", outcomes[key]))

    with_token = sum(admitted.values()) + sum(refused.values())
    print(
        f"contract-fuzz: as {role}: {len(allowed)} operations took the token "
        f"({sum(admitted[k] for k in allowed)} requests), {len(forbidden)} refused it "
        f"with 403 ({sum(refused[k] for k in forbidden)} requests); "
        f"{without_token} of {with_token + without_token} requests to secured operations "
        f"went without the token (schemathesis's own auth probes)",
        file=sys.stderr,
    )
    for (path, method), rule, seen in problems:
        answers = ", ".join(f"{answer} x{count}" for answer, count in seen.most_common())
        print(f"contract-fuzz: {method} {path}: {rule}; got {answers or 'no request'}",
              file=sys.stderr)
    if problems:
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True)
    checking = commands.add_parser("check")
    checking.add_argument("spec")
    checking.add_argument("role")
    checking.add_argument("token")
    checking.add_argument("har", nargs="+")
    checking.add_argument("--exclude-path", action="append", default=[])
    checking.set_defaults(run=check)
    listing = commands.add_parser("refused")
    listing.add_argument("spec")
    listing.add_argument("role")
    listing.set_defaults(run=refused_operations)
    arguments = parser.parse_args()
    arguments.run(arguments)


if __name__ == "__main__":
    main()
