# L-VN top-level targets; each one is a thin call into scripts/.
.PHONY: setup demo test test-unit test-vm test-debug test-long test-stress module ipk bench clean test-cross test-busy

setup:
	scripts/setup-deps.sh

demo:
	scripts/demo.sh

test:
	scripts/test.sh

test-unit: setup
	.venv/bin/python -m pytest -p no:cacheprovider -q tests/unit

test-vm: setup
	scripts/test-vm.sh

module: setup
	for k in $$(vm/kernels.sh); do vm/build-module.sh $$k; done

ipk: setup
	.venv/bin/python scripts/build-ipk.py build/ipk
	.venv/bin/python scripts/build-ipk.py build/ipk --luci

bench:
	scripts/bench.sh

clean:
	rm -rf build

test-debug:
	vm/debug/test-debug.sh

# long runs, not in make test (tests marked "long"), on both kernels: 10,000
# tunnels and 100,000 rules, 30 s of churn under traffic, the quick mode of
# every bench scenario; and 1,000 delete/re-create rounds under a receive flood
test-long: setup
	LVN_MARKS=long scripts/test-vm.sh
	LVN_MARKS= LVN_TEARDOWN_ROUNDS=1000 LVN_TESTS=tests/kernel/test_teardown.py scripts/test-vm.sh

test-stress: test-long

# the module on armhf (32-bit) and s390x (big-endian) under qemu: W=1 and
# sparse there, then the kernel tests that can differ by word size or byte
# order (docs/testing.md); the first run makes the Debian roots
test-cross: setup
	scripts/test-cross.sh

# the agent scenarios (CPython and MicroPython clients) with a CPU hog
# (stress-ng --cpu 1) beside the VM: they wait on events, not sleeps
test-busy: setup
	scripts/test-busy.sh
