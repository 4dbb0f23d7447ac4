"""Numba functions with declared signatures compile at their first use inside ``deferred_signatures``: the
same signatures and the same behaviour as numba's compile at import, and umap's import defers pynndescent's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
from numba.core import decorators

from vae.projection.lazy_signatures import deferred_signatures

ROOT = Path(__file__).resolve().parents[2]
SIGNATURES = ["float64(float64, int64)", "float32(float32, int64)"]


def scaled(x, n):
    return x * n + 0.5


def test_declared_signatures_compile_at_the_first_call_and_then_no_others():
    original = decorators._jit
    with deferred_signatures():
        lazy = numba.njit(SIGNATURES)(scaled)
    assert decorators._jit is original  # the decorator is numba's own again
    eager = numba.njit(SIGNATURES)(scaled)
    assert lazy.signatures == [] and len(eager.signatures) == 2  # nothing compiled yet
    assert lazy(1.5, 3) == eager(1.5, 3) == 5.0
    assert lazy.signatures == eager.signatures  # exactly the declared ones
    assert lazy(2, 2) == eager(2, 2) == 4.5  # an int converts to a declared signature, as numba's does
    assert lazy(np.float32(0.1), 3) == eager(np.float32(0.1), 3) != 0.1 * 3 + 0.5  # float32's arithmetic
    for f in (lazy, eager):  # and nothing new is compiled for types no signature takes
        with pytest.raises(TypeError, match="No matching definition"):
            f("a", 2)
    assert lazy.signatures == eager.signatures


def test_a_jitted_caller_compiles_its_deferred_callee_with_the_declared_signature():
    with deferred_signatures():
        callee = numba.njit("float64(float64, int64)")(scaled)

    @numba.njit
    def caller(x):
        return callee(x, 4) * 2.0

    assert callee.signatures == []
    assert caller(1.0) == 9.0
    assert [str(s) for s in callee.signatures] == ["(float64, int64)"]


@pytest.mark.slow
def test_importing_umap_defers_pynndescents_compiles_until_they_are_used(tmp_path):
    """In a new process with an empty numba cache: after ``import_umap`` pynndescent's functions with declared
    signatures are not compiled, and one compiles its own signature when called."""
    code = (
        "from vae.projection.umap_runtime import import_umap\n"
        "import_umap()\n"
        "import numpy as np, pynndescent.utils as u\n"
        "declared = [f for f in vars(u).values() if hasattr(f, 'signatures') and not f._can_compile]\n"
        "waiting = [f for f in vars(u).values() if 'get_call_template' in getattr(f, '__dict__', {})]\n"
        "assert not declared and len(waiting) >= 10, (len(declared), len(waiting))\n"
        "state = np.array([1, 2, 3], dtype=np.int64)\n"
        "value = u.tau_rand_int(state)\n"
        "assert isinstance(value, int) and not u.tau_rand_int._can_compile, value\n"
        "assert len(u.tau_rand_int.signatures) == 1\n"
        "print(len(waiting))\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "nc"), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) >= 10
