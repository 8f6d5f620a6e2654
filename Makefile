# The two commands of the README: `make run` and `make test`.
.PHONY: run test test-deps lint-template lint build-bins load release-size deploy-build admin-bootstrap

# Runs the whole backend locally on http://127.0.0.1:3000 with the embedded store; the admin
# console is at /admin (first start: manager admin / admin123456 unless CHAT_ADMIN_* are set).
run:
	cargo run --release --bin chat-local

# Everything CI checks, installing redis-server, Chromium, moto, cfn-lint and playwright-core first if missing.
test: test-deps lint-template lint build-bins
	cargo test --workspace --all-targets

test-deps:
	bash infra/test-deps.sh

lint-template:
	CFN_LINT=.venv/bin/cfn-lint bash infra/lint-template.sh

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

# chat-local's end-to-end test runs the built binary.
build-bins:
	cargo build --workspace --bins

# Release size of one function, as built for Lambda by cargo-lambda (host target here).
# Messages/s and p50/p99 delivery latency through chat-local (a script, not a test).
load:
	bash infra/load.sh

release-size:
	cargo build --release --bin login-chat
	ls -l target/release/login-chat

# For deployers (needs cargo-lambda and the SAM CLI): see README "Deploy".
deploy-build:
	sam build --beta-features

# After the first deploy: the first manager from CHAT_ADMIN_USERNAME / CHAT_ADMIN_PASSWORD.
admin-bootstrap:
	bash infra/admin-bootstrap.sh
