# The two commands a newcomer needs: `make run` and `make test`. Both install what is missing first.
NODE := node_modules/node/bin/node
TSC := $(NODE) node_modules/typescript/bin/tsc
TEST_FILES := $(shell find src test -name '*.test.ts' | sort)

.PHONY: deps native guest run test typecheck bench clean

deps:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory native guest

# Small C helpers for what Node cannot do itself (namespaces for the whole process, pivot_root, a tap in another namespace).
native: build/bali-enter build/krd-shim build/krd-spawner build/krd-tapfd

# The programs of several files: every one of their sources and headers is a prerequisite.
SHIM_SRC := $(sort $(wildcard native/krd-shim*.c))
SHIM_DEPS := $(SHIM_SRC) $(wildcard native/krd-shim*.h)
INIT_SRC := $(sort $(wildcard native/cradle-init*.c))
INIT_DEPS := $(INIT_SRC) $(wildcard native/cradle-init*.h)

build/bali-enter: native/bali-enter.c
	@mkdir -p build
	gcc -O2 -Wall -Wextra -o $@ $<

build/krd-shim: $(SHIM_DEPS)
	@mkdir -p build
	gcc -O2 -Wall -Wextra -o $@ $(SHIM_SRC) -lutil

build/krd-spawner: native/krd-spawner.c
	@mkdir -p build
	gcc -O2 -Wall -Wextra -o $@ $<

build/krd-tapfd: native/krd-tapfd.c
	@mkdir -p build
	gcc -O2 -Wall -Wextra -o $@ $<

# cradle's guest side: static, because the initramfs carries no libc.
build/krd-shim.static: $(SHIM_DEPS)
	@mkdir -p build
	gcc -O2 -Wall -Wextra -static -o $@ $(SHIM_SRC) -lutil

build/cradle-init: $(INIT_DEPS) native/nic-by-mac.h
	@mkdir -p build
	gcc -O2 -Wall -Wextra -static -o $@ $(INIT_SRC)

build/cradle-nic: native/cradle-nic.c native/nic-by-mac.h
	@mkdir -p build
	gcc -O2 -Wall -Wextra -static -o $@ $<

build/cradle-bare-init: native/cradle-bare-init.c
	@mkdir -p build
	gcc -O2 -Wall -Wextra -static -o $@ $<

# Guest assets (kernel, initramfs): rebuilt when the init, the shim, the script or the kernel package change.
KERNEL_PKG_STAMP := /var/lib/dpkg/info/linux-image-cloud-amd64.list
guest: .cache/cradle/assets.json

.cache/cradle/assets.json: scripts/guest-assets.sh build/cradle-init build/cradle-nic build/cradle-bare-init build/krd-shim.static $(wildcard $(KERNEL_PKG_STAMP))
	@sh scripts/guest-assets.sh .cache/cradle

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
