# wisp — entry point. Every target installs what it needs (Toolchain/setup.sh).
#
#   make run                 local demo mesh on loopback (3 nodes, a client, an echo service)
#   make test                every test: swift test, Embedded builds, qemu-user runs, end-to-end
#   make firmware [BOARD=b]  Embedded wisp for every target, or for one board's target
#   make bench               benchmarks (prints a table and `bench NAME VALUE UNIT` lines)
#   make package             .deb packages (amd64, arm64, armhf) in .build-packages/
#   make image               SD-card image (not built yet)
SHELL := /bin/bash
BOARD ?=

.PHONY: run test firmware bench package image setup clean

setup:
	@Toolchain/setup.sh

firmware: setup
	@Toolchain/build.sh $(if $(BOARD),--board $(BOARD))

run: setup
	@Toolchain/build.sh x86_64 >/dev/null
	@.build-firmware/x86_64/wisp demo

test: setup
	@Tests/run-all.sh

bench: setup
	@Toolchain/build.sh x86_64
	@Tests/Bench/bench.sh

package: setup
	@Toolchain/package.sh

image:
	@echo "make $@: not built yet (see the open issues)" >&2; exit 1

clean:
	rm -rf .build .build-*
