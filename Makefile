# psbench — set-up and common commands. `make run` and `make test` do all the set-up on Debian 12.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
# intra-op threads of `make run`: auto = per cell, 1 below 4 chains per network call, else every core
# (docs/PERFORMANCE.md, 2)
THREADS ?= auto
export CCACHE_SLOPPINESS = pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_DIR ?= $(HOME)/.cache/psbench-ccache

# Debian packages psbench needs (see ../shared/reference/TOOLCHAIN.md): RUN_PACKAGES build and run psbench
# (make run installs only these); TEST_PACKAGES add the test and benchmark frameworks and the Python
# readers, figures and table tools (make deps / make test install both).
RUN_PACKAGES = cmake g++ make ccache git libtorch-dev libyaml-cpp-dev libhdf5-dev \
  libboost-program-options-dev libstb-dev libopenblas0-pthread zlib1g-dev dataset-fashion-mnist
TEST_PACKAGES = catch2 libbenchmark-dev python3-h5py python3-numpy python3-scipy python3-pil python3-torch \
  python3-skimage python3-pandas python3-matplotlib python3-yaml valgrind
DEB_PACKAGES = $(RUN_PACKAGES) $(TEST_PACKAGES)

.PHONY: deps deps-run configure build build-run run test bench clean fashion-tables sanitize

# Installs what is missing of $(1) (apt-get, as root).
define install_missing
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: missing Debian packages: $$missing — run 'sudo make deps' (apt-get needs root)"; exit 1; fi; \
	  echo "make deps: installing $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "make deps: all Debian packages present"; fi
endef

deps:
	$(call install_missing,$(DEB_PACKAGES))

deps-run:
	$(call install_missing,$(RUN_PACKAGES))

# Tests and benchmarks are built when their frameworks are installed (CMake looks for them); make run
# builds the psbench program alone.
CONFIGURE = cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
$(BUILD_DIR)/CMakeCache.txt:
	$(CONFIGURE)

build: $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)

build-run: $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS) --target psbench

run: deps-run build-run
	mkdir -p results
	$(BUILD_DIR)/psbench run experiments/quick.yaml --out results/quick.h5 --threads $(THREADS) --fresh
	$(BUILD_DIR)/psbench report results/quick.h5

# Configures again (cheap when nothing changed) so that a build directory made by make run, before the
# test frameworks were installed, gains the tests and benchmarks; ctest fails when it finds no test.
configure:
	$(CONFIGURE)

test: deps configure build
	cd $(BUILD_DIR) && ctest --output-on-failure --no-tests=error -j $(JOBS)

# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer (a separate build directory; a cold build
# of the core, ~30 minutes on 2 cores). Leak checking is off: LibTorch keeps its registries until exit.
# allocator_may_return_null: libhdf5 asks malloc for sizes read from a damaged file (the fuzz test's mutants) and
# handles the NULL that glibc returns for an impossible size; ASan would abort there instead.
SANITIZE_DIR ?= build-sanitize
sanitize: deps
	cmake -S . -B $(SANITIZE_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPSBENCH_SANITIZE=ON -DPSBENCH_BUILD_BENCHMARKS=OFF
	cmake --build $(SANITIZE_DIR) -j $(JOBS)
	cd $(SANITIZE_DIR) && ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure --no-tests=error -j $(JOBS) --timeout 1800

# Google Benchmark; JSON (with the machine's context) under results/, named by date and git revision.
bench: deps configure build
	mkdir -p results
	out=results/bench-$$(date +%Y%m%d-%H%M%S)-$$(git rev-parse --short HEAD 2>/dev/null || echo norev).json && \
	  $(BUILD_DIR)/benchmarks/psbench_bench --benchmark_out=$$out --benchmark_out_format=json $(BENCH_ARGS) && \
	  /usr/bin/python3 tools/bench_ratios.py $$out

# The Fashion-MNIST tables (tune, pick, fidelity, diversity) into docs/FASHION_TABLES.md; hours on 2 cores,
# resumable (tools/fashion_tables.sh).
SHARDS ?= $(shell nproc)
fashion-tables: deps build
	PSBENCH=$(BUILD_DIR)/psbench tools/fashion_tables.sh $(SHARDS)

clean:
	rm -rf $(BUILD_DIR)
