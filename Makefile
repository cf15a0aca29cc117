# The two commands a newcomer needs: `make run` and `make test`. Both install what is missing first.
NODE := node_modules/node/bin/node
TSC := $(NODE) node_modules/typescript/bin/tsc
TEST_FILES := $(shell find src test -name '*.test.ts' | sort)

.PHONY: deps native run test typecheck bench clean

deps:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory native

# Small C helpers for what Node cannot do itself (namespaces for the whole process, pivot_root).
native: build/bali-enter build/krd-shim

build/bali-enter: native/bali-enter.c
	@mkdir -p build
	gcc -O2 -Wall -Wextra -o $@ $<

build/krd-shim: native/krd-shim.c
	@mkdir -p build
	gcc -O2 -Wall -Wextra -o $@ $< -lutil

run: deps
	@$(NODE) --no-warnings scripts/demo.ts

typecheck: deps
	$(TSC) --noEmit -p tsconfig.json

# Every test, on the pinned Node, through node's own runner (its closing summary is what CI reads).
test: deps typecheck
	$(NODE) --no-warnings --test --test-concurrency=2 --test-timeout=900000 $(TEST_FILES)

bench: deps
	$(NODE) --no-warnings bench/run.ts

clean:
	rm -rf .cache build
