"""Long fuzz run: tests/reliability/test_fuzz.py with a high example count.

Usage::

    python tools/fuzz.py [--examples 5000] [--seed N] [-k PATTERN] [--hang 10] [--modules]

The CI runs ``tests/reliability/test_fuzz.py`` with a few dozen examples per property; this
script runs the same properties with ``--examples`` each (environment ``DCPOOL_FUZZ_EXAMPLES``,
read by the test module), a per-example watchdog of ``--hang`` seconds
(``DCPOOL_FUZZ_HANG``), an optional fixed hypothesis seed (``--seed``, for a reproducible run),
and hypothesis' statistics (how often each outcome — accepted, or which typed error — was
seen).  ``--modules`` also runs the module-level fuzz tests of tests/transport, tests/tl and
tests/mtproto (at their own, fixed, example counts).  Exit status: pytest's.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULE_FUZZ = [
    "tests/transport/test_transport_fuzz.py",
    "tests/tl/test_tl_fuzz.py",
    "tests/mtproto/test_envelope.py::test_random_bytes_only_raise_dcpool_errors",
    "tests/mtproto/test_handshake.py::test_server_garbage_is_always_minus_404",
    "tests/mtproto/test_handshake.py::test_client_garbage_raises_only_dcpool_errors",
    "tests/mtproto/test_session.py::test_fuzz_random_payloads",
    "tests/mtproto/test_session.py::test_fuzz_valid_envelopes_with_garbage_bodies",
    "tests/mtproto/test_pair.py::test_fuzz_server_random_payloads",
    "tests/mtproto/test_pair.py::test_fuzz_server_valid_envelopes_with_garbage_bodies",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=5000, help="hypothesis examples per property")
    parser.add_argument("--seed", type=int, default=None, help="fixed hypothesis seed")
    parser.add_argument("-k", dest="keyword", default=None, help="only properties matching (pytest -k)")
    parser.add_argument("--hang", type=float, default=10.0, help="seconds before an example counts as a hang")
    parser.add_argument("--modules", action="store_true", help="also run the module fuzz tests")
    parser.add_argument("--quiet", action="store_true", help="no hypothesis statistics")
    args = parser.parse_args(argv)

    os.environ["DCPOOL_FUZZ_EXAMPLES"] = str(args.examples)
    os.environ["DCPOOL_FUZZ_HANG"] = str(args.hang)
    os.chdir(ROOT)
    import pytest

    targets = ["tests/reliability/test_fuzz.py"] + (MODULE_FUZZ if args.modules else [])
    pytest_args = [*targets, "-q", "-p", "no:cacheprovider"]
    if not args.quiet:
        pytest_args.append("--hypothesis-show-statistics")
    if args.seed is not None:
        pytest_args.append(f"--hypothesis-seed={args.seed}")
    if args.keyword:
        pytest_args += ["-k", args.keyword]
    print(f"fuzz: {args.examples} examples per property, watchdog {args.hang} s", file=sys.stderr)
    return int(pytest.main(pytest_args))


if __name__ == "__main__":
    sys.exit(main())
