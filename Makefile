# Courier: two commands do all set-up on a fresh machine.
#   make run    the whole local stack (DynamoDB Local + functions under cargo lambda watch)
#   make test   install what is needed, then every check and test
.PHONY: run test bench setup wasm-core fmt clean

run:
	@bash scripts/run.sh

test:
	@bash scripts/test.sh

bench:
	@bash scripts/bench.sh

setup:
	@bash scripts/setup.sh

wasm-core:
	@bash scripts/build-core-wasm.sh

fmt:
	cargo fmt --all

clean:
	cargo clean
	rm -rf .local
