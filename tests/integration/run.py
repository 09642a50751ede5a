#!/usr/bin/env python3
"""Integration test runner: imports every tests/integration/test_*.py, runs each function whose
name starts with test_ (in file order), prints one line per test and, last,
"integration: N passed, N failed". A test fails by raising (assert). Optional argv[1]: a
substring filter on "module.test"."""
import importlib.util
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main():
    only = sys.argv[1] if len(sys.argv) > 1 else None
    passed = failed = 0
    for fn in sorted(os.listdir(HERE)):
        if not (fn.startswith("test_") and fn.endswith(".py")):
            continue
        modname = fn[:-3]
        spec = importlib.util.spec_from_file_location(modname, os.path.join(HERE, fn))
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
        except Exception:
            traceback.print_exc()
            print(f"FAIL {modname} (import)")
            failed += 1
            continue
        tests = [(n, f) for n, f in vars(mod).items() if n.startswith("test_") and callable(f)]
        tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
        if only and not any(only in f"{modname}.{n}" for n, _ in tests):
            continue
        setup = getattr(mod, "setup_module", None)
        teardown = getattr(mod, "teardown_module", None)
        try:
            if setup:
                setup()
            for name, f in tests:
                full = f"{modname}.{name}"
                if only and only not in full:
                    continue
                t0 = time.time()
                try:
                    f()
                    passed += 1
                    print(f"ok   {full} ({time.time() - t0:.2f}s)", flush=True)
                except Exception:
                    failed += 1
                    print(f"FAIL {full} ({time.time() - t0:.2f}s)", flush=True)
                    traceback.print_exc()
        except Exception:
            failed += 1
            print(f"FAIL {modname} (setup)")
            traceback.print_exc()
        finally:
            if teardown:
                try:
                    teardown()
                except Exception:
                    traceback.print_exc()
    print(f"integration: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
