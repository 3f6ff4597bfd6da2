#!/usr/bin/env bash
# `make deploy`: builds every function for arm64 with SAM's rust-cargolambda
# build method and deploys the stack with `sam deploy --guided` (it asks for
# the stack name, region, JwtIssuer, JwtAudience, PageTokenSecret, ... and
# can save the answers to samconfig.toml). Needs AWS credentials; see README
# "Deployment".
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
scripts/setup.sh
if ! command -v sam >/dev/null; then
  step "pip install aws-sam-cli (into .tools/venv)"
  "$ROOT/.tools/venv/bin/pip" install -q --disable-pip-version-check aws-sam-cli
fi
aws_ok=$(python3 -c 'import os; print(int(any(os.environ.get(k) for k in ("AWS_PROFILE","AWS_ACCESS_KEY_ID","AWS_WEB_IDENTITY_TOKEN_FILE"))))')
if [ "$aws_ok" != 1 ] && [ ! -f "$HOME/.aws/credentials" ] && [ ! -f "$HOME/.aws/config" ]; then
  echo "No AWS credentials found (AWS_PROFILE, AWS_ACCESS_KEY_ID or ~/.aws): configure them, then run make deploy again." >&2
  exit 1
fi
step "sam build (rust-cargolambda, arm64)"
sam build --template-file infra/template.yaml --beta-features
step "sam deploy --guided"
echo "Tip: PageTokenSecret can be: $(openssl rand -hex 32 2>/dev/null || python3 -c 'import secrets; print(secrets.token_hex(32))')" >&2
sam deploy --guided --capabilities CAPABILITY_IAM
