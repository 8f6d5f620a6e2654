#!/usr/bin/env bash
# Lint the SAM template with cfn-lint. The caller puts cfn-lint on PATH (or sets CFN_LINT).
# Any extra arguments are passed to cfn-lint; .cfnlintrc at the repo root is honoured.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec "${CFN_LINT:-cfn-lint}" template.yaml "$@"
