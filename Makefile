# callhook — the two commands a newcomer needs:
#   make dev    run the whole stack locally (DynamoDB Local + the webhook routes on :3000)
#   make test   run every test (lint, unit, property, fixtures, end-to-end against DynamoDB Local)

.PHONY: dev test bench lint fmt clean deploy-check deploy-rehearsal sam-build windows-check

dev:
	@scripts/dev.sh $(if $(PERSIST),--persist)

test:
	@scripts/test.sh

# Not part of `make test`: release builds, ~25 minutes; writes docs/PERFORMANCE.md.
bench:
	@scripts/bench.sh

# SAM's lint, then its transform expanded offline and checked against what the code expects.
deploy-check:
	@scripts/deploy-check.sh

# Not part of `make test`: the stack deployed into an AWS emulator (fakecloud), every provider's
# example sent through its HTTP API, the records read back, the provider secret rotated. The
# first run builds the emulator (~20 minutes); later runs take about 6.
deploy-rehearsal:
	@scripts/deploy-rehearsal.sh

# Not part of `make test`: `sam build` as users run it, timed, with each function's sizes.
sam-build:
	@scripts/sam-build.sh

# Not part of `make test` (it needs Rust's Windows standard library from rustup's server): the
# `callhook` command type-checked for Windows.
windows-check:
	@scripts/windows-check.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	scripts/function-deps.sh
	scripts/cfn-lint.sh
	scripts/sam-validate.sh

fmt:
	cargo fmt --all

clean:
	cargo clean
	rm -rf .local .venv
