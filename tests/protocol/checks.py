"""The runner of the self-checks in this folder, for CPython and
MicroPython (which has no pytest): each check is a function returning
True, registered with ``Checks.check``."""


def raises(exc, fn, *args):  # type: ignore[no-untyped-def]
    try:
        fn(*args)
    except exc:
        return True
    return False


class Checks:
    def __init__(self, title: str) -> None:
        self.title = title
        self.all = []  # type: ignore[var-annotated]

    def check(self, fn):  # type: ignore[no-untyped-def]
        self.all.append(fn)
        return fn

    def main(self) -> int:
        """Run them all: one line per failed check, then "TITLE: N passed,
        M failed"; 0 only if all passed."""
        passed = failed = 0
        for fn in self.all:
            try:
                ok = fn()
            except Exception as e:  # noqa: BLE001 - report, do not stop
                ok = False
                print("FAIL", fn.__name__, "raised", repr(e))
            if ok:
                passed += 1
            else:
                failed += 1
                print("FAIL", fn.__name__)
        print(f"{self.title}: {passed} passed, {failed} failed")
        return 0 if passed and not failed else 1
