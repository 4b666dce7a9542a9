# wisp — entry point. Every target installs what it needs (Toolchain/setup.sh).
#
#   make run                 local demo mesh on loopback (3 nodes, a client, an echo service)
#   make test                every test: swift test, Embedded builds, qemu-user runs, end-to-end
#   make firmware [BOARD=b]  Embedded wisp for every target (or one board's) for bookworm and trixie
#   make bench               benchmarks (prints a table and `bench NAME VALUE UNIT` lines; mbedTLS 2.28 vs 3.6)
#   make fuzz [FUZZ_SECONDS=n] every libFuzzer target for n s (default 60; `fuzz TARGET execs N` lines)
#   make package             .deb packages (amd64, arm64, armhf) in .build-packages/
#   make image [BOARD=b]     SD-card image .build-image/wisp-VERSION-BOARD-RELEASE.img.xz (default rpi3b, trixie; RELEASE=bookworm)
#   make image-test          the image in emulation with 20 power cuts (Tests/e2e/image.sh runs 3)
SHELL := /bin/bash
BOARD ?=

FUZZ_SECONDS ?= 60

.PHONY: run test firmware bench fuzz package image image-test setup clean

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
	@Toolchain/build.sh x86_64 x86_64-trixie
	@Tests/Bench/bench.sh
	@Tests/Bench/releases.sh

fuzz: setup
	@Tests/Fuzz/fuzz.sh $(FUZZ_SECONDS)

package: setup
	@Toolchain/package.sh

image: setup
	@Toolchain/build.sh aarch64 >/dev/null
	@Toolchain/image.sh $(or $(BOARD),rpi3b)

image-test: setup
	@Toolchain/build.sh aarch64 >/dev/null
	@WISP_IMAGE_CUTS=20 Tests/e2e/image.sh

clean:
	rm -rf .build .build-*
