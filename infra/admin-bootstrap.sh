#!/usr/bin/env bash
# Creates the first manager of a deployed stack (api.md 7.1): invokes the stack's admin-bootstrap
# function with CHAT_ADMIN_USERNAME / CHAT_ADMIN_PASSWORD from the environment. It does nothing
# once a manager was bootstrapped. Needs the AWS CLI with the deploying credentials.
#   CHAT_ADMIN_USERNAME=admin CHAT_ADMIN_PASSWORD='…' [STACK_NAME=chat-backend] make admin-bootstrap
set -euo pipefail
: "${CHAT_ADMIN_USERNAME:?set CHAT_ADMIN_USERNAME}"
: "${CHAT_ADMIN_PASSWORD:?set CHAT_ADMIN_PASSWORD (at least 8 characters)}"
stack="${STACK_NAME:-chat-backend}"
function=$(aws cloudformation describe-stacks --stack-name "$stack" \
  --query "Stacks[0].Outputs[?OutputKey=='AdminBootstrapFunctionName'].OutputValue" --output text)

# The payload goes through a private file, never the command line (visible to other users).
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT; chmod 700 "$dir"
python3 -c 'import json, os; print(json.dumps({"username": os.environ["CHAT_ADMIN_USERNAME"], "password": os.environ["CHAT_ADMIN_PASSWORD"]}))' \
  > "$dir/payload.json"
meta=$(aws lambda invoke --function-name "$function" --cli-binary-format raw-in-base64-out \
  --payload "file://$dir/payload.json" "$dir/answer.json")
if grep -q FunctionError <<<"$meta"; then
  echo "admin-bootstrap failed: $(cat "$dir/answer.json")" >&2
  exit 1
fi
echo "admin-bootstrap answered $(cat "$dir/answer.json") (created=false: a manager existed already)"
