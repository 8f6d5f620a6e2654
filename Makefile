# The two commands of the README: `make run` and `make test`; the rest are for developers and deployers.
.PHONY: run test test-deps store-deps deploy-deps lint-template lint-openapi lint-modules lint build invoke bench-coldstart \
	bench-hash-memory bench-fanout bench-keepalive bench-counters bench-capacity release-tradeoff load release-size deploy-build admin-bootstrap fuzz

# Runs the whole backend locally on http://127.0.0.1:3000 with the embedded store; the admin
# console is at /admin (first start: manager admin / admin123456 unless CHAT_ADMIN_* are set).
run:
	cargo run --release --bin chat-local

# Clippy is the compiler of the workspace's own crates while they build for the tests
# (RUSTC_WORKSPACE_WRAPPER, as `cargo clippy` does for `cargo check`), so linting costs no second
# compilation of the workspace and its dependencies; warnings are errors.
CLIPPY_DRIVER := $(shell rustc --print sysroot 2>/dev/null)/bin/clippy-driver
LINTED_CARGO := RUSTC_WORKSPACE_WRAPPER=$(CLIPPY_DRIVER) CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings cargo

# Everything CI checks, installing redis-server, Chromium, a CJK font, moto, cfn-lint,
# Schemathesis, openapi-spec-validator and playwright-core first if missing (needs network access
# to the package registries and root or sudo). Last, a bounded property-based fuzz of every
# operation of openapi.yaml against chat-local (a fixed seed, so a failure replays).
test: test-deps lint-template lint-openapi lint-modules build
	$(LINTED_CARGO) test --workspace --all-targets
	FUZZ_SEED=1 bash infra/fuzz.sh 20

# A longer fuzz with fresh random inputs (for local use): make fuzz [EXAMPLES=300]. It looks for
# server errors and answers outside the document; see infra/fuzz.sh for the two checks it drops.
fuzz: test-deps build
	FUZZ_STRICT=0 bash infra/fuzz.sh $(or $(EXAMPLES),300)

test-deps:
	bash infra/test-deps.sh

# What `make invoke` and `make bench-coldstart` need: redis-server and moto in .venv.
store-deps:
	bash infra/test-deps.sh --stores-only

lint-template:
	CFN_LINT=.venv/bin/cfn-lint bash infra/lint-template.sh

# No two modules of a crate import each other, directly or through others.
lint-modules:
	python3 infra/module-cycles.py shared/src functions/src

# openapi.yaml is a valid OpenAPI 3.1 document.
lint-openapi:
	.venv/bin/openapi-spec-validator openapi.yaml

# A quick lint on its own (`make test` lints while it builds).
lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

# Every target once, linted: the Lambda binary and chat-local that the process tests run, the tests.
build:
	cargo fmt --all --check
	$(LINTED_CARGO) build --workspace --all-targets

# Docker-free `sam local invoke`: make invoke FN=get-user-set-info EVENT=events/get-user-set-info.json
invoke: store-deps
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make invoke FN=<function> EVENT=events/<file>.json"; exit 2; }
	$(LINTED_CARGO) build --workspace --bin bootstrap --bin lambda-invoke
	target/debug/lambda-invoke $(FN) $(EVENT)

# Cold start of the token-checked read vs a hello-world lambda_runtime binary and a Node.js peer.
bench-coldstart: store-deps
	npm ci --prefix tests/coldstart-node --no-audit --no-fund --loglevel=error
	cargo build --release --workspace --bin bootstrap --bin hello-lambda --bin coldstart-bench
	target/release/coldstart-bench $(or $(ROUNDS),15)

# Peak memory of password hashing under 64 parallel registrations and 32 logins (chat-local).
bench-hash-memory:
	cargo build --release --bin chat-local
	bash infra/bench-hash-memory.sh

# The release profile's trade-off (LTO, codegen units): build time, size and cold start of each.
release-tradeoff: store-deps
	bash infra/release-tradeoff.sh

# A group message to 499 members (half online) through chat-local on DynamoDB (moto) and Redis:
# the sender's answer, the time until every online member has it, and the calls it made.
bench-fanout: store-deps
	cargo build --release -p chat-tests --bin fanout-bench
	target/release/fanout-bench

# The keepalive over 100k registered connections: invocations a run needs, the most work and time
# in any one of them, before and after paging it through the fan-out queue.
bench-keepalive: store-deps
	cargo build --release -p chat-tests --bin keepalive-bench
	target/release/keepalive-bench $(or $(CONNECTIONS),100000)

# Writes to the user id counter per 1,000 registrations: one id per write vs blocks of ids.
bench-counters: store-deps
	cargo build --release -p chat-tests --bin counter-bench
	target/release/counter-bench $(or $(REGISTRATIONS),500)

# DynamoDB read/write units of a token check, a login and a send, before and after the user row
# split (item sizes of what the service writes, by DynamoDB's size rules).
bench-capacity: store-deps
	cargo build --release -p chat-tests --bin capacity-bench
	target/release/capacity-bench

# Messages/s and p50/p99 delivery latency through chat-local (a script, not a test).
load:
	bash infra/load.sh

release-size:
	cargo build --release --bin bootstrap
	ls -l target/release/bootstrap

# SAM CLI, cargo-lambda and Zig in .venv-deploy, and the arm64 standard library.
deploy-deps:
	bash infra/deploy-deps.sh

# For deployers: one arm64 build of the multi-call binary, shared by every function (README "Deploy").
deploy-build: deploy-deps
	PATH="$(CURDIR)/.venv-deploy/bin:$$PATH" sam build

# After the first deploy: the first manager from CHAT_ADMIN_USERNAME / CHAT_ADMIN_PASSWORD.
admin-bootstrap:
	bash infra/admin-bootstrap.sh
