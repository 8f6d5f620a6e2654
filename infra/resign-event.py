#!/usr/bin/env python3
"""Refresh the visitor signature of a sample API Gateway (HTTP API, payload 2.0) event.

The visitor routes refuse requests whose `timestamp` is more than 5 minutes away from the
server clock, so the checked-in events in events/ go stale. This prints the event with
body.timestamp set to now (ms), the `x-security-sign` header recomputed (api.md 2.5) and
requestContext.time/timeEpoch moved along, ready for:

    python3 infra/resign-event.py events/visitor-register.json > /tmp/ev.json
    sam local invoke VisitorRegisterFunction -e /tmp/ev.json

sign = sha256_hex("deviceId=<deviceId>&salt=<salt>&timestamp=<timestamp>" + "APP_SECRET")

Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import time
import urllib.parse

DEFAULT_SALT = "45ncashdaksh2!#@3nxjdas*_259"  # the course's published client salt
SIGN_HEADER = "x-security-sign"


def visitor_sign(device_id: str, timestamp: int, salt: str) -> str:
    # Keys sorted by code unit (deviceId < salt < timestamp), joined k=v with '&'.
    params = {"deviceId": device_id, "salt": salt, "timestamp": str(timestamp)}
    text = "&".join(f"{k}={params[k]}" for k in sorted(params)) + "APP_SECRET"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def api_gateway_time(ms: int) -> str:
    # requestContext.time format, e.g. 18/Jul/2025:10:44:09 +0000 (English month, not locale).
    t = time.gmtime(ms // 1000)
    month = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()[t.tm_mon - 1]
    return f"{t.tm_mday:02d}/{month}/{t.tm_year}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"


def header(headers: dict, name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def set_header(headers: dict, name: str, value: str) -> None:
    # API Gateway delivers lowercase names; drop any other spelling so there is one value.
    for key in [k for k in headers if k.lower() == name and k != name]:
        del headers[key]
    headers[name] = value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("event", help="path to an events/*.json file")
    parser.add_argument(
        "--salt",
        default=os.environ.get("VISITOR_SALT") or DEFAULT_SALT,
        help="visitor salt (default: $VISITOR_SALT or the course salt)",
    )
    parser.add_argument(
        "--timestamp",
        type=int,
        default=None,
        help="use this timestamp in ms instead of now (for reproducible output)",
    )
    args = parser.parse_args()

    with open(args.event, encoding="utf-8") as f:
        event = json.load(f)

    raw = event.get("body")
    if not raw:
        parser.error(f"{args.event}: event has no body")
    was_base64 = bool(event.get("isBase64Encoded"))
    if was_base64:
        raw = base64.b64decode(raw).decode("utf-8")

    headers = event.setdefault("headers", {})
    content_type = (header(headers, "content-type") or "").lower()
    is_form = content_type.startswith("application/x-www-form-urlencoded")

    if is_form:
        pairs = urllib.parse.parse_qsl(raw, keep_blank_values=True)
        body = dict(pairs)
    else:
        body = json.loads(raw)
        if not isinstance(body, dict):
            parser.error(f"{args.event}: body is not a JSON object")

    device_id = body.get("deviceId")
    if not isinstance(device_id, str) or not device_id:
        parser.error(f"{args.event}: body has no deviceId")

    now_ms = args.timestamp if args.timestamp is not None else int(time.time() * 1000)
    if is_form:
        # Keep the field order; only the timestamp value changes.
        pairs = [(k, str(now_ms) if k == "timestamp" else v) for k, v in pairs]
        if "timestamp" not in body:
            pairs.append(("timestamp", str(now_ms)))
        new_raw = urllib.parse.urlencode(pairs)
    else:
        body["timestamp"] = now_ms
        new_raw = json.dumps(body, ensure_ascii=False, separators=(",", ":"))

    set_header(headers, SIGN_HEADER, visitor_sign(device_id, now_ms, args.salt))
    if header(headers, "content-length") is not None:
        set_header(headers, "content-length", str(len(new_raw.encode("utf-8"))))

    event["body"] = base64.b64encode(new_raw.encode("utf-8")).decode("ascii") if was_base64 else new_raw

    ctx = event.get("requestContext")
    if isinstance(ctx, dict):
        ctx["timeEpoch"] = now_ms
        ctx["time"] = api_gateway_time(now_ms)

    json.dump(event, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
