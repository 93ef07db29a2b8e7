# callhook — the two commands a newcomer needs:
#   make dev    run the whole stack locally (DynamoDB Local + the webhook routes on :3000)
#   make test   run every test (lint, unit, property, fixtures, end-to-end against DynamoDB Local)

.PHONY: dev test bench lint fmt clean deploy-check

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
