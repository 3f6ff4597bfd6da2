# Courier: two commands do all set-up on a fresh machine.
#   make run    the whole local stack (DynamoDB Local, functions under cargo lambda watch, dashboard)
#   make test   install what is needed, then every check and test
.PHONY: run test bench coldstart-profile setup wasm fmt clean package deploy fuzz

run:
	@bash scripts/run.sh

test:
	@bash scripts/test.sh

bench:
	@bash scripts/bench.sh

# Instructions from process start to the first runtime-API request, per function (callgrind).
coldstart-profile:
	@bash scripts/coldstart-profile.sh

# Every fuzz target for FUZZ_SECONDS (default 60) each; crashes become regressions.
fuzz:
	@bash scripts/fuzz.sh

setup:
	@bash scripts/setup.sh

# Release arm64 bootstrap zips for every function, with their sizes.
package:
	@bash scripts/package.sh

# sam build + sam deploy --guided into your AWS account (README "Deployment").
deploy:
	@bash scripts/deploy.sh

wasm:
	@bash scripts/build-wasm.sh

fmt:
	cargo fmt --all

clean:
	cargo clean
	rm -rf .local
