# ghostnet-d — build, test, lint and demo entry points. Every target that compiles or runs the program
# depends on `deps`, which installs missing system packages with apt-get.

SWIFT      ?= swift
CONFIG     ?= release
SWIFTFLAGS := -c $(CONFIG)
BIN        := .build/$(CONFIG)/ghostnet-d

.PHONY: all deps build test test-faults lint demo finetune-demo bench clean

all: build

deps:
	@./deploy/install-deps.sh

build: deps
	$(SWIFT) build $(SWIFTFLAGS)

# Unit tests, finite-difference gradient checks, and integration tests that run the built binary
# (including `mpirun -np 2` runs). Release mode: the numerical tests run real kernels.
test: deps
	$(SWIFT) build $(SWIFTFLAGS) --build-tests
	$(SWIFT) test $(SWIFTFLAGS) --skip-build

# The fault suite (Tests/faults/run.sh): killed ranks and coordinators, corrupt checkpoints, bad
# images, bad rank tables and configs, coordinator load. Slow, so not part of `make test`; prints one
# line per scenario and `N passed, M failed`. See docs/RELIABILITY.md.
test-faults: build
	./Tests/faults/run.sh

# Style check with the toolchain's formatter against .swift-format (4-space indent, 120 columns);
# any finding fails. `swift format format -i --recursive Sources Tests Package.swift` fixes most.
lint:
	$(SWIFT) format lint --strict --recursive --configuration .swift-format Sources Tests Package.swift

# The main job: 2 ranks train a tiny GhostNet-D on the built-in synthetic dataset, reporting to a
# coordinator; ends with its Best values line. Follow it with `tail -f demo-run/coordinator.log`.
demo: build
	./deploy/demo.sh

# The demo's second act: its trained model (running `make demo` first if it has no checkpoint) fine-tuned
# by 2 ranks to a 5-class synthetic set with `train --init-from`, next to the same run from random weights.
finetune-demo: build
	./deploy/finetune_demo.sh

# The standard benchmark set (training and inference steps against the in-run sgemm peak, the
# input pipeline, the all-reduce); writes the table in docs/PERFORMANCE.md.
bench: build
	./deploy/bench.sh

clean:
	rm -rf .build demo-run bench-run
